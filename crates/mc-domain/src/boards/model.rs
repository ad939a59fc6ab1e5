//! Boards, tasks and what hangs off them.

use crate::identity::context::Actor;
use crate::ids::{
    AgentId, ApprovalId, BoardGroupId, BoardId, CommentId, OrgId, TagId, TaskId, UserId,
};
use crate::values::{Color, CommentBody, DisplayName, LongText, Slug, Title};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

text_enum! {
    /// Where a task is in its life (the Kanban columns).
    TaskStatus {
        /// Not started.
        Todo => "todo",
        /// Being worked on.
        InProgress => "in_progress",
        /// Waiting for review.
        Review => "review",
        /// Finished.
        Done => "done",
        /// Cannot proceed.
        Blocked => "blocked",
    }
}

text_enum! {
    /// How urgent a task is.
    TaskPriority {
        /// Drop everything.
        Critical => "critical",
        /// Soon.
        High => "high",
        /// Normal.
        Medium => "medium",
        /// When there is time.
        Low => "low",
    }
}

text_enum! {
    /// State of an approval request.
    ApprovalStatus {
        /// Waiting for a decision.
        Pending => "pending",
        /// Approved.
        Approved => "approved",
        /// Rejected.
        Rejected => "rejected",
    }
}

text_enum! {
    /// Kind of evidence attached to a task.
    EvidenceKind {
        /// A URL (pull request, build, document).
        Link => "link",
        /// A note.
        Text => "text",
        /// A reference to a stored file.
        File => "file",
    }
}

/// A group of boards.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardGroup {
    /// Id.
    pub id: BoardGroupId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A board of tasks.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Board {
    /// Id.
    pub id: BoardId,
    /// Organization.
    pub organization_id: OrgId,
    /// Name.
    pub name: String,
    /// URL-safe name, unique in the organization.
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// What the board is for.
    pub objective: Option<String>,
    /// Group.
    pub board_group_id: Option<BoardGroupId>,
    /// Agents expected to work here (the WIP rule warns above 3× this).
    pub max_agents: i32,
    /// A task may reach `done` only with an approved approval linked to it.
    pub require_approval_for_done: bool,
    /// A task may reach `done` only with evidence.
    pub require_evidence_for_done: bool,
    /// Archived (hidden from lists by default).
    pub archived_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Evidence that a task was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Kind.
    pub kind: EvidenceKind,
    /// URL, text or file reference (at most 2,000 characters).
    pub value: String,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Most evidence items a task may carry.
pub const MAX_EVIDENCE: usize = 50;

impl Evidence {
    /// Checks sizes and, for links, the URL.
    pub fn validate(&self, field: &str) -> Result<(), crate::error::FieldError> {
        use crate::error::FieldError;
        if self.value.trim().is_empty() || self.value.chars().count() > 2000 {
            return Err(FieldError::new(
                format!("{field}.value"),
                "must be 1 to 2000 characters",
            ));
        }
        if self.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            return Err(FieldError::new(
                format!("{field}.note"),
                "must be at most 2000 characters",
            ));
        }
        if self.kind == EvidenceKind::Link
            && !url::Url::parse(&self.value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(FieldError::new(
                format!("{field}.value"),
                "must be an http(s) URL",
            ));
        }
        Ok(())
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// Id.
    pub id: TaskId,
    /// Board.
    pub board_id: BoardId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Status (column).
    pub status: TaskStatus,
    /// Priority.
    pub priority: TaskPriority,
    /// Assigned agent.
    pub assignee_agent_id: Option<AgentId>,
    /// Assigned user.
    pub assignee_user_id: Option<UserId>,
    /// Due.
    pub due_at: Option<DateTime<Utc>>,
    /// Estimate in hours.
    pub estimate_hours: Option<f64>,
    /// Evidence of completion.
    pub evidence: Vec<Evidence>,
    /// Order within the status column (ascending).
    pub position: f64,
    /// Increments on every change; send it as `If-Match` to update safely.
    pub version: i32,
    /// Tasks that must be done before this one can be.
    pub blocked_by: Vec<TaskId>,
    /// Tags.
    pub tag_ids: Vec<TagId>,
    /// When the status last changed.
    pub status_changed_at: DateTime<Utc>,
    /// When it reached `done`.
    pub completed_at: Option<DateTime<Utc>>,
    /// Creator kind (`user`, `agent`, ...).
    pub created_by_type: String,
    /// Creator id.
    pub created_by_id: uuid::Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A tag.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tag {
    /// Id.
    pub id: TagId,
    /// Name, unique in the organization (case-insensitive).
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A comment on a task.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    /// Id.
    pub id: CommentId,
    /// Task.
    pub task_id: TaskId,
    /// Author.
    pub author: Actor,
    /// Text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An approval request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// Id.
    pub id: ApprovalId,
    /// Board.
    pub board_id: BoardId,
    /// What is to be approved.
    pub title: String,
    /// Details.
    pub description: Option<String>,
    /// State.
    pub status: ApprovalStatus,
    /// Who asked.
    pub requested_by: Actor,
    /// Who decided.
    pub resolved_by: Option<Actor>,
    /// Why.
    pub resolution_reason: Option<String>,
    /// When decided.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Tasks this approval covers.
    pub task_ids: Vec<TaskId>,
    /// When asked.
    pub created_at: DateTime<Utc>,
}

// ------------------------------------------------------------------------------ inputs

/// `POST /board-groups`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBoardGroup {
    /// Name.
    pub name: DisplayName,
    /// Description.
    pub description: Option<LongText>,
}

/// `PATCH /board-groups/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBoardGroup {
    /// Name.
    pub name: Option<DisplayName>,
    /// Description (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<LongText>>,
}

