// Loading skeletons, empty states and error panels used by every page.
import type { ReactNode } from "react";
import { errorText } from "./Toasts";

export function Skeleton({ rows = 5 }: { rows?: number }) {
  return (
    <div className="skeleton" aria-busy="true" aria-label="loading" data-testid="skeleton">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skeleton-row" />
      ))}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty" data-testid="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  );
}

export function ErrorPanel({ error }: { error: unknown }) {
  return (
    <div className="error-panel" role="alert">
      {errorText(error)}
    </div>
  );
}
