import { describe, expect, it } from "vitest";
import {
  boardReducer,
  columns,
  initialBoardState,
  isBlocked,
  midpoint,
  positionAt,
  visibleTasks,
  type BoardAction,
  type BoardState,
} from "../src/console/boards/reducer";
import type { Board, ServerFrame, Task } from "../src/shared/protocol/boardSync";
import { makeBoard, makeTask } from "./fixtures";

const BOARD: Board = makeBoard();
const task = makeTask;

const actor = { id: "u1", name: "Ada", type: "user" as const };
const ts = "2025-01-01T00:00:00Z";

function run(...actions: BoardAction[]): BoardState {
  return actions.reduce(boardReducer, initialBoardState);
}
const frame = (f: ServerFrame): BoardAction => ({ type: "frame", frame: f });
const snapshot = (tasks: Task[], seq: number): BoardAction => ({ type: "snapshot", snapshot: { board: BOARD, tasks, seq } });
const created = (t: Task, seq: number) => frame({ type: "task.created", seq, task: t, created_by: actor, timestamp: ts });
const updated = (t: Task, seq: number) =>
  frame({ type: "task.updated", seq, task_id: t.id, task: t, changes: {}, updated_by: actor, cause: "task.updated", timestamp: ts });
const deleted = (id: string, seq: number) => frame({ type: "task.deleted", seq, task_id: id, deleted_by: actor, timestamp: ts });
const ids = (s: BoardState, status: Task["status"]) => columns(s)[status].map((c) => c.task.id);

describe("snapshot", () => {
  it("replaces the state and records the seq", () => {
    const s = run(snapshot([task("a"), task("b", { status: "done" })], 10));
    expect(s.loaded).toBe(true);
    expect(s.seq).toBe(10);
    expect(s.board?.name).toBe("Launch");
    expect(ids(s, "todo")).toEqual(["a"]);
    expect(ids(s, "done")).toEqual(["b"]);
  });

  it("a later socket snapshot drops tasks that are gone", () => {
    const s = run(snapshot([task("a"), task("b")], 10), snapshot([task("b")], 20));
    expect(Object.keys(s.tasks)).toEqual(["b"]);
  });
});

describe("event frames", () => {
  it("applies created, updated and deleted", () => {
    let s = run(snapshot([task("a")], 10), created(task("b", { position: 2048 }), 11));
    expect(ids(s, "todo")).toEqual(["a", "b"]);
    s = boardReducer(s, updated(task("a", { status: "in_progress", version: 2 }), 12));
    expect(ids(s, "todo")).toEqual(["b"]);
    expect(ids(s, "in_progress")).toEqual(["a"]);
    s = boardReducer(s, deleted("b", 13));
    expect(ids(s, "todo")).toEqual([]);
    expect(s.seq).toBe(13);
  });

  it("ignores duplicate frames (seq at or below the last applied)", () => {
    const s1 = run(snapshot([task("a")], 10), updated(task("a", { title: "new", version: 2 }), 11));
    const s2 = boardReducer(s1, updated(task("a", { title: "new", version: 2 }), 11));
    expect(s2).toBe(s1);
    // A frame older than the snapshot changes nothing either.
    const s3 = boardReducer(s1, deleted("a", 9));
    expect(s3.tasks.a.title).toBe("new");
  });

  it("ignores out-of-order frames and never moves a task's version back", () => {
    const s = run(
      snapshot([task("a")], 10),
      updated(task("a", { title: "v3", version: 3 }), 13),
      // Arrives late with a lower seq: dropped by seq.
      updated(task("a", { title: "v2", version: 2 }), 12),
    );
    expect(s.tasks.a.title).toBe("v3");
    // A higher seq carrying an older version (e.g. a replay racing a REST answer) loses too.
    const s2 = boardReducer(s, updated(task("a", { title: "stale", version: 2 }), 14));
    expect(s2.tasks.a.title).toBe("v3");
    expect(s2.seq).toBe(14);
  });

  it("gaps in seq are normal (the seq is organization-wide)", () => {
    const s = run(snapshot([], 10), created(task("a"), 57));
    expect(ids(s, "todo")).toEqual(["a"]);
    expect(s.seq).toBe(57);
  });

  it("board.updated and board.deleted", () => {
    let s = run(snapshot([], 1));
    s = boardReducer(s, frame({ type: "board.updated", seq: 2, board: { ...BOARD, name: "Renamed" }, changes: {}, updated_by: actor, timestamp: ts }));
    expect(s.board?.name).toBe("Renamed");
    s = boardReducer(s, frame({ type: "board.deleted", seq: 3, deleted_by: actor, timestamp: ts }));
    expect(s.boardDeleted).toBe(true);
  });
});

