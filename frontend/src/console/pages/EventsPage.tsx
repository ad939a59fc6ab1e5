// /events: the organization's event log, newest first, filtered by board, type (or a
// pattern such as task.*), actor and time; cursor pagination; a live tail over SSE that
// puts new events on top (pausable: arrivals wait in a buffer); each row expands to its
// payload.
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Fragment, useEffect, useId, useMemo, useRef, useState } from "react";
import { openSse, ticketFetcher, type SseStatus } from "../../shared/sse";
import { useI18n } from "../../shared/i18n";
import { api } from "../api";
import { useAuth } from "../auth";
import { KNOWN_EVENT_TYPES, TYPE_PATTERNS, typesForFilter } from "../events/eventTypes";
import { fetchBoardNames, fetchEvents, keys, type EventQuery, type LogEvent } from "../suggestions/data";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { formatTime } from "../ui/format";
import "../suggestions/insight.css";

const LIVE_CAP = 500;

interface Filters {
  board_id: string;
  event_type: string;
  actor_id: string;
  since: string; // datetime-local value
  until: string;
}
const NO_FILTERS: Filters = { board_id: "", event_type: "", actor_id: "", since: "", until: "" };

function iso(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Text filters apply after a short pause in typing. */
function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

export function EventsPage() {
  const { t } = useI18n();
  const { orgId } = useAuth();
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const applied = useDebounced(draft, 350);
  const query: EventQuery = useMemo(
    () => ({
      board_id: applied.board_id || undefined,
      event_type: applied.event_type.trim() || undefined,
      actor_id: applied.actor_id.trim() || undefined,
      since: iso(applied.since),
      until: iso(applied.until),
      limit: 50,
    }),
    [applied],
  );
  const list = useInfiniteQuery({
    queryKey: keys.events(query),
    queryFn: ({ pageParam }) => fetchEvents({ ...query, cursor: pageParam }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // The log only grows; the live tail shows what is new.
    staleTime: 60_000,
  });
  const boards = useQuery({ queryKey: keys.boardNames, queryFn: fetchBoardNames, staleTime: 60_000 });
  const pageEvents = useMemo(() => list.data?.pages.flatMap((p) => p.items) ?? [], [list.data]);

  const [live, setLive] = useState(false);
  const [paused, setPaused] = useState(false);
  const [liveEvents, setLiveEvents] = useState<LogEvent[]>([]);
  const [buffer, setBuffer] = useState<LogEvent[]>([]);
  const [status, setStatus] = useState<SseStatus>("closed");
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  // Changing filters starts the tail over: what it showed may no longer match.
  useEffect(() => {
    setLiveEvents([]);
    setBuffer([]);
  }, [query, orgId]);

  useEffect(() => {
    if (!live || !orgId) return;
    const stream = openSse({
      url: "/api/v1/events/stream",
      params: { board_id: query.board_id, event_type: query.event_type, actor_id: query.actor_id },
      fetchTicket: ticketFetcher(api),
      onStatus: setStatus,
    });
    const add = (e: LogEvent) => {
      const push = (prev: LogEvent[]) => (prev.some((x) => x.seq === e.seq) ? prev : [e, ...prev].slice(0, LIVE_CAP));
      if (pausedRef.current) setBuffer(push);
      else setLiveEvents(push);
    };
    for (const type of typesForFilter(query.event_type ?? "")) {
      stream.on<LogEvent>(type, (m) => {
        if (m.data && typeof m.data === "object" && "seq" in m.data) add(m.data);
      });
    }
    return () => {
      stream.close();
      setStatus("closed");
    };
  }, [live, orgId, query]);

  const resume = () => {
    setPaused(false);
    setLiveEvents((prev) => {
      const seen = new Set(prev.map((e) => e.seq));
      return [...buffer.filter((e) => !seen.has(e.seq)), ...prev].slice(0, LIVE_CAP);
    });
    setBuffer([]);
  };

  const rows = useMemo(() => {
    const newest = pageEvents[0]?.seq ?? 0;
    const fresh = liveEvents.filter((e) => e.seq > newest);
    return [...fresh, ...pageEvents];
  }, [liveEvents, pageEvents]);
  const freshSeqs = useMemo(() => new Set(liveEvents.map((e) => e.seq)), [liveEvents]);
  const set = (patch: Partial<Filters>) => setDraft((d) => ({ ...d, ...patch }));
  const typeList = useId();

  return (
    <section aria-labelledby="events-title">
      <div className="page-header">
        <h1 id="events-title">{t("events.title")}</h1>
        <div className="spacer" />
        <span className="muted" aria-live="polite" data-testid="event-live-status">
          <span className={`live-dot${live && status === "open" ? " on" : ""}`} aria-hidden="true" />
          {live ? (paused ? t("common.paused") : t(`events.status.${status}`)) : t("events.liveOff")}
        </span>
        {live && (
          <button onClick={paused ? resume : () => setPaused(true)} data-testid="event-live-pause" aria-pressed={paused}>
            {paused ? t("events.resume", { count: buffer.length }) : t("events.pause")}
          </button>
        )}
        <button
          className={live ? "primary" : ""}
          aria-pressed={live}
          onClick={() => {
            setLive((v) => !v);
            setPaused(false);
            setBuffer([]);
          }}
          data-testid="event-live-toggle"
        >
          {live ? t("events.liveStop") : t("events.liveStart")}
        </button>
      </div>
      <form className="toolbar" role="search" aria-label={t("events.filters")} onSubmit={(e) => e.preventDefault()}>
        <label>
          {t("events.board")}
          <select value={draft.board_id} onChange={(e) => set({ board_id: e.target.value })} data-testid="event-filter-board">
            <option value="">{t("events.allBoards")}</option>
            {[...(boards.data ?? new Map<string, string>())].map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("events.type")}
          <input
            value={draft.event_type}
            list={typeList}
            placeholder="task.*"
            onChange={(e) => set({ event_type: e.target.value })}
            data-testid="event-filter-type"
          />
          <datalist id={typeList}>
            {[...TYPE_PATTERNS, ...KNOWN_EVENT_TYPES].map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
        </label>
        <label>
          {t("events.actor")}
          <input
            value={draft.actor_id}
            placeholder={t("events.actorHint")}
            onChange={(e) => set({ actor_id: e.target.value })}
            data-testid="event-filter-actor"
          />
        </label>
        <label>
          {t("events.since")}
          <input type="datetime-local" value={draft.since} onChange={(e) => set({ since: e.target.value })} data-testid="event-filter-since" />
        </label>
        <label>
          {t("events.until")}
          <input type="datetime-local" value={draft.until} onChange={(e) => set({ until: e.target.value })} data-testid="event-filter-until" />
        </label>
        <button type="button" onClick={() => setDraft(NO_FILTERS)} data-testid="event-filter-clear">
          {t("events.clear")}
        </button>
      </form>
      {list.isPending ? (
        <Skeleton rows={8} />
      ) : list.isError ? (
        <ErrorPanel error={list.error} />
      ) : rows.length === 0 ? (
        <Empty title={t("events.empty")} />
      ) : (
        <table className="event-table" data-testid="event-table">
          <thead>
            <tr>
              <th scope="col">{t("events.seq")}</th>
              <th scope="col">{t("events.time")}</th>
              <th scope="col">{t("events.type")}</th>
              <th scope="col">{t("events.actor")}</th>
              <th scope="col">{t("events.board")}</th>
              <th scope="col">
                <span className="sr-only">{t("events.payload")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <EventRow key={e.id} e={e} fresh={freshSeqs.has(e.seq)} boardName={e.board_id ? boards.data?.get(e.board_id) : undefined} />
            ))}
          </tbody>
        </table>
      )}
      {list.hasNextPage && (
        <button onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage} data-testid="event-load-more">
          {t("common.loadMore")}
        </button>
      )}
    </section>
  );
}

