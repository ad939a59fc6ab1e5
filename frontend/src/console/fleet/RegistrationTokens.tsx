// Gateway registration tokens (admin): list, create (secret shown once), revoke.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useI18n } from "../../shared/i18n";
import { useConfirm } from "../ui/Confirm";
import { Modal } from "../ui/Modal";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import { createToken, keys, listTokens, revokeToken, useCursorList } from "./api";
import { SecretOnce } from "./SecretOnce";
import type { CreatedRegistrationToken, RegistrationToken } from "./types";
import { LoadMore, When } from "./ui";

function tokenState(tk: RegistrationToken, now = Date.now()): "revoked" | "expired" | "active" {
  if (tk.revoked_at) return "revoked";
  if (tk.expires_at && new Date(tk.expires_at).getTime() <= now) return "expired";
  return "active";
}

export function RegistrationTokens() {
  const { t } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const list = useCursorList(keys.tokens, listTokens);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedRegistrationToken | null>(null);

  const revoke = useMutation({
    mutationFn: revokeToken,
    onSuccess: () => {
      toast.success(t("fleet.tokens.revoked"));
      void qc.invalidateQueries({ queryKey: keys.tokens });
    },
    onError: toast.error,
  });

  const onRevoke = async (tk: RegistrationToken) => {
    const ok = await confirm({
      title: t("fleet.tokens.revokeTitle", { name: tk.name }),
      body: t("fleet.tokens.revokeBody"),
      confirmLabel: t("fleet.tokens.revoke"),
    });
    if (ok) revoke.mutate(tk.id);
  };

  return (
    <section className="stack" aria-labelledby="tokens-heading" data-testid="tokens-section">
      <div className="row between">
        <h2 id="tokens-heading">{t("fleet.tokens.title")}</h2>
        <button className="primary" onClick={() => setCreating(true)} data-testid="token-create-open">
          {t("fleet.tokens.create")}
        </button>
      </div>
      <p className="muted">{t("fleet.tokens.help")}</p>
      {list.isPending ? (
        <Skeleton rows={3} />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : list.items.length === 0 ? (
        <Empty title={t("fleet.tokens.empty")} />
      ) : (
        <table data-testid="token-table">
          <thead>
            <tr>
              <th scope="col">{t("common.name")}</th>
              <th scope="col">{t("fleet.tokens.prefix")}</th>
              <th scope="col">{t("common.status")}</th>
              <th scope="col">{t("fleet.tokens.uses")}</th>
              <th scope="col">{t("fleet.tokens.lastUsed")}</th>
              <th scope="col">{t("fleet.tokens.expires")}</th>
              <th scope="col">{t("common.created")}</th>
              <th scope="col">{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((tk) => {
              const state = tokenState(tk);
              return (
                <tr key={tk.id} data-testid="token-row" data-token-id={tk.id} data-state={state}>
                  <td>{tk.name}</td>
                  <td>
                    <code>{tk.token_prefix}…</code>
                  </td>
                  <td>
                    <span className={`badge ${state === "active" ? "ok" : state === "revoked" ? "danger" : "warn"}`}>
                      {t(`fleet.tokens.state.${state}`)}
                    </span>
                  </td>
                  <td>{tk.use_count}</td>
                  <td>
                    <When iso={tk.last_used_at} />
                  </td>
                  <td>{tk.expires_at ? <When iso={tk.expires_at} /> : t("fleet.tokens.never")}</td>
                  <td>
                    <When iso={tk.created_at} />
                  </td>
                  <td>
                    {state !== "revoked" && (
                      <button
                        className="danger"
                        onClick={() => void onRevoke(tk)}
                        disabled={revoke.isPending}
                        data-testid="token-revoke"
                      >
                        {t("fleet.tokens.revoke")}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="token-load-more" />
      {creating && (
        <CreateTokenDialog
          onClose={() => setCreating(false)}
          onCreated={(tk) => {
            setCreating(false);
            setCreated(tk);
            void qc.invalidateQueries({ queryKey: keys.tokens });
          }}
        />
      )}
      {created && (
        <SecretOnce
          title={t("fleet.tokens.createdTitle", { name: created.name })}
          secret={created.token}
          note={t("fleet.tokens.createdNote")}
          onClose={() => setCreated(null)}
        />
      )}
    </section>
  );
}

function CreateTokenDialog({
  onClose,
  onCreated,
}: {
  onClose: () => void;
  onCreated: (tk: CreatedRegistrationToken) => void;
}) {
  const { t } = useI18n();
  const toast = useToast();
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const create = useMutation({
    mutationFn: createToken,
    onSuccess: (tk) => {
      toast.success(t("fleet.tokens.created"));
      onCreated(tk);
    },
    onError: toast.error,
  });
  const daysNum = days.trim() === "" ? undefined : Number(days);
  const daysValid = daysNum === undefined || (Number.isInteger(daysNum) && daysNum >= 1 && daysNum <= 3650);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!daysValid) return;
    create.mutate({ name, expires_in_days: daysNum });
  };
  return (
    <Modal title={t("fleet.tokens.create")} onClose={onClose}>
      <form onSubmit={submit} data-testid="token-create-form">
        <label>
          {t("fleet.tokens.nameLabel")}
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder={t("fleet.tokens.namePlaceholder")}
            maxLength={200}
            data-testid="token-name"
            autoFocus
          />
        </label>
        <label>
          {t("fleet.tokens.expiresLabel")}
          <input
            type="number"
            min={1}
            max={3650}
            step={1}
            value={days}
            onChange={(e) => setDays(e.target.value)}
            placeholder={t("fleet.tokens.expiresPlaceholder")}
            aria-invalid={!daysValid}
            data-testid="token-expires"
          />
        </label>
        {!daysValid && (
          <p className="error-panel" role="alert">
            {t("fleet.tokens.expiresInvalid")}
          </p>
        )}
        <div className="row end">
          <button type="button" onClick={onClose} data-testid="token-create-cancel">
            {t("common.cancel")}
          </button>
          <button
            type="submit"
            className="primary"
            disabled={create.isPending || !daysValid}
            data-testid="token-create-submit"
          >
            {t("common.create")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
