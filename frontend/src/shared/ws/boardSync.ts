// A framework-free client for `WS /ws/board/{id}/sync` (docs/realtime.md "Board sync").
//
// It authenticates, hands every frame to `onFrame` exactly once (event frames with a seq at
// or below the last one applied are dropped, so a replay after reconnect never duplicates),
// reconnects with backoff and resumes with `last_seq`, sends heartbeats, and correlates
// `task.move` / `task.create` commands with their `ack` or `error` by client id. The
// WebSocket constructor, timers and randomness are injectable for tests.
import { relayUrl } from "../config";
import {
  CLOSE,
  isEventFrame,
  parseServerFrame,
  type ClientFrame,
  type ServerFrame,
  type TaskCreateFrame,
  type TaskStatus,
} from "../protocol/boardSync";
import { backoffDelay } from "./backoff";

export type SyncStatus =
  /** First connection under way. */
  | "connecting"
  /** Authenticated; frames flow. */
  | "live"
  /** Lost; a reconnect is scheduled or under way. */
  | "reconnecting"
  /** No session to authenticate with; stopped. */
  | "unauthorized"
  /** No access to the board (4003); stopped. */
  | "forbidden"
  /** The board was deleted; stopped. */
  | "gone"
  /** stop() was called. */
  | "stopped";

/** The subset of the browser WebSocket the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
};

export interface StatusDetail {
  /** Close code of the socket that ended. */
  code?: number;
  /** The server's reason (close reason or `auth_error`). */
  reason?: string;
  /** When reconnecting: the delay before the next attempt. */
  retryInMs?: number;
}

export interface BoardSyncOptions {
  boardId: string;
  /** A fresh access token (or API key); null when there is no session. */
  token: () => Promise<string | null>;
  /** Organization to act in, for users in several. */
  orgId?: () => string | null | undefined;
  /** ws(s):// URL of a relay path; defaults to `relayUrl`. */
  url?: (path: string) => Promise<string>;
  WebSocket?: WebSocketCtor;
  timers?: Timers;
  random?: () => number;
  /** How often to send `heartbeat` while live (the relay drops silent sockets). */
  heartbeatMs?: number;
  onFrame: (frame: ServerFrame) => void;
  onStatus?: (status: SyncStatus, detail: StatusDetail) => void;
  /** Commands sent whose `ack`/`error` will never come because the socket closed. */
  onLost?: (ids: string[]) => void;
}

export interface CreateCommand {
  title: string;
  status?: TaskStatus;
  priority?: TaskCreateFrame["priority"];
  assignee_id?: string;
  description?: string;
}

const OPEN = 1;
let idCounter = 0;

