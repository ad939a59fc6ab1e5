// ChatClient against a fake socket, fake timers and an in-memory storage: reconnects,
// resume without duplicates or gaps, the persisted outbox, streaming, failures and auth.
import { describe, expect, it } from "vitest";
import type { ClientFrame, ServerFrame } from "../src/shared/protocol/h5Chat";
import {
  ChatClient,
  type ChatMessage,
  type KeyValueStorage,
  type SocketLike,
  type Timers,
  type TokenSource,
} from "../src/shared/ws/chatClient";

// ---- fakes -------------------------------------------------------------------------

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: ClientFrame[] = [];
  closedWith: number | null = null;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // server side
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  push(frame: ServerFrame) {
    this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" } as CloseEvent);
  }
  frames<T extends ClientFrame["type"]>(type: T) {
    return this.sent.filter((f): f is Extract<ClientFrame, { type: T }> => f.type === type);
  }
}

class ManualTimers implements Timers {
  now = 1_000_000;
  private seq = 0;
  private tasks = new Map<number, { at: number; fn: () => void; every?: number }>();
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown) {
    this.tasks.delete(h as number);
  }
  setInterval(fn: () => void, ms: number) {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.now + ms, fn, every: ms });
    return id;
  }
  clearInterval(h: unknown) {
    this.tasks.delete(h as number);
  }
  /** Runs everything due within `ms`, in time order. */
  advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void; every?: number }] | null = null;
      for (const e of this.tasks) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      const [id, task] = next;
      this.now = task.at;
      if (task.every) task.at += task.every;
      else this.tasks.delete(id);
      task.fn();
    }
    this.now = end;
  }
  pending() {
    return [...this.tasks.values()].map((t) => t.at - this.now);
  }
}

class MemoryStorage implements KeyValueStorage {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
  removeItem(k: string) {
    this.data.delete(k);
  }
}

