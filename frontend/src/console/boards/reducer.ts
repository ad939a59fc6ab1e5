// Board state as a pure reducer. Confirmed server state (tasks by id, the last applied
// event seq) is kept apart from optimistic commands, which are overlaid when the columns
// are computed: confirming a command drops it and applies the server's task, reverting
// just drops it. Task updates only ever move a task's `version` forward, so a REST answer,
// an `ack` and the matching `task.updated` frame can arrive in any order.
import {
  TASK_STATUSES,
  type Board,
  type ServerFrame,
  type Task,
  type TaskPriority,
  type TaskStatus,
} from "../../shared/protocol/boardSync";

/** A move or create the server has not confirmed yet. */
export type PendingOp =
  | { kind: "move"; taskId: string; status: TaskStatus; position: number }
  | { kind: "create"; title: string; status: TaskStatus; priority: TaskPriority; position: number };

export interface BoardState {
  board: Board | null;
  tasks: Record<string, Task>;
  /** Seq of the last applied event or snapshot; frames at or below it are old news. */
  seq: number;
  /** Whether any snapshot (socket or REST) has been applied. */
  loaded: boolean;
  /** Ids deleted since the last full state, so an older REST snapshot cannot revive them. */
  deleted: Record<string, true>;
  /** Tasks learned from an ack or a REST answer rather than an event frame. */
  unsequenced: Record<string, true>;
  /** Optimistic commands by client id, in the order they were made. */
  pending: Record<string, PendingOp>;
  boardDeleted: boolean;
}

export const initialBoardState: BoardState = {
  board: null,
  tasks: {},
  seq: -1,
  loaded: false,
  deleted: {},
  unsequenced: {},
  pending: {},
  boardDeleted: false,
};

export interface Snapshot {
  board: Board;
  tasks: Task[];
  seq: number;
}

export type BoardAction =
  /** `board.state` from the socket: the authoritative state at its seq. */
  | { type: "snapshot"; snapshot: Snapshot }
  /** A REST refetch (`GET /boards/{id}/state`): merged with newer socket state by version. */
  | { type: "rest"; snapshot: Snapshot }
  /** Any server frame (events, ack, error). */
  | { type: "frame"; frame: ServerFrame }
  /** A task as a REST call returned it. */
  | { type: "upsert"; task: Task }
  /** A task deleted through REST. */
  | { type: "remove"; taskId: string }
  | { type: "optimisticMove"; id: string; taskId: string; status: TaskStatus; position: number }
  | { type: "optimisticCreate"; id: string; title: string; status: TaskStatus; priority?: TaskPriority; position: number }
  /** The command succeeded; `task` is the server's result. */
  | { type: "confirm"; id: string; task?: Task }
  /** The command failed or was lost: undo it. */
  | { type: "revert"; ids: string[] };

// ------------------------------------------------------------------ positions

/** Spacing the server uses when it appends to a column. */
export const POSITION_STEP = 1024;

/**
 * The position for a task dropped between `before` and `after` (the neighbours' positions;
 * undefined at either end of the column): the midpoint, or one step past the end.
 */
export function midpoint(before: number | undefined, after: number | undefined): number {
  if (before === undefined && after === undefined) return POSITION_STEP;
  if (before === undefined) return (after as number) - POSITION_STEP;
  if (after === undefined) return before + POSITION_STEP;
  return (before + after) / 2;
}

