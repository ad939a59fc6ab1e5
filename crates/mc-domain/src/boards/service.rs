//! Board, task and approval operations. Each runs in one transaction scoped to the
//! caller's organization, records its events in that transaction, and publishes them
//! after commit.

use super::model::*;
use super::repo;
use crate::db::{self, is_foreign_key_violation, is_unique_violation};
use crate::error::{Error, FieldError, Result};
use crate::events::{self, Event, EventBus, NewEvent};
use crate::identity::context::OrgContext;
use crate::identity::permissions::Permission;
use crate::ids::{AgentId, ApprovalId, BoardGroupId, BoardId, TagId, TaskId};
use crate::pagination::{Page, PageParams, TimeKey};
use crate::values::Slug;
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;

/// How an operation is authorised: by role, or (agent-facing endpoints) by the calling
/// agent's own scope: tasks assigned to it and the boards it works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The caller's role must hold the permission.
    Role(Permission),
    /// The caller must be an agent whose scope includes the task or board.
    AgentScope,
}

/// Boards, tasks, dependencies, comments, tags and approvals.
#[derive(Clone, Debug)]
pub struct BoardService {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
}

type Tx = Transaction<'static, Postgres>;

impl BoardService {
    /// A service over `pool` publishing on `bus`.
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>) -> Self {
        Self { pool, bus }
    }

    /// The event bus (for streams that subscribe to what this service publishes).
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self, ctx: &OrgContext) -> Result<Tx> {
        db::begin_org(&self.pool, ctx.org_id).await
    }

    /// Appends events, commits, then publishes.
    async fn finish(&self, tx: Tx, ctx: &OrgContext, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, events).await
    }

    // ------------------------------------------------------------ board groups

    /// `POST /board-groups`.
    pub async fn create_group(
        &self,
        ctx: &OrgContext,
        input: CreateBoardGroup,
    ) -> Result<BoardGroup> {
        ctx.authorize(Permission::BoardsManage)?;
        let mut tx = self.begin(ctx).await?;
        let group = repo::insert_group(
            &mut tx,
            ctx.org_id,
            input.name.as_str(),
            input.description.as_ref().map(|d| d.as_str()),
        )
        .await?;
        let event = NewEvent::new("board_group.created").payload(json!({ "board_group": group }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(group)
    }

    /// `GET /board-groups`.
    pub async fn list_groups(
        &self,
        ctx: &OrgContext,
        page: &PageParams,
    ) -> Result<Page<BoardGroup>> {
        ctx.authorize(Permission::BoardsRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = self.begin(ctx).await?;
        let rows = repo::list_groups(&mut tx, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |g| TimeKey {
            t: g.created_at,
            id: g.id.0,
        }))
    }

    /// `GET /board-groups/{id}`.
    pub async fn get_group(&self, ctx: &OrgContext, id: BoardGroupId) -> Result<BoardGroup> {
        ctx.authorize(Permission::BoardsRead)?;
        let mut tx = self.begin(ctx).await?;
        let group = repo::get_group(&mut tx, id).await?.ok_or(Error::NotFound {
            resource: "board group",
        })?;
        tx.commit().await?;
        Ok(group)
    }

    /// `PATCH /board-groups/{id}`.
    pub async fn update_group(
        &self,
        ctx: &OrgContext,
        id: BoardGroupId,
        input: UpdateBoardGroup,
    ) -> Result<BoardGroup> {
        ctx.authorize(Permission::BoardsManage)?;
        let mut tx = self.begin(ctx).await?;
        let group = repo::update_group(
            &mut tx,
            id,
            input.name.as_ref().map(|n| n.as_str()),
            input
                .description
                .as_ref()
                .map(|d| d.as_ref().map(|t| t.as_str())),
        )
        .await?
        .ok_or(Error::NotFound {
            resource: "board group",
        })?;
        let event = NewEvent::new("board_group.updated").payload(json!({ "board_group": group }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(group)
    }

    /// `DELETE /board-groups/{id}`.
    pub async fn delete_group(&self, ctx: &OrgContext, id: BoardGroupId) -> Result<()> {
        ctx.authorize(Permission::BoardsManage)?;
        let mut tx = self.begin(ctx).await?;
        if !repo::delete_group(&mut tx, id).await? {
            return Err(Error::NotFound {
                resource: "board group",
            });
        }
        let event = NewEvent::new("board_group.deleted").payload(json!({ "board_group_id": id }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ boards

    async fn require_group(
        &self,
        tx: &mut PgConnection,
        group: Option<BoardGroupId>,
    ) -> Result<()> {
        if let Some(g) = group
            && repo::get_group(tx, g).await?.is_none()
        {
            return Err(Error::invalid_field(
                "board_group_id",
                "no such board group in this organization",
            ));
        }
        Ok(())
    }

    /// `POST /boards`.
    pub async fn create_board(&self, ctx: &OrgContext, input: CreateBoard) -> Result<Board> {
        ctx.authorize(Permission::BoardsManage)?;
        if let Some(m) = input.max_agents
            && !(0..=10_000).contains(&m)
        {
            return Err(Error::invalid_field(
                "max_agents",
                "must be between 0 and 10000",
            ));
        }
        let slug = match &input.slug {
            Some(s) => s.clone(),
            None => slug_from(input.name.as_str()),
        };
        let mut tx = self.begin(ctx).await?;
        self.require_group(&mut tx, input.board_group_id).await?;
        let default_approval: bool = sqlx::query_scalar(
            "SELECT coalesce((settings->>'require_approval_for_done')::boolean, false)
             FROM organizations WHERE id = $1",
        )
        .bind(ctx.org_id)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(false);
        let board = repo::insert_board(
            &mut tx,
            &repo::NewBoard {
                org: ctx.org_id,
                name: input.name.as_str(),
                slug: slug.as_str(),
                description: input.description.as_ref().map(|d| d.as_str()),
                objective: input.objective.as_ref().map(|d| d.as_str()),
                group: input.board_group_id,
                max_agents: input.max_agents.unwrap_or(5),
                require_approval_for_done: input
                    .require_approval_for_done
                    .unwrap_or(default_approval),
                require_evidence_for_done: input.require_evidence_for_done.unwrap_or(false),
            },
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e, None) {
                Error::Conflict("a board with this slug exists".into())
            } else {
                e.into()
            }
        })?;
        let event = NewEvent::new("board.created")
            .board(board.id)
            .payload(json!({ "board": board }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(board)
    }

    /// `GET /boards`.
    pub async fn list_boards(
        &self,
        ctx: &OrgContext,
        filter: &BoardFilter,
        page: &PageParams,
    ) -> Result<Page<Board>> {
        ctx.authorize(Permission::BoardsRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = self.begin(ctx).await?;
        let rows = repo::list_boards(
            &mut tx,
            filter.board_group_id,
            filter.include_archived.unwrap_or(false),
            None,
            page.after,
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |b| TimeKey {
            t: b.created_at,
            id: b.id.0,
        }))
    }

    /// `GET /boards/{id}`.
    pub async fn get_board(&self, ctx: &OrgContext, id: BoardId) -> Result<Board> {
        ctx.authorize(Permission::BoardsRead)?;
        let mut tx = self.begin(ctx).await?;
        let board = repo::get_board(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "board" })?;
        tx.commit().await?;
        Ok(board)
    }

    /// `PATCH /boards/{id}`.
    pub async fn update_board(
        &self,
        ctx: &OrgContext,
        id: BoardId,
        input: UpdateBoard,
    ) -> Result<Board> {
        ctx.authorize(Permission::BoardsManage)?;
        if let Some(m) = input.max_agents
            && !(0..=10_000).contains(&m)
        {
            return Err(Error::invalid_field(
                "max_agents",
                "must be between 0 and 10000",
            ));
        }
        let mut tx = self.begin(ctx).await?;
        self.require_group(&mut tx, input.board_group_id.flatten())
            .await?;
        let before = repo::get_board(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "board" })?;
        let board = repo::update_board(&mut tx, id, &input)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    Error::invalid_field(
                        "board_group_id",
                        "no such board group in this organization",
                    )
                } else {
                    e.into()
                }
            })?
            .ok_or(Error::NotFound { resource: "board" })?;
        let changes = diff(
            &serde_json::to_value(&before).unwrap_or_default(),
            &serde_json::to_value(&board).unwrap_or_default(),
        );
        let event = NewEvent::new("board.updated")
            .board(board.id)
            .payload(json!({ "board": board, "changes": changes }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(board)
    }

    /// `DELETE /boards/{id}`: the board and its tasks.
    pub async fn delete_board(&self, ctx: &OrgContext, id: BoardId) -> Result<()> {
        ctx.authorize(Permission::BoardsManage)?;
        let mut tx = self.begin(ctx).await?;
        if !repo::delete_board(&mut tx, id).await? {
            return Err(Error::NotFound { resource: "board" });
        }
        let event = NewEvent::new("board.deleted")
            .board(id)
            .payload(json!({ "board_id": id }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(())
    }

    /// The board, all its tasks, and the event sequence the snapshot includes (the first
    /// message of the board sync socket).
    pub async fn board_state(&self, ctx: &OrgContext, id: BoardId) -> Result<BoardState> {
        ctx.authorize(Permission::BoardsRead)?;
        // REPEATABLE READ: the tasks and the sequence number come from one snapshot, so a
        // client resuming from `seq` misses nothing and sees nothing twice.
        let mut tx = db::begin_org_snapshot(&self.pool, ctx.org_id).await?;
        let board = repo::get_board(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "board" })?;
        let tasks = repo::board_tasks(&mut tx, id).await?;
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM org_event_seq WHERE organization_id = $1")
                .bind(ctx.org_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(BoardState {
            board,
            tasks,
            seq: seq.unwrap_or(0),
        })
    }

    // ------------------------------------------------------------------- tasks

    async fn check_assignees(
        &self,
        tx: &mut PgConnection,
        agent: Option<AgentId>,
        user: Option<crate::ids::UserId>,
    ) -> Result<()> {
        let mut problems = Vec::new();
        if agent.is_some() && user.is_some() {
            problems.push(FieldError::new(
                "assignee_user_id",
                "a task is assigned to an agent or a user, not both",
            ));
        }
        if let Some(a) = agent
            && !repo::missing_agents(tx, &[a]).await?.is_empty()
        {
            problems.push(FieldError::new(
                "assignee_agent_id",
                "no such agent in this organization",
            ));
        }
        if let Some(u) = user
            && !repo::is_member(tx, u).await?
        {
            problems.push(FieldError::new(
                "assignee_user_id",
                "not a member of this organization",
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_fields(problems))
        }
    }

    async fn check_tags(&self, tx: &mut PgConnection, tags: &[TagId]) -> Result<()> {
        if tags.len() > 50 {
            return Err(Error::invalid_field("tag_ids", "at most 50 tags"));
        }
        if !repo::missing_tags(tx, tags).await?.is_empty() {
            return Err(Error::invalid_field(
                "tag_ids",
                "contains a tag that does not exist in this organization",
            ));
        }
        Ok(())
    }

    async fn authorize_task(
        &self,
        ctx: &OrgContext,
        tx: &mut PgConnection,
        access: Access,
        permission: Permission,
        task: &Task,
    ) -> Result<()> {
        match access {
            Access::Role(_) => ctx.authorize(permission),
            Access::AgentScope => {
                self.authorize_agent(ctx, tx, task.board_id, Some(task), permission)
                    .await
            }
        }
    }

    async fn authorize_agent(
        &self,
        ctx: &OrgContext,
        tx: &mut PgConnection,
        board: BoardId,
        task: Option<&Task>,
        permission: Permission,
    ) -> Result<()> {
        let Some(agent) = ctx.agent_id else {
            return Err(Error::Forbidden(
                "agent endpoints need an agent's API key".into(),
            ));
        };
        // Within its boards an agent's key role only separates reading from working: a
        // viewer key reads, developer and above create, move, comment and ask for approval.
        // Read-only organizations stay read-only for agents too.
        ctx.authorize(if permission.is_read() {
            Permission::TasksRead
        } else {
            Permission::TasksCreate
        })?;
        if !permission.is_read() && ctx.org_status != crate::identity::OrgStatus::Active {
            return Err(Error::Forbidden("organization is read-only".into()));
        }
        let assigned = task.is_some_and(|t| t.assignee_agent_id == Some(agent));
        if assigned || repo::agent_board_ids(tx, agent).await?.contains(&board) {
            Ok(())
        } else {
            Err(Error::NotFound {
                resource: if task.is_some() { "task" } else { "board" },
            })
        }
    }

    fn validate_evidence(list: &[Evidence], field: &str) -> Result<()> {
        if list.len() > MAX_EVIDENCE {
            return Err(Error::invalid_field(
                field,
                format!("at most {MAX_EVIDENCE} items"),
            ));
        }
        let problems: Vec<FieldError> = list
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.validate(&format!("{field}[{i}]")).err())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_fields(problems))
        }
    }

    fn validate_numbers(estimate: Option<f64>, position: Option<f64>) -> Result<()> {
        if estimate.is_some_and(|e| !e.is_finite() || !(0.0..=100_000.0).contains(&e)) {
            return Err(Error::invalid_field(
                "estimate_hours",
                "must be between 0 and 100000",
            ));
        }
        if position.is_some_and(|p| !p.is_finite()) {
            return Err(Error::invalid_field("position", "must be a finite number"));
        }
        Ok(())
    }

    /// Checks the rules a task must meet to be `done`.
    async fn check_done_rules(
        &self,
        tx: &mut PgConnection,
        board: &Board,
        task: &Task,
    ) -> Result<()> {
        let blockers = repo::open_blockers(tx, task.id).await?;
        if !blockers.is_empty() {
            return Err(Error::Conflict(
                format!(
                    "blocked by open tasks: {}",
                    blockers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into(),
            ));
        }
        if board.require_evidence_for_done && task.evidence.is_empty() {
            return Err(Error::invalid_field(
                "evidence",
                "this board requires evidence to complete a task",
            ));
        }
        if board.require_approval_for_done && !repo::has_approved_approval(tx, task.id).await? {
            return Err(Error::Conflict(
                "this board requires an approved approval to complete a task".into(),
            ));
        }
        Ok(())
    }

    /// `POST /boards/{id}/tasks` (and the board socket's `task.create`).
    pub async fn create_task(
        &self,
        ctx: &OrgContext,
        board_id: BoardId,
        input: CreateTask,
        access: Access,
    ) -> Result<Task> {
        if let Access::Role(_) = access {
            ctx.authorize(Permission::TasksCreate)?;
        }
        Self::validate_numbers(input.estimate_hours, input.position)?;
        let evidence = input.evidence.clone().unwrap_or_default();
        Self::validate_evidence(&evidence, "evidence")?;
        let mut tx = self.begin(ctx).await?;
        let board = repo::get_board(&mut tx, board_id)
            .await?
            .ok_or(Error::NotFound { resource: "board" })?;
        if access == Access::AgentScope {
            self.authorize_agent(ctx, &mut tx, board_id, None, Permission::TasksCreate)
                .await?;
        }
        if board.archived_at.is_some() {
            return Err(Error::Conflict("the board is archived".into()));
        }
        self.check_assignees(&mut tx, input.assignee_agent_id, input.assignee_user_id)
            .await?;
        let tags = input.tag_ids.clone().unwrap_or_default();
        self.check_tags(&mut tx, &tags).await?;
        let status = input.status.unwrap_or(TaskStatus::Todo);
        let position = match input.position {
            Some(p) => p,
            None => repo::next_position(&mut tx, board_id, status).await?,
        };
        let id = repo::insert_task(
            &mut tx,
            &repo::NewTask {
                org: ctx.org_id,
                board: board_id,
                title: input.title.as_str(),
                description: input.description.as_ref().map(|d| d.as_str()),
                status,
                priority: input.priority.unwrap_or(TaskPriority::Medium),
                agent: input.assignee_agent_id,
                user: input.assignee_user_id,
                due_at: input.due_at,
                estimate_hours: input.estimate_hours,
                evidence: &evidence,
                position,
                created_by: &ctx.actor,
            },
        )
        .await?;
        repo::set_task_tags(&mut tx, ctx.org_id, id, &tags).await?;
        let task = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        if status == TaskStatus::Done {
            self.check_done_rules(&mut tx, &board, &task).await?;
        }
        let mut events = vec![
            NewEvent::new("task.created")
                .board(board_id)
                .task(id)
                .agent(task.assignee_agent_id)
                .payload(json!({ "task": task })),
        ];
        if status == TaskStatus::Done {
            events.push(
                NewEvent::new("task.completed")
                    .board(board_id)
                    .task(id)
                    .agent(task.assignee_agent_id)
                    .payload(json!({ "task": task })),
            );
        }
        self.finish(tx, ctx, events).await?;
        Ok(task)
    }

    /// `GET /boards/{id}/tasks` or, with no board, `GET /tasks`.
    pub async fn list_tasks(
        &self,
        ctx: &OrgContext,
        board: Option<BoardId>,
        filter: &TaskFilter,
        page: &PageParams,
    ) -> Result<Page<Task>> {
        ctx.authorize(Permission::TasksRead)?;
        let page = page.parse::<TimeKey>()?;
        let statuses = parse_statuses(filter.status.as_deref())?;
        if filter.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::invalid_field("q", "must be at most 200 characters"));
        }
        let mut tx = self.begin(ctx).await?;
        if let Some(b) = board
            && repo::get_board(&mut tx, b).await?.is_none()
        {
            return Err(Error::NotFound { resource: "board" });
        }
        let rows = repo::list_tasks(
            &mut tx,
            board,
            &statuses,
            filter,
            page.after,
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |t| TimeKey {
            t: t.created_at,
            id: t.id.0,
        }))
    }

    /// `GET /tasks/{id}`.
    pub async fn get_task(&self, ctx: &OrgContext, id: TaskId, access: Access) -> Result<Task> {
        let mut tx = self.begin(ctx).await?;
        let task = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        match access {
            Access::Role(_) => ctx.authorize(Permission::TasksRead)?,
            Access::AgentScope => {
                self.authorize_agent(
                    ctx,
                    &mut tx,
                    task.board_id,
                    Some(&task),
                    Permission::TasksRead,
                )
                .await?
            }
        }
        tx.commit().await?;
        Ok(task)
    }

    /// `PATCH /tasks/{id}`. With `expected_version` (from `If-Match`), a concurrent change
    /// makes this fail with 412 instead of overwriting it.
    pub async fn update_task(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        input: UpdateTask,
        expected_version: Option<i32>,
    ) -> Result<Task> {
        ctx.authorize(Permission::TasksUpdate)?;
        Self::validate_numbers(input.estimate_hours.flatten(), input.position)?;
        if let Some(e) = &input.evidence {
            Self::validate_evidence(e, "evidence")?;
        }
        let mut tx = self.begin(ctx).await?;
        let before = repo::lock_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        if let Some(v) = expected_version
            && v != before.version
        {
            return Err(Error::PreconditionFailed(
                format!(
                    "task is at version {}, not {v}; reload and retry",
                    before.version
                )
                .into(),
            ));
        }
        let mut task = before.clone();
        if let Some(t) = &input.title {
            task.title = t.as_str().to_owned();
        }
        if let Some(d) = &input.description {
            task.description = d.as_ref().map(|x| x.as_str().to_owned());
        }
        if let Some(p) = input.priority {
            task.priority = p;
        }
        if let Some(a) = input.assignee_agent_id {
            task.assignee_agent_id = a;
        }
        if let Some(u) = input.assignee_user_id {
            task.assignee_user_id = u;
        }
        if let Some(d) = input.due_at {
            task.due_at = d;
        }
        if let Some(e) = input.estimate_hours {
            task.estimate_hours = e;
        }
        if let Some(e) = &input.evidence {
            task.evidence = e.clone();
        }
        if let Some(p) = input.position {
            task.position = p;
        }
        if input.assignee_agent_id.is_some() || input.assignee_user_id.is_some() {
            self.check_assignees(&mut tx, task.assignee_agent_id, task.assignee_user_id)
                .await?;
        }
        if let Some(tags) = &input.tag_ids {
            self.check_tags(&mut tx, tags).await?;
            repo::set_task_tags(&mut tx, ctx.org_id, id, tags).await?;
        }
        repo::save_task(&mut tx, &task).await?;
        let after = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        let changes = diff(
            &serde_json::to_value(&before).unwrap_or_default(),
            &serde_json::to_value(&after).unwrap_or_default(),
        );
        let mut events = vec![
            NewEvent::new("task.updated")
                .board(after.board_id)
                .task(id)
                .agent(after.assignee_agent_id)
                .payload(json!({ "task_id": id, "changes": changes, "task": after })),
        ];
        if before.assignee_agent_id != after.assignee_agent_id
            || before.assignee_user_id != after.assignee_user_id
        {
            events.push(
                NewEvent::new("task.assigned")
                    .board(after.board_id)
                    .task(id)
                    .agent(after.assignee_agent_id)
                    .payload(json!({
                        "task_id": id,
                        "assignee_agent_id": after.assignee_agent_id,
                        "assignee_user_id": after.assignee_user_id,
                        "previous_agent_id": before.assignee_agent_id,
                    })),
            );
        }
        self.finish(tx, ctx, events).await?;
        Ok(after)
    }

    /// `POST /tasks/{id}/transition` (and the board socket's `task.move`).
    pub async fn transition_task(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        input: TransitionTask,
        access: Access,
    ) -> Result<Task> {
        self.transition(ctx, None, id, input, access).await
    }

    /// The board socket's `task.move`: a transition of a task that must be on `board`.
    pub async fn move_task_on_board(
        &self,
        ctx: &OrgContext,
        board: BoardId,
        id: TaskId,
        input: TransitionTask,
        access: Access,
    ) -> Result<Task> {
        self.transition(ctx, Some(board), id, input, access).await
    }

    async fn transition(
        &self,
        ctx: &OrgContext,
        on_board: Option<BoardId>,
        id: TaskId,
        input: TransitionTask,
        access: Access,
    ) -> Result<Task> {
        Self::validate_numbers(None, input.position)?;
        if let Some(e) = &input.evidence {
            Self::validate_evidence(e, "evidence")?;
        }
        let mut tx = self.begin(ctx).await?;
        let before = repo::lock_task(&mut tx, id)
            .await?
            .filter(|t| on_board.is_none_or(|b| b == t.board_id))
            .ok_or(Error::NotFound { resource: "task" })?;
        self.authorize_task(ctx, &mut tx, access, Permission::TasksExecute, &before)
            .await?;
        let board = repo::get_board(&mut tx, before.board_id)
            .await?
            .ok_or(Error::NotFound { resource: "board" })?;
        let mut task = before.clone();
        if let Some(extra) = &input.evidence {
            task.evidence.extend(extra.iter().cloned());
            Self::validate_evidence(&task.evidence, "evidence")?;
        }
        let status_changed = task.status != input.status;
        if status_changed {
            task.status = input.status;
            task.status_changed_at = Utc::now();
            task.completed_at = (input.status == TaskStatus::Done).then(Utc::now);
        }
        task.position = match input.position {
            Some(p) => p,
            None if status_changed => {
                repo::next_position(&mut tx, task.board_id, input.status).await?
            }
            None => task.position,
        };
        if input.status == TaskStatus::Done && status_changed {
            self.check_done_rules(&mut tx, &board, &task).await?;
        }
        repo::save_task(&mut tx, &task).await?;
        let after = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        let mut events = Vec::new();
        if status_changed {
            events.push(NewEvent::new("task.status_changed").board(after.board_id).task(id).agent(after.assignee_agent_id).payload(json!({
                "task_id": id, "from": before.status, "to": after.status,
                "changes": { "status": after.status, "position": after.position, "status_changed_at": after.status_changed_at },
                "task": after,
            })));
            if after.status == TaskStatus::Done {
                let unblocked = repo::newly_unblocked(&mut tx, id).await?;
                events.push(
                    NewEvent::new("task.completed")
                        .board(after.board_id)
                        .task(id)
                        .agent(after.assignee_agent_id)
                        .payload(json!({ "task": after, "unblocked_task_ids": unblocked })),
                );
            }
        } else {
            let changes = diff(
                &serde_json::to_value(&before).unwrap_or_default(),
                &serde_json::to_value(&after).unwrap_or_default(),
            );
            events.push(
                NewEvent::new("task.updated")
                    .board(after.board_id)
                    .task(id)
                    .agent(after.assignee_agent_id)
                    .payload(json!({ "task_id": id, "changes": changes, "task": after })),
            );
        }
        if let Some(body) = &input.comment {
            let comment =
                repo::insert_comment(&mut tx, ctx.org_id, id, &ctx.actor, body.as_str()).await?;
            events.push(
                NewEvent::new("task.commented")
                    .board(after.board_id)
                    .task(id)
                    .agent(after.assignee_agent_id)
                    .payload(json!({ "comment": comment })),
            );
        }
        self.finish(tx, ctx, events).await?;
        Ok(after)
    }

    /// `DELETE /tasks/{id}`.
    pub async fn delete_task(&self, ctx: &OrgContext, id: TaskId) -> Result<()> {
        ctx.authorize(Permission::TasksDelete)?;
        let mut tx = self.begin(ctx).await?;
        let task = repo::lock_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        repo::delete_task(&mut tx, id).await?;
        let event = NewEvent::new("task.deleted")
            .board(task.board_id)
            .task(id)
            .agent(task.assignee_agent_id)
            .payload(json!({ "task_id": id, "board_id": task.board_id, "title": task.title }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(())
    }

    // ------------------------------------------------------------ dependencies

    /// `POST /tasks/{id}/dependencies`: `id` cannot be done before `depends_on`. A cycle is
    /// a 409.
    pub async fn add_dependency(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        input: AddDependency,
    ) -> Result<Task> {
        ctx.authorize(Permission::TasksUpdate)?;
        let dep = input.depends_on_task_id;
        if dep == id {
            return Err(Error::Conflict("a task cannot depend on itself".into()));
        }
        let mut tx = self.begin(ctx).await?;
        // Lock both in id order so concurrent opposite edges cannot both pass the check.
        let (first, second) = if id.0 < dep.0 { (id, dep) } else { (dep, id) };
        let a = repo::lock_task(&mut tx, first).await?;
        let b = repo::lock_task(&mut tx, second).await?;
        let task = if first == id { a.clone() } else { b.clone() }
            .ok_or(Error::NotFound { resource: "task" })?;
        if (if first == dep { a } else { b }).is_none() {
            return Err(Error::invalid_field(
                "depends_on_task_id",
                "no such task in this organization",
            ));
        }
        if repo::depends_transitively(&mut tx, dep, id).await? {
            return Err(Error::Conflict(
                "this dependency would create a cycle".into(),
            ));
        }
        if !repo::insert_dependency(&mut tx, ctx.org_id, id, dep).await? {
            tx.commit().await?;
            return self
                .get_task(ctx, id, Access::Role(Permission::TasksRead))
                .await;
        }
        let after = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        let event = NewEvent::new("task.dependency_added").board(task.board_id).task(id).agent(task.assignee_agent_id)
            .payload(json!({ "task_id": id, "depends_on_task_id": dep, "changes": { "blocked_by": after.blocked_by }, "task": after }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(after)
    }

    /// `DELETE /tasks/{id}/dependencies/{depends_on}`.
    pub async fn remove_dependency(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        dep: TaskId,
    ) -> Result<Task> {
        ctx.authorize(Permission::TasksUpdate)?;
        let mut tx = self.begin(ctx).await?;
        let task = repo::lock_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        if !repo::delete_dependency(&mut tx, id, dep).await? {
            return Err(Error::NotFound {
                resource: "dependency",
            });
        }
        let after = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        let event = NewEvent::new("task.dependency_removed").board(task.board_id).task(id).agent(task.assignee_agent_id)
            .payload(json!({ "task_id": id, "depends_on_task_id": dep, "changes": { "blocked_by": after.blocked_by }, "task": after }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(after)
    }

    // ----------------------------------------------------------------- comments

    /// `POST /tasks/{id}/comments`.
    pub async fn add_comment(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        input: CreateComment,
        access: Access,
    ) -> Result<Comment> {
        let mut tx = self.begin(ctx).await?;
        let task = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        self.authorize_task(ctx, &mut tx, access, Permission::TasksCreate, &task)
            .await?;
        let comment =
            repo::insert_comment(&mut tx, ctx.org_id, id, &ctx.actor, input.body.as_str()).await?;
        let event = NewEvent::new("task.commented")
            .board(task.board_id)
            .task(id)
            .agent(task.assignee_agent_id)
            .payload(json!({ "comment": comment }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(comment)
    }

    /// `GET /tasks/{id}/comments`, oldest first.
    pub async fn list_comments(
        &self,
        ctx: &OrgContext,
        id: TaskId,
        page: &PageParams,
        access: Access,
    ) -> Result<Page<Comment>> {
        let page = page.parse::<TimeKey>()?;
        let mut tx = self.begin(ctx).await?;
        let task = repo::get_task(&mut tx, id)
            .await?
            .ok_or(Error::NotFound { resource: "task" })?;
        self.authorize_task(ctx, &mut tx, access, Permission::TasksRead, &task)
            .await?;
        let rows = repo::list_comments(&mut tx, id, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |c| TimeKey {
            t: c.created_at,
            id: c.id.0,
        }))
    }

    // --------------------------------------------------------------------- tags

    /// `POST /tags`.
    pub async fn create_tag(&self, ctx: &OrgContext, input: CreateTag) -> Result<Tag> {
        ctx.authorize(Permission::TagsManage)?;
        let mut tx = self.begin(ctx).await?;
        let color = input.color.as_ref().map_or("#64748b", |c| c.as_str());
        let tag = repo::insert_tag(&mut tx, ctx.org_id, input.name.as_str(), color)
            .await
            .map_err(|e| {
                if is_unique_violation(&e, None) {
                    Error::Conflict("a tag with this name exists".into())
                } else {
                    e.into()
                }
            })?;
        self.finish(
            tx,
            ctx,
            vec![NewEvent::new("tag.created").payload(json!({ "tag": tag }))],
        )
        .await?;
        Ok(tag)
    }

    /// `GET /tags`.
    pub async fn list_tags(&self, ctx: &OrgContext) -> Result<Page<Tag>> {
        ctx.authorize(Permission::TagsRead)?;
        let mut tx = self.begin(ctx).await?;
        let items = repo::list_tags(&mut tx).await?;
        tx.commit().await?;
        let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
        Ok(Page {
            items,
            next_cursor: None,
            total: Some(total),
        })
    }

    /// `PATCH /tags/{id}`.
    pub async fn update_tag(&self, ctx: &OrgContext, id: TagId, input: UpdateTag) -> Result<Tag> {
        ctx.authorize(Permission::TagsManage)?;
        let mut tx = self.begin(ctx).await?;
        let tag = repo::update_tag(
            &mut tx,
            id,
            input.name.as_ref().map(|n| n.as_str()),
            input.color.as_ref().map(|c| c.as_str()),
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e, None) {
                Error::Conflict("a tag with this name exists".into())
            } else {
                e.into()
            }
        })?
        .ok_or(Error::NotFound { resource: "tag" })?;
        self.finish(
            tx,
            ctx,
            vec![NewEvent::new("tag.updated").payload(json!({ "tag": tag }))],
        )
        .await?;
        Ok(tag)
    }

    /// `DELETE /tags/{id}` (removes it from every task).
    pub async fn delete_tag(&self, ctx: &OrgContext, id: TagId) -> Result<()> {
        ctx.authorize(Permission::TagsManage)?;
        let mut tx = self.begin(ctx).await?;
        if !repo::delete_tag(&mut tx, id).await? {
            return Err(Error::NotFound { resource: "tag" });
        }
        self.finish(
            tx,
            ctx,
            vec![NewEvent::new("tag.deleted").payload(json!({ "tag_id": id }))],
        )
        .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- approvals

    /// `POST /approvals` (and `POST /agent/approvals`).
    pub async fn request_approval(
        &self,
        ctx: &OrgContext,
        input: CreateApproval,
        access: Access,
    ) -> Result<Approval> {
        let mut tx = self.begin(ctx).await?;
        let board = repo::get_board(&mut tx, input.board_id)
            .await?
            .ok_or_else(|| {
                Error::invalid_field("board_id", "no such board in this organization")
            })?;
        match access {
            Access::Role(_) => ctx.authorize(Permission::ApprovalsRequest)?,
            Access::AgentScope => {
                self.authorize_agent(ctx, &mut tx, board.id, None, Permission::ApprovalsRequest)
                    .await?
            }
        }
        let task_ids = input.task_ids.clone().unwrap_or_default();
        if task_ids.len() > 100 {
            return Err(Error::invalid_field("task_ids", "at most 100 tasks"));
        }
        for (i, t) in task_ids.iter().enumerate() {
            match repo::get_task(&mut tx, *t).await? {
                Some(task) if task.board_id == board.id => {}
                Some(_) => {
                    return Err(Error::invalid_field(
                        format!("task_ids[{i}]"),
                        "task is on another board",
                    ));
                }
                None => {
                    return Err(Error::invalid_field(
                        format!("task_ids[{i}]"),
                        "no such task in this organization",
                    ));
                }
            }
        }
        let id = repo::insert_approval(
            &mut tx,
            ctx.org_id,
            board.id,
            input.title.as_str(),
            input.description.as_ref().map(|d| d.as_str()),
            &ctx.actor,
            &task_ids,
        )
        .await?;
        let approval = repo::get_approval(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "approval",
            })?;
        let event = NewEvent::new("approval.requested")
            .board(board.id)
            .agent(ctx.agent_id)
            .payload(json!({ "approval": approval }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(approval)
    }

    /// `GET /approvals`.
    pub async fn list_approvals(
        &self,
        ctx: &OrgContext,
        filter: &ApprovalFilter,
        page: &PageParams,
    ) -> Result<Page<Approval>> {
        ctx.authorize(Permission::ApprovalsRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = self.begin(ctx).await?;
        let rows = repo::list_approvals(
            &mut tx,
            filter.status,
            filter.board_id,
            page.after,
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |a| TimeKey {
            t: a.created_at,
            id: a.id.0,
        }))
    }

    /// `GET /approvals/{id}`.
    pub async fn get_approval(&self, ctx: &OrgContext, id: ApprovalId) -> Result<Approval> {
        ctx.authorize(Permission::ApprovalsRead)?;
        let mut tx = self.begin(ctx).await?;
        let approval = repo::get_approval(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "approval",
            })?;
        tx.commit().await?;
        Ok(approval)
    }

    /// `POST /approvals/{id}/approve|reject`. Resolving twice is a 409.
    pub async fn resolve_approval(
        &self,
        ctx: &OrgContext,
        id: ApprovalId,
        decision: ApprovalStatus,
        input: ResolveApproval,
    ) -> Result<Approval> {
        ctx.authorize(Permission::ApprovalsResolve)?;
        if decision == ApprovalStatus::Pending {
            return Err(Error::invalid_field(
                "status",
                "must be approved or rejected",
            ));
        }
        if decision == ApprovalStatus::Rejected && input.reason.is_none() {
            return Err(Error::invalid_field("reason", "is required to reject"));
        }
        let mut tx = self.begin(ctx).await?;
        let existing = repo::get_approval(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "approval",
            })?;
        if !repo::resolve_approval(
            &mut tx,
            id,
            decision,
            &ctx.actor,
            input.reason.as_ref().map(|r| r.as_str()),
        )
        .await?
        {
            return Err(Error::Conflict(
                format!("approval is already {}", existing.status).into(),
            ));
        }
        let approval = repo::get_approval(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "approval",
            })?;
        let event = NewEvent::new("approval.resolved")
            .board(approval.board_id)
            .payload(json!({ "approval": approval, "decision": decision }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(approval)
    }

    // ------------------------------------------------------------- agent-facing

    /// `GET /agent/boards`: the boards the calling agent works on.
    pub async fn agent_boards(&self, ctx: &OrgContext) -> Result<Vec<Board>> {
        let Some(agent) = ctx.agent_id else {
            return Err(Error::Forbidden(
                "agent endpoints need an agent's API key".into(),
            ));
        };
        let mut tx = self.begin(ctx).await?;
        let ids = repo::agent_board_ids(&mut tx, agent).await?;
        let boards = repo::list_boards(&mut tx, None, false, Some(&ids), None, 1000).await?;
        tx.commit().await?;
        Ok(boards)
    }

    /// `GET /agent/boards/{id}/tasks` and `GET /agent/tasks` (assigned to the agent).
    pub async fn agent_tasks(
        &self,
        ctx: &OrgContext,
        board: Option<BoardId>,
        filter: &TaskFilter,
        page: &PageParams,
    ) -> Result<Page<Task>> {
        let Some(agent) = ctx.agent_id else {
            return Err(Error::Forbidden(
                "agent endpoints need an agent's API key".into(),
            ));
        };
        let page = page.parse::<TimeKey>()?;
        let statuses = parse_statuses(filter.status.as_deref())?;
        let mut tx = self.begin(ctx).await?;
        let mut filter = filter.clone();
        match board {
            Some(b) => {
                self.authorize_agent(ctx, &mut tx, b, None, Permission::TasksRead)
                    .await?
            }
            None => filter.assignee_agent_id = Some(agent),
        }
        let rows = repo::list_tasks(
            &mut tx,
            board,
            &statuses,
            &filter,
            page.after,
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |t| TimeKey {
            t: t.created_at,
            id: t.id.0,
        }))
    }
}

/// Statuses from a comma-separated list.
fn parse_statuses(raw: Option<&str>) -> Result<Vec<TaskStatus>> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<TaskStatus>()
                    .map_err(|e| Error::invalid_field("status", e))
            })
            .collect()
    })
    .unwrap_or_else(|| Ok(Vec::new()))
}

fn slug_from(name: &str) -> Slug {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    let base = slug.trim_end_matches('-');
    // Names without latin letters still need a unique, URL-safe slug.
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[24..];
    Slug::try_from(if base.len() >= 2 {
        base.to_owned()
    } else {
        format!("board-{suffix}")
    })
    .unwrap_or_else(|_| Slug::try_from(format!("board-{suffix}")).expect("valid slug"))
}

/// Top-level fields whose values differ, with their new values.
fn diff(before: &Value, after: &Value) -> Value {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return json!({});
    };
    let ignored = ["updated_at", "version"];
    Value::Object(
        a.iter()
            .filter(|(k, v)| !ignored.contains(&k.as_str()) && b.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_changed_fields_only() {
        let before = json!({"title": "a", "status": "todo", "version": 1});
        let after = json!({"title": "b", "status": "todo", "version": 2});
        assert_eq!(diff(&before, &after), json!({"title": "b"}));
    }

    #[test]
    fn statuses_parse_from_a_list() {
        assert_eq!(
            parse_statuses(Some("todo, done")).unwrap(),
            vec![TaskStatus::Todo, TaskStatus::Done]
        );
        assert!(parse_statuses(Some("todo,nope")).is_err());
        assert!(parse_statuses(None).unwrap().is_empty());
    }

    #[test]
    fn slugs_come_from_names() {
        assert_eq!(slug_from("Release Train 2").as_str(), "release-train-2");
        assert!(slug_from("发布").as_str().starts_with("board-"));
    }
}