class FakeSession implements TokenSource {
  token = "t1";
  refreshes = 0;
  refreshTo: string | null = "t2";
  expiresAt: number;
  private listeners = new Set<(s: { access_token: string; expires_at: number } | null) => void>();
  constructor(private timers: ManualTimers) {
    this.expiresAt = timers.now + 15 * 60_000;
  }
  get() {
    return { access_token: this.token, expires_at: this.expiresAt };
  }
  async accessToken() {
    return this.token;
  }
  async refresh() {
    this.refreshes++;
    if (!this.refreshTo) return null;
    this.rotate(this.refreshTo);
    return { access_token: this.token };
  }
  rotate(token: string) {
    this.token = token;
    this.expiresAt = this.timers.now + 15 * 60_000;
    for (const l of this.listeners) l(this.get());
  }
  subscribe(l: (s: { access_token: string; expires_at: number } | null) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

const tick = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};

const S = "11111111-1111-4111-8111-111111111111";
const AGENT = "22222222-2222-4222-8222-222222222222";
const at = (seq: number) => new Date(1_000_000 + seq * 1000).toISOString();

function stored(seq: number, role: "user" | "agent", over: Partial<{ id: string; status: string; run: string; session: string; created: string }> = {}): ServerFrame {
  return {
    type: "chat",
    id: over.id ?? (role === "agent" ? `run:r${seq}` : `c${seq}`),
    seq,
    payload: {
      agent_id: AGENT,
      session_id: over.session ?? S,
      message_id: `m${seq}`,
      role,
      content: `${role} ${seq}`,
      status: (over.status ?? (role === "agent" ? "completed" : "received")) as "received",
      run_id: role === "agent" ? (over.run ?? `r${seq}`) : null,
      created_at: over.created ?? at(seq),
    },
  };
}

const authOk = (sessions: { session_id: string; last_seq: number }[] = [], user = "u1"): ServerFrame => ({
  type: "auth_ok",
  payload: {
    user_id: user,
    assignments: [{ agent_id: AGENT, agent_name: "Ada", board_id: "b", board_name: "B", online: true }],
    sessions,
  },
});

function setup(opts: { storage?: MemoryStorage; online?: boolean } = {}) {
  FakeSocket.all = [];
  const timers = new ManualTimers();
  const session = new FakeSession(timers);
  const storage = opts.storage ?? new MemoryStorage();
  const delays: number[] = [];
  let ids = 0;
  const client = new ChatClient({
    url: async () => "ws://relay/ws/h5/chat",
    session,
    WebSocket: FakeSocket,
    timers,
    storage,
    now: () => timers.now,
    online: opts.online ?? true,
    backoff: (n) => {
      const d = Math.min(30_000, 1000 * 2 ** n);
      delays.push(d);
      return d;
    },
    newId: () => `local-${++ids}`,
  });
  const delivered: ChatMessage[] = [];
  client.on("message", (m) => delivered.push(m));
  const sock = () => FakeSocket.all[FakeSocket.all.length - 1];
  /** Starts (or waits for the reconnect) and completes the handshake. */
  const connect = async (sessions: { session_id: string; last_seq: number }[] = [], user = "u1") => {
    await tick();
    const ws = sock();
    ws.open();
    ws.push(authOk(sessions, user));
    return ws;
  };
  return { client, timers, session, storage, delays, delivered, sock, connect };
}

const seqsOf = (ms: ChatMessage[]) => ms.map((m) => m.seq);

// ---- tests -------------------------------------------------------------------------

describe("ChatClient connection", () => {
  it("authenticates with a fresh token and heartbeats below the server timeout", async () => {
    const { client, timers, sock, connect } = setup();
    client.start();
    expect(client.state).toBe("connecting");
    const ws = await connect();
    expect(ws.url).toBe("ws://relay/ws/h5/chat");
    expect(ws.sent[0]).toEqual({ type: "auth", payload: { token: "t1" } });
    expect(client.state).toBe("connected");
    expect(client.getSnapshot().assignments?.[0].agent_name).toBe("Ada");
    timers.advance(25_000);
    ws.push({ type: "heartbeat" });
    timers.advance(25_000);
    expect(ws.frames("heartbeat")).toHaveLength(2);
    expect(sock()).toBe(ws);
  });

  it("reconnects with growing backoff after closes and resets it after auth_ok", async () => {
    const { client, timers, delays, sock, connect } = setup();
    client.start();
    const first = await connect();
    first.drop(1006);
    expect(client.state).toBe("reconnecting");
    expect(FakeSocket.all).toHaveLength(1);
    timers.advance(999);
    await tick();
    expect(FakeSocket.all).toHaveLength(1); // not before the delay
    timers.advance(1);
    await tick();
    expect(FakeSocket.all).toHaveLength(2);
    sock().drop(1006); // failed before opening
    timers.advance(2_000);
    await tick();
    expect(FakeSocket.all).toHaveLength(3);
    sock().drop(1012);
    timers.advance(4_000);
    await connect();
    expect(delays).toEqual([1_000, 2_000, 4_000]);
    expect(client.state).toBe("connected");
    sock().drop(1006);
    expect(delays).toEqual([1_000, 2_000, 4_000, 1_000]);
  });

  it("treats a silent socket as dead and reconnects", async () => {
    const { client, timers, connect } = setup();
    client.start();
    const ws = await connect();
    timers.advance(25_000 * 3); // no frames at all from the server
    expect(ws.closedWith).toBe(4000);
    expect(client.state).toBe("reconnecting");
  });

  it("checks the socket at once when the page wakes up", async () => {
    const { client, timers, connect } = setup();
    client.start();
    const ws = await connect();
    client.poke();
    expect(ws.frames("heartbeat")).toHaveLength(1);
    timers.now += 40_000; // frozen in the background: no timers ran
    client.poke();
    expect(ws.closedWith).toBe(4000);
    expect(client.state).toBe("reconnecting");
    client.poke(); // the pending reconnect happens now, not after the backoff
    await tick();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("waits for the network while offline and reconnects at once when back", async () => {
    const { client, timers, connect } = setup();
    client.start();
    const ws = await connect();
    client.setOnline(false);
    expect(client.getSnapshot().online).toBe(false);
    ws.drop(1006);
    expect(client.state).toBe("offline");
    timers.advance(60_000);
    await tick();
    expect(FakeSocket.all).toHaveLength(1);
    client.setOnline(true);
    await connect();
    expect(FakeSocket.all).toHaveLength(2);
    expect(client.state).toBe("connected");
  });
});

describe("ChatClient ordering and resume", () => {
  it("resumes with the last seq and merges the replay without duplicates or gaps", async () => {
    const { client, timers, delivered, connect } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 0 }]);
    ws.push(stored(1, "user"));
    ws.push(stored(2, "agent"));
    ws.push(stored(3, "user"));
    ws.drop(1012);
    timers.advance(1_000);
    await tick();
    const again = FakeSocket.all[1];
    again.open();
    expect(again.sent[0]).toEqual({
      type: "auth",
      payload: { token: "t1", resume: [{ session_id: S, last_seq: 3 }] },
    });
    again.push(authOk([{ session_id: S, last_seq: 5 }]));
    // The replay overlaps what we have (2, 3) and brings what we missed (4, 5).
    for (const f of [stored(2, "agent"), stored(3, "user"), stored(4, "agent"), stored(5, "user")]) again.push(f);
    again.push({ type: "resumed", payload: { session_id: S, last_seq: 5 } });
    again.push(stored(5, "user")); // a late live copy
    expect(seqsOf(delivered)).toEqual([1, 2, 3, 4, 5]);
    expect(seqsOf(client.getSnapshot().sessions[S].messages)).toEqual([1, 2, 3, 4, 5]);
    expect(client.getSnapshot().sessions[S].lastSeq).toBe(5);
  });

  it("holds a frame after a gap, asks for the missing ones and delivers in order", async () => {
    const { client, delivered, connect } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 5 }]);
    ws.push(stored(8, "agent"));
    expect(delivered).toHaveLength(0);
    expect(ws.frames("resume")).toEqual([{ type: "resume", payload: { session_id: S, last_seq: 5 } }]);
    ws.push(stored(9, "user"));
    expect(ws.frames("resume")).toHaveLength(1); // one request per gap
    ws.push(stored(6, "user"));
    ws.push(stored(7, "agent"));
    ws.push(stored(8, "agent"));
    ws.push({ type: "resumed", payload: { session_id: S, last_seq: 8 } });
    expect(seqsOf(delivered)).toEqual([6, 7, 8, 9]);
  });

  it("merges REST history with live frames by seq", async () => {
    const { client, delivered, connect } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 4 }]);
    ws.push(stored(5, "user"));
    ws.push(stored(6, "agent"));
    const rest = (seq: number) => {
      const f = stored(seq, seq % 2 ? "user" : "agent") as Extract<ServerFrame, { type: "chat" }>;
      return { ...f.payload, id: f.payload.message_id, seq, client_message_id: f.id };
    };
    // Newest page (fetched after the socket delivered 5 and 6), then an older one.
    client.mergeHistory(S, AGENT, [7, 6, 5, 4, 3].map(rest));
    client.mergeHistory(S, AGENT, [3, 2, 1].map(rest));
    ws.push(stored(7, "user")); // the live copy of what REST already had
    ws.push(stored(8, "agent"));
    expect(seqsOf(client.getSnapshot().sessions[S].messages)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seqsOf(delivered)).toEqual([5, 6, 7, 8]);
  });

  it("shows a reply streaming from deltas, then replaced by the final", async () => {
    const { client, connect } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 0 }]);
    ws.push(stored(1, "user", { created: new Date(1_000_000).toISOString() }));
    expect(client.getSnapshot().sessions[S].typing).toBe(true);
    const delta = (content: string): ServerFrame => ({
      type: "chat.delta",
      seq: 1,
      payload: { agent_id: AGENT, session_id: S, run_id: "r2", role: "agent", delta: content.slice(-2), content },
    });
    ws.push(delta("He"));
    ws.push(delta("Hello"));
    expect(client.getSnapshot().sessions[S].streaming).toEqual({ runId: "r2", content: "Hello" });
    ws.push(stored(2, "agent", { run: "r2" }));
    ws.push(delta("Hello wor")); // late delta of a finished run
    const view = client.getSnapshot().sessions[S];
    expect(view.streaming).toBeNull();
    expect(view.typing).toBe(false);
    expect(view.messages.map((m) => m.role)).toEqual(["user", "agent"]);
  });
});

