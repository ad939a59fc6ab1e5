// The H5 chat socket, framework-free so it can be driven by tests with a fake socket and
// fake timers. It owns: the connection (auth with resume, re-auth on token refresh,
// heartbeats, reconnect with backoff, 4001/4003 handling), each session's messages in seq
// order without duplicates (live frames, replays after a resume and REST history all
// merge by session + seq), and the outbox: every message the user sends is persisted in
// localStorage first and sent (again, with the same client id) on each connection until
// the server's `chat` echo with that id confirms it is stored.
import {
  CLOSE_AUTH,
  CLOSE_SUSPENDED,
  type Assignment,
  type AuthOkFrame,
  type ChatDeltaFrame,
  type ChatMessageFrame,
  type ChatRole,
  type ClientFrame,
  type ErrorFrame,
  type MessageStatus,
  type ResumePoint,
  type ServerFrame,
} from "../protocol/h5Chat";
import { backoffDelay } from "./backoff";
import type { Schema } from "../api/client";

// ---- injectable environment ------------------------------------------------------

/** The part of a WebSocket the client uses (the browser's fits). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export type SocketFactory = new (url: string) => SocketLike;

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

/** The session the socket authenticates with (`SessionStore` fits). */
export interface TokenSource {
  get(): { access_token: string; expires_at: number } | null;
  accessToken(): Promise<string | null>;
  refresh(): Promise<{ access_token: string } | null>;
  subscribe(listener: (session: { access_token: string; expires_at: number } | null) => void): () => void;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ChatClientOptions {
  /** The relay URL, e.g. `() => relayUrl("/ws/h5/chat")`. */
  url: () => Promise<string> | string;
  session: TokenSource;
  WebSocket?: SocketFactory;
  timers?: Timers;
  /** Where the outbox is persisted (default localStorage). */
  storage?: KeyValueStorage | null;
  /** Outbox key in storage. */
  storageKey?: string;
  /** Reconnect delay for attempt n (0-based). */
  backoff?: (attempt: number) => number;
  /** Heartbeat period; the relay closes sockets silent for 90 s by default. */
  heartbeatMs?: number;
  /** New client message ids. */
  newId?: () => string;
  now?: () => number;
  /** Whether the browser thinks it is online at start. */
  online?: boolean;
}

// ---- what the UI sees ------------------------------------------------------------

/** A stored message as the UI shows it. `retrying`: a failed one sent again. */
export interface ChatMessage {
  sessionId: string;
  agentId: string | null;
  seq: number;
  messageId: string;
  clientId: string;
  role: ChatRole;
  content: string;
  status: MessageStatus | "retrying";
  runId: string | null;
  createdAt: string;
}

/** A message not confirmed stored yet (`pending`) or refused before storing (`failed`). */
export interface OutboxItem {
  id: string;
  agentId: string;
  sessionId: string | null;
  content: string;
  createdAt: string;
  state: "pending" | "failed";
  error?: { code: string; message: string };
  /** Set when this re-sends a stored message that failed (same client id). */
  retrySeq?: number;
}

export interface Streaming {
  runId: string;
  content: string;
}

export interface SessionView {
  id: string;
  agentId: string | null;
  /** Stored messages, ascending seq, each seq once. */
  messages: ChatMessage[];
  /** The reply being written, replaced by the stored final. */
  streaming: Streaming | null;
  /** A run is in progress: the user's message was stored and no reply has finished. */
  typing: boolean;
  /** The highest seq delivered with nothing missing below it. */
  lastSeq: number | null;
}

export type ConnState =
  | "idle"
  | "connecting"
  | "connected"
  | "reconnecting"
  | "offline"
  | "signed_out"
  | "suspended";

export interface ChatSnapshot {
  conn: ConnState;
  online: boolean;
  userId: string | null;
  /** `null` until the first `auth_ok`. */
  assignments: Assignment[] | null;
  sessions: Readonly<Record<string, SessionView>>;
  outbox: readonly OutboxItem[];
}

/** A REST `ChatMessage` (GET /h5/chat/sessions/{id}/messages), as generated from the contract. */
export type RestMessage = Schema<"ChatMessage">;

export interface ChatEvents {
  /** A stored message, delivered once per session in seq order. */
  message: ChatMessage;
  /** A delivered message changed (status). */
  update: ChatMessage;
  delta: { sessionId: string; agentId: string; runId: string; content: string };
  conn: ConnState;
  /** An `error` frame from the relay. */
  error: ErrorFrame["payload"] & { id?: string; seq?: number };
  signed_out: undefined;
  suspended: undefined;
}

type Handler<T> = (value: T) => void;

// ---- internals -------------------------------------------------------------------

interface SessionState {
  id: string;
  agentId: string | null;
  msgs: Map<number, ChatMessage>;
  /** Highest seq delivered with no gap below it (null: nothing known yet). */
  contiguous: number | null;
  /** Frames that arrived after a gap, released once it is filled. */
  held: Map<number, ChatMessage>;
  /** The `last_seq` of an outstanding gap-filling resume. */
  gapResume: number | null;
  streaming: Streaming | null;
  /** When the user's last message was stored and no reply came yet. */
  awaiting: number | null;
  finishedRuns: string[];
  /** AGENT_UNAVAILABLE failures whose message has not been delivered yet. */
  failedSeqs: Set<number>;
  view: SessionView | null;
}

interface PersistedOutbox {
  v: 1;
  userId: string | null;
  items: OutboxItem[];
}

const OPEN = 1;
/** How long the typing indicator waits for a reply before giving up. */
const TYPING_TIMEOUT_MS = 120_000;
/** Flush the outbox even if a resume never answers. */
const RESUME_WAIT_MS = 5_000;
/** Codes after which re-sending the same message cannot succeed by itself. */
const RESUME_ERRORS = new Set(["FORBIDDEN", "INVALID_MESSAGE", "NOT_FOUND"]);

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
};

