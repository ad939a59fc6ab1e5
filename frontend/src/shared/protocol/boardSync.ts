// The board sync WebSocket's wire format (docs/realtime.md "Board sync";
// crates/mc-relay/src/board_protocol.rs). Framework-free: the console and any other client
// share these types.
import type { Schema } from "../api/client";

export type Task = Schema<"Task">;
export type Board = Schema<"Board">;
export type TaskStatus = Schema<"TaskStatus">;
export type TaskPriority = Schema<"TaskPriority">;
export type Actor = Schema<"Actor">;

/** The Kanban columns, left to right. */
export const TASK_STATUSES = ["todo", "in_progress", "review", "done", "blocked"] as const satisfies readonly TaskStatus[];
export const TASK_PRIORITIES = ["critical", "high", "medium", "low"] as const satisfies readonly TaskPriority[];

/** Error codes the relay sends in `error` frames. */
export type SyncErrorCode =
  | "INVALID_MESSAGE"
  | "NOT_FOUND"
  | "CONFLICT"
  | "FORBIDDEN"
  | "INVALID_REQUEST"
  | "RATE_LIMITED"
  | "PAYLOAD_TOO_LARGE"
  | (string & {});

// ------------------------------------------------------------------ client → server

export interface AuthFrame {
  type: "auth";
  token: string;
  org_id?: string;
  last_seq?: number;
}
export interface TaskMoveFrame {
  type: "task.move";
  id: string;
  task_id: string;
  status: TaskStatus;
  position?: number;
}
export interface TaskCreateFrame {
  type: "task.create";
  id: string;
  title: string;
  status?: TaskStatus;
  priority?: TaskPriority;
  assignee_id?: string;
  description?: string;
}
export interface ResumeFrame {
  type: "resume";
  last_seq: number;
}
export interface ClientHeartbeatFrame {
  type: "heartbeat";
}
export type ClientFrame = AuthFrame | TaskMoveFrame | TaskCreateFrame | ResumeFrame | ClientHeartbeatFrame;

// ------------------------------------------------------------------ server → client

export interface AuthOkFrame {
  type: "auth_ok";
  board_id: string;
  actor: Actor;
  /** The room's cursor when this socket joined (not an event of its own). */
  seq: number;
}
export interface AuthErrorFrame {
  type: "auth_error";
  reason: string;
}
export interface BoardStateFrame {
  type: "board.state";
  board: Board;
  tasks: Task[];
  seq: number;
  timestamp: string;
}
export interface TaskCreatedFrame {
  type: "task.created";
  seq: number;
  task: Task;
  created_by: Actor;
  timestamp: string;
}
export interface TaskUpdatedFrame {
  type: "task.updated";
  seq: number;
  task_id: string;
  changes: Record<string, unknown>;
  task: Task;
  updated_by: Actor;
  /** The logged event type behind it (`task.status_changed`, `task.dependency_added`...). */
  cause: string;
  timestamp: string;
}
export interface TaskDeletedFrame {
  type: "task.deleted";
  seq: number;
  task_id: string;
  deleted_by: Actor;
  timestamp: string;
}
export interface SuggestionNewFrame {
  type: "suggestion.new";
  seq: number;
  suggestion: unknown;
  timestamp: string;
}
export interface BoardUpdatedFrame {
  type: "board.updated";
  seq: number;
  board: Board;
  changes: Record<string, unknown>;
  updated_by: Actor;
  timestamp: string;
}
export interface BoardDeletedFrame {
  type: "board.deleted";
  seq: number;
  deleted_by: Actor;
  timestamp: string;
}
export interface AckFrame {
  type: "ack";
  id: string | null;
  task: Task;
}
export interface ErrorFrame {
  type: "error";
  id: string | null;
  code: SyncErrorCode;
  message: string;
  details?: { field?: string; message?: string }[];
}
export interface ServerHeartbeatFrame {
  type: "heartbeat";
  timestamp?: string;
}

/** Frames that are logged events: they carry the organization's event `seq`. */
export type EventFrame =
  | TaskCreatedFrame
  | TaskUpdatedFrame
  | TaskDeletedFrame
  | SuggestionNewFrame
  | BoardUpdatedFrame
  | BoardDeletedFrame;

export type ServerFrame =
  | AuthOkFrame
  | AuthErrorFrame
  | BoardStateFrame
  | EventFrame
  | AckFrame
  | ErrorFrame
  | ServerHeartbeatFrame;

const SERVER_TYPES = new Set<string>([
  "auth_ok",
  "auth_error",
  "board.state",
  "task.created",
  "task.updated",
  "task.deleted",
  "suggestion.new",
  "board.updated",
  "board.deleted",
  "ack",
  "error",
  "heartbeat",
]);

/** Parses a server text frame; null for anything that is not a known frame. */
export function parseServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !SERVER_TYPES.has(type)) return null;
  return value as ServerFrame;
}

/** Whether a frame is a logged event (and so carries a `seq` to dedupe on). */
export function isEventFrame(frame: ServerFrame): frame is EventFrame {
  return (
    frame.type === "task.created" ||
    frame.type === "task.updated" ||
    frame.type === "task.deleted" ||
    frame.type === "suggestion.new" ||
    frame.type === "board.updated" ||
    frame.type === "board.deleted"
  );
}

/** WebSocket close codes the relay uses. */
export const CLOSE = {
  NORMAL: 1000,
  AUTH: 4001,
  FORBIDDEN: 4003,
  POLICY: 4008,
  SLOW: 4009,
  RESTART: 1012,
} as const;
