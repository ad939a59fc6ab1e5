// The fleet pages' view of the API's shapes: all of them generated from docs/openapi.json
// (enums are lowercase, as on the wire). Only what the contract leaves open (`unknown`
// fields such as a job's `errors` or a gateway's `connection_info`) is read defensively below.
import type { Schema } from "../../shared/api/client";

export type GatewayStatus = Schema<"GatewayStatus">;
export type AgentStatus = Schema<"AgentStatus">;
export type H5UserStatus = Schema<"H5UserStatus">;
export type JobState = Schema<"JobState">;
export type JobPriority = Schema<"JobPriority">;

export const GATEWAY_STATUSES: GatewayStatus[] = ["online", "pending", "offline", "error"];
export const AGENT_STATUSES: AgentStatus[] = ["online", "busy", "offline", "error"];
export const H5_USER_STATUSES: H5UserStatus[] = ["active", "suspended"];
export const JOB_STATES: JobState[] = ["pending", "running", "completed", "dead", "cancelled"];
export const JOB_PRIORITIES: JobPriority[] = ["critical", "high", "medium", "low"];

/** One page of a cursor-paginated list: the generated `Page_*` shape over any item type. */
export type Page<T> = Omit<Schema<"Page_Job">, "items"> & { items: T[] };

export type Gateway = Schema<"Gateway">;
export type GatewayMetrics = Schema<"GatewayMetrics">;
export type MetricsSample = Schema<"MetricsSample">;
export type GatewayLive = Schema<"GatewayLive">;
export type GatewayConnection = Schema<"GatewayConnection">;
export type GatewayChatSession = Schema<"GatewayChatSession">;
export type RegistrationToken = Schema<"RegistrationToken">;
export type CreatedRegistrationToken = Schema<"CreatedRegistrationToken">;
export type RotatedRelayToken = Schema<"RotatedRelayToken">;
export type LinkSummary = Schema<"LinkSummary">;

export type Agent = Schema<"Agent">;
/** What the pickers need of a board. */
export type Board = Pick<Schema<"Board">, "id" | "name">;

export type H5User = Schema<"H5User">;
export type Assignment = Schema<"Assignment">;
export type ChatSession = Schema<"ChatSession">;
export type H5UserLive = Schema<"H5UserLive">;

export type Job = Schema<"Job">;
export type DepthRow = Schema<"DepthRow">;
export type Schedule = Schema<"Schedule">;

/**
 * One failed attempt in a job's history. The contract types `Job.errors` as `unknown`
 * (a JSON array the worker writes), so this is the documented element shape, checked by
 * `jobErrors` before use.
 */
export interface JobAttemptError {
  attempt: number;
  error: string;
  at: string;
  worker?: string | null;
}

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