/** A random UUID, also outside secure contexts (plain-http LAN addresses). */
export function randomId(): string {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const STATUSES: readonly string[] = ["received", "sent", "failed", "completed", "error", "aborted"];
const asStatus = (s: string): MessageStatus =>
  (STATUSES.includes(s.toLowerCase()) ? s.toLowerCase() : "received") as MessageStatus;
const asRole = (r: string): ChatRole => (r.toLowerCase() === "agent" ? "agent" : "user");

export class ChatClient {
  private readonly opts: ChatClientOptions;
  private readonly WS: SocketFactory;
  private readonly timers: Timers;
  private readonly storage: KeyValueStorage | null;
  private readonly storageKey: string;
  private readonly backoff: (attempt: number) => number;
  private readonly heartbeatMs: number;
  private readonly newId: () => string;
  private readonly now: () => number;

  private ws: SocketLike | null = null;
  /** Increments per socket; outbox items remember the one they were sent on. */
  private connection = 0;
  private connectingGen = 0;
  private started = false;
  private terminal = false;
  private authed = false;
  private token: string | null = null;
  private attempt = 0;
  private refreshTried = false;
  private lastHeard = 0;
  private reconnectTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  private refreshTimer: TimerHandle | null = null;
  private resumeTimer: TimerHandle | null = null;
  private typingTimers = new Map<string, TimerHandle>();
  private rateTimers = new Map<string, TimerHandle>();
  /** Sessions resumed in `auth` whose `resumed` has not come yet. */
  private pendingResumes = new Set<string>();
  private unsubscribeSession: (() => void) | null = null;

  private conn: ConnState = "idle";
  private online: boolean;
  private userId: string | null = null;
  private assignments: Assignment[] | null = null;
  private sessions = new Map<string, SessionState>();
  private outbox: OutboxItem[];
  /** Socket each outbox item was last sent on (not persisted: a reload sends again). */
  private sentOn = new Map<string, number>();

  private listeners = new Set<() => void>();
  private handlers = new Map<keyof ChatEvents, Set<Handler<never>>>();
  private snapshot: ChatSnapshot | null = null;

  constructor(opts: ChatClientOptions) {
    this.opts = opts;
    this.WS = opts.WebSocket ?? (globalThis.WebSocket as unknown as SocketFactory);
    this.timers = opts.timers ?? defaultTimers;
    this.storage = opts.storage === undefined ? (globalThis.localStorage ?? null) : opts.storage;
    this.storageKey = opts.storageKey ?? "mc.h5.outbox";
    this.backoff = opts.backoff ?? ((n) => backoffDelay(n));
    this.heartbeatMs = opts.heartbeatMs ?? 25_000;
    this.newId = opts.newId ?? randomId;
    this.now = opts.now ?? (() => Date.now());
    this.online = opts.online ?? globalThis.navigator?.onLine ?? true;
    const saved = this.load();
    this.userId = saved.userId;
    this.outbox = saved.items;
  }

  // ---- subscription (useSyncExternalStore) and events ----------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): ChatSnapshot => {
    if (!this.snapshot) {
      const sessions: Record<string, SessionView> = {};
      for (const s of this.sessions.values()) sessions[s.id] = this.viewOf(s);
      this.snapshot = {
        conn: this.conn,
        online: this.online,
        userId: this.userId,
        assignments: this.assignments,
        sessions,
        outbox: [...this.outbox],
      };
    }
    return this.snapshot;
  };

  on<K extends keyof ChatEvents>(event: K, handler: Handler<ChatEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    const h = handler as Handler<never>;
    set.add(h);
    return () => set.delete(h);
  }

  private emit<K extends keyof ChatEvents>(event: K, value: ChatEvents[K]) {
    const set = this.handlers.get(event) as Set<Handler<ChatEvents[K]>> | undefined;
    if (set) for (const h of [...set]) h(value);
  }

  private changed(session?: SessionState) {
    if (session) session.view = null;
    this.snapshot = null;
    for (const l of [...this.listeners]) l();
  }

  private viewOf(s: SessionState): SessionView {
    if (!s.view) {
      const messages = [...s.msgs.values()].sort((a, b) => a.seq - b.seq);
      s.view = {
        id: s.id,
        agentId: s.agentId,
        messages,
        streaming: s.streaming,
        typing: s.streaming !== null || s.awaiting !== null,
        lastSeq: s.contiguous,
      };
    }
    return s.view;
  }

  // ---- queries -------------------------------------------------------------------

  /** The session the user has with an agent, if one is known. */
  sessionOfAgent(agentId: string): string | null {
    let best: SessionState | null = null;
    for (const s of this.sessions.values()) {
      if (s.agentId === agentId && (!best || (s.contiguous ?? 0) > (best.contiguous ?? 0))) best = s;
    }
    return best?.id ?? null;
  }

  get state(): ConnState {
    return this.conn;
  }

  // ---- lifecycle -----------------------------------------------------------------

  /** Connects and keeps connecting until stopped, signed out or suspended. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.terminal = false;
    this.attempt = 0;
    this.refreshTried = false;
    this.unsubscribeSession = this.opts.session.subscribe((s) => this.onSession(s));
    this.scheduleTokenRefresh();
    void this.connect();
  }

  /** Closes the socket and stops reconnecting (the outbox stays). */
  stop(): void {
    this.started = false;
    this.connectingGen++;
    this.unsubscribeSession?.();
    this.unsubscribeSession = null;
    this.clearTimer("reconnectTimer");
    this.clearTimer("refreshTimer");
    const ws = this.ws;
    this.teardownSocket();
    ws?.close(1000, "bye");
    if (!this.terminal) this.setConn("idle");
  }

  /** Signing out: forgets everything, including unsent messages. */
  reset(): void {
    this.stop();
    this.sessions.clear();
    this.outbox = [];
    this.sentOn.clear();
    this.userId = null;
    this.assignments = null;
    this.storage?.removeItem(this.storageKey);
    for (const h of this.typingTimers.values()) this.timers.clearTimeout(h);
    this.typingTimers.clear();
    for (const h of this.rateTimers.values()) this.timers.clearTimeout(h);
    this.rateTimers.clear();
    this.changed();
  }

  /** The browser's network state (`online`/`offline` events). */
  setOnline(online: boolean): void {
    if (this.online === online) return;
    this.online = online;
    if (!online) {
      // Attempts would fail now; wait for the network instead of burning the backoff.
      this.clearTimer("reconnectTimer");
      if (!this.authed && this.started && !this.terminal) this.setConn("offline");
      this.changed();
      return;
    }
    this.changed();
    if (this.started && !this.terminal && !this.ws) {
      this.attempt = 0;
      this.clearTimer("reconnectTimer");
      void this.connect();
    }
  }

  /**
   * The page became visible again (a phone woke up): a socket that was frozen in the
   * background is checked now instead of at the next heartbeat, and a pending reconnect
   * happens at once.
   */
  poke(): void {
    if (!this.started || this.terminal || !this.online) return;
    if (!this.ws) {
      if (this.reconnectTimer !== null) {
        this.clearTimer("reconnectTimer");
        void this.connect();
      }
      return;
    }
    if (this.now() - this.lastHeard > this.heartbeatMs + 5_000) {
      this.dropStale();
      return;
    }
    this.sendFrame({ type: "heartbeat" });
  }

  private dropStale() {
    const ws = this.ws;
    this.teardownSocket();
    try {
      ws?.close(4000, "heartbeat timeout");
    } catch {
      // already closed
    }
    void this.onClose(4000);
  }

  private setConn(conn: ConnState) {
    if (this.conn === conn) return;
    this.conn = conn;
    this.changed();
    this.emit("conn", conn);
  }

  private clearTimer(name: "reconnectTimer" | "refreshTimer" | "resumeTimer") {
    const h = this[name];
    if (h !== null) this.timers.clearTimeout(h);
    this[name] = null;
  }

  private async connect(): Promise<void> {
    if (!this.started || this.terminal || this.ws) return;
    if (!this.online) {
      this.setConn("offline");
      return;
    }
    const gen = ++this.connectingGen;
    this.setConn(this.attempt > 0 || this.connection > 0 ? "reconnecting" : "connecting");
    const token = await this.opts.session.accessToken();
    if (gen !== this.connectingGen || !this.started) return;
    if (!token) {
      this.signOut();
      return;
    }
    let url: string;
    try {
      url = await this.opts.url();
    } catch {
      if (gen === this.connectingGen) this.scheduleReconnect();
      return;
    }
    if (gen !== this.connectingGen || !this.started || this.ws) return;
    let ws: SocketLike;
    try {
      ws = new this.WS(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.connection++;
    this.token = token;
    this.lastHeard = this.now();
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.lastHeard = this.now();
      const resume = this.resumePoints();
      this.pendingResumes = new Set(resume.map((r) => r.session_id));
      this.sendFrame({ type: "auth", payload: resume.length ? { token, resume } : { token } });
      this.startHeartbeat();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastHeard = this.now();
      this.onFrame(typeof ev.data === "string" ? ev.data : "");
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      void this.onClose(ev.code);
    };
    ws.onerror = () => {
      // A close event follows; nothing to do here.
    };
  }

  /** Every known session's last contiguous seq. */
  private resumePoints(): ResumePoint[] {
    const out: ResumePoint[] = [];
    for (const s of this.sessions.values()) {
      if (s.contiguous !== null) out.push({ session_id: s.id, last_seq: s.contiguous });
    }
    return out;
  }

  private teardownSocket() {
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    this.ws = null;
    this.authed = false;
    this.pendingResumes.clear();
    if (this.heartbeatTimer !== null) this.timers.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.clearTimer("resumeTimer");
  }

  private async onClose(code: number) {
    this.teardownSocket();
    if (!this.started || this.terminal) return;
    if (code === CLOSE_AUTH) {
      // The token was refused: one refresh, then give up.
      if (!this.refreshTried) {
        this.refreshTried = true;
        const fresh = await this.opts.session.refresh();
        // A refresh refused outright clears the session, which already signed us out.
        if (!this.started || this.terminal) return;
        if (fresh) {
          void this.connect();
          return;
        }
      }
      this.signOut();
      return;
    }
    if (code === CLOSE_SUSPENDED) {
      this.terminal = true;
      this.clearTimer("reconnectTimer");
      this.setConn("suspended");
      this.emit("suspended", undefined);
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect() {
    if (!this.started || this.terminal) return;
    this.clearTimer("reconnectTimer");
    if (!this.online) {
      this.setConn("offline");
      return;
    }
    this.setConn("reconnecting");
    const delay = this.backoff(this.attempt++);
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  private signOut() {
    this.terminal = true;
    this.clearTimer("reconnectTimer");
    const ws = this.ws;
    this.teardownSocket();
    ws?.close(1000, "signed out");
    this.setConn("signed_out");
    this.emit("signed_out", undefined);
  }

  private startHeartbeat() {
    if (this.heartbeatTimer !== null) this.timers.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = this.timers.setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      // Silence well past our own heartbeats' echoes: the socket is dead without saying so.
      if (this.now() - this.lastHeard > this.heartbeatMs * 2 + 5_000) {
        this.dropStale();
        return;
      }
      this.sendFrame({ type: "heartbeat" });
    }, this.heartbeatMs);
  }

  // ---- tokens --------------------------------------------------------------------

  private onSession(s: { access_token: string; expires_at: number } | null) {
    if (!s) {
      if (this.started && !this.terminal) this.signOut();
      return;
    }
    this.scheduleTokenRefresh();
    // A refreshed token keeps the open socket authenticated (the relay re-checks).
    if (this.authed && s.access_token !== this.token) {
      this.token = s.access_token;
      this.sendFrame({ type: "auth", payload: { token: s.access_token } });
    }
  }

  /** Refreshes shortly before the access token expires, so the socket never holds a dead one. */
  private scheduleTokenRefresh() {
    this.clearTimer("refreshTimer");
    const s = this.opts.session.get();
    if (!s || !this.started) return;
    const wait = Math.max(1_000, s.expires_at - this.now() - 25_000);
    this.refreshTimer = this.timers.setTimeout(() => {
      this.refreshTimer = null;
      void this.opts.session.accessToken();
    }, wait);
  }

  // ---- frames --------------------------------------------------------------------

  private sendFrame(frame: ClientFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  private onFrame(text: string) {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "auth_ok":
        this.onAuthOk(frame);
        break;
      case "auth_error":
        // The close (4001, 4003 or 1012) that follows decides what to do.
        break;
      case "chat":
        this.onStored(frame);
        break;
      case "chat.delta":
        this.onDelta(frame);
        break;
      case "resumed":
        this.onResumed(frame.payload.session_id);
        break;
      case "system":
        this.onSystem(frame.payload.event === "agent_online", frame.payload.agent_id);
        break;
      case "error":
        this.onError(frame);
        break;
      case "heartbeat":
        break;
    }
  }

  private onAuthOk(frame: AuthOkFrame) {
    if (frame.payload.refreshed) return;
    const { user_id } = frame.payload;
    if (this.userId && this.userId !== user_id) {
      // Another account signed in on this device: its queue is not ours to send.
      this.outbox = [];
      this.sentOn.clear();
      this.sessions.clear();
    }
    this.userId = user_id;
    this.persist();
    this.authed = true;
    this.attempt = 0;
    this.refreshTried = false;
    this.assignments = frame.payload.assignments ?? [];
    for (const point of frame.payload.sessions ?? []) {
      const s = this.ensureSession(point.session_id, null);
      if (s.contiguous === null) {
        // Where the server starts this socket; history before it comes from REST.
        s.contiguous = point.last_seq;
        s.view = null;
      } else if (!this.pendingResumes.has(s.id) && s.contiguous < point.last_seq) {
        // Learned about after the auth frame left: catch it up too.
        this.requestResume(s);
      }
    }
    this.setConn("connected");
    this.changed();
    if (this.pendingResumes.size === 0) this.flush();
    else {
      this.resumeTimer = this.timers.setTimeout(() => {
        this.resumeTimer = null;
        this.pendingResumes.clear();
        this.flush();
      }, RESUME_WAIT_MS);
    }
  }

  private onResumed(sessionId: string) {
    const s = this.sessions.get(sessionId);
    if (s) {
      s.gapResume = null;
      // The replay ended; whatever is still held is the best we have, in order.
      if (s.held.size) this.release(s, true);
    }
    if (this.pendingResumes.delete(sessionId) && this.pendingResumes.size === 0) {
      this.clearTimer("resumeTimer");
      this.flush();
    }
  }

  private onSystem(online: boolean, agentId: string) {
    if (!this.assignments) return;
    this.assignments = this.assignments.map((a) => (a.agent_id === agentId ? { ...a, online } : a));
    this.changed();
  }

  private ensureSession(id: string, agentId: string | null): SessionState {
    let s = this.sessions.get(id);
    if (!s) {
      s = {
        id,
        agentId,
        msgs: new Map(),
        contiguous: null,
        held: new Map(),
        gapResume: null,
        streaming: null,
        awaiting: null,
        finishedRuns: [],
        failedSeqs: new Set(),
        view: null,
      };
      this.sessions.set(id, s);
    } else if (agentId && !s.agentId) {
      s.agentId = agentId;
      s.view = null;
    }
    return s;
  }

  private onStored(frame: ChatMessageFrame) {
    const p = frame.payload;
    const message: ChatMessage = {
      sessionId: p.session_id,
      agentId: p.agent_id,
      seq: frame.seq,
      messageId: p.message_id,
      clientId: frame.id,
      role: asRole(p.role),
      content: p.content,
      status: asStatus(p.status),
      runId: p.run_id ?? null,
      createdAt: p.created_at,
    };
    const s = this.ensureSession(message.sessionId, message.agentId);
    const item = message.role === "user" ? this.outbox.find((i) => i.id === message.clientId) : undefined;
    if (item) this.confirm(item);
    const known = s.msgs.get(message.seq) ?? s.held.get(message.seq);
    if (known) {
      // A replay or a retry's confirmation: delivered already.
      if (item?.retrySeq !== undefined && known.status === "failed") {
        this.setStatus(s, known, "retrying");
        this.awaitReply(s);
      }
      this.changed(s);
      return;
    }
    if (item?.retrySeq !== undefined && message.status === "failed") message.status = "retrying";
    this.place(s, message, true);
  }

  /** Puts a message into its session by seq: delivered now, history, or held behind a gap. */
  private place(s: SessionState, message: ChatMessage, live: boolean) {
    if (s.failedSeqs.delete(message.seq)) message.status = "failed";
    const next = (s.contiguous ?? 0) + 1;
    if (s.contiguous !== null && message.seq < next) {
      // Older history (loaded through REST, or replayed before our window).
      s.msgs.set(message.seq, message);
      this.changed(s);
    } else if (message.seq === next) {
      this.accept(s, message, live);
      this.release(s, false);
      this.changed(s);
    } else {
      s.held.set(message.seq, message);
      this.requestGapFill(s);
      this.changed(s);
    }
  }

  private accept(s: SessionState, m: ChatMessage, live: boolean) {
    s.msgs.set(m.seq, m);
    s.contiguous = m.seq;
    if (m.role === "agent") {
      if (m.runId) {
        s.finishedRuns.push(m.runId);
        if (s.finishedRuns.length > 32) s.finishedRuns.shift();
      }
      if (!s.streaming || !m.runId || s.streaming.runId === m.runId) s.streaming = null;
      this.stopAwaiting(s);
      // The agent answered, so a re-sent message did reach it.
      for (const other of s.msgs.values()) {
        if (other.status === "retrying" && other.seq < m.seq) this.setStatus(s, other, "sent");
      }
    } else if (live && m.status !== "failed" && this.now() - Date.parse(m.createdAt) < TYPING_TIMEOUT_MS) {
      // Only recent messages: an old unanswered one replayed after a resume is not a run.
      this.awaitReply(s);
    }
    this.emit("message", m);
  }

  /** Delivers held messages that are next in line; `force` also skips a gap. */
  private release(s: SessionState, force: boolean) {
    for (;;) {
      const next = (s.contiguous ?? 0) + 1;
      let m = s.held.get(next);
      if (!m && force && s.held.size) m = s.held.get(Math.min(...s.held.keys()));
      if (!m) break;
      s.held.delete(m.seq);
      this.accept(s, m, true);
    }
    if (!s.held.size) s.gapResume = null;
    this.changed(s);
  }

  private requestGapFill(s: SessionState) {
    if (s.contiguous === null || s.gapResume === s.contiguous) return;
    if (this.requestResume(s)) s.gapResume = s.contiguous;
  }

  private requestResume(s: SessionState): boolean {
    if (!this.authed || s.contiguous === null) return false;
    return this.sendFrame({ type: "resume", payload: { session_id: s.id, last_seq: s.contiguous } });
  }

  private onDelta(frame: ChatDeltaFrame) {
    const p = frame.payload;
    const s = this.ensureSession(p.session_id, p.agent_id);
    if (s.finishedRuns.includes(p.run_id)) return;
    s.streaming = { runId: p.run_id, content: p.content };
    this.changed(s);
    this.emit("delta", { sessionId: s.id, agentId: p.agent_id, runId: p.run_id, content: p.content });
  }

  private onError(frame: ErrorFrame) {
    const p = frame.payload;
    this.emit("error", { ...p, id: frame.id, seq: frame.seq });
    const item = frame.id ? this.outbox.find((i) => i.id === frame.id) : undefined;
    if (p.code === "AGENT_UNAVAILABLE" && frame.seq !== undefined && p.session_id) {
      // Stored, but the gateway could not take it: failed, the user may retry.
      const s = this.ensureSession(p.session_id, p.agent_id ?? null);
      if (item) this.confirm(item);
      const m = s.msgs.get(frame.seq) ?? s.held.get(frame.seq);
      if (m) this.setStatus(s, m, "failed");
      else s.failedSeqs.add(frame.seq);
      this.stopAwaiting(s);
      this.changed(s);
      return;
    }
    if (item) {
      if (p.code === "RATE_LIMITED") {
        // Dropped unread: send it again when allowed.
        this.sentOn.delete(item.id);
        const old = this.rateTimers.get(item.id);
        if (old !== undefined) this.timers.clearTimeout(old);
        this.rateTimers.set(
          item.id,
          this.timers.setTimeout(() => {
            this.rateTimers.delete(item.id);
            this.flush();
          }, Math.max(250, p.retry_after_ms ?? 1_000)),
        );
        return;
      }
      if (item.retrySeq !== undefined) {
        // A retry refused outright: the stored message stays failed.
        this.removeItem(item.id);
        const s = item.sessionId ? this.sessions.get(item.sessionId) : undefined;
        const m = s?.msgs.get(item.retrySeq);
        if (s && m) this.setStatus(s, m, "failed");
        return;
      }
      // Refused before storing: keep it (failed) so the user can retry or discard it.
      this.outbox = this.outbox.map((i) =>
        i.id === item.id ? { ...i, state: "failed", error: { code: p.code, message: p.message } } : i,
      );
      this.persist();
      this.changed();
      return;
    }
    if (p.session_id && this.pendingResumes.has(p.session_id) && RESUME_ERRORS.has(p.code)) {
      // A resume the relay refused (session gone or seq out of range): stop waiting for it.
      this.onResumed(p.session_id);
    }
  }

  private setStatus(s: SessionState, m: ChatMessage, status: ChatMessage["status"]) {
    if (m.status === status) return;
    const updated = { ...m, status };
    if (s.msgs.has(m.seq)) s.msgs.set(m.seq, updated);
    else s.held.set(m.seq, updated);
    this.changed(s);
    this.emit("update", updated);
  }

  private awaitReply(s: SessionState) {
    s.awaiting = this.now();
    const old = this.typingTimers.get(s.id);
    if (old !== undefined) this.timers.clearTimeout(old);
    this.typingTimers.set(
      s.id,
      this.timers.setTimeout(() => {
        this.typingTimers.delete(s.id);
        s.awaiting = null;
        this.changed(s);
      }, TYPING_TIMEOUT_MS),
    );
  }

  private stopAwaiting(s: SessionState) {
    s.awaiting = null;
    const old = this.typingTimers.get(s.id);
    if (old !== undefined) this.timers.clearTimeout(old);
    this.typingTimers.delete(s.id);
  }

  // ---- outbox --------------------------------------------------------------------

  /** Queues a message and sends it when the socket is ready; returns its client id. */
  send(agentId: string, content: string, sessionId?: string | null): string {
    const item: OutboxItem = {
      id: this.newId(),
      agentId,
      sessionId: sessionId ?? null,
      content,
      createdAt: new Date(this.now()).toISOString(),
      state: "pending",
    };
    this.outbox = [...this.outbox, item];
    this.persist();
    this.changed();
    this.flush();
    return item.id;
  }

  /** Sends a failed message again with the same client id (stored ones by session + seq). */
  retry(target: { outboxId: string } | { sessionId: string; seq: number }): void {
    if ("outboxId" in target) {
      this.outbox = this.outbox.map((i) =>
        i.id === target.outboxId ? { ...i, state: "pending", error: undefined } : i,
      );
      this.sentOn.delete(target.outboxId);
    } else {
      const s = this.sessions.get(target.sessionId);
      const m = s?.msgs.get(target.seq);
      if (!s || !m || m.role !== "user" || this.outbox.some((i) => i.id === m.clientId)) return;
      this.outbox = [
        ...this.outbox,
        {
          id: m.clientId,
          agentId: m.agentId ?? s.agentId ?? "",
          sessionId: s.id,
          content: m.content,
          createdAt: m.createdAt,
          state: "pending",
          retrySeq: m.seq,
        },
      ];
      this.setStatus(s, m, "retrying");
    }
    this.persist();
    this.changed();
    this.flush();
  }

  /** Drops a message that was never stored. */
  discard(outboxId: string): void {
    this.removeItem(outboxId);
  }

  /** Sends every pending message not yet sent on this socket, in the order typed. */
  private flush() {
    if (!this.authed || this.pendingResumes.size > 0) return;
    for (const item of this.outbox) {
      if (item.state !== "pending" || !item.agentId) continue;
      if (this.sentOn.get(item.id) === this.connection || this.rateTimers.has(item.id)) continue;
      const payload: { agent_id: string; content: string; session_id?: string } = {
        agent_id: item.agentId,
        content: item.content,
      };
      if (item.sessionId) payload.session_id = item.sessionId;
      if (!this.sendFrame({ type: "chat", id: item.id, payload })) return;
      this.sentOn.set(item.id, this.connection);
    }
  }

  /** The server stored it (its echo, or REST history, carries the id). */
  private confirm(item: OutboxItem) {
    this.removeItem(item.id);
  }

  private removeItem(id: string) {
    if (!this.outbox.some((i) => i.id === id)) return;
    this.outbox = this.outbox.filter((i) => i.id !== id);
    this.sentOn.delete(id);
    const t = this.rateTimers.get(id);
    if (t !== undefined) this.timers.clearTimeout(t);
    this.rateTimers.delete(id);
    this.persist();
    this.changed();
  }

  private load(): PersistedOutbox {
    try {
      const raw = this.storage?.getItem(this.storageKey);
      if (raw) {
        const parsed = JSON.parse(raw) as PersistedOutbox;
        if (parsed?.v === 1 && Array.isArray(parsed.items)) return parsed;
      }
    } catch {
      // unreadable: start empty
    }
    return { v: 1, userId: null, items: [] };
  }

  private persist() {
    const data: PersistedOutbox = { v: 1, userId: this.userId, items: this.outbox };
    try {
      this.storage?.setItem(this.storageKey, JSON.stringify(data));
    } catch {
      // storage full or denied: the queue still lives in memory
    }
  }

  // ---- REST ----------------------------------------------------------------------

  /** Notes which agent a session belongs to (from GET /h5/chat/sessions). */
  registerSession(sessionId: string, agentId: string): void {
    const had = this.sessions.get(sessionId)?.agentId;
    this.ensureSession(sessionId, agentId);
    if (!had) this.changed(this.sessions.get(sessionId));
  }

  /** Merges a page of REST history: by seq, never twice, confirming queued messages. */
  mergeHistory(sessionId: string, agentId: string | null, items: readonly RestMessage[]): void {
    const s = this.ensureSession(sessionId, agentId);
    const sorted = [...items].sort((a, b) => a.seq - b.seq);
    if (s.contiguous === null && sorted.length) {
      // Nothing known yet: the page's newest seq is where live frames continue.
      s.contiguous = sorted[sorted.length - 1].seq;
      for (const r of sorted) s.msgs.set(r.seq, this.fromRest(r, s));
      this.changed(s);
    }
    for (const r of sorted) {
      const item = this.outbox.find((i) => i.id === r.client_message_id && asRole(r.role) === "user");
      if (item && item.retrySeq === undefined) this.confirm(item);
      const known = s.msgs.get(r.seq) ?? s.held.get(r.seq);
      if (known) {
        // REST can be fresher about status (e.g. sent); a local retry wins until answered.
        const status = asStatus(r.status);
        if (known.status !== "retrying" && known.status !== status) this.setStatus(s, known, status);
        continue;
      }
      this.place(s, this.fromRest(r, s), false);
    }
  }

  private fromRest(r: RestMessage, s: SessionState): ChatMessage {
    return {
      sessionId: s.id,
      agentId: s.agentId,
      seq: r.seq,
      messageId: r.id,
      clientId: r.client_message_id,
      role: asRole(r.role),
      content: r.content,
      status: asStatus(r.status),
      runId: r.run_id ?? null,
      createdAt: r.created_at,
    };
  }
}
