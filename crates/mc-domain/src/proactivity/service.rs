//! What the API does with rules and suggestions, and what agents report.

use super::actions::{self, Action};
use super::engine::{CompiledRule, created_event};
use super::model::*;
use super::{effects, repo};
use crate::boards::{TaskPriority, repo as boards};
use crate::db;
use crate::error::{Error, FieldError, Result};
use crate::events::{self, Event, EventBus, NewEvent};
use crate::identity::context::OrgContext;
use crate::identity::permissions::Permission;
use crate::ids::{AgentId, BoardId, RuleId, SuggestionId, TaskId};
use crate::pagination::{Page, PageParams, TimeKey};
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;

/// Largest payload an agent may attach to an event (bytes of JSON).
const MAX_AGENT_EVENT_PAYLOAD: usize = 16 * 1024;

/// Defaults that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ProactivityConfig {
    /// `PROACTIVITY_SUGGESTION_EXPIRY_HOURS`.
    pub suggestion_expiry: Duration,
    /// `PROACTIVITY_RULE_COOLDOWN_SECONDS`: cooldown of rules created without one.
    pub default_cooldown_seconds: i32,
}

impl Default for ProactivityConfig {
    fn default() -> Self {
        Self {
            suggestion_expiry: Duration::from_secs(168 * 3600),
            default_cooldown_seconds: 3600,
        }
    }
}

/// Rules, suggestions and agent reports.
#[derive(Debug, Clone)]
pub struct ProactivityService {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    config: ProactivityConfig,
}

fn invalid(problem: FieldError) -> Error {
    Error::invalid_fields(vec![problem])
}

