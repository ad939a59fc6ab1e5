// Toasts for success and error, announced to screen readers.
import { createContext, useCallback, useContext, useState, type ReactNode } from "react";
import { ApiError } from "../../shared/api/errors";

type Kind = "success" | "error" | "info";
interface Toast {
  id: number;
  kind: Kind;
  text: string;
}

interface Toaster {
  success: (text: string) => void;
  error: (err: unknown) => void;
  info: (text: string) => void;
}

const Ctx = createContext<Toaster | null>(null);
let nextId = 1;

/** A readable message for anything a mutation may throw. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((kind: Kind, text: string) => {
    const id = nextId++;
    setToasts((t) => [...t, { id, kind, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 8000 : 4000);
  }, []);
  const value: Toaster = {
    success: (text) => push("success", text),
    info: (text) => push("info", text),
    error: (err) => push("error", errorText(err)),
  };
  return (
    <Ctx.Provider value={value}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} data-testid={`toast-${t.kind}`}>
            {t.text}
            <button
              className="icon"
              aria-label="close"
              onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}
            >
              ×
            </button>
          </div>
        ))}
      </div>
    </Ctx.Provider>
  );
}

export function useToast(): Toaster {
  const v = useContext(Ctx);
  if (!v) throw new Error("useToast outside ToastProvider");
  return v;
}
