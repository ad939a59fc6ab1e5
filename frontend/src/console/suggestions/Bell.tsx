// The top bar's suggestion bell: a badge with the pending suggestions not yet seen (seen =
// shown in the open panel; remembered per organization in localStorage by id), kept live
// by the shared suggestion stream, and a slide-over listing suggestions by status.
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useI18n } from "../../shared/i18n";
import { useAuth } from "../auth";
import { SUGGESTION_STATUSES, type SuggestionStatus } from "../rules/catalog";
import { SlideOver } from "../ui/Modal";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { fetchSuggestions, keys } from "./data";
import { useSuggestionStream } from "./stream";
import { SuggestionItem } from "./SuggestionItem";
import "./insight.css";

const SEEN_LIMIT = 500;
const BADGE_QUERY = { status: "pending", limit: 100 } as const;

function seenKey(orgId: string) {
  return `mc.console.suggestions.seen.${orgId}`;
}

function loadSeen(orgId: string | null | undefined): string[] {
  if (!orgId) return [];
  try {
    const raw = localStorage.getItem(seenKey(orgId));
    const v: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** Ids of suggestions already shown to this browser, per organization. */
function useSeen(orgId: string | null | undefined) {
  const [seen, setSeen] = useState<string[]>(() => loadSeen(orgId));
  useEffect(() => setSeen(loadSeen(orgId)), [orgId]);
  const markSeen = useCallback(
    (ids: string[]) => {
      if (!orgId) return;
      setSeen((prev) => {
        const fresh = ids.filter((id) => !prev.includes(id));
        if (!fresh.length) return prev;
        // Newest last; the oldest fall off so the list stays small.
        const next = [...prev, ...fresh].slice(-SEEN_LIMIT);
        try {
          localStorage.setItem(seenKey(orgId), JSON.stringify(next));
        } catch {
          /* storage full or disabled: the badge just forgets */
        }
        return next;
      });
    },
    [orgId],
  );
  return { seen, markSeen };
}

export function SuggestionBell() {
  const { t } = useI18n();
  const { orgId } = useAuth();
  const [open, setOpen] = useState(false);
  useSuggestionStream();
  const pending = useQuery({
    queryKey: keys.suggestionList(BADGE_QUERY),
    queryFn: () => fetchSuggestions(BADGE_QUERY),
    enabled: !!orgId,
  });
  const { seen, markSeen } = useSeen(orgId);
  const unseen = useMemo(() => {
    const set = new Set(seen);
    return (pending.data?.items ?? []).filter((s) => !set.has(s.id)).length;
  }, [pending.data, seen]);

  // While the panel is open, whatever pending arrives counts as seen.
  useEffect(() => {
    if (open && pending.data) markSeen(pending.data.items.map((s) => s.id));
  }, [open, pending.data, markSeen]);

  const label = unseen > 0 ? t("suggestions.bellUnseen", { count: unseen }) : t("suggestions.bell");
  return (
    <>
      <button
        className="suggestion-bell"
        onClick={() => setOpen(true)}
        data-testid="suggestion-bell"
        aria-label={label}
        aria-haspopup="dialog"
        title={label}
      >
        {/* An SVG, not an emoji: emoji fonts are missing on many Linux desktops. */}
        <svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
          <path d="M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
          <path d="M13.73 21a2 2 0 0 1-3.46 0" />
        </svg>
        {unseen > 0 && (
          <span className="suggestion-count" data-testid="suggestion-count" aria-hidden="true">
            {unseen}
          </span>
        )}
      </button>
      {open && <SuggestionPanel onClose={() => setOpen(false)} />}
    </>
  );
}

function SuggestionPanel({ onClose }: { onClose: () => void }) {
  const { t } = useI18n();
  const [status, setStatus] = useState<SuggestionStatus>("pending");
  const q = { status, limit: 20 };
  const list = useInfiniteQuery({
    queryKey: ["suggestions", "pages", q],
    queryFn: ({ pageParam }) => fetchSuggestions({ ...q, cursor: pageParam }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  const total = list.data?.pages[0]?.total;
  return (
    <SlideOver title={t("suggestions.title")} onClose={onClose} testId="suggestion-panel">
      <div className="toolbar">
        <label>
          {t("suggestions.filterStatus")}
          <select
            value={status}
            onChange={(e) => setStatus(e.target.value as SuggestionStatus)}
            data-testid="suggestion-status-filter"
          >
            {SUGGESTION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {t(`suggestion.status.${s}`)}
              </option>
            ))}
          </select>
        </label>
        {typeof total === "number" && (
          <span className="muted" data-testid="suggestion-total">
            {t("suggestions.total", { count: total })}
          </span>
        )}
      </div>
      {list.isPending ? (
        <Skeleton rows={4} />
      ) : list.isError ? (
        <ErrorPanel error={list.error} />
      ) : items.length === 0 ? (
        <Empty title={status === "pending" ? t("suggestions.emptyPending") : t("suggestions.empty")} />
      ) : (
        <ul className="suggestion-list" aria-label={t("suggestions.title")}>
          {items.map((s) => (
            <SuggestionItem key={s.id} s={s} />
          ))}
        </ul>
      )}
      {list.hasNextPage && (
        <button
          onClick={() => void list.fetchNextPage()}
          disabled={list.isFetchingNextPage}
          data-testid="suggestion-load-more"
        >
          {t("common.loadMore")}
        </button>
      )}
    </SlideOver>
  );
}