function EventRow({ e, fresh, boardName }: { e: LogEvent; fresh: boolean; boardName?: string }) {
  const { t, locale } = useI18n();
  const [open, setOpen] = useState(false);
  const payloadId = useId();
  return (
    <Fragment>
      <tr data-testid="event-row" data-event-type={e.event_type} data-seq={e.seq} className={fresh ? "event-new" : undefined}>
        <td>{e.seq}</td>
        <td>{formatTime(e.created_at, locale)}</td>
        <td>
          <code>{e.event_type}</code>
        </td>
        <td>
          {e.actor.name} <span className="muted">({t(`events.actorKind.${e.actor.type}`)})</span>
        </td>
        <td>{e.board_id ? (boardName ?? e.board_id.slice(0, 8)) : "—"}</td>
        <td>
          <button
            aria-expanded={open}
            aria-controls={payloadId}
            onClick={() => setOpen((v) => !v)}
            data-testid="event-expand"
          >
            {open ? t("events.hide") : t("events.payload")}
          </button>
        </td>
      </tr>
      {open && (
        <tr id={payloadId}>
          <td colSpan={6} className="payload-cell">
            <pre data-testid="event-payload">{JSON.stringify(e.payload, null, 2)}</pre>
          </td>
        </tr>
      )}
    </Fragment>
  );
}
