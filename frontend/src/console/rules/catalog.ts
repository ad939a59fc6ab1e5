// What the rule engine knows, copied from crates/mc-domain/src/proactivity (model.rs
// TRIGGER_EVENTS, conditions.rs FIELDS / EVENT_FIELDS, actions.rs). The server stays the
// judge; these lists drive the form's selects and the client-side checks.

/** Event types a rule may be fired by (model.rs TRIGGER_EVENTS). */
export const TRIGGER_EVENTS = [
  "task.created",
  "task.updated",
  "task.status_changed",
  "task.completed",
  "task.assigned",
  "task.commented",
  "task.deleted",
  "task.dependency_added",
  "task.dependency_removed",
  "approval.requested",
  "approval.resolved",
  "board.created",
  "board.updated",
  "agent.created",
  "agent.updated",
  "agent.heartbeat",
  "agent.task_started",
  "agent.task_completed",
  "agent.blocked",
  "agent.status_changed",
  "coordination.action_taken",
  "gateway.online",
  "gateway.offline",
  "chat.message_sent",
  "chat.reply_completed",
  "cron.minutely",
  "cron.hourly",
  "cron.daily",
] as const;

export const CRON_TRIGGERS = ["cron.minutely", "cron.hourly", "cron.daily"] as const;

export function isCron(trigger: string): boolean {
  return (CRON_TRIGGERS as readonly string[]).includes(trigger);
}

/** Facts the engine computes, by scope (conditions.rs FIELDS). */
export const FACT_FIELDS = {
  task: [
    "id",
    "board_id",
    "title",
    "description",
    "status",
    "priority",
    "assignee_agent_id",
    "assignee_user_id",
    "due_at",
    "overdue",
    "due_in_seconds",
    "age_seconds",
    "age_in_status_seconds",
    "open_blocker_count",
    "unblocked_downstream_count",
    "unblocked_task_ids",
  ],
  board: ["id", "name", "max_agents", "in_progress_count", "open_task_count", "blocked_count"],
  agent: ["id", "name", "board_id", "in_progress_count", "idle_seconds", "next_task_id", "next_task_title"],
} as const;

export type FactScope = keyof typeof FACT_FIELDS;

/** Fields of the event itself besides `event.payload.*` (conditions.rs EVENT_FIELDS). */
export const EVENT_FIELDS = [
  "type",
  "seq",
  "board_id",
  "task_id",
  "agent_id",
  "actor.kind",
  "actor.id",
  "actor.name",
] as const;

/** Payload keys the backend writes for some events (boards/service.rs, agents/service.rs). */
const PAYLOAD_HINTS: Record<string, string[]> = {
  "task.status_changed": ["task_id", "from", "to", "task.status", "task.priority", "task.title"],
  "task.created": ["task.status", "task.priority", "task.title"],
  "task.updated": ["task_id", "changes.status", "changes.priority", "task.priority"],
  "task.completed": ["task.title", "task.priority"],
  "task.assigned": ["task_id", "assignee_agent_id", "assignee_user_id", "previous_agent_id"],
  "task.dependency_added": ["task_id", "depends_on_task_id"],
  "task.dependency_removed": ["task_id", "depends_on_task_id"],
  "approval.resolved": ["decision", "approval.status"],
  "approval.requested": ["approval.status"],
  "agent.updated": ["agent_id", "status", "gateway_id"],
  "agent.status_changed": ["status"],
  "gateway.online": ["gateway_id"],
  "gateway.offline": ["gateway_id"],
};

/** Scopes whose facts a trigger's rule can read (event rules: the event's task, agent, board). */
function scopesFor(trigger: string, forEach: string | null): FactScope[] {
  if (isCron(trigger)) {
    if (forEach === "task") return ["task", "board", "agent"];
    if (forEach === "agent") return ["agent", "board"];
    if (forEach === "board") return ["board"];
    return [];
  }
  if (trigger.startsWith("task.") || trigger.startsWith("approval.")) return ["task", "board", "agent"];
  if (trigger.startsWith("agent.") || trigger.startsWith("coordination.")) return ["agent", "board", "task"];
  if (trigger.startsWith("board.")) return ["board"];
  return ["board", "agent", "task"];
}

/** Field names to offer for a trigger (free text stays allowed for other payload paths). */
export function fieldsFor(trigger: string, forEach: string | null): string[] {
  const out: string[] = [];
  if (!isCron(trigger)) {
    for (const p of PAYLOAD_HINTS[trigger] ?? []) out.push(`event.payload.${p}`);
    for (const f of EVENT_FIELDS) out.push(`event.${f}`);
  }
  for (const scope of scopesFor(trigger, forEach)) {
    for (const f of FACT_FIELDS[scope]) out.push(`${scope}.${f}`);
  }
  return out;
}

export const SUGGESTION_TYPES = [
  "deadline_alert",
  "quality_concern",
  "workload_rebalance",
  "task_reassign",
  "task_create",
  "blocked_task",
  "idle_agent",
] as const;
export type SuggestionType = (typeof SUGGESTION_TYPES)[number];

export const PRIORITIES = ["critical", "high", "medium", "low"] as const;
export type Priority = (typeof PRIORITIES)[number];

export const SUGGESTION_STATUSES = ["pending", "accepted", "executed", "dismissed", "expired"] as const;
export type SuggestionStatus = (typeof SUGGESTION_STATUSES)[number];

export const ACTION_TYPES = ["create_suggestion", "send_notification", "auto_assign"] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export const SUBJECTS = ["task", "agent", "board", "org"] as const;
export const FOR_EACH = ["task", "agent", "board"] as const;
export type ForEach = (typeof FOR_EACH)[number];

export const ACCEPT_ACTIONS = ["none", "set_priority", "assign_tasks", "create_task"] as const;
export type AcceptAction = (typeof ACCEPT_ACTIONS)[number];

export const CHANNELS = ["in_app", "email", "webhook"] as const;
