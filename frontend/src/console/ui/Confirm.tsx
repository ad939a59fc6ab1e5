// Confirmation for destructive actions: `const ok = await confirm({...})`.
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from "react";
import { useI18n } from "../../shared/i18n";
import { Modal } from "./Modal";

interface Ask {
  title: string;
  body?: string;
  confirmLabel?: string;
}
type Confirm = (ask: Ask) => Promise<boolean>;

const Ctx = createContext<Confirm | null>(null);

export function ConfirmProvider({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const [ask, setAsk] = useState<Ask | null>(null);
  const resolver = useRef<(v: boolean) => void>(() => undefined);
  const confirm = useCallback<Confirm>(
    (a) =>
      new Promise((resolve) => {
        resolver.current = resolve;
        setAsk(a);
      }),
    [],
  );
  const answer = (v: boolean) => {
    setAsk(null);
    resolver.current(v);
  };
  return (
    <Ctx.Provider value={confirm}>
      {children}
      {ask && (
        <Modal title={ask.title} onClose={() => answer(false)}>
          {ask.body && <p>{ask.body}</p>}
          <div className="row end">
            <button onClick={() => answer(false)} data-testid="confirm-cancel">
              {t("common.cancel")}
            </button>
            <button className="danger" onClick={() => answer(true)} data-testid="confirm-ok" autoFocus>
              {ask.confirmLabel ?? t("common.confirm")}
            </button>
          </div>
        </Modal>
      )}
    </Ctx.Provider>
  );
}

export function useConfirm(): Confirm {
  const v = useContext(Ctx);
  if (!v) throw new Error("useConfirm outside ConfirmProvider");
  return v;
}
