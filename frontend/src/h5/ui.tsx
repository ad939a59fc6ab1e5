// Small shared pieces of the H5 app: toasts, the connection banner, the language toggle
// and time formatting.
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { useI18n } from "../shared/i18n";
import type { ChatSnapshot } from "../shared/ws/chatClient";

type ToastKind = "ok" | "error" | "info";
interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}
interface ToastApi {
  success(text: string): void;
  error(text: string): void;
  info(text: string): void;
}

const ToastCtx = createContext<ToastApi | null>(null);

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(0);
  const push = useCallback((kind: ToastKind, text: string) => {
    const id = ++next.current;
    // Keep at most three; phones have little room.
    setToasts((ts) => [...ts.slice(-2), { id, kind, text }]);
    setTimeout(() => setToasts((ts) => ts.filter((t) => t.id !== id)), kind === "error" ? 6000 : 3500);
  }, []);
  const api = useMemo<ToastApi>(
    () => ({
      success: (t) => push("ok", t),
      error: (t) => push("error", t),
      info: (t) => push("info", t),
    }),
    [push],
  );
  return (
    <ToastCtx.Provider value={api}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast ${t.kind}`} data-testid="h5-toast">
            {t.text}
          </div>
        ))}
      </div>
    </ToastCtx.Provider>
  );
}

export function useToast(): ToastApi {
  const v = useContext(ToastCtx);
  if (!v) throw new Error("useToast outside ToastProvider");
  return v;
}

export type BannerState = "connected" | "reconnecting" | "offline";

/** connected / reconnecting / offline from the browser's network state and the socket. */
export function bannerState(snap: ChatSnapshot): BannerState {
  if (!snap.online || snap.conn === "offline") return "offline";
  return snap.conn === "connected" ? "connected" : "reconnecting";
}

/** The connection banner: a slim line while connected, a coloured strip otherwise. */
export function ConnBanner({ snap }: { snap: ChatSnapshot }) {
  const { t } = useI18n();
  const state = bannerState(snap);
  return (
    <div
      className={`conn-banner ${state}`}
      data-testid="conn-status"
      data-state={state}
      role="status"
      aria-live="polite"
    >
      <span className="conn-dot" aria-hidden="true" />
      <span>{t(`conn.${state}`)}</span>
    </div>
  );
}

export function LangToggle() {
  const { t, locale, setLocale } = useI18n();
  return (
    <button
      type="button"
      className="ghost small"
      onClick={() => setLocale(locale === "en" ? "zh-CN" : "en")}
      data-testid="h5-lang"
    >
      <span lang={locale === "en" ? "zh-CN" : "en"}>{t("app.lang")}</span>
      <span className="visually-hidden"> ({t("app.langLabel")})</span>
    </button>
  );
}

/** `14:05` today, `3/12 14:05` this year, with the year otherwise. */
export function formatTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  const time: Intl.DateTimeFormatOptions = { hour: "2-digit", minute: "2-digit" };
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString(locale, time);
  const date: Intl.DateTimeFormatOptions =
    d.getFullYear() === now.getFullYear()
      ? { month: "numeric", day: "numeric", ...time }
      : { year: "numeric", month: "numeric", day: "numeric", ...time };
  return d.toLocaleString(locale, date);
}

/** Readable text for an API or socket error. */
export function errorText(err: unknown, t: (k: string) => string): string {
  if (err && typeof err === "object" && "message" in err && typeof err.message === "string") {
    return err.message || t("error.generic");
  }
  return t("error.generic");
}