/** A client correlation id, unique in this page. */
export function commandId(): string {
  idCounter += 1;
  return `c${idCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

export class BoardSyncClient {
  private ws: WebSocketLike | null = null;
  private generation = 0;
  private attempt = 0;
  private retryTimer: unknown = null;
  private heartbeat: unknown = null;
  private stopped = true;
  private terminal = false;
  /** Set when the server refuses our `last_seq`: reconnect at once, for a full state. */
  private freshStart = false;
  private inflight = new Set<string>();
  private lastSeqValue: number | null = null;
  private statusValue: SyncStatus = "stopped";
  private readonly timers: Timers;
  private readonly Ws: WebSocketCtor;

  constructor(private readonly opts: BoardSyncOptions) {
    this.timers = opts.timers ?? realTimers;
    this.Ws = opts.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketCtor);
  }

  /** The seq of the last event frame (or `board.state`) handed to `onFrame`. */
  get lastSeq(): number | null {
    return this.lastSeqValue;
  }

  get status(): SyncStatus {
    return this.statusValue;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.terminal = false;
    this.attempt = 0;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.generation += 1;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(CLOSE.NORMAL, "client stopped");
    this.loseInflight();
    this.setStatus("stopped", {});
  }

  /** Sends `task.move`; returns its id, or null when not live (use REST instead). */
  move(taskId: string, status: TaskStatus, position?: number): string | null {
    const id = commandId();
    const frame: ClientFrame = { type: "task.move", id, task_id: taskId, status };
    if (position !== undefined) frame.position = position;
    return this.command(id, frame);
  }

  /** Sends `task.create`; returns its id, or null when not live. */
  create(input: CreateCommand): string | null {
    const id = commandId();
    return this.command(id, { type: "task.create", id, ...input });
  }

  private command(id: string, frame: ClientFrame): string | null {
    if (this.statusValue !== "live" || !this.ws || this.ws.readyState !== OPEN) return null;
    this.inflight.add(id);
    this.ws.send(JSON.stringify(frame));
    return id;
  }

  private setStatus(status: SyncStatus, detail: StatusDetail) {
    this.statusValue = status;
    this.opts.onStatus?.(status, detail);
  }

  private clearTimers() {
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.heartbeat !== null) this.timers.clearInterval(this.heartbeat);
    this.retryTimer = null;
    this.heartbeat = null;
  }

  private loseInflight() {
    if (this.inflight.size === 0) return;
    const ids = [...this.inflight];
    this.inflight.clear();
    this.opts.onLost?.(ids);
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    this.setStatus(this.lastSeqValue === null && this.attempt === 0 ? "connecting" : "reconnecting", {});
    let token: string | null;
    let url: string;
    try {
      token = await this.opts.token();
      url = await (this.opts.url ?? relayUrl)(`/ws/board/${this.opts.boardId}/sync`);
    } catch {
      if (gen === this.generation) this.scheduleReconnect({});
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    if (!token) {
      this.stopped = true;
      this.setStatus("unauthorized", {});
      return;
    }
    let ws: WebSocketLike;
    try {
      ws = new this.Ws(url);
    } catch {
      this.scheduleReconnect({});
      return;
    }
    this.ws = ws;
    let authError: string | undefined;
    ws.onopen = () => {
      if (gen !== this.generation) return;
      const auth: ClientFrame = { type: "auth", token };
      const org = this.opts.orgId?.();
      if (org) auth.org_id = org;
      if (this.lastSeqValue !== null && !this.freshStart) auth.last_seq = this.lastSeqValue;
      this.freshStart = false;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation || typeof ev.data !== "string") return;
      const frame = parseServerFrame(ev.data);
      if (!frame) return;
      if (frame.type === "auth_error") authError = frame.reason;
      this.receive(frame, ws);
    };
    ws.onerror = () => {
      // A close event always follows; reconnecting happens there.
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      this.ws = null;
      if (this.heartbeat !== null) this.timers.clearInterval(this.heartbeat);
      this.heartbeat = null;
      this.loseInflight();
      if (this.stopped) return;
      const detail: StatusDetail = { code: ev.code, reason: authError ?? ev.reason };
      if (this.terminal) {
        this.stopped = true;
        this.setStatus("gone", detail);
      } else if (ev.code === CLOSE.FORBIDDEN) {
        this.stopped = true;
        this.setStatus("forbidden", detail);
      } else {
        // 4001 included: token() refreshes an expiring token, and a revoked session ends
        // with token() returning null.
        this.scheduleReconnect(detail);
      }
    };
  }

  private scheduleReconnect(detail: StatusDetail) {
    const delay = this.freshStart ? 0 : backoffDelay(this.attempt, this.opts.random);
    this.attempt += 1;
    this.setStatus("reconnecting", { ...detail, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) void this.connect();
    }, delay);
  }

  private receive(frame: ServerFrame, ws: WebSocketLike) {
    switch (frame.type) {
      case "auth_ok":
        this.attempt = 0;
        this.setStatus("live", {});
        this.heartbeat = this.timers.setInterval(() => {
          if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: "heartbeat" }));
        }, this.opts.heartbeatMs ?? 20_000);
        this.opts.onFrame(frame);
        return;
      case "board.state":
        // A full state replaces whatever came before it.
        this.lastSeqValue = frame.seq;
        this.opts.onFrame(frame);
        return;
      case "ack":
        if (frame.id) this.inflight.delete(frame.id);
        this.opts.onFrame(frame);
        return;
      case "error":
        if (frame.id) this.inflight.delete(frame.id);
        if (!frame.id && frame.details?.some((d) => d.field === "last_seq")) {
          // Our last_seq is outside what the server can replay: start over from a full state.
          this.lastSeqValue = null;
          this.freshStart = true;
          ws.close(CLOSE.NORMAL, "resync");
        }
        this.opts.onFrame(frame);
        return;
      case "heartbeat":
        return;
      default:
        if (isEventFrame(frame)) {
          if (this.lastSeqValue !== null && frame.seq <= this.lastSeqValue) return;
          this.lastSeqValue = frame.seq;
          if (frame.type === "board.deleted") this.terminal = true;
        }
        this.opts.onFrame(frame);
    }
  }
}