/** Server order within a column: position ascending, then id. */
export function compareTasks(a: Task, b: Task): number {
  return a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Position for inserting into `column` (ordered, the moving task excluded) at `index`.
 */
export function positionAt(column: readonly Task[], index: number): number {
  const i = Math.max(0, Math.min(index, column.length));
  return midpoint(column[i - 1]?.position, column[i]?.position);
}

// ------------------------------------------------------------------ reducer

function newer(current: Task | undefined, incoming: Task): boolean {
  return !current || incoming.version >= current.version;
}

function upsert(state: BoardState, task: Task, fromEvent: boolean): BoardState {
  if (state.deleted[task.id] || !newer(state.tasks[task.id], task)) return state;
  const unsequenced = { ...state.unsequenced };
  if (fromEvent) delete unsequenced[task.id];
  else if (!(task.id in state.tasks)) unsequenced[task.id] = true;
  return { ...state, tasks: { ...state.tasks, [task.id]: task }, unsequenced };
}

function remove(state: BoardState, taskId: string): BoardState {
  const tasks = { ...state.tasks };
  delete tasks[taskId];
  const pending = Object.fromEntries(
    Object.entries(state.pending).filter(([, op]) => op.kind !== "move" || op.taskId !== taskId),
  );
  const unsequenced = { ...state.unsequenced };
  delete unsequenced[taskId];
  return { ...state, tasks, pending, unsequenced, deleted: { ...state.deleted, [taskId]: true } };
}

function byId(tasks: Task[]): Record<string, Task> {
  return Object.fromEntries(tasks.map((t) => [t.id, t]));
}

function withoutPending(state: BoardState, ids: string[]): BoardState {
  if (!ids.some((id) => id in state.pending)) return state;
  const pending = { ...state.pending };
  for (const id of ids) delete pending[id];
  return { ...state, pending };
}

function applyRest(state: BoardState, snap: Snapshot): BoardState {
  if (!state.loaded) {
    return { ...state, board: snap.board, tasks: byId(snap.tasks), seq: snap.seq, loaded: true, unsequenced: {} };
  }
  const tasks: Record<string, Task> = {};
  if (snap.seq >= state.seq) {
    // The refetch includes every event we applied, so it decides which tasks exist; only
    // tasks known from an ack (whose event may still be on its way) are kept besides.
    for (const t of snap.tasks) {
      const mine = state.tasks[t.id];
      tasks[t.id] = mine && mine.version > t.version ? mine : t;
    }
    for (const id of Object.keys(state.unsequenced)) {
      const mine = state.tasks[id];
      if (mine && !(id in tasks)) tasks[id] = mine;
    }
  } else {
    // The socket is ahead: it decides which tasks exist; the refetch only fills in tasks we
    // never saw and moves versions forward.
    Object.assign(tasks, state.tasks);
    for (const t of snap.tasks) {
      if (state.deleted[t.id]) continue;
      if (newer(tasks[t.id], t)) tasks[t.id] = t;
    }
  }
  // The seq stays: the socket's own frames keep arriving in order and are idempotent.
  return { ...state, board: snap.seq >= state.seq ? snap.board : state.board, tasks };
}

function applyFrame(state: BoardState, frame: ServerFrame): BoardState {
  switch (frame.type) {
    case "board.state":
      return boardReducer(state, { type: "snapshot", snapshot: frame });
    case "ack":
      return frame.id
        ? boardReducer(state, { type: "confirm", id: frame.id, task: frame.task })
        : upsert(state, frame.task, false);
    case "error":
      return frame.id ? withoutPending(state, [frame.id]) : state;
    case "task.created":
    case "task.updated":
    case "task.deleted":
    case "board.updated":
    case "board.deleted":
    case "suggestion.new": {
      if (frame.seq <= state.seq) return state;
      let next: BoardState = { ...state, seq: frame.seq };
      if (frame.type === "task.created" || frame.type === "task.updated") next = upsert(next, frame.task, true);
      else if (frame.type === "task.deleted") next = remove(next, frame.task_id);
      else if (frame.type === "board.updated") next = { ...next, board: frame.board };
      else if (frame.type === "board.deleted") next = { ...next, boardDeleted: true };
      return next;
    }
    default:
      return state;
  }
}

export function boardReducer(state: BoardState, action: BoardAction): BoardState {
  switch (action.type) {
    case "snapshot": {
      const { board, tasks, seq } = action.snapshot;
      // Pending commands survive: their ack or error is still to come.
      return { ...state, board, tasks: byId(tasks), seq, loaded: true, deleted: {}, unsequenced: {} };
    }
    case "rest":
      return applyRest(state, action.snapshot);
    case "frame":
      return applyFrame(state, action.frame);
    case "upsert":
      return upsert(state, action.task, false);
    case "remove":
      return remove(state, action.taskId);
    case "optimisticMove":
      return {
        ...state,
        pending: {
          ...state.pending,
          [action.id]: { kind: "move", taskId: action.taskId, status: action.status, position: action.position },
        },
      };
    case "optimisticCreate":
      return {
        ...state,
        pending: {
          ...state.pending,
          [action.id]: {
            kind: "create",
            title: action.title,
            status: action.status,
            priority: action.priority ?? "medium",
            position: action.position,
          },
        },
      };
    case "confirm": {
      const next = withoutPending(state, [action.id]);
      return action.task ? upsert(next, action.task, false) : next;
    }
    case "revert":
      return withoutPending(state, action.ids);
  }
}

// ------------------------------------------------------------------ views

/** A card as shown: a confirmed task (with any pending move applied) or a task being created. */
export interface CardView {
  task: Task;
  /** A create or move is waiting for the server. */
  pending: boolean;
  /** A create not yet confirmed (the id is the command's client id). */
  optimistic: boolean;
}

function placeholder(id: string, op: Extract<PendingOp, { kind: "create" }>, boardId: string): Task {
  const now = new Date(0).toISOString();
  return {
    id,
    board_id: boardId,
    title: op.title,
    status: op.status,
    priority: op.priority,
    position: op.position,
    version: 0,
    evidence: [],
    blocked_by: [],
    tag_ids: [],
    status_changed_at: now,
    created_by_type: "user",
    created_by_id: id,
    created_at: now,
    updated_at: now,
  };
}

/** The tasks as the user should see them, with optimistic commands applied. */
export function visibleTasks(state: BoardState): CardView[] {
  const cards = new Map<string, CardView>();
  for (const t of Object.values(state.tasks)) cards.set(t.id, { task: t, pending: false, optimistic: false });
  for (const [id, op] of Object.entries(state.pending)) {
    if (op.kind === "move") {
      const card = cards.get(op.taskId);
      if (card) cards.set(op.taskId, { ...card, task: { ...card.task, status: op.status, position: op.position }, pending: true });
    } else {
      cards.set(id, { task: placeholder(id, op, state.board?.id ?? ""), pending: true, optimistic: true });
    }
  }
  return [...cards.values()];
}

/** Cards per column, in server order. */
export function columns(state: BoardState): Record<TaskStatus, CardView[]> {
  const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, [] as CardView[]])) as Record<TaskStatus, CardView[]>;
  for (const card of visibleTasks(state)) (out[card.task.status] ??= []).push(card);
  for (const s of Object.keys(out) as TaskStatus[]) out[s].sort((a, b) => compareTasks(a.task, b.task));
  return out;
}

/** Whether a task waits on another task that is not done yet. */
export function isBlocked(task: Task, tasks: Record<string, Task>): boolean {
  return task.status === "blocked" || task.blocked_by.some((id) => tasks[id]?.status !== "done");
}
