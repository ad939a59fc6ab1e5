// The socket's state: a small live dot when connected, a banner when not.
import { useI18n } from "../../shared/i18n";
import type { SyncStatus } from "../../shared/ws/boardSync";

export function LiveIndicator({ status }: { status: SyncStatus }) {
  const { t } = useI18n();
  if (status === "live") {
    return (
      <span className="sync-live" data-testid="sync-live" role="status">
        <span className="sync-dot" aria-hidden="true" />
        {t("common.live")}
      </span>
    );
  }
  if (status === "connecting") {
    return (
      <span className="sync-live muted" data-testid="sync-connecting" role="status">
        {t("board.sync.connecting")}
      </span>
    );
  }
  return null;
}

export function SyncBanner({ status }: { status: SyncStatus }) {
  const { t } = useI18n();
  if (status === "live" || status === "connecting" || status === "stopped" || status === "gone") return null;
  return (
    <div className="banner" role="alert" data-testid="sync-banner" data-sync-status={status}>
      {t(`board.sync.${status}`)}
    </div>
  );
}
