import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../src/shared/api/errors";
import { SseStream, type EventSourceLike, type SseMessage } from "../src/shared/sse";

class FakeSource implements EventSourceLike {
  static all: FakeSource[] = [];
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  private handlers = new Map<string, ((ev: MessageEvent) => void)[]>();
  constructor(readonly url: string) {
    FakeSource.all.push(this);
  }
  addEventListener(type: string, listener: (ev: MessageEvent) => void) {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), listener]);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.(new Event("open"));
  }
  fail() {
    this.onerror?.(new Event("error"));
  }
  emit(type: string, data: unknown, id?: number) {
    const ev = new MessageEvent(type, {
      data: typeof data === "string" ? data : JSON.stringify(data),
      lastEventId: id === undefined ? "" : String(id),
    });
    for (const h of this.handlers.get(type) ?? []) h(ev);
  }
  query(name: string) {
    return new URL(this.url, "http://x").searchParams.get(name);
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe("SseStream", () => {
  let tickets: number;
  const fetchTicket = vi.fn(async () => `t${++tickets}`);

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSource.all = [];
    tickets = 0;
    fetchTicket.mockClear();
  });
  afterEach(() => vi.useRealTimers());

  function open(extra: Partial<ConstructorParameters<typeof SseStream>[0]> = {}) {
    return new SseStream({
      url: "/api/v1/events/stream",
      params: { event_type: "task.*", board_id: undefined },
      fetchTicket,
      createEventSource: (u) => new FakeSource(u),
      backoff: (n) => 1000 * 2 ** n,
      ...extra,
    });
  }

  it("opens with a ticket and the filters, and delivers typed events", async () => {
    const s = open();
    const got: SseMessage<{ seq: number }>[] = [];
    s.on<{ seq: number }>("task.created", (m) => got.push(m));
    await flush();
    expect(FakeSource.all).toHaveLength(1);
    const src = FakeSource.all[0];
    expect(src.url.startsWith("/api/v1/events/stream?")).toBe(true);
    expect(src.query("ticket")).toBe("t1");
    expect(src.query("event_type")).toBe("task.*");
    expect(src.query("board_id")).toBeNull();
    expect(src.query("last_event_id")).toBeNull();
    src.open();
    src.emit("task.created", { seq: 7 }, 7);
    src.emit("task.updated", { seq: 8 }, 8); // nobody listens to this name
    expect(got).toEqual([{ id: 7, event: "task.created", data: { seq: 7 } }]);
    expect(s.lastEventId).toBe(7);
    s.close();
  });

  it("reconnects after an error with a fresh ticket, resuming from the last id, without duplicates", async () => {
    const statuses: string[] = [];
    const s = open({ onStatus: (st) => statuses.push(st) });
    const seen: number[] = [];
    s.on<{ seq: number }>("task.created", (m) => seen.push(m.data.seq));
    await flush();
    const first = FakeSource.all[0];
    first.open();
    first.emit("task.created", { seq: 1 }, 1);
    first.emit("task.created", { seq: 2 }, 2);
    first.fail();
    expect(first.closed).toBe(true);
    expect(statuses).toContain("retrying");
    // Nothing until the backoff delay has passed.
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeSource.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(FakeSource.all).toHaveLength(2);
    const second = FakeSource.all[1];
    expect(second.query("ticket")).toBe("t2");
    expect(second.query("last_event_id")).toBe("2");
    second.open();
    // The server replays from the log; anything at or below 2 is dropped.
    second.emit("task.created", { seq: 2 }, 2);
    second.emit("task.created", { seq: 3 }, 3);
    // A late event from the old source is ignored.
    first.emit("task.created", { seq: 4 }, 4);
    expect(seen).toEqual([1, 2, 3]);
    expect(statuses.at(-1)).toBe("open");
    s.close();
    expect(second.closed).toBe(true);
  });

  it("backs off longer on repeated failures and resets after a successful open", async () => {
    const s = open();
    await flush();
    FakeSource.all[0].fail();
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    FakeSource.all[1].fail();
    await vi.advanceTimersByTimeAsync(1999);
    expect(FakeSource.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(FakeSource.all).toHaveLength(3);
    FakeSource.all[2].open();
    FakeSource.all[2].fail();
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(FakeSource.all).toHaveLength(4);
    s.close();
  });

  it("resumes from a given last_event_id on first connect", async () => {
    const s = open({ lastEventId: 41 });
    await flush();
    expect(FakeSource.all[0].query("last_event_id")).toBe("41");
    s.close();
  });

  it("listeners added after opening are attached to the live source", async () => {
    const s = open();
    await flush();
    const src = FakeSource.all[0];
    const got: unknown[] = [];
    s.on("suggestion.new", (m) => got.push(m.data));
    src.emit("suggestion.new", { type: "suggestion.new", suggestion: { id: "a" } }, 5);
    expect(got).toEqual([{ type: "suggestion.new", suggestion: { id: "a" } }]);
    s.close();
  });

  it.each(["session.expired", "session.revoked"])("%s triggers a reconnect with a new ticket", async (ending) => {
    const s = open();
    s.on("task.created", () => undefined);
    await flush();
    const src = FakeSource.all[0];
    src.open();
    src.emit("task.created", {}, 3);
    src.emit(ending, "{}");
    expect(src.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(FakeSource.all).toHaveLength(2);
    expect(FakeSource.all[1].query("last_event_id")).toBe("3");
    s.close();
  });

  it("retries a failed ticket request, and gives up when signed out", async () => {
    let calls = 0;
    const onFatal = vi.fn();
    const s = open({
      onFatal,
      fetchTicket: async () => {
        calls++;
        if (calls === 1) throw new ApiError(503, "service_unavailable", "down");
        throw new ApiError(401, "unauthorized", "expired");
      },
    });
    await flush();
    expect(FakeSource.all).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(calls).toBe(2);
    expect(onFatal).toHaveBeenCalledOnce();
    expect(s.currentStatus).toBe("closed");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(2);
  });

  it("close() during a pending ticket request opens nothing", async () => {
    let release: (t: string) => void = () => undefined;
    const s = open({ fetchTicket: () => new Promise<string>((r) => (release = r)) });
    s.close();
    release("late");
    await flush();
    expect(FakeSource.all).toHaveLength(0);
  });
});