describe("ChatClient outbox", () => {
  it("queues offline, survives a reload, sends once per connection with the same id", async () => {
    const storage = new MemoryStorage();
    const first = setup({ storage, online: false });
    first.client.start();
    await tick();
    expect(FakeSocket.all).toHaveLength(0);
    const id = first.client.send(AGENT, "hello", null);
    first.client.send(AGENT, "second", null);
    expect(JSON.parse(storage.getItem("mc.h5.outbox")!).items).toHaveLength(2);
    first.client.stop();

    // A reload: a new client reads the queue back.
    const second = setup({ storage });
    expect(second.client.getSnapshot().outbox.map((i) => i.content)).toEqual(["hello", "second"]);
    second.client.start();
    const ws = await second.connect();
    const chats = ws.frames("chat");
    expect(chats).toEqual([
      { type: "chat", id, payload: { agent_id: AGENT, content: "hello" } },
      { type: "chat", id: "local-2", payload: { agent_id: AGENT, content: "second" } },
    ]);
    // Lost before the echo: the next connection sends both again, same ids, once.
    ws.drop(1006);
    second.timers.advance(1_000);
    const ws2 = await second.connect();
    expect(ws2.frames("chat").map((f) => f.id)).toEqual([id, "local-2"]);
    ws2.push(stored(1, "user", { id }));
    expect(second.client.getSnapshot().outbox.map((i) => i.id)).toEqual(["local-2"]);
    ws2.push(stored(2, "user", { id: "local-2" }));
    expect(second.client.getSnapshot().outbox).toHaveLength(0);
    expect(JSON.parse(storage.getItem("mc.h5.outbox")!).items).toHaveLength(0);
    expect(ws2.frames("chat")).toHaveLength(2);
    expect(seqsOf(second.delivered)).toEqual([1, 2]);
  });

  it("flushes only after the resume replay, which may already confirm a message", async () => {
    const { client, timers, connect, sock } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 0 }]);
    ws.drop(1006); // offline now
    const id = client.send(AGENT, "hi", S);
    timers.advance(1_000);
    await tick();
    const ws2 = sock();
    ws2.open();
    ws2.push(authOk([{ session_id: S, last_seq: 1 }]));
    expect(ws2.frames("chat")).toHaveLength(0); // still resuming
    ws2.push(stored(1, "user", { id })); // it was stored before the drop
    ws2.push({ type: "resumed", payload: { session_id: S, last_seq: 1 } });
    expect(ws2.frames("chat")).toHaveLength(0);
    expect(client.getSnapshot().outbox).toHaveLength(0);
  });

  it("keeps messages the relay refused before storing, and re-sends rate-limited ones", async () => {
    const { client, timers, connect } = setup();
    client.start();
    const ws = await connect();
    const a = client.send(AGENT, "x".repeat(10), null);
    ws.push({ type: "error", id: a, payload: { code: "RATE_LIMITED", message: "slow down", retry_after_ms: 500 } });
    timers.advance(500);
    expect(ws.frames("chat").map((f) => f.id)).toEqual([a, a]);
    ws.push({ type: "error", id: a, payload: { code: "MESSAGE_TOO_LARGE", message: "too long" } });
    const item = client.getSnapshot().outbox[0];
    expect(item.state).toBe("failed");
    expect(item.error?.code).toBe("MESSAGE_TOO_LARGE");
    client.retry({ outboxId: a });
    expect(ws.frames("chat")).toHaveLength(3);
    client.discard(a);
    expect(client.getSnapshot().outbox).toHaveLength(0);
  });

  it("marks AGENT_UNAVAILABLE messages failed and retries them with the same id", async () => {
    const { client, connect } = setup();
    client.start();
    const ws = await connect([{ session_id: S, last_seq: 0 }]);
    const id = client.send(AGENT, "hi", S);
    ws.push(stored(1, "user", { id, created: new Date(1_000_000).toISOString() }));
    ws.push({
      type: "error",
      id,
      seq: 1,
      payload: { code: "AGENT_UNAVAILABLE", message: "offline", agent_id: AGENT, session_id: S, message_id: "m1" },
    });
    const failed = client.getSnapshot().sessions[S].messages[0];
    expect(failed.status).toBe("failed");
    expect(client.getSnapshot().sessions[S].typing).toBe(false);
    client.retry({ sessionId: S, seq: 1 });
    expect(ws.frames("chat").map((f) => f.id)).toEqual([id, id]);
    expect(client.getSnapshot().sessions[S].messages[0].status).toBe("retrying");
    // The duplicate's echo still says failed (stored status); the reply settles it.
    ws.push(stored(1, "user", { id, status: "failed" }));
    expect(client.getSnapshot().sessions[S].messages[0].status).toBe("retrying");
    expect(client.getSnapshot().outbox).toHaveLength(0);
    ws.push(stored(2, "agent"));
    expect(client.getSnapshot().sessions[S].messages.map((m) => m.status)).toEqual(["sent", "completed"]);
  });

  it("drops another account's queue", async () => {
    const storage = new MemoryStorage();
    const a = setup({ storage });
    a.client.start();
    await a.connect([], "u1");
    a.client.setOnline(false);
    a.sock().drop(1006);
    a.client.send(AGENT, "from u1", null);
    a.client.stop();
    const b = setup({ storage });
    b.client.start();
    const ws = await b.connect([], "u2");
    expect(ws.frames("chat")).toHaveLength(0);
    expect(b.client.getSnapshot().outbox).toHaveLength(0);
  });
});

