// Shows a secret exactly once (registration or relay token) with a copy button and a
// warning; the secret lives only in this component's props and is gone when it closes.
import { useRef, useState } from "react";
import { useI18n } from "../../shared/i18n";
import { Modal } from "../ui/Modal";

async function copyText(text: string, fallback: HTMLInputElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Clipboard API refused (insecure origin, permissions): fall back to selection.
  }
  if (fallback) {
    fallback.focus();
    fallback.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
  return false;
}

export function SecretOnce({
  title,
  secret,
  note,
  onClose,
}: {
  title: string;
  secret: string;
  note?: string;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = async () => {
    const ok = await copyText(secret, input.current);
    // On failure the text stays selected so the user can press Ctrl+C.
    if (!ok) {
      input.current?.focus();
      input.current?.select();
    }
    setCopied(ok ? "yes" : "no");
  };
  return (
    <Modal title={title} onClose={onClose}>
      <div className="banner" role="alert" data-testid="secret-warning">
        {t("fleet.secret.warning")}
      </div>
      {note && <p className="muted">{note}</p>}
      <label>
        {t("fleet.secret.label")}
        <input
          ref={input}
          readOnly
          value={secret}
          onFocus={(e) => e.currentTarget.select()}
          data-testid="token-secret"
          style={{ fontFamily: "ui-monospace, monospace" }}
        />
      </label>
      <div className="row between">
        <span className="muted" aria-live="polite" data-testid="token-copy-status">
          {copied === "yes" ? t("common.copied") : copied === "no" ? t("fleet.secret.copyFailed") : ""}
        </span>
        <div className="row">
          <button onClick={copy} data-testid="token-copy">
            {t("common.copy")}
          </button>
          <button className="primary" onClick={onClose} data-testid="token-secret-done">
            {t("fleet.secret.done")}
          </button>
        </div>
      </div>
    </Modal>
  );
}