describe("optimistic moves", () => {
  const base = () => run(snapshot([task("a", { position: 1024 }), task("b", { position: 2048 })], 10));

  it("shows the move at once and keeps it on ack", () => {
    let s = boardReducer(base(), { type: "optimisticMove", id: "c1", taskId: "a", status: "review", position: 1024 });
    expect(ids(s, "review")).toEqual(["a"]);
    expect(columns(s).review[0].pending).toBe(true);
    expect(s.tasks.a.status).toBe("todo"); // the confirmed state is untouched
    s = boardReducer(s, frame({ type: "ack", id: "c1", task: task("a", { status: "review", version: 2 }) }));
    expect(s.pending).toEqual({});
    expect(ids(s, "review")).toEqual(["a"]);
    expect(columns(s).review[0].pending).toBe(false);
    // The matching event after the ack is harmless.
    s = boardReducer(s, updated(task("a", { status: "review", version: 2 }), 11));
    expect(ids(s, "review")).toEqual(["a"]);
  });

  it("the event may come before the ack", () => {
    let s = boardReducer(base(), { type: "optimisticMove", id: "c1", taskId: "a", status: "done", position: 1024 });
    s = boardReducer(s, updated(task("a", { status: "done", version: 2 }), 11));
    expect(ids(s, "done")).toEqual(["a"]);
    s = boardReducer(s, frame({ type: "ack", id: "c1", task: task("a", { status: "done", version: 2 }) }));
    expect(ids(s, "done")).toEqual(["a"]);
    expect(s.pending).toEqual({});
  });

  it("reverts on an error frame with the command's id", () => {
    let s = boardReducer(base(), { type: "optimisticMove", id: "c1", taskId: "a", status: "done", position: 1024 });
    s = boardReducer(s, frame({ type: "error", id: "c1", code: "CONFLICT", message: "blocked" }));
    expect(ids(s, "done")).toEqual([]);
    expect(ids(s, "todo")).toEqual(["a", "b"]);
  });

  it("reverts commands lost with the connection", () => {
    let s = boardReducer(base(), { type: "optimisticMove", id: "c1", taskId: "a", status: "done", position: 1024 });
    s = boardReducer(s, { type: "revert", ids: ["c1"] });
    expect(ids(s, "todo")).toEqual(["a", "b"]);
  });

  it("an unrelated error does not revert anything", () => {
    let s = boardReducer(base(), { type: "optimisticMove", id: "c1", taskId: "a", status: "done", position: 1024 });
    s = boardReducer(s, frame({ type: "error", id: "c2", code: "CONFLICT", message: "x" }));
    expect(ids(s, "done")).toEqual(["a"]);
  });

  it("optimistic creates show a placeholder until acked", () => {
    let s = boardReducer(base(), { type: "optimisticCreate", id: "c9", title: "New", status: "todo", position: 3072 });
    const placeholder = columns(s).todo[2];
    expect(placeholder.optimistic).toBe(true);
    expect(placeholder.task.title).toBe("New");
    s = boardReducer(s, frame({ type: "ack", id: "c9", task: task("n", { title: "New", position: 3072 }) }));
    expect(ids(s, "todo")).toEqual(["a", "b", "n"]);
    expect(visibleTasks(s).some((c) => c.optimistic)).toBe(false);
  });
});

