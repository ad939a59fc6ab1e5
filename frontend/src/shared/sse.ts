// Server-Sent Events with reconnect and resume. EventSource cannot send an Authorization
// header, so every (re)connect first trades the session for a 60 s stream ticket
// (POST /api/v1/auth/stream-ticket) and opens `url?ticket=…&last_event_id=…`. We close and
// reopen ourselves on error (instead of EventSource's own retry, which would reuse an
// expired ticket), resuming after the last `id:` we saw; replays at the seam are dropped.
import type { ApiClient } from "./api/client";
import { ApiError, unwrap } from "./api/errors";
import { backoffDelay } from "./ws/backoff";

/** One delivered event: its `id:` (the log sequence number, when sent) and parsed data. */
export interface SseMessage<T = unknown> {
  id: number | null;
  event: string;
  data: T;
}

export type SseListener<T = unknown> = (msg: SseMessage<T>) => void;
export type SseStatus = "connecting" | "open" | "retrying" | "closed";

/** The part of EventSource we use, so tests can hand in a fake. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
}
export type EventSourceFactory = (url: string) => EventSourceLike;

/** Returns a fresh stream ticket. */
export type TicketFetcher = () => Promise<string>;

export interface SseOptions {
  /** Path (or absolute URL) of the stream endpoint, e.g. `/api/v1/events/stream`. */
  url: string;
  /** Extra query parameters (filters); empty values are left out. */
  params?: Record<string, string | undefined | null>;
  fetchTicket: TicketFetcher;
  /** Resume after this sequence number on the first connect. */
  lastEventId?: number | null;
  /** Defaults to the browser's EventSource. */
  createEventSource?: EventSourceFactory;
  /** Reconnect delay for attempt n (0-based); defaults to backoffDelay. */
  backoff?: (attempt: number) => number;
  onStatus?: (status: SseStatus) => void;
  /** Called when the stream gives up for good (the session is gone). */
  onFatal?: (err: unknown) => void;
}

/**
 * The server ends a stream with one of these when our credential stops working:
 * `session.expired` (the access token ran out) or `session.revoked` (signed out, removed).
 * Either way we ask for a new ticket: it succeeds after a silent refresh, and fails with
 * 401 when the session is really gone, which ends the stream.
 */
const ENDED = ["session.expired", "session.revoked"];

/** Builds the ticket fetcher from an API client (which adds Bearer and org, and refreshes). */
export function ticketFetcher(api: ApiClient): TicketFetcher {
  return async () => unwrap(await api.POST("/api/v1/auth/stream-ticket")).ticket;
}

/** Whether a ticket failure means "signed out" rather than "try again later". */
function isFatal(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 401 || err.status === 403);
}

function buildUrl(base: string, params: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const qs = q.toString();
  return qs ? `${base}${base.includes("?") ? "&" : "?"}${qs}` : base;
}

/** A self-healing SSE subscription. Call `close()` when done. */
export class SseStream {
  private readonly listeners = new Map<string, Set<SseListener>>();
  private source: EventSourceLike | null = null;
  private attached = new Set<string>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** Bumped on every (re)connect so a late ticket for an old attempt is ignored. */
  private generation = 0;
  private last: number | null;
  private status: SseStatus = "connecting";

  constructor(private readonly opts: SseOptions) {
    this.last = opts.lastEventId ?? null;
    void this.connect();
  }

  /** Highest sequence number delivered so far. */
  get lastEventId(): number | null {
    return this.last;
  }

  get currentStatus(): SseStatus {
    return this.status;
  }

  /** Listens to one event name; returns the unsubscribe function. */
  on<T = unknown>(event: string, listener: SseListener<T>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as SseListener);
    if (this.source) this.attach(this.source, event);
    return () => {
      set.delete(listener as SseListener);
    };
  }

  close(): void {
    this.closed = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
    this.setStatus("closed");
  }

  private setStatus(s: SseStatus) {
    if (this.status === s) return;
    this.status = s;
    this.opts.onStatus?.(s);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    this.setStatus(this.attempt === 0 ? "connecting" : "retrying");
    let ticket: string;
    try {
      ticket = await this.opts.fetchTicket();
    } catch (err) {
      if (gen !== this.generation || this.closed) return;
      if (isFatal(err)) {
        this.close();
        this.opts.onFatal?.(err);
        return;
      }
      this.retry();
      return;
    }
    if (gen !== this.generation || this.closed) return;
    const url = buildUrl(this.opts.url, {
      ...this.opts.params,
      ticket,
      last_event_id: this.last === null ? undefined : String(this.last),
    });
    const factory = this.opts.createEventSource ?? ((u: string) => new EventSource(u));
    const source = factory(url);
    this.source = source;
    this.attached = new Set();
    source.onopen = () => {
      if (this.source !== source) return;
      this.attempt = 0;
      this.setStatus("open");
    };
    source.onerror = () => {
      if (this.source !== source) return;
      source.close();
      this.source = null;
      this.retry();
    };
    for (const name of this.listeners.keys()) this.attach(source, name);
    for (const name of ENDED) this.attach(source, name);
  }

  private retry() {
    if (this.closed) return;
    this.setStatus("retrying");
    const delay = (this.opts.backoff ?? backoffDelay)(this.attempt++);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private attach(source: EventSourceLike, name: string) {
    if (this.attached.has(name)) return;
    this.attached.add(name);
    source.addEventListener(name, (ev) => this.deliver(source, name, ev));
  }

  private deliver(source: EventSourceLike, name: string, ev: MessageEvent) {
    if (this.source !== source) return;
    const raw = ev.lastEventId;
    const id = raw !== undefined && raw !== "" && /^\d+$/.test(raw) ? Number(raw) : null;
    if (id !== null) {
      // Replays after a reconnect may overlap what we already delivered.
      if (this.last !== null && id <= this.last) return;
      this.last = id;
    }
    let data: unknown = ev.data;
    if (typeof ev.data === "string") {
      try {
        data = JSON.parse(ev.data);
      } catch {
        data = ev.data;
      }
    }
    const msg: SseMessage = { id, event: name, data };
    for (const l of this.listeners.get(name) ?? []) {
      try {
        l(msg);
      } catch (err) {
        console.error("SSE listener failed", err);
      }
    }
    if (ENDED.includes(name)) {
      source.close();
      this.source = null;
      this.retry();
    }
  }
}

/** Opens a stream; shorthand for `new SseStream(opts)`. */
export function openSse(opts: SseOptions): SseStream {
  return new SseStream(opts);
}