/// `POST /boards`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBoard {
    /// Name.
    pub name: DisplayName,
    /// URL-safe name; derived from the name when omitted.
    pub slug: Option<Slug>,
    /// Description.
    pub description: Option<LongText>,
    /// What the board is for.
    pub objective: Option<LongText>,
    /// Group.
    pub board_group_id: Option<BoardGroupId>,
    /// Agents expected to work here (default 5).
    pub max_agents: Option<i32>,
    /// Require an approval before `done` (default from the organization's settings).
    pub require_approval_for_done: Option<bool>,
    /// Require evidence before `done` (default false).
    pub require_evidence_for_done: Option<bool>,
}

/// `PATCH /boards/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBoard {
    /// Name.
    pub name: Option<DisplayName>,
    /// Description (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<LongText>>,
    /// Objective (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub objective: Option<Option<LongText>>,
    /// Group (`null` removes it from its group).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<BoardGroupId>)]
    pub board_group_id: Option<Option<BoardGroupId>>,
    /// Agents expected.
    pub max_agents: Option<i32>,
    /// Approval rule.
    pub require_approval_for_done: Option<bool>,
    /// Evidence rule.
    pub require_evidence_for_done: Option<bool>,
    /// Archive (`true`) or restore (`false`).
    pub archived: Option<bool>,
}

/// `POST /boards/{id}/tasks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Option<LongText>,
    /// Initial status (default `todo`; `done` is subject to the board's rules).
    pub status: Option<TaskStatus>,
    /// Priority (default `medium`).
    pub priority: Option<TaskPriority>,
    /// Assign to an agent.
    pub assignee_agent_id: Option<AgentId>,
    /// Assign to a user (a member of the organization).
    pub assignee_user_id: Option<UserId>,
    /// Due.
    pub due_at: Option<DateTime<Utc>>,
    /// Estimate in hours.
    pub estimate_hours: Option<f64>,
    /// Evidence.
    pub evidence: Option<Vec<Evidence>>,
    /// Tags.
    pub tag_ids: Option<Vec<TagId>>,
    /// Order within its column (default: at the end).
    pub position: Option<f64>,
}

/// `PATCH /tasks/{id}`. Status changes go through `/transition`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// Title.
    pub title: Option<Title>,
    /// Description (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<LongText>>,
    /// Priority.
    pub priority: Option<TaskPriority>,
    /// Assigned agent (`null` unassigns).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<AgentId>)]
    pub assignee_agent_id: Option<Option<AgentId>>,
    /// Assigned user (`null` unassigns).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<UserId>)]
    pub assignee_user_id: Option<Option<UserId>>,
    /// Due (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// Estimate (`null` clears it).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<f64>)]
    pub estimate_hours: Option<Option<f64>>,
    /// Replaces the evidence list.
    pub evidence: Option<Vec<Evidence>>,
    /// Replaces the tags.
    pub tag_ids: Option<Vec<TagId>>,
    /// Order within its column.
    pub position: Option<f64>,
}

/// `POST /tasks/{id}/transition`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionTask {
    /// New status.
    pub status: TaskStatus,
    /// Order within the new column (default: at the end).
    pub position: Option<f64>,
    /// Evidence to add (for example when completing).
    pub evidence: Option<Vec<Evidence>>,
    /// A comment recorded with the transition.
    pub comment: Option<CommentBody>,
}

/// `POST /tasks/{id}/dependencies`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDependency {
    /// The task that must be done first.
    pub depends_on_task_id: TaskId,
}

/// `POST /tasks/{id}/comments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    /// Text.
    pub body: CommentBody,
}

/// `POST /approvals`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    /// Board.
    pub board_id: BoardId,
    /// What is to be approved.
    pub title: Title,
    /// Details.
    pub description: Option<LongText>,
    /// Tasks it covers (on the same board).
    pub task_ids: Option<Vec<TaskId>>,
}

/// `POST /approvals/{id}/approve` and `/reject`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveApproval {
    /// Why (required to reject).
    pub reason: Option<LongText>,
}

/// `POST /tags`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    /// Name.
    pub name: DisplayName,
    /// `#rrggbb` (default slate).
    pub color: Option<Color>,
}

/// `PATCH /tags/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTag {
    /// Name.
    pub name: Option<DisplayName>,
    /// Color.
    pub color: Option<Color>,
}

/// Filters of the task list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// Only this status (comma-separated for several).
    pub status: Option<String>,
    /// Only this priority.
    pub priority: Option<TaskPriority>,
    /// Only tasks assigned to this agent.
    pub assignee_agent_id: Option<AgentId>,
    /// Only tasks assigned to this user.
    pub assignee_user_id: Option<UserId>,
    /// Only tasks with this tag.
    pub tag_id: Option<TagId>,
    /// Title contains (case-insensitive).
    pub q: Option<String>,
    /// Only tasks due before this time.
    pub due_before: Option<DateTime<Utc>>,
}

/// Filters of the approval list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// Only this state.
    pub status: Option<ApprovalStatus>,
    /// Only this board.
    pub board_id: Option<BoardId>,
}

/// Filters of the board list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardFilter {
    /// Only boards of this group.
    pub board_group_id: Option<BoardGroupId>,
    /// Include archived boards.
    pub include_archived: Option<bool>,
}

/// A board with all its tasks (the board sync socket's first message).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardState {
    /// The board.
    pub board: Board,
    /// Every task on it, by status then position.
    pub tasks: Vec<Task>,
    /// The organization's event sequence this state includes.
    pub seq: i64,
}
