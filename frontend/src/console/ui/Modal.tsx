// A dialog (centred) and a slide-over (right edge); both close on Escape and backdrop click.
import { useEffect, useId, type ReactNode } from "react";

function useEscape(onClose: () => void) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  useEscape(onClose);
  const id = useId();
  return (
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby={id}>
        <h2 id={id}>{title}</h2>
        {children}
      </div>
    </div>
  );
}

export function SlideOver({
  title,
  onClose,
  children,
  testId,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  testId?: string;
}) {
  useEscape(onClose);
  const id = useId();
  return (
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <aside className="slideover" role="dialog" aria-modal="true" aria-labelledby={id} data-testid={testId}>
        <header className="row between">
          <h2 id={id}>{title}</h2>
          <button className="icon" aria-label="close" onClick={onClose} data-testid="slideover-close">
            ×
          </button>
        </header>
        <div className="slideover-body">{children}</div>
      </aside>
    </div>
  );
}
