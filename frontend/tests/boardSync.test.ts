import { describe, expect, it } from "vitest";
import type { ServerFrame, Task } from "../src/shared/protocol/boardSync";
import { makeBoard, makeTask } from "./fixtures";
import { BoardSyncClient, type SyncStatus, type Timers, type WebSocketLike } from "../src/shared/ws/boardSync";

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string) {
    this.closed = { code, reason };
    this.serverClose(code ?? 1000, reason ?? "");
  }
  // --- test side
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  push(frame: object) {
    this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  }
  serverClose(code: number, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

/** Timers under the test's control. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  tasks = new Map<number, { at: number; fn: () => void; every?: number }>();
  setTimeout(fn: () => void, ms: number) {
    const id = this.next++;
    this.tasks.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown) {
    this.tasks.delete(h as number);
  }
  setInterval(fn: () => void, ms: number) {
    const id = this.next++;
    this.tasks.set(id, { at: this.now + ms, fn, every: ms });
    return id;
  }
  clearInterval(h: unknown) {
    this.tasks.delete(h as number);
  }
  /** Delays of pending one-shot timers. */
  pendingDelays() {
    return [...this.tasks.values()].filter((t) => !t.every).map((t) => t.at - this.now);
  }
  advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.tasks.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, t] = due;
      this.now = t.at;
      if (t.every) t.at += t.every;
      else this.tasks.delete(id);
      t.fn();
    }
    this.now = end;
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

const task = (id: string, version = 1): Task => makeTask(id, { title: id, version });

const actor = { id: "u1", name: "Ada", type: "user" };
const board = makeBoard({ name: "B", slug: "b" });

