//! SQL of boards, tasks, dependencies, tags, comments and approvals. Every function runs
//! on the caller's connection, inside a transaction scoped to one organization.

use super::model::{
    Approval, ApprovalStatus, Board, BoardGroup, Comment, Evidence, Tag, Task, TaskPriority,
    TaskStatus,
};
use crate::error::Result;
use crate::identity::context::{Actor, ActorKind};
use crate::ids::{
    AgentId, ApprovalId, BoardGroupId, BoardId, CommentId, OrgId, TagId, TaskId, UserId,
};
use crate::pagination::TimeKey;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgConnection};
use uuid::Uuid;

fn actor_kind(raw: &str) -> ActorKind {
    match raw {
        "user" => ActorKind::User,
        "agent" => ActorKind::Agent,
        "api_key" => ActorKind::ApiKey,
        "h5_user" => ActorKind::H5User,
        _ => ActorKind::System,
    }
}

// ------------------------------------------------------------------ board groups

const GROUP_COLUMNS: &str = "id, name, description, created_at, updated_at";

#[derive(FromRow)]
struct GroupRow {
    id: BoardGroupId,
    name: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<GroupRow> for BoardGroup {
    fn from(r: GroupRow) -> Self {
        BoardGroup {
            id: r.id,
            name: r.name,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Inserts a board group.
pub async fn insert_group(
    conn: &mut PgConnection,
    org: OrgId,
    name: &str,
    description: Option<&str>,
) -> Result<BoardGroup> {
    let row: GroupRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO board_groups (id, organization_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING {GROUP_COLUMNS}"
    )))
    .bind(BoardGroupId::generate())
    .bind(org)
    .bind(name)
    .bind(description)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// A board group.
pub async fn get_group(conn: &mut PgConnection, id: BoardGroupId) -> Result<Option<BoardGroup>> {
    let row: Option<GroupRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM board_groups WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Board groups, newest first.
pub async fn list_groups(
    conn: &mut PgConnection,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<BoardGroup>> {
    let rows: Vec<GroupRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM board_groups
         WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Updates a group; `description` of `Some(None)` clears it.
pub async fn update_group(
    conn: &mut PgConnection,
    id: BoardGroupId,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> Result<Option<BoardGroup>> {
    let row: Option<GroupRow> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE board_groups SET name = coalesce($2, name),
             description = CASE WHEN $3 THEN $4 ELSE description END
         WHERE id = $1 RETURNING {GROUP_COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(description.is_some())
    .bind(description.flatten())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Deletes a group (its boards stay, ungrouped).
pub async fn delete_group(conn: &mut PgConnection, id: BoardGroupId) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM board_groups WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

// ------------------------------------------------------------------------ boards

const BOARD_COLUMNS: &str = "id, organization_id, name, slug, description, objective, board_group_id, \
     max_agents, require_approval_for_done, require_evidence_for_done, archived_at, created_at, updated_at";

#[derive(FromRow)]
struct BoardRow {
    id: BoardId,
    organization_id: OrgId,
    name: String,
    slug: String,
    description: Option<String>,
    objective: Option<String>,
    board_group_id: Option<BoardGroupId>,
    max_agents: i32,
    require_approval_for_done: bool,
    require_evidence_for_done: bool,
    archived_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<BoardRow> for Board {
    fn from(r: BoardRow) -> Self {
        Board {
            id: r.id,
            organization_id: r.organization_id,
            name: r.name,
            slug: r.slug,
            description: r.description,
            objective: r.objective,
            board_group_id: r.board_group_id,
            max_agents: r.max_agents,
            require_approval_for_done: r.require_approval_for_done,
            require_evidence_for_done: r.require_evidence_for_done,
            archived_at: r.archived_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Fields of a new board.
#[derive(Debug)]
pub struct NewBoard<'a> {
    /// Organization.
    pub org: OrgId,
    /// Name.
    pub name: &'a str,
    /// Slug.
    pub slug: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Objective.
    pub objective: Option<&'a str>,
    /// Group.
    pub group: Option<BoardGroupId>,
    /// Expected agents.
    pub max_agents: i32,
    /// Approval rule.
    pub require_approval_for_done: bool,
    /// Evidence rule.
    pub require_evidence_for_done: bool,
}

/// Inserts a board.
pub async fn insert_board(
    conn: &mut PgConnection,
    b: &NewBoard<'_>,
) -> std::result::Result<Board, sqlx::Error> {
    let row: BoardRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO boards (id, organization_id, name, slug, description, objective, board_group_id,
                             max_agents, require_approval_for_done, require_evidence_for_done)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {BOARD_COLUMNS}"
    )))
    .bind(BoardId::generate())
    .bind(b.org)
    .bind(b.name)
    .bind(b.slug)
    .bind(b.description)
    .bind(b.objective)
    .bind(b.group)
    .bind(b.max_agents)
    .bind(b.require_approval_for_done)
    .bind(b.require_evidence_for_done)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// A board.
pub async fn get_board(conn: &mut PgConnection, id: BoardId) -> Result<Option<Board>> {
    let row: Option<BoardRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {BOARD_COLUMNS} FROM boards WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Boards, newest first.
pub async fn list_boards(
    conn: &mut PgConnection,
    group: Option<BoardGroupId>,
    include_archived: bool,
    only: Option<&[BoardId]>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Board>> {
    let rows: Vec<BoardRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {BOARD_COLUMNS} FROM boards
         WHERE ($1::uuid IS NULL OR board_group_id = $1)
           AND ($2 OR archived_at IS NULL)
           AND ($3::uuid[] IS NULL OR id = ANY($3))
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6"
    )))
    .bind(group)
    .bind(include_archived)
    .bind(only.map(|ids| ids.iter().map(|b| b.0).collect::<Vec<_>>()))
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Applies a board update (each `Some` field is set; `Some(None)` clears).
pub async fn update_board(
    conn: &mut PgConnection,
    id: BoardId,
    u: &super::model::UpdateBoard,
) -> std::result::Result<Option<Board>, sqlx::Error> {
    let row: Option<BoardRow> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE boards SET
             name = coalesce($2, name),
             description = CASE WHEN $3 THEN $4 ELSE description END,
             objective = CASE WHEN $5 THEN $6 ELSE objective END,
             board_group_id = CASE WHEN $7 THEN $8 ELSE board_group_id END,
             max_agents = coalesce($9, max_agents),
             require_approval_for_done = coalesce($10, require_approval_for_done),
             require_evidence_for_done = coalesce($11, require_evidence_for_done),
             archived_at = CASE WHEN $12 IS NULL THEN archived_at
                                WHEN $12 THEN coalesce(archived_at, now()) ELSE NULL END
         WHERE id = $1 RETURNING {BOARD_COLUMNS}"
    )))
    .bind(id)
    .bind(u.name.as_ref().map(|n| n.as_str().to_owned()))
    .bind(u.description.is_some())
    .bind(u.description.clone().flatten().map(String::from))
    .bind(u.objective.is_some())
    .bind(u.objective.clone().flatten().map(String::from))
    .bind(u.board_group_id.is_some())
    .bind(u.board_group_id.flatten())
    .bind(u.max_agents)
    .bind(u.require_approval_for_done)
    .bind(u.require_evidence_for_done)
    .bind(u.archived)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Deletes a board and, by cascade, its tasks.
pub async fn delete_board(conn: &mut PgConnection, id: BoardId) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM boards WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

// ------------------------------------------------------------------------- tasks

const TASK_SELECT: &str = "SELECT t.id, t.board_id, t.title, t.description, t.status, t.priority,
        t.assignee_agent_id, t.assignee_user_id, t.due_at, t.estimate_hours, t.evidence,
        t.position, t.version, t.status_changed_at, t.completed_at, t.created_by_type,
        t.created_by_id, t.created_at, t.updated_at,
        coalesce((SELECT array_agg(d.depends_on_task_id ORDER BY d.depends_on_task_id)
                  FROM task_dependencies d WHERE d.task_id = t.id), '{}') AS blocked_by,
        coalesce((SELECT array_agg(tt.tag_id ORDER BY tt.tag_id)
                  FROM task_tags tt WHERE tt.task_id = t.id), '{}') AS tag_ids
     FROM tasks t";

#[derive(FromRow)]
struct TaskRow {
    id: TaskId,
    board_id: BoardId,
    title: String,
    description: Option<String>,
    status: TaskStatus,
    priority: TaskPriority,
    assignee_agent_id: Option<AgentId>,
    assignee_user_id: Option<UserId>,
    due_at: Option<DateTime<Utc>>,
    estimate_hours: Option<f64>,
    evidence: Json<Vec<Evidence>>,
    position: f64,
    version: i32,
    status_changed_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    created_by_type: String,
    created_by_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    blocked_by: Vec<Uuid>,
    tag_ids: Vec<Uuid>,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Task {
            id: r.id,
            board_id: r.board_id,
            title: r.title,
            description: r.description,
            status: r.status,
            priority: r.priority,
            assignee_agent_id: r.assignee_agent_id,
            assignee_user_id: r.assignee_user_id,
            due_at: r.due_at,
            estimate_hours: r.estimate_hours,
            evidence: r.evidence.0,
            position: r.position,
            version: r.version,
            blocked_by: r.blocked_by.into_iter().map(TaskId).collect(),
            tag_ids: r.tag_ids.into_iter().map(TagId).collect(),
            status_changed_at: r.status_changed_at,
            completed_at: r.completed_at,
            created_by_type: r.created_by_type,
            created_by_id: r.created_by_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A task.
pub async fn get_task(conn: &mut PgConnection, id: TaskId) -> Result<Option<Task>> {
    let row: Option<TaskRow> =
        sqlx::query_as(AssertSqlSafe(format!("{TASK_SELECT} WHERE t.id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(Into::into))
}

/// Locks a task's row for an update and returns it.
pub async fn lock_task(conn: &mut PgConnection, id: TaskId) -> Result<Option<Task>> {
    let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match exists {
        Some(_) => get_task(conn, id).await,
        None => Ok(None),
    }
}

/// Every task of a board, by status then position.
pub async fn board_tasks(conn: &mut PgConnection, board: BoardId) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{TASK_SELECT} WHERE t.board_id = $1 ORDER BY t.status, t.position, t.id"
    )))
    .bind(board)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Tasks of a board matching a filter, newest first.
#[allow(clippy::too_many_arguments)]
pub async fn list_tasks(
    conn: &mut PgConnection,
    board: Option<BoardId>,
    statuses: &[TaskStatus],
    filter: &super::model::TaskFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{TASK_SELECT}
         WHERE ($1::uuid IS NULL OR t.board_id = $1)
           AND (cardinality($2::text[]) = 0 OR t.status = ANY($2))
           AND ($3::text IS NULL OR t.priority = $3)
           AND ($4::uuid IS NULL OR t.assignee_agent_id = $4)
           AND ($5::uuid IS NULL OR t.assignee_user_id = $5)
           AND ($6::uuid IS NULL OR EXISTS (SELECT 1 FROM task_tags x WHERE x.task_id = t.id AND x.tag_id = $6))
           AND ($7::text IS NULL OR t.title ILIKE '%' || $7 || '%')
           AND ($8::timestamptz IS NULL OR t.due_at < $8)
           AND ($9::timestamptz IS NULL OR (t.created_at, t.id) < ($9, $10))
         ORDER BY t.created_at DESC, t.id DESC LIMIT $11"
    )))
    .bind(board)
    .bind(statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    .bind(filter.priority)
    .bind(filter.assignee_agent_id)
    .bind(filter.assignee_user_id)
    .bind(filter.tag_id)
    .bind(
        filter
            .q
            .as_deref()
            .map(|q| q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")),
    )
    .bind(filter.due_before)
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The position after the last task of a column.
pub async fn next_position(
    conn: &mut PgConnection,
    board: BoardId,
    status: TaskStatus,
) -> Result<f64> {
    let max: Option<f64> =
        sqlx::query_scalar("SELECT max(position) FROM tasks WHERE board_id = $1 AND status = $2")
            .bind(board)
            .bind(status)
            .fetch_one(conn)
            .await?;
    Ok(max.map_or(1024.0, |m| m + 1024.0))
}

/// Fields of a new task.
#[derive(Debug)]
pub struct NewTask<'a> {
    /// Organization.
    pub org: OrgId,
    /// Board.
    pub board: BoardId,
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Status.
    pub status: TaskStatus,
    /// Priority.
    pub priority: TaskPriority,
    /// Agent.
    pub agent: Option<AgentId>,
    /// User.
    pub user: Option<UserId>,
    /// Due.
    pub due_at: Option<DateTime<Utc>>,
    /// Estimate.
    pub estimate_hours: Option<f64>,
    /// Evidence.
    pub evidence: &'a [Evidence],
    /// Position.
    pub position: f64,
    /// Creator.
    pub created_by: &'a Actor,
}

/// Inserts a task.
pub async fn insert_task(
    conn: &mut PgConnection,
    t: &NewTask<'_>,
) -> std::result::Result<TaskId, sqlx::Error> {
    let id = TaskId::generate();
    sqlx::query(
        "INSERT INTO tasks (id, organization_id, board_id, title, description, status, priority,
                            assignee_agent_id, assignee_user_id, due_at, estimate_hours, evidence,
                            position, completed_at, created_by_type, created_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                 CASE WHEN $6 = 'done' THEN now() END, $14, $15)",
    )
    .bind(id)
    .bind(t.org)
    .bind(t.board)
    .bind(t.title)
    .bind(t.description)
    .bind(t.status)
    .bind(t.priority)
    .bind(t.agent)
    .bind(t.user)
    .bind(t.due_at)
    .bind(t.estimate_hours)
    .bind(Json(t.evidence))
    .bind(t.position)
    .bind(t.created_by.kind.as_str())
    .bind(t.created_by.id)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Writes every field of `task` back (the service computed the new state) and bumps the
/// version; returns false when the row is gone.
pub async fn save_task(
    conn: &mut PgConnection,
    task: &Task,
) -> std::result::Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE tasks SET title = $2, description = $3, status = $4, priority = $5,
             assignee_agent_id = $6, assignee_user_id = $7, due_at = $8, estimate_hours = $9,
             evidence = $10, position = $11, status_changed_at = $12, completed_at = $13,
             version = version + 1
         WHERE id = $1",
    )
    .bind(task.id)
    .bind(&task.title)
    .bind(&task.description)
    .bind(task.status)
    .bind(task.priority)
    .bind(task.assignee_agent_id)
    .bind(task.assignee_user_id)
    .bind(task.due_at)
    .bind(task.estimate_hours)
    .bind(Json(&task.evidence))
    .bind(task.position)
    .bind(task.status_changed_at)
    .bind(task.completed_at)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Replaces a task's tags.
pub async fn set_task_tags(
    conn: &mut PgConnection,
    org: OrgId,
    task: TaskId,
    tags: &[TagId],
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM task_tags WHERE task_id = $1")
        .bind(task)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO task_tags (organization_id, task_id, tag_id)
         SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(org)
    .bind(task)
    .bind(tags.iter().map(|t| t.0).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a task.
pub async fn delete_task(conn: &mut PgConnection, id: TaskId) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

/// Which of `ids` exist as agents, users-who-are-members, tags, tasks: the ones missing.
pub async fn missing_agents(conn: &mut PgConnection, ids: &[AgentId]) -> Result<Vec<AgentId>> {
    Ok(sqlx::query_scalar(
        "SELECT x FROM unnest($1::uuid[]) x WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = x)",
    )
    .bind(ids.iter().map(|a| a.0).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?)
}

/// Whether a user is a member of the scoped organization.
pub async fn is_member(conn: &mut PgConnection, user: UserId) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)")
            .bind(user)
            .fetch_one(conn)
            .await?,
    )
}

/// Tags among `ids` that do not exist in the scoped organization.
pub async fn missing_tags(conn: &mut PgConnection, ids: &[TagId]) -> Result<Vec<TagId>> {
    Ok(sqlx::query_scalar(
        "SELECT x FROM unnest($1::uuid[]) x WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.id = x)",
    )
    .bind(ids.iter().map(|t| t.0).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?)
}

// ----------------------------------------------------------------- dependencies

/// Whether `to` can be reached from `from` by following "depends on" edges.
pub async fn depends_transitively(
    conn: &mut PgConnection,
    from: TaskId,
    to: TaskId,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE reach(id) AS (
             SELECT depends_on_task_id FROM task_dependencies WHERE task_id = $1
             UNION
             SELECT d.depends_on_task_id FROM task_dependencies d JOIN reach r ON d.task_id = r.id
         )
         SELECT EXISTS (SELECT 1 FROM reach WHERE id = $2)",
    )
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?)
}

/// Adds a dependency; false when it already existed.
pub async fn insert_dependency(
    conn: &mut PgConnection,
    org: OrgId,
    task: TaskId,
    depends_on: TaskId,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO task_dependencies (organization_id, task_id, depends_on_task_id)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org)
    .bind(task)
    .bind(depends_on)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Removes a dependency.
pub async fn delete_dependency(
    conn: &mut PgConnection,
    task: TaskId,
    depends_on: TaskId,
) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM task_dependencies WHERE task_id = $1 AND depends_on_task_id = $2")
            .bind(task)
            .bind(depends_on)
            .execute(conn)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Blockers of `task` that are not done yet.
pub async fn open_blockers(conn: &mut PgConnection, task: TaskId) -> Result<Vec<TaskId>> {
    Ok(sqlx::query_scalar(
        "SELECT d.depends_on_task_id FROM task_dependencies d
         JOIN tasks b ON b.id = d.depends_on_task_id
         WHERE d.task_id = $1 AND b.status <> 'done' ORDER BY 1",
    )
    .bind(task)
    .fetch_all(conn)
    .await?)
}

/// Tasks that depend on `task` and have no other open blocker (unblocked by its completion).
pub async fn newly_unblocked(conn: &mut PgConnection, task: TaskId) -> Result<Vec<TaskId>> {
    Ok(sqlx::query_scalar(
        "SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
         WHERE d.depends_on_task_id = $1 AND t.status <> 'done'
           AND NOT EXISTS (
               SELECT 1 FROM task_dependencies o JOIN tasks b ON b.id = o.depends_on_task_id
               WHERE o.task_id = d.task_id AND b.status <> 'done')
         ORDER BY 1",
    )
    .bind(task)
    .fetch_all(conn)
    .await?)
}

// ------------------------------------------------------------------------- tags

#[derive(FromRow)]
struct TagRow {
    id: TagId,
    name: String,
    color: String,
    created_at: DateTime<Utc>,
}

impl From<TagRow> for Tag {
    fn from(r: TagRow) -> Self {
        Tag {
            id: r.id,
            name: r.name,
            color: r.color,
            created_at: r.created_at,
        }
    }
}

/// Inserts a tag.
pub async fn insert_tag(
    conn: &mut PgConnection,
    org: OrgId,
    name: &str,
    color: &str,
) -> std::result::Result<Tag, sqlx::Error> {
    let row: TagRow = sqlx::query_as(
        "INSERT INTO tags (id, organization_id, name, color) VALUES ($1, $2, $3, $4)
         RETURNING id, name, color, created_at",
    )
    .bind(TagId::generate())
    .bind(org)
    .bind(name)
    .bind(color)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Tags by name.
pub async fn list_tags(conn: &mut PgConnection) -> Result<Vec<Tag>> {
    let rows: Vec<TagRow> =
        sqlx::query_as("SELECT id, name, color, created_at FROM tags ORDER BY lower(name), id")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Updates a tag.
pub async fn update_tag(
    conn: &mut PgConnection,
    id: TagId,
    name: Option<&str>,
    color: Option<&str>,
) -> std::result::Result<Option<Tag>, sqlx::Error> {
    let row: Option<TagRow> = sqlx::query_as(
        "UPDATE tags SET name = coalesce($2, name), color = coalesce($3, color) WHERE id = $1
         RETURNING id, name, color, created_at",
    )
    .bind(id)
    .bind(name)
    .bind(color)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Deletes a tag.
pub async fn delete_tag(conn: &mut PgConnection, id: TagId) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM tags WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

// --------------------------------------------------------------------- comments

/// Inserts a comment.
pub async fn insert_comment(
    conn: &mut PgConnection,
    org: OrgId,
    task: TaskId,
    author: &Actor,
    body: &str,
) -> Result<Comment> {
    let (id, created_at): (CommentId, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO task_comments (id, organization_id, task_id, author_type, author_id, author_name, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
    )
    .bind(CommentId::generate())
    .bind(org)
    .bind(task)
    .bind(author.kind.as_str())
    .bind(author.id)
    .bind(&author.name)
    .bind(body)
    .fetch_one(conn)
    .await?;
    Ok(Comment {
        id,
        task_id: task,
        author: author.clone(),
        body: body.to_owned(),
        created_at,
    })
}

/// Comments of a task, oldest first.
pub async fn list_comments(
    conn: &mut PgConnection,
    task: TaskId,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Comment>> {
    #[derive(FromRow)]
    struct Row {
        id: CommentId,
        task_id: TaskId,
        author_type: String,
        author_id: Uuid,
        author_name: String,
        body: String,
        created_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, task_id, author_type, author_id, author_name, body, created_at
         FROM task_comments WHERE task_id = $1
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
         ORDER BY created_at, id LIMIT $4",
    )
    .bind(task)
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Comment {
            id: r.id,
            task_id: r.task_id,
            author: Actor {
                kind: actor_kind(&r.author_type),
                id: r.author_id,
                name: r.author_name,
            },
            body: r.body,
            created_at: r.created_at,
        })
        .collect())
}

// -------------------------------------------------------------------- approvals

const APPROVAL_SELECT: &str = "SELECT a.id, a.board_id, a.title, a.description, a.status,
        a.requested_by_type, a.requested_by_id, a.requested_by_name, a.resolved_by_type,
        a.resolved_by_id, a.resolved_by_name, a.resolution_reason, a.resolved_at, a.created_at,
        coalesce((SELECT array_agg(x.task_id ORDER BY x.task_id) FROM approval_tasks x
                  WHERE x.approval_id = a.id), '{}') AS task_ids
     FROM approvals a";

#[derive(FromRow)]
struct ApprovalRow {
    id: ApprovalId,
    board_id: BoardId,
    title: String,
    description: Option<String>,
    status: ApprovalStatus,
    requested_by_type: String,
    requested_by_id: Uuid,
    requested_by_name: String,
    resolved_by_type: Option<String>,
    resolved_by_id: Option<Uuid>,
    resolved_by_name: Option<String>,
    resolution_reason: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    task_ids: Vec<Uuid>,
}

impl From<ApprovalRow> for Approval {
    fn from(r: ApprovalRow) -> Self {
        let resolved_by = match (r.resolved_by_type, r.resolved_by_id, r.resolved_by_name) {
            (Some(kind), Some(id), Some(name)) => Some(Actor {
                kind: actor_kind(&kind),
                id,
                name,
            }),
            _ => None,
        };
        Approval {
            id: r.id,
            board_id: r.board_id,
            title: r.title,
            description: r.description,
            status: r.status,
            requested_by: Actor {
                kind: actor_kind(&r.requested_by_type),
                id: r.requested_by_id,
                name: r.requested_by_name,
            },
            resolved_by,
            resolution_reason: r.resolution_reason,
            resolved_at: r.resolved_at,
            task_ids: r.task_ids.into_iter().map(TaskId).collect(),
            created_at: r.created_at,
        }
    }
}

/// Inserts an approval and links its tasks.
pub async fn insert_approval(
    conn: &mut PgConnection,
    org: OrgId,
    board: BoardId,
    title: &str,
    description: Option<&str>,
    requested_by: &Actor,
    tasks: &[TaskId],
) -> Result<ApprovalId> {
    let id = ApprovalId::generate();
    sqlx::query(
        "INSERT INTO approvals (id, organization_id, board_id, title, description,
                                requested_by_type, requested_by_id, requested_by_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(org)
    .bind(board)
    .bind(title)
    .bind(description)
    .bind(requested_by.kind.as_str())
    .bind(requested_by.id)
    .bind(&requested_by.name)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO approval_tasks (organization_id, approval_id, task_id)
         SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(org)
    .bind(id)
    .bind(tasks.iter().map(|t| t.0).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(id)
}

/// An approval.
pub async fn get_approval(conn: &mut PgConnection, id: ApprovalId) -> Result<Option<Approval>> {
    let row: Option<ApprovalRow> =
        sqlx::query_as(AssertSqlSafe(format!("{APPROVAL_SELECT} WHERE a.id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(Into::into))
}

/// Approvals, newest first.
pub async fn list_approvals(
    conn: &mut PgConnection,
    status: Option<ApprovalStatus>,
    board: Option<BoardId>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Approval>> {
    let rows: Vec<ApprovalRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{APPROVAL_SELECT}
         WHERE ($1::text IS NULL OR a.status = $1) AND ($2::uuid IS NULL OR a.board_id = $2)
           AND ($3::timestamptz IS NULL OR (a.created_at, a.id) < ($3, $4))
         ORDER BY a.created_at DESC, a.id DESC LIMIT $5"
    )))
    .bind(status)
    .bind(board)
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Resolves a pending approval; `None` when it was not pending (or does not exist).
pub async fn resolve_approval(
    conn: &mut PgConnection,
    id: ApprovalId,
    status: ApprovalStatus,
    by: &Actor,
    reason: Option<&str>,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE approvals SET status = $2, resolved_by_type = $3, resolved_by_id = $4,
             resolved_by_name = $5, resolution_reason = $6, resolved_at = now()
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(by.kind.as_str())
    .bind(by.id)
    .bind(&by.name)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Whether a task has an approved approval.
pub async fn has_approved_approval(conn: &mut PgConnection, task: TaskId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM approval_tasks x JOIN approvals a ON a.id = x.approval_id
                        WHERE x.task_id = $1 AND a.status = 'approved')",
    )
    .bind(task)
    .fetch_one(conn)
    .await?)
}

/// The board an agent is bound to, and the boards where it has tasks.
pub async fn agent_board_ids(conn: &mut PgConnection, agent: AgentId) -> Result<Vec<BoardId>> {
    Ok(sqlx::query_scalar(
        "SELECT board_id FROM agents WHERE id = $1 AND board_id IS NOT NULL
         UNION SELECT DISTINCT board_id FROM tasks WHERE assignee_agent_id = $1",
    )
    .bind(agent)
    .fetch_all(conn)
    .await?)
}
