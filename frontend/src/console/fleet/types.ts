// The fleet pages' view of the API's shapes. Enums are spelled as they are on the wire
// (lowercase); object shapes come from the generated schema where it names them.
import type { Schema } from "../../shared/api/client";

export type GatewayStatus = "pending" | "online" | "offline" | "error";
export type AgentStatus = "online" | "offline" | "busy" | "error";
export type H5UserStatus = "active" | "suspended" | "deleted";
export type JobState = "pending" | "running" | "completed" | "dead" | "cancelled";
export type JobPriority = "critical" | "high" | "medium" | "low";

export const GATEWAY_STATUSES: GatewayStatus[] = ["online", "pending", "offline", "error"];
export const AGENT_STATUSES: AgentStatus[] = ["online", "busy", "offline", "error"];
export const H5_USER_STATUSES: H5UserStatus[] = ["active", "suspended"];
export const JOB_STATES: JobState[] = ["pending", "running", "completed", "dead", "cancelled"];
export const JOB_PRIORITIES: JobPriority[] = ["critical", "high", "medium", "low"];

/** One page of a cursor-paginated list. */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
  total?: number | null;
}

export type Gateway = Omit<Schema<"Gateway">, "status"> & { status: GatewayStatus };
export type GatewayMetrics = Schema<"GatewayMetrics">;
export type MetricsSample = Schema<"MetricsSample">;
export type GatewayLive = Schema<"GatewayLive">;
export type GatewayConnection = Schema<"GatewayConnection">;
export type GatewayChatSession = Schema<"GatewayChatSession">;
export type RegistrationToken = Schema<"RegistrationToken">;
export type CreatedRegistrationToken = Schema<"CreatedRegistrationToken">;
export type RotatedRelayToken = Schema<"RotatedRelayToken">;
export type LinkSummary = Schema<"LinkSummary">;

export type Agent = Omit<Schema<"Agent">, "status"> & { status: AgentStatus };
export type Board = Pick<Schema<"Board">, "id" | "name">;

export type H5User = Omit<Schema<"H5User">, "status"> & { status: H5UserStatus };
export type Assignment = Schema<"Assignment">;
export type ChatSession = Schema<"ChatSession">;
export interface H5UserLive {
  user: H5User;
  assignments: Assignment[];
  live: Schema<"LiveConnections">;
  sessions: ChatSession[];
}

/** One failed attempt in a job's history. */
export interface JobAttemptError {
  attempt: number;
  error: string;
  at: string;
  worker?: string | null;
}

/** A job as `GET /api/v1/jobs` and `/jobs/{id}` return it. */
export interface Job {
  id: string;
  kind: string;
  queue: string;
  state: JobState;
  priority: JobPriority;
  attempts: number;
  max_attempts: number;
  payload: unknown;
  result?: unknown;
  errors: unknown;
  enqueued_at: string;
  run_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  lease_holder?: string | null;
  lease_expires_at?: string | null;
  idempotency_key?: string | null;
  concurrency_key?: string | null;
  concurrency_limit?: number | null;
  timeout_ms: number;
  organization_id?: string | null;
}

export interface DepthRow {
  count: number;
  priority: JobPriority;
  state: JobState;
}

export type Schedule = Omit<Schema<"Schedule">, "priority"> & { priority: JobPriority };

/** The latest heartbeat metrics a gateway reported, kept in `connection_info.metrics`. */
export function gatewayMetrics(g: Pick<Gateway, "connection_info">): Partial<GatewayMetrics> | null {
  const info = g.connection_info;
  if (!info || typeof info !== "object") return null;
  const m = (info as { metrics?: unknown }).metrics;
  if (!m || typeof m !== "object") return null;
  const out: Partial<GatewayMetrics> = {};
  for (const k of ["active_sessions", "agent_count", "cpu_pct", "memory_mb"] as const) {
    const v = (m as Record<string, unknown>)[k];
    if (typeof v === "number") out[k] = v;
  }
  return out;
}

/** A job's attempt history; tolerant of anything that is not the documented shape. */
export function jobErrors(job: Pick<Job, "errors">): JobAttemptError[] {
  if (!Array.isArray(job.errors)) return [];
  return job.errors.filter(
    (e): e is JobAttemptError => !!e && typeof e === "object" && "attempt" in e && "error" in e,
  );
}