describe("ChatClient auth", () => {
  it("on 4001 refreshes once and reconnects; a second 4001 signs out", async () => {
    const { client, session, timers, sock } = setup();
    let signedOut = 0;
    client.on("signed_out", () => signedOut++);
    client.start();
    await tick();
    sock().open();
    sock().push({ type: "auth_error", payload: { reason: "invalid_token" } });
    sock().drop(4001);
    await tick();
    expect(session.refreshes).toBe(1);
    expect(FakeSocket.all).toHaveLength(2); // at once, no backoff
    sock().open();
    expect(sock().sent[0]).toEqual({ type: "auth", payload: { token: "t2" } });
    sock().drop(4001);
    await tick();
    expect(session.refreshes).toBe(1);
    expect(client.state).toBe("signed_out");
    expect(signedOut).toBe(1);
    timers.advance(120_000);
    await tick();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("signs out when the refresh fails", async () => {
    const { client, session, sock } = setup();
    session.refreshTo = null;
    client.start();
    await tick();
    sock().open();
    sock().drop(4001);
    await tick();
    expect(client.state).toBe("signed_out");
  });

  it("stops on 4003 (suspended)", async () => {
    const { client, timers, sock } = setup();
    let suspended = false;
    client.on("suspended", () => (suspended = true));
    client.start();
    await tick();
    sock().open();
    sock().drop(4003);
    await tick();
    timers.advance(60_000);
    await tick();
    expect(client.state).toBe("suspended");
    expect(suspended).toBe(true);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("re-authenticates the open socket when the token is refreshed", async () => {
    const { client, session, timers, connect } = setup();
    client.start();
    const ws = await connect();
    session.rotate("t9");
    expect(ws.frames("auth").map((f) => f.payload.token)).toEqual(["t1", "t9"]);
    ws.push({ type: "auth_ok", payload: { user_id: "u1", refreshed: true } });
    expect(client.state).toBe("connected");
    // And it refreshes on its own shortly before the token expires.
    const before = session.token;
    session.refreshTo = "t10";
    session.accessToken = async () => {
      await session.refresh();
      return session.token;
    };
    // Fifteen minutes of a healthy socket (its heartbeats answered).
    for (let t = 0; t < 15 * 60_000 - 25_000; t += 20_000) {
      timers.advance(20_000);
      ws.push({ type: "heartbeat" });
    }
    await tick();
    expect(client.state).toBe("connected");
    expect(before).toBe("t9");
    expect(ws.frames("auth").map((f) => f.payload.token)).toEqual(["t1", "t9", "t10"]);
  });
});