impl ProactivityService {
    /// A service over `pool`, recording on `bus`.
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>, config: ProactivityConfig) -> Self {
        Self { pool, bus, config }
    }

    async fn finish(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        ctx: &OrgContext,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>> {
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, events).await
    }

    // ------------------------------------------------------------ rules

    /// Checks a rule as it would be stored, including the ids it names.
    async fn check_rule(&self, conn: &mut PgConnection, rule: &Rule) -> Result<()> {
        if !TRIGGER_EVENTS.contains(&rule.trigger_event.as_str()) {
            return Err(Error::invalid_field(
                "trigger_event",
                format!(
                    "unknown event type {:?}; rules can be fired by {}",
                    rule.trigger_event,
                    TRIGGER_EVENTS.join(", ")
                ),
            ));
        }
        if !(0..=2_592_000).contains(&rule.cooldown_seconds) {
            return Err(Error::invalid_field(
                "cooldown_seconds",
                "must be 0 to 2592000 (30 days)",
            ));
        }
        let action = CompiledRule::compile(rule.clone()).map_err(invalid)?.action;
        if let Some(board) = rule.board_id
            && boards::get_board(conn, board).await?.is_none()
        {
            return Err(Error::invalid_field(
                "board_id",
                "no such board in this organization",
            ));
        }
        let mut agents: Vec<(String, AgentId)> = Vec::new();
        let mut board_refs: Vec<(String, BoardId)> = Vec::new();
        match &action {
            Action::AutoAssign { agent_id: Some(a) } => {
                agents.push(("action_config.agent_id".into(), *a));
            }
            Action::Suggest(c) => {
                let literal = |key: &str| {
                    c.on_accept
                        .get(key)
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<uuid::Uuid>().ok())
                };
                if let Some(a) = literal("agent_id") {
                    agents.push(("action_config.on_accept.agent_id".into(), AgentId(a)));
                }
                if let Some(b) = literal("board_id") {
                    board_refs.push(("action_config.on_accept.board_id".into(), BoardId(b)));
                }
            }
            _ => {}
        }
        for (field, agent) in agents {
            if !boards::missing_agents(conn, &[agent]).await?.is_empty() {
                return Err(Error::invalid_field(
                    field,
                    "no such agent in this organization",
                ));
            }
        }
        for (field, board) in board_refs {
            if boards::get_board(conn, board).await?.is_none() {
                return Err(Error::invalid_field(
                    field,
                    "no such board in this organization",
                ));
            }
        }
        Ok(())
    }

    /// `GET /proactive-rules`.
    pub async fn list_rules(
        &self,
        ctx: &OrgContext,
        filter: &RuleFilter,
        page: &PageParams,
    ) -> Result<Page<Rule>> {
        ctx.authorize(Permission::RulesRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let (rows, total) =
            repo::list_rules(&mut tx, filter, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |r| TimeKey {
            t: r.created_at,
            id: r.id.0,
        })
        .with_total(total))
    }

    /// `GET /proactive-rules/{id}`.
    pub async fn get_rule(&self, ctx: &OrgContext, id: RuleId) -> Result<Rule> {
        ctx.authorize(Permission::RulesRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let rule = repo::get_rule(&mut tx, id, false).await?;
        tx.commit().await?;
        rule.ok_or(Error::NotFound { resource: "rule" })
    }

    /// `POST /proactive-rules`.
    pub async fn create_rule(&self, ctx: &OrgContext, input: CreateRule) -> Result<Rule> {
        ctx.authorize(Permission::RulesManage)?;
        let now = Utc::now();
        let draft = Rule {
            id: RuleId(uuid::Uuid::nil()),
            organization_id: ctx.org_id,
            board_id: input.board_id,
            name: input.name.as_str().to_owned(),
            description: input.description.map(|d| d.as_str().to_owned()),
            trigger_event: input.trigger_event,
            conditions: input.conditions.unwrap_or_else(|| json!({})),
            action_type: input.action_type,
            action_config: input.action_config.unwrap_or_else(|| json!({})),
            is_enabled: input.is_enabled.unwrap_or(true),
            is_builtin: false,
            cooldown_seconds: input
                .cooldown_seconds
                .unwrap_or(self.config.default_cooldown_seconds),
            last_fired_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        self.check_rule(&mut tx, &draft).await?;
        let rule = repo::insert_rule(
            &mut tx,
            &repo::RuleRow {
                org: ctx.org_id,
                board: draft.board_id,
                name: &draft.name,
                description: draft.description.as_deref(),
                trigger_event: &draft.trigger_event,
                conditions: &draft.conditions,
                action_type: draft.action_type,
                action_config: &draft.action_config,
                cooldown_seconds: draft.cooldown_seconds,
                is_enabled: draft.is_enabled,
            },
        )
        .await?;
        let event = NewEvent::new("rule.created").payload(json!({ "rule": rule }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(rule)
    }

    /// `PATCH /proactive-rules/{id}`.
    pub async fn update_rule(
        &self,
        ctx: &OrgContext,
        id: RuleId,
        input: UpdateRule,
    ) -> Result<Rule> {
        ctx.authorize(Permission::RulesManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let before = repo::get_rule(&mut tx, id, true)
            .await?
            .ok_or(Error::NotFound { resource: "rule" })?;
        let touches_definition = input.name.is_some()
            || input.description.is_some()
            || input.trigger_event.is_some()
            || input.conditions.is_some()
            || input.action_type.is_some()
            || input.action_config.is_some()
            || input.board_id.is_some();
        if before.is_builtin && touches_definition {
            return Err(Error::Conflict(
                "a builtin rule can only be enabled, disabled or given another cooldown".into(),
            ));
        }
        let mut rule = before.clone();
        if let Some(n) = input.name {
            rule.name = n.as_str().to_owned();
        }
        if let Some(d) = input.description {
            rule.description = d.map(|d| d.as_str().to_owned());
        }
        if let Some(t) = input.trigger_event {
            rule.trigger_event = t;
        }
        if let Some(c) = input.conditions {
            rule.conditions = c;
        }
        if let Some(a) = input.action_type {
            rule.action_type = a;
        }
        if let Some(c) = input.action_config {
            rule.action_config = c;
        }
        if let Some(b) = input.board_id {
            rule.board_id = b;
        }
        if let Some(c) = input.cooldown_seconds {
            rule.cooldown_seconds = c;
        }
        if let Some(e) = input.is_enabled {
            rule.is_enabled = e;
        }
        self.check_rule(&mut tx, &rule).await?;
        let rule = repo::save_rule(&mut tx, &rule).await?;
        let event = NewEvent::new("rule.updated").payload(json!({ "rule": rule }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(rule)
    }

    /// `POST /proactive-rules/{id}/toggle`.
    pub async fn toggle_rule(&self, ctx: &OrgContext, id: RuleId) -> Result<ToggleResult> {
        ctx.authorize(Permission::RulesManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let mut rule = repo::get_rule(&mut tx, id, true)
            .await?
            .ok_or(Error::NotFound { resource: "rule" })?;
        rule.is_enabled = !rule.is_enabled;
        let rule = repo::save_rule(&mut tx, &rule).await?;
        let event = NewEvent::new("rule.updated").payload(json!({ "rule": rule }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(ToggleResult {
            is_enabled: rule.is_enabled,
        })
    }

    /// `DELETE /proactive-rules/{id}`: builtin rules cannot be deleted (409).
    pub async fn delete_rule(&self, ctx: &OrgContext, id: RuleId) -> Result<()> {
        ctx.authorize(Permission::RulesManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let rule = repo::get_rule(&mut tx, id, true)
            .await?
            .ok_or(Error::NotFound { resource: "rule" })?;
        if rule.is_builtin {
            return Err(Error::Conflict(
                "builtin rules cannot be deleted; disable it instead".into(),
            ));
        }
        repo::delete_rule(&mut tx, id).await?;
        let event =
            NewEvent::new("rule.deleted").payload(json!({ "rule_id": id, "name": rule.name }));
        self.finish(tx, ctx, vec![event]).await?;
        Ok(())
    }

    // ------------------------------------------------------------ suggestions

    /// `GET /suggestions`.
    pub async fn list_suggestions(
        &self,
        ctx: &OrgContext,
        filter: &SuggestionFilter,
        page: &PageParams,
    ) -> Result<Page<Suggestion>> {
        ctx.authorize(Permission::SuggestionsRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let (rows, total) =
            repo::list_suggestions(&mut tx, filter, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |s| TimeKey {
            t: s.created_at,
            id: s.id.0,
        })
        .with_total(total))
    }

    /// `GET /suggestions/{id}`.
    pub async fn get_suggestion(&self, ctx: &OrgContext, id: SuggestionId) -> Result<Suggestion> {
        ctx.authorize(Permission::SuggestionsRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let s = repo::get_suggestion(&mut tx, id, false).await?;
        tx.commit().await?;
        s.ok_or(Error::NotFound {
            resource: "suggestion",
        })
    }

    async fn lock_pending(conn: &mut PgConnection, id: SuggestionId) -> Result<Suggestion> {
        let s = repo::get_suggestion(conn, id, true)
            .await?
            .ok_or(Error::NotFound {
                resource: "suggestion",
            })?;
        if s.status != SuggestionStatus::Pending {
            return Err(Error::Conflict(
                format!("the suggestion is already {}", s.status).into(),
            ));
        }
        if s.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::Conflict("the suggestion has expired".into()));
        }
        Ok(s)
    }

    /// `POST /suggestions/{id}/accept`: runs what it carries in the same transaction and
    /// records the result.
    pub async fn accept(&self, ctx: &OrgContext, id: SuggestionId) -> Result<SuggestionOutcome> {
        ctx.authorize(Permission::SuggestionsAct)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let s = Self::lock_pending(&mut tx, id).await?;
        let (result, mut events) = self.run_accept_action(&mut tx, ctx, &s.payload).await?;
        let status = if result.is_some() {
            SuggestionStatus::Executed
        } else {
            SuggestionStatus::Accepted
        };
        let s = repo::resolve_suggestion(&mut tx, id, status, ctx.user_id, None, result.as_ref())
            .await?;
        events.push(updated_event(&s));
        self.finish(tx, ctx, events).await?;
        Ok(SuggestionOutcome {
            ok: true,
            action_result: result,
            suggestion: s,
        })
    }

    /// `POST /suggestions/{id}/dismiss`.
    pub async fn dismiss(
        &self,
        ctx: &OrgContext,
        id: SuggestionId,
        input: DismissSuggestion,
    ) -> Result<SuggestionOutcome> {
        ctx.authorize(Permission::SuggestionsAct)?;
        let reason = match input.reason.as_deref() {
            None => None,
            Some(r) => Some(
                crate::values::bounded_text(r, 2000)
                    .map_err(|m| Error::invalid_field("reason", m))?,
            ),
        };
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        Self::lock_pending(&mut tx, id).await?;
        let s = repo::resolve_suggestion(
            &mut tx,
            id,
            SuggestionStatus::Dismissed,
            ctx.user_id,
            reason.as_deref(),
            None,
        )
        .await?;
        self.finish(tx, ctx, vec![updated_event(&s)]).await?;
        Ok(SuggestionOutcome {
            ok: true,
            action_result: None,
            suggestion: s,
        })
    }

    /// Runs an accepted suggestion's action; `None` when it carries none.
    async fn run_accept_action(
        &self,
        conn: &mut PgConnection,
        ctx: &OrgContext,
        payload: &Value,
    ) -> Result<(Option<Value>, Vec<NewEvent>)> {
        let id = |key: &str| -> Option<uuid::Uuid> {
            payload
                .get(key)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        };
        let unusable = || {
            Error::Conflict(
                "the suggestion's action refers to something that no longer exists".into(),
            )
        };
        match payload.get("action").and_then(Value::as_str) {
            None | Some("none") => Ok((None, Vec::new())),
            Some("set_priority") => {
                let task = id("task_id").map(TaskId).ok_or_else(unusable)?;
                let priority: TaskPriority = payload
                    .get("priority")
                    .and_then(Value::as_str)
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(unusable)?;
                let changed = effects::set_priority(conn, task, priority).await?;
                let result = json!({ "action": "set_priority", "task_id": task, "priority": priority,
                                     "changed": changed.is_some() });
                Ok((Some(result), changed.map(|(_, e)| e).unwrap_or_default()))
            }
            Some("assign_tasks") => {
                let agent = id("agent_id").map(AgentId).ok_or_else(unusable)?;
                let tasks: Vec<TaskId> = payload
                    .get("task_ids")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.as_str().and_then(|s| s.parse().ok()).map(TaskId))
                            .collect()
                    })
                    .unwrap_or_default();
                if tasks.is_empty() {
                    return Err(unusable());
                }
                let mut assigned = Vec::new();
                let mut events = Vec::new();
                for task in tasks {
                    if let Some((t, e)) = effects::assign_task(conn, task, agent).await? {
                        assigned.push(t.id);
                        events.extend(e);
                    }
                }
                let result = json!({ "action": "assign_tasks", "agent_id": agent, "assigned_task_ids": assigned });
                Ok((Some(result), events))
            }
            Some("create_task") => {
                let board = id("board_id").map(BoardId).ok_or_else(unusable)?;
                let title = payload
                    .get("title")
                    .and_then(Value::as_str)
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(unusable)?;
                let priority = payload
                    .get("priority")
                    .and_then(Value::as_str)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(TaskPriority::Medium);
                let description = payload.get("description").and_then(Value::as_str);
                let (task, events) = effects::create_task(
                    conn,
                    ctx.org_id,
                    board,
                    title,
                    description,
                    priority,
                    &ctx.actor,
                )
                .await?;
                Ok((
                    Some(json!({ "action": "create_task", "task_id": task.id, "board_id": board })),
                    events,
                ))
            }
            Some(other) => Err(Error::Conflict(
                format!("the suggestion carries an unknown action {other:?}").into(),
            )),
        }
    }

    // ------------------------------------------------------------ agents

    /// The board an agent's report is about: the one named, or its task's (which must
    /// agree), checked to be in the organization.
    async fn board_of(
        conn: &mut PgConnection,
        board: Option<BoardId>,
        task: Option<TaskId>,
    ) -> Result<Option<BoardId>> {
        let mut board = board;
        if let Some(task) = task {
            let t = boards::get_task(conn, task).await?.ok_or_else(|| {
                Error::invalid_field("task_id", "no such task in this organization")
            })?;
            if board.is_some_and(|b| b != t.board_id) {
                return Err(Error::invalid_field("board_id", "is not the task's board"));
            }
            board = Some(t.board_id);
        }
        if let Some(b) = board
            && boards::get_board(conn, b).await?.is_none()
        {
            return Err(Error::invalid_field(
                "board_id",
                "no such board in this organization",
            ));
        }
        Ok(board)
    }

    fn agent_of(ctx: &OrgContext) -> Result<AgentId> {
        ctx.agent_id.ok_or(Error::Forbidden(
            "agent endpoints need an agent's API key".into(),
        ))
    }

    /// `POST /agent/suggestions`: an agent suggests something. A pending suggestion of the
    /// same type about the same subject is returned instead of a second one (`false`).
    pub async fn agent_suggestion(
        &self,
        ctx: &OrgContext,
        input: AgentSuggestionInput,
    ) -> Result<(Suggestion, bool)> {
        let me = Self::agent_of(ctx)?;
        ctx.authorize(Permission::TasksCreate)?;
        let confidence = input.confidence.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&confidence) {
            return Err(Error::invalid_field("confidence", "must be from 0 to 1"));
        }
        let payload = input.payload.unwrap_or_else(|| json!({"action": "none"}));
        actions::check_accept(&payload, "payload", false).map_err(invalid)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let board = Self::board_of(&mut tx, input.board_id, input.task_id).await?;
        let agent = input.agent_id.unwrap_or(me);
        if !boards::missing_agents(&mut tx, &[agent]).await?.is_empty() {
            return Err(Error::invalid_field(
                "agent_id",
                "no such agent in this organization",
            ));
        }
        for key in ["task_id", "board_id", "agent_id"] {
            if let Some(raw) = payload.get(key).and_then(Value::as_str) {
                let exists = match key {
                    "task_id" => boards::get_task(&mut tx, TaskId(raw.parse().unwrap_or_default()))
                        .await?
                        .is_some(),
                    "board_id" => {
                        boards::get_board(&mut tx, BoardId(raw.parse().unwrap_or_default()))
                            .await?
                            .is_some()
                    }
                    _ => {
                        boards::missing_agents(&mut tx, &[AgentId(raw.parse().unwrap_or_default())])
                            .await?
                            .is_empty()
                    }
                };
                if !exists {
                    return Err(Error::invalid_field(
                        format!("payload.{key}"),
                        "not found in this organization",
                    ));
                }
            }
        }
        let subject = match (input.task_id, board) {
            (Some(t), _) => format!("task:{t}"),
            (None, _) if input.agent_id.is_some() => format!("agent:{agent}"),
            (None, Some(b)) => format!("board:{b}"),
            (None, None) => format!("agent:{agent}"),
        };
        let expires = chrono::Duration::from_std(self.config.suggestion_expiry)
            .ok()
            .map(|d| Utc::now() + d);
        let inserted = repo::insert_suggestion(
            &mut tx,
            &repo::NewSuggestion {
                org: ctx.org_id,
                board,
                agent: Some(agent),
                task: input.task_id,
                rule: None,
                suggestion_type: input.suggestion_type,
                title: input.title.as_str(),
                description: input.description.as_ref().map(|d| d.as_str()),
                confidence,
                priority: input.priority.unwrap_or(TaskPriority::Medium),
                payload: &payload,
                subject: Some(&subject),
                source_event: None,
                created_by_type: ctx.actor.kind.as_str(),
                created_by_id: ctx.actor.id,
                expires_at: expires,
            },
        )
        .await?;
        match inserted {
            Some(s) => {
                self.finish(tx, ctx, vec![created_event(&s)]).await?;
                Ok((s, true))
            }
            None => {
                let open = repo::open_suggestion(&mut tx, input.suggestion_type, &subject)
                    .await?
                    .ok_or_else(|| {
                        Error::Conflict("a matching suggestion changed; retry".into())
                    })?;
                tx.commit().await?;
                Ok((open, false))
            }
        }
    }

    /// `POST /agent/events`: an agent reports something (heartbeats feed the idle-agent
    /// rule).
    pub async fn agent_event(&self, ctx: &OrgContext, input: AgentEventInput) -> Result<Event> {
        let me = Self::agent_of(ctx)?;
        if !AGENT_EVENT_TYPES.contains(&input.event_type.as_str()) {
            return Err(Error::invalid_field(
                "event_type",
                format!(
                    "unknown event type {:?}; agents report {}",
                    input.event_type,
                    AGENT_EVENT_TYPES.join(", ")
                ),
            ));
        }
        let payload = input.payload.unwrap_or_else(|| json!({}));
        if !payload.is_object() {
            return Err(Error::invalid_field("payload", "must be an object"));
        }
        if payload.to_string().len() > MAX_AGENT_EVENT_PAYLOAD {
            return Err(Error::PayloadTooLarge(
                format!("payload is over {MAX_AGENT_EVENT_PAYLOAD} bytes").into(),
            ));
        }
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let board = Self::board_of(&mut tx, input.board_id, input.task_id).await?;
        let mut event = NewEvent::new(input.event_type)
            .agent(Some(me))
            .payload(payload);
        if let Some(b) = board {
            event = event.board(b);
        }
        if let Some(t) = input.task_id {
            event = event.task(t);
        }
        let recorded = self.finish(tx, ctx, vec![event]).await?;
        recorded
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("recording an agent event", "nothing was recorded"))
    }
}

/// The `suggestion.updated` event.
pub fn updated_event(s: &Suggestion) -> NewEvent {
    super::engine::suggestion_event("suggestion.updated", s)
}

/// Expires pending suggestions past their time and records `suggestion.updated` for
/// each (the worker's `proactivity.expire_suggestions` job). Returns how many expired.
pub async fn expire_suggestions(pool: &PgPool, bus: &dyn EventBus, limit: i64) -> Result<usize> {
    let mut tx = db::begin_system(pool).await?;
    let expired = repo::expire_due(&mut tx, limit).await?;
    let mut by_org: std::collections::BTreeMap<crate::ids::OrgId, Vec<NewEvent>> =
        Default::default();
    for s in &expired {
        by_org
            .entry(s.organization_id)
            .or_default()
            .push(updated_event(s));
    }
    let actor = crate::identity::context::Actor::system("suggestion expiry");
    let mut recorded = Vec::new();
    for (org, events) in by_org {
        recorded.extend(events::append(&mut tx, org, &actor, events).await?);
    }
    tx.commit().await?;
    bus.publish(&recorded).await;
    Ok(expired.len())
}