describe("position ordering", () => {
  it("orders a column by position, then id", () => {
    const s = run(
      snapshot(
        [task("c", { position: 3000 }), task("b", { position: 1000 }), task("a", { position: 1000 }), task("d", { position: -5 })],
        1,
      ),
    );
    expect(ids(s, "todo")).toEqual(["d", "a", "b", "c"]);
  });

  it("midpoint between neighbours and one step past either end", () => {
    expect(midpoint(undefined, undefined)).toBe(1024);
    expect(midpoint(1024, 2048)).toBe(1536);
    expect(midpoint(2048, undefined)).toBe(3072);
    expect(midpoint(undefined, 1024)).toBe(0);
    expect(midpoint(1, 2)).toBe(1.5);
  });

  it("positionAt places a task between the cards around the drop index", () => {
    const col = [task("a", { position: 1024 }), task("b", { position: 2048 }), task("c", { position: 3072 })];
    expect(positionAt(col, 0)).toBe(0);
    expect(positionAt(col, 1)).toBe(1536);
    expect(positionAt(col, 3)).toBe(4096);
    expect(positionAt(col, 99)).toBe(4096);
    expect(positionAt([], 0)).toBe(1024);
  });

  it("a moved task lands between its new neighbours", () => {
    let s = run(snapshot([task("a", { position: 1024 }), task("b", { position: 2048 }), task("c", { position: 3072 })], 1));
    const others = columns(s).todo.filter((c) => c.task.id !== "c").map((c) => c.task);
    s = boardReducer(s, { type: "optimisticMove", id: "m", taskId: "c", status: "todo", position: positionAt(others, 1) });
    expect(ids(s, "todo")).toEqual(["a", "c", "b"]);
  });
});

describe("REST refetch merge", () => {
  it("fills an empty state", () => {
    const s = run({ type: "rest", snapshot: { board: BOARD, tasks: [task("a")], seq: 5 } });
    expect(s.loaded).toBe(true);
    expect(s.seq).toBe(5);
  });

  it("an older refetch does not undo newer socket state", () => {
    const s = run(
      snapshot([task("a"), task("b")], 10),
      updated(task("a", { title: "socket", version: 3 }), 12),
      deleted("b", 13),
      { type: "rest", snapshot: { board: BOARD, tasks: [task("a", { title: "rest", version: 2 }), task("b")], seq: 11 } },
    );
    expect(s.tasks.a.title).toBe("socket");
    expect(s.tasks.b).toBeUndefined();
    expect(s.seq).toBe(13);
  });

  it("a newer refetch wins, except where we hold a higher version", () => {
    const s = run(
      snapshot([task("a"), task("b"), task("c")], 10),
      // Known from an ack only (no seq yet).
      { type: "upsert", task: task("c", { title: "acked", version: 5 }) },
      {
        type: "rest",
        snapshot: { board: BOARD, tasks: [task("a", { title: "rest", version: 2 }), task("c", { title: "old", version: 4 })], seq: 20 },
      },
    );
    expect(s.tasks.a.title).toBe("rest");
    expect(s.tasks.b).toBeUndefined(); // deleted meanwhile
    expect(s.tasks.c.title).toBe("acked");
  });

  it("keeps a task created by ack that a newer refetch does not have yet", () => {
    const s = run(snapshot([], 10), { type: "upsert", task: task("n") }, { type: "rest", snapshot: { board: BOARD, tasks: [], seq: 11 } });
    expect(s.tasks.n).toBeDefined();
  });

  it("does not revive a task deleted through REST", () => {
    const s = run(snapshot([task("a")], 10), { type: "remove", taskId: "a" }, { type: "rest", snapshot: { board: BOARD, tasks: [task("a")], seq: 9 } });
    expect(s.tasks.a).toBeUndefined();
  });

  it("two tabs that see the same frames in different interleavings agree", () => {
    const frames = [created(task("x", { position: 4096 }), 11), updated(task("x", { status: "review", version: 2 }), 12), deleted("y", 13)];
    const start = snapshot([task("y")], 10);
    const tab1 = run(start, ...frames);
    const tab2 = run(start, frames[0], frames[1], frames[0], frames[2], frames[1]);
    expect(columns(tab2)).toEqual(columns(tab1));
  });
});

describe("isBlocked", () => {
  it("is blocked by status or by an unfinished dependency", () => {
    const tasks = { a: task("a", { status: "done" }), b: task("b") };
    expect(isBlocked(task("x", { status: "blocked" }), tasks)).toBe(true);
    expect(isBlocked(task("x", { blocked_by: ["a"] }), tasks)).toBe(false);
    expect(isBlocked(task("x", { blocked_by: ["a", "b"] }), tasks)).toBe(true);
  });
});
