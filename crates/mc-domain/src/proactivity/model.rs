//! Proactive rules, suggestions and what the API takes to make and act on them.

use crate::boards::TaskPriority;
use crate::ids::{AgentId, BoardId, OrgId, RuleId, SuggestionId, TaskId, UserId};
use crate::values::{LongText, Title};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

text_enum! {
    /// What a suggestion (or a rule firing) is about.
    SubjectKind {
        /// A task.
        Task => "task",
        /// An agent.
        Agent => "agent",
        /// A board.
        Board => "board",
        /// The organization as a whole.
        Org => "org",
    }
}

text_enum! {
    /// Kind of suggestion (seed 000 M8).
    SuggestionType {
        /// A task is overdue.
        DeadlineAlert => "deadline_alert",
        /// Something looks wrong with the quality of work (a stalled review).
        QualityConcern => "quality_concern",
        /// Too much work in progress.
        WorkloadRebalance => "workload_rebalance",
        /// Work should move to someone else (or to an idle agent).
        TaskReassign => "task_reassign",
        /// A task should be created.
        TaskCreate => "task_create",
        /// A task is blocked.
        BlockedTask => "blocked_task",
        /// An agent has nothing to do.
        IdleAgent => "idle_agent",
    }
}

text_enum! {
    /// Where a suggestion is in its life.
    SuggestionStatus {
        /// Waiting for someone to act.
        Pending => "pending",
        /// Accepted; it carried nothing to run.
        Accepted => "accepted",
        /// Dismissed.
        Dismissed => "dismissed",
        /// Nobody acted in time.
        Expired => "expired",
        /// Accepted and its action ran.
        Executed => "executed",
    }
}

text_enum! {
    /// What a rule does when it fires.
    ActionType {
        /// Creates a suggestion for people to accept or dismiss.
        CreateSuggestion => "create_suggestion",
        /// Records a notification for delivery.
        SendNotification => "send_notification",
        /// Assigns the subject task to an agent right away.
        AutoAssign => "auto_assign",
    }
}

/// A proactive rule (seed 000 M8 `proactive_rules`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Rule {
    /// Id.
    pub id: RuleId,
    /// Organization.
    pub organization_id: OrgId,
    /// Only events of this board (all boards when absent).
    pub board_id: Option<BoardId>,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Event type that fires it (`task.status_changed`, `cron.hourly`, ...).
    pub trigger_event: String,
    /// Condition tree (see `docs/proactivity.md`).
    #[schema(value_type = Object)]
    pub conditions: serde_json::Value,
    /// What it does.
    pub action_type: ActionType,
    /// How it does it.
    #[schema(value_type = Object)]
    pub action_config: serde_json::Value,
    /// Whether it runs.
    pub is_enabled: bool,
    /// One of the six rules every organization has (cannot be deleted).
    pub is_builtin: bool,
    /// Least time between two firings for the same subject.
    pub cooldown_seconds: i32,
    /// When it last fired.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /proactive-rules`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// Name.
    pub name: Title,
    /// What it is for.
    pub description: Option<LongText>,
    /// Event type that fires it.
    pub trigger_event: String,
    /// Condition tree (default: always).
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<serde_json::Value>,
    /// What it does.
    pub action_type: ActionType,
    /// How it does it.
    #[schema(value_type = Option<Object>)]
    pub action_config: Option<serde_json::Value>,
    /// Only this board's events.
    pub board_id: Option<BoardId>,
    /// Least seconds between firings per subject (default `PROACTIVITY_RULE_COOLDOWN_SECONDS`).
    pub cooldown_seconds: Option<i32>,
    /// Whether it runs (default true).
    pub is_enabled: Option<bool>,
}

/// `PATCH /proactive-rules/{id}`: builtin rules take only `cooldown_seconds` and
/// `is_enabled`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    /// Name.
    pub name: Option<Title>,
    /// Description (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<LongText>>,
    /// Event type that fires it.
    pub trigger_event: Option<String>,
    /// Condition tree.
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<serde_json::Value>,
    /// What it does.
    pub action_type: Option<ActionType>,
    /// How it does it.
    #[schema(value_type = Option<Object>)]
    pub action_config: Option<serde_json::Value>,
    /// Board (`null`: all boards).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<BoardId>)]
    pub board_id: Option<Option<BoardId>>,
    /// Least seconds between firings per subject.
    pub cooldown_seconds: Option<i32>,
    /// Whether it runs.
    pub is_enabled: Option<bool>,
}

