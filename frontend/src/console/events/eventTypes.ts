// Event types the backend records (crates/*: NewEvent::new(...), agent reports, rules).
// The SSE stream names each message after its type (`event: task.created`) and
// EventSource only delivers names it listens to, so the live tail subscribes to these.
export const KNOWN_EVENT_TYPES = [
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
  "board.deleted",
  "board_group.created",
  "board_group.updated",
  "board_group.deleted",
  "tag.created",
  "tag.updated",
  "tag.deleted",
  "agent.created",
  "agent.updated",
  "agent.deleted",
  "agent.heartbeat",
  "agent.task_started",
  "agent.task_completed",
  "agent.blocked",
  "agent.status_changed",
  "coordination.action_taken",
  "gateway.registered",
  "gateway.deregistered",
  "gateway.connected",
  "gateway.disconnected",
  "gateway.online",
  "gateway.offline",
  "gateway.agents_linked",
  "gateway.relay_token_rotated",
  "gateway.removed",
  "gateway_token.created",
  "gateway_token.revoked",
  "chat.message_sent",
  "chat.reply_completed",
  "rule.created",
  "rule.updated",
  "rule.deleted",
  "suggestion.created",
  "suggestion.updated",
  "notification.created",
  "api_key.created",
  "api_key.rotated",
  "api_key.revoked",
  "member.added",
  "member.removed",
  "member.role_changed",
  "member.invitation_accepted",
  "organization.created",
  "organization.updated",
  "organization.suspended",
  "organization.reactivated",
  "organization.deletion_requested",
  "organization.restored",
  "cron.minutely",
  "cron.hourly",
  "cron.daily",
] as const;

/** Prefix patterns to offer in the type filter. */
export const TYPE_PATTERNS = [
  "task.*",
  "task.dependency_*",
  "approval.*",
  "board.*",
  "agent.*",
  "gateway.*",
  "chat.*",
  "rule.*",
  "suggestion.*",
  "member.*",
];

/**
 * The names to listen to for a filter: the known types the filter matches, plus any exact
 * name it gives that we do not know (so a new type can still be tailed by name).
 */
export function typesForFilter(filter: string): string[] {
  const parts = filter
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  if (!parts.length) return [...KNOWN_EVENT_TYPES];
  const out = new Set<string>();
  for (const p of parts) {
    if (p.endsWith("*")) {
      const prefix = p.slice(0, -1);
      for (const k of KNOWN_EVENT_TYPES) if (k.startsWith(prefix)) out.add(k);
    } else {
      out.add(p);
    }
  }
  return [...out];
}