function setup(opts: { token?: () => Promise<string | null> } = {}) {
  FakeSocket.all = [];
  const timers = new FakeTimers();
  const frames: ServerFrame[] = [];
  const statuses: SyncStatus[] = [];
  const lost: string[][] = [];
  const client = new BoardSyncClient({
    boardId: "b1",
    token: opts.token ?? (async () => "tok"),
    orgId: () => "o1",
    url: async (p) => `ws://relay${p}`,
    WebSocket: FakeSocket,
    timers,
    random: () => 0.5, // no jitter: backoffDelay gives exactly 1 s, 2 s, 4 s...
    heartbeatMs: 20_000,
    onFrame: (f) => frames.push(f),
    onStatus: (s) => statuses.push(s),
    onLost: (ids) => lost.push(ids),
  });
  return { client, timers, frames, statuses, lost, sock: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

async function connectLive(env: ReturnType<typeof setup>, seq = 10) {
  env.client.start();
  await flush();
  const ws = env.sock();
  ws.open();
  ws.push({ type: "auth_ok", board_id: "b1", actor, seq });
  return ws;
}

describe("BoardSyncClient", () => {
  it("connects to the board URL and authenticates first", async () => {
    const env = setup();
    env.client.start();
    await flush();
    const ws = env.sock();
    expect(ws.url).toBe("ws://relay/ws/board/b1/sync");
    ws.open();
    expect(ws.sent[0]).toEqual({ type: "auth", token: "tok", org_id: "o1" });
    expect(env.client.status).toBe("connecting");
    ws.push({ type: "auth_ok", board_id: "b1", actor, seq: 10 });
    expect(env.client.status).toBe("live");
  });

  it("delivers board.state and event frames, records the last seq", async () => {
    const env = setup();
    const ws = await connectLive(env);
    ws.push({ type: "board.state", board, tasks: [task("a")], seq: 10, timestamp: "" });
    ws.push({ type: "task.created", seq: 12, task: task("b"), created_by: actor, timestamp: "" });
    expect(env.frames.map((f) => f.type)).toEqual(["auth_ok", "board.state", "task.created"]);
    expect(env.client.lastSeq).toBe(12);
  });

  it("does not apply a frame twice (seq at or below the last applied)", async () => {
    const env = setup();
    const ws = await connectLive(env);
    ws.push({ type: "board.state", board, tasks: [], seq: 10, timestamp: "" });
    ws.push({ type: "task.created", seq: 11, task: task("a"), created_by: actor, timestamp: "" });
    ws.push({ type: "task.created", seq: 11, task: task("a"), created_by: actor, timestamp: "" });
    ws.push({ type: "task.deleted", seq: 9, task_id: "a", deleted_by: actor, timestamp: "" });
    expect(env.frames.filter((f) => f.type === "task.created")).toHaveLength(1);
    expect(env.frames.some((f) => f.type === "task.deleted")).toBe(false);
  });

  it("reconnects with backoff and resumes with last_seq, without duplicates", async () => {
    const env = setup();
    let ws = await connectLive(env);
    ws.push({ type: "board.state", board, tasks: [], seq: 10, timestamp: "" });
    ws.push({ type: "task.created", seq: 11, task: task("a"), created_by: actor, timestamp: "" });
    ws.serverClose(4009, "slow consumer");
    expect(env.client.status).toBe("reconnecting");
    expect(env.timers.pendingDelays()).toEqual([1000]);

    // First retry fails before opening: the next delay doubles.
    env.timers.advance(999);
    expect(FakeSocket.all).toHaveLength(1);
    env.timers.advance(1);
    await flush();
    expect(FakeSocket.all).toHaveLength(2);
    env.sock().serverClose(1006);
    expect(env.timers.pendingDelays()).toEqual([2000]);

    env.timers.advance(2000);
    await flush();
    ws = env.sock();
    ws.open();
    expect(ws.sent[0]).toEqual({ type: "auth", token: "tok", org_id: "o1", last_seq: 11 });
    ws.push({ type: "auth_ok", board_id: "b1", actor, seq: 20 });
    // The replay repeats 11 (already applied) and brings 12.
    ws.push({ type: "task.created", seq: 11, task: task("a"), created_by: actor, timestamp: "" });
    ws.push({ type: "task.updated", seq: 12, task_id: "a", task: task("a", 2), changes: {}, updated_by: actor, cause: "task.updated", timestamp: "" });
    const events = env.frames.filter((f) => f.type === "task.created" || f.type === "task.updated");
    expect(events.map((f) => ("seq" in f ? f.seq : 0))).toEqual([11, 12]);
    expect(env.client.status).toBe("live");

    // A successful auth resets the backoff.
    ws.serverClose(1012);
    expect(env.timers.pendingDelays()).toEqual([1000]);
  });

  it("correlates ack and error with the command id", async () => {
    const env = setup();
    const ws = await connectLive(env);
    const moveId = env.client.move("a", "review", 1536);
    const createId = env.client.create({ title: "New", status: "todo" });
    expect(moveId).toBeTruthy();
    expect(createId).toBeTruthy();
    expect(moveId).not.toBe(createId);
    expect(ws.sent[1]).toEqual({ type: "task.move", id: moveId, task_id: "a", status: "review", position: 1536 });
    expect(ws.sent[2]).toEqual({ type: "task.create", id: createId, title: "New", status: "todo" });

    ws.push({ type: "error", id: moveId, code: "CONFLICT", message: "blocked by an unfinished task", details: [] });
    ws.push({ type: "ack", id: createId, task: task("n") });
    const replies = env.frames.filter((f) => f.type === "ack" || f.type === "error");
    expect(replies).toEqual([
      expect.objectContaining({ type: "error", id: moveId, code: "CONFLICT" }),
      expect.objectContaining({ type: "ack", id: createId }),
    ]);
    // Answered commands are not reported lost when the socket drops.
    ws.serverClose(1006);
    expect(env.lost).toEqual([]);
  });

  it("reports unanswered commands as lost when the socket closes", async () => {
    const env = setup();
    const ws = await connectLive(env);
    const id = env.client.move("a", "done");
    ws.serverClose(1006);
    expect(env.lost).toEqual([[id]]);
  });

  it("refuses commands when not live (the caller falls back to REST)", async () => {
    const env = setup();
    env.client.start();
    await flush();
    expect(env.client.move("a", "done")).toBeNull();
    env.sock().open();
    expect(env.client.create({ title: "x" })).toBeNull();
  });

  it("sends heartbeats while live and stops them on close", async () => {
    const env = setup();
    const ws = await connectLive(env);
    env.timers.advance(20_000);
    env.timers.advance(20_000);
    expect(ws.sent.filter((f) => (f as { type: string }).type === "heartbeat")).toHaveLength(2);
    ws.serverClose(1006);
    const sent = ws.sent.length;
    env.timers.advance(500); // before the reconnect
    expect(ws.sent.length).toBe(sent);
  });

  it("starts over from a full state when the server refuses last_seq", async () => {
    const env = setup();
    let ws = await connectLive(env);
    ws.push({ type: "board.state", board, tasks: [], seq: 10, timestamp: "" });
    ws.serverClose(1012);
    env.timers.advance(1000);
    await flush();
    ws = env.sock();
    ws.open();
    expect(ws.sent[0]).toMatchObject({ last_seq: 10 });
    ws.push({ type: "auth_ok", board_id: "b1", actor, seq: 5 });
    ws.push({ type: "error", id: null, code: "INVALID_REQUEST", message: "bad", details: [{ field: "last_seq", message: "out of range" }] });
    expect(ws.closed).not.toBeNull();
    expect(env.timers.pendingDelays()).toEqual([0]);
    env.timers.advance(0);
    await flush();
    const fresh = env.sock();
    fresh.open();
    expect(fresh.sent[0]).toEqual({ type: "auth", token: "tok", org_id: "o1" });
  });

  it("stops for good on 4003, board.deleted and stop()", async () => {
    let env = setup();
    let ws = await connectLive(env);
    ws.serverClose(4003, "forbidden");
    expect(env.client.status).toBe("forbidden");
    expect(env.timers.pendingDelays()).toEqual([]);

    env = setup();
    ws = await connectLive(env);
    ws.push({ type: "board.deleted", seq: 30, deleted_by: actor, timestamp: "" });
    ws.serverClose(1000, "board deleted");
    expect(env.client.status).toBe("gone");
    expect(env.timers.pendingDelays()).toEqual([]);

    env = setup();
    ws = await connectLive(env);
    env.client.stop();
    expect(ws.closed?.code).toBe(1000);
    expect(env.client.status).toBe("stopped");
    expect(env.timers.tasks.size).toBe(0);
  });

  it("reconnects after 4001 and stops when there is no session", async () => {
    let signedIn = true;
    const env = setup({ token: async () => (signedIn ? "tok" : null) });
    const ws = await connectLive(env);
    signedIn = false;
    ws.push({ type: "auth_error", reason: "session revoked" });
    ws.serverClose(4001, "session revoked");
    expect(env.client.status).toBe("reconnecting");
    env.timers.advance(1000);
    await flush();
    expect(env.client.status).toBe("unauthorized");
    expect(FakeSocket.all).toHaveLength(1);
  });
});