/// `GET /proactive-rules` filters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilter {
    /// Only enabled (true) or disabled (false) rules.
    pub is_enabled: Option<bool>,
    /// Only rules fired by this event type.
    pub trigger_event: Option<String>,
    /// Only builtin (true) or custom (false) rules.
    pub is_builtin: Option<bool>,
}

/// `POST /proactive-rules/{id}/toggle`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ToggleResult {
    /// Whether the rule now runs.
    pub is_enabled: bool,
}

/// A suggestion (seed 000 M8 `agent_suggestions`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Suggestion {
    /// Id.
    pub id: SuggestionId,
    /// Organization.
    pub organization_id: OrgId,
    /// Board concerned.
    pub board_id: Option<BoardId>,
    /// Agent concerned.
    pub agent_id: Option<AgentId>,
    /// Task concerned.
    pub task_id: Option<TaskId>,
    /// Rule that made it (absent when an agent did).
    pub rule_id: Option<RuleId>,
    /// Kind.
    pub suggestion_type: SuggestionType,
    /// Headline.
    pub title: String,
    /// Details.
    pub description: Option<String>,
    /// How sure its maker is, 0 to 1.
    pub confidence: f64,
    /// How urgent.
    pub priority: TaskPriority,
    /// Where it is in its life.
    pub status: SuggestionStatus,
    /// What accepting does (`{"action": ...}`) and the context it was made in.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// What it is about (`task:<id>`, `agent:<id>`, `board:<id>`, `org`).
    pub subject: Option<String>,
    /// Event that led to it.
    pub source_event_id: Option<uuid::Uuid>,
    /// Who made it (`system` for rules, `agent`, ...).
    pub created_by_type: String,
    /// Id of its maker.
    pub created_by_id: uuid::Uuid,
    /// Who accepted or dismissed it.
    pub resolved_by_user_id: Option<UserId>,
    /// When.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Why it was dismissed.
    pub resolution_reason: Option<String>,
    /// What accepting did.
    #[schema(value_type = Option<Object>)]
    pub action_result: Option<serde_json::Value>,
    /// When it expires unless acted on.
    pub expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `GET /suggestions` filters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestionFilter {
    /// Only this status.
    pub status: Option<SuggestionStatus>,
    /// Only this board.
    pub board_id: Option<BoardId>,
    /// Only this priority.
    pub priority: Option<TaskPriority>,
    /// Only this kind.
    pub suggestion_type: Option<SuggestionType>,
    /// Only suggestions about this agent.
    pub agent_id: Option<AgentId>,
}

/// `POST /suggestions/{id}/dismiss`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissSuggestion {
    /// Why (up to 2,000 characters).
    pub reason: Option<String>,
}

/// Answer of accept and dismiss.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SuggestionOutcome {
    /// Always true (failures are errors).
    pub ok: bool,
    /// What accepting did, when it ran an action.
    #[schema(value_type = Option<Object>)]
    pub action_result: Option<serde_json::Value>,
    /// The suggestion as it is now.
    pub suggestion: Suggestion,
}

/// `POST /agent/suggestions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSuggestionInput {
    /// Kind.
    pub suggestion_type: SuggestionType,
    /// Headline.
    pub title: Title,
    /// Details.
    pub description: Option<LongText>,
    /// 0 to 1 (default 0.5).
    pub confidence: Option<f64>,
    /// Default `medium`.
    pub priority: Option<TaskPriority>,
    /// What accepting does: `{"action": "none" | "set_priority" | "assign_tasks" | "create_task", ...}`.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// Board concerned.
    pub board_id: Option<BoardId>,
    /// Task concerned (its board is used when `board_id` is absent).
    pub task_id: Option<TaskId>,
    /// Agent concerned (default: the calling agent).
    pub agent_id: Option<AgentId>,
}

/// `POST /agent/events`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentEventInput {
    /// One of the types agents report (`agent.heartbeat`, `agent.task_started`, ...).
    pub event_type: String,
    /// Board concerned.
    pub board_id: Option<BoardId>,
    /// Task concerned.
    pub task_id: Option<TaskId>,
    /// Details (an object, at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

/// Event types an agent may report through `POST /agent/events`.
pub const AGENT_EVENT_TYPES: &[&str] = &[
    "agent.heartbeat",
    "agent.task_started",
    "agent.task_completed",
    "agent.blocked",
    "agent.status_changed",
    "coordination.action_taken",
];

/// Cron triggers and their periods.
pub const CRON_TRIGGERS: &[&str] = &["cron.minutely", "cron.hourly", "cron.daily"];

/// Event types a rule may be fired by: what Mission Control records (`suggestion.*` is
/// left out so rules cannot feed on their own output), what agents report, and cron ticks.
pub const TRIGGER_EVENTS: &[&str] = &[
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
];
