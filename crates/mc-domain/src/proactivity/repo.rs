//! SQL of rules, suggestions, notifications and the engine's bookkeeping.

use super::model::{Rule, RuleFilter, Suggestion, SuggestionFilter, SuggestionStatus};
use crate::boards::TaskPriority;
use crate::error::Result;
use crate::ids::{AgentId, BoardId, OrgId, RuleId, SuggestionId, TaskId, UserId};
use crate::pagination::TimeKey;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

const RULE_COLUMNS: &str =
    "id, organization_id, board_id, name, description, trigger_event, conditions,
    action_type, action_config, is_enabled, is_builtin, cooldown_seconds,
    (SELECT max(f.fired_at) FROM rule_firings f WHERE f.rule_id = proactive_rules.id) AS last_fired_at,
    created_at, updated_at";

const SUGGESTION_COLUMNS: &str = "id, organization_id, board_id, agent_id, task_id, rule_id,
    suggestion_type, title, description, confidence, priority, status, payload, subject,
    source_event_id, created_by_type, created_by_id, resolved_by_user_id, resolved_at,
    resolution_reason, action_result, expires_at, created_at, updated_at";

/// Everything a new rule row holds.
#[derive(Debug)]
pub struct RuleRow<'a> {
    /// Organization.
    pub org: OrgId,
    /// Board.
    pub board: Option<BoardId>,
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Trigger.
    pub trigger_event: &'a str,
    /// Conditions.
    pub conditions: &'a Value,
    /// Action.
    pub action_type: super::ActionType,
    /// Action config.
    pub action_config: &'a Value,
    /// Cooldown.
    pub cooldown_seconds: i32,
    /// Enabled.
    pub is_enabled: bool,
}

/// Inserts a custom rule.
pub async fn insert_rule(conn: &mut PgConnection, r: &RuleRow<'_>) -> Result<Rule> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO proactive_rules (id, organization_id, board_id, name, description, trigger_event,
             conditions, action_type, action_config, cooldown_seconds, is_enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {RULE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(r.org)
    .bind(r.board)
    .bind(r.name)
    .bind(r.description)
    .bind(r.trigger_event)
    .bind(r.conditions)
    .bind(r.action_type)
    .bind(r.action_config)
    .bind(r.cooldown_seconds)
    .bind(r.is_enabled)
    .fetch_one(conn)
    .await?)
}

/// Replaces a rule's editable columns.
pub async fn save_rule(conn: &mut PgConnection, rule: &Rule) -> Result<Rule> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE proactive_rules SET board_id = $2, name = $3, description = $4, trigger_event = $5,
             conditions = $6, action_type = $7, action_config = $8, cooldown_seconds = $9,
             is_enabled = $10
         WHERE id = $1 RETURNING {RULE_COLUMNS}"
    )))
    .bind(rule.id)
    .bind(rule.board_id)
    .bind(&rule.name)
    .bind(&rule.description)
    .bind(&rule.trigger_event)
    .bind(&rule.conditions)
    .bind(rule.action_type)
    .bind(&rule.action_config)
    .bind(rule.cooldown_seconds)
    .bind(rule.is_enabled)
    .fetch_one(conn)
    .await?)
}

/// A rule, locked for update when `lock`.
pub async fn get_rule(conn: &mut PgConnection, id: RuleId, lock: bool) -> Result<Option<Rule>> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM proactive_rules WHERE id = $1{suffix}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Deletes a custom rule.
pub async fn delete_rule(conn: &mut PgConnection, id: RuleId) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM proactive_rules WHERE id = $1 AND NOT is_builtin")
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Rules of the organization in creation order, after the cursor.
pub async fn list_rules(
    conn: &mut PgConnection,
    filter: &RuleFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<(Vec<Rule>, i64)> {
    let (at, id) = after.map_or((None, None), |k| (Some(k.t), Some(k.id)));
    let rules = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM proactive_rules
         WHERE ($1::boolean IS NULL OR is_enabled = $1) AND ($2::text IS NULL OR trigger_event = $2)
           AND ($3::boolean IS NULL OR is_builtin = $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5))
         ORDER BY created_at, id LIMIT $6"
    )))
    .bind(filter.is_enabled)
    .bind(&filter.trigger_event)
    .bind(filter.is_builtin)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM proactive_rules
         WHERE ($1::boolean IS NULL OR is_enabled = $1) AND ($2::text IS NULL OR trigger_event = $2)
           AND ($3::boolean IS NULL OR is_builtin = $3)",
    )
    .bind(filter.is_enabled)
    .bind(&filter.trigger_event)
    .bind(filter.is_builtin)
    .fetch_one(conn)
    .await?;
    Ok((rules, total))
}

/// Enabled rules of these organizations fired by these event types (system role).
pub async fn enabled_rules(
    conn: &mut PgConnection,
    orgs: &[Uuid],
    triggers: &[String],
) -> Result<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM proactive_rules
         WHERE is_enabled AND organization_id = ANY($1) AND trigger_event = ANY($2)
         ORDER BY created_at, id"
    )))
    .bind(orgs)
    .bind(triggers)
    .fetch_all(conn)
    .await?)
}

/// Where an event's evaluation ended (`rule_event_receipts.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Evaluated against the rules.
    Evaluated,
    /// Kept failing; given up on.
    Poison,
    /// Too old to act on when found.
    Stale,
}

/// Writes receipts for events (`(id, org, seq)`) and returns the ids that had none: those
/// the caller now owns. An event at or below its organization's cursor counts as having
/// one (its receipt may have been pruned), so a late redelivery is not evaluated again.
pub async fn insert_receipts(
    conn: &mut PgConnection,
    events: &[(Uuid, OrgId, i64)],
    outcome: Outcome,
) -> Result<std::collections::HashSet<Uuid>> {
    let outcome = match outcome {
        Outcome::Evaluated => "evaluated",
        Outcome::Poison => "poison",
        Outcome::Stale => "stale",
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO rule_event_receipts (event_id, organization_id, seq, outcome)
         SELECT u.e, u.o, u.s, $4 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(e, o, s)
         WHERE NOT EXISTS (SELECT 1 FROM rule_cursors c
                           WHERE c.organization_id = u.o AND c.evaluated_through >= u.s)
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(events.iter().map(|e| e.0).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.1.0).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.2).collect::<Vec<_>>())
    .bind(outcome)
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect())
}

/// Claims a firing of `rule` for `subject` unless it fired within its cooldown: one
/// conditional upsert, so concurrent engines cannot both fire.
pub async fn claim_firing(conn: &mut PgConnection, rule: &Rule, subject: &str) -> Result<bool> {
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO rule_firings (rule_id, subject, organization_id, fired_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (rule_id, subject) DO UPDATE SET fired_at = now()
         WHERE rule_firings.fired_at <= now() - make_interval(secs => $4)
         RETURNING true",
    )
    .bind(rule.id)
    .bind(subject)
    .bind(rule.organization_id)
    .bind(f64::from(rule.cooldown_seconds))
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

/// A suggestion to insert.
#[derive(Debug)]
pub struct NewSuggestion<'a> {
    /// Organization.
    pub org: OrgId,
    /// Board.
    pub board: Option<BoardId>,
    /// Agent.
    pub agent: Option<AgentId>,
    /// Task.
    pub task: Option<TaskId>,
    /// Rule.
    pub rule: Option<RuleId>,
    /// Kind.
    pub suggestion_type: super::SuggestionType,
    /// Headline.
    pub title: &'a str,
    /// Details.
    pub description: Option<&'a str>,
    /// 0 to 1.
    pub confidence: f64,
    /// Urgency.
    pub priority: TaskPriority,
    /// What accepting does.
    pub payload: &'a Value,
    /// Subject key.
    pub subject: Option<&'a str>,
    /// Source event.
    pub source_event: Option<Uuid>,
    /// Maker's kind.
    pub created_by_type: &'a str,
    /// Maker's id.
    pub created_by_id: Uuid,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts a suggestion unless one is already pending for its type and subject (then
/// `None`).
pub async fn insert_suggestion(
    conn: &mut PgConnection,
    s: &NewSuggestion<'_>,
) -> Result<Option<Suggestion>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO agent_suggestions (id, organization_id, board_id, agent_id, task_id, rule_id,
             suggestion_type, title, description, confidence, priority, payload, subject,
             source_event_id, created_by_type, created_by_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (organization_id, suggestion_type, subject)
             WHERE status = 'pending' AND subject IS NOT NULL DO NOTHING
         RETURNING {SUGGESTION_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(s.org)
    .bind(s.board)
    .bind(s.agent)
    .bind(s.task)
    .bind(s.rule)
    .bind(s.suggestion_type)
    .bind(s.title)
    .bind(s.description)
    .bind(s.confidence)
    .bind(s.priority)
    .bind(s.payload)
    .bind(s.subject)
    .bind(s.source_event)
    .bind(s.created_by_type)
    .bind(s.created_by_id)
    .bind(s.expires_at)
    .fetch_optional(conn)
    .await?)
}

/// The pending suggestion of this type and subject.
pub async fn open_suggestion(
    conn: &mut PgConnection,
    suggestion_type: super::SuggestionType,
    subject: &str,
) -> Result<Option<Suggestion>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUGGESTION_COLUMNS} FROM agent_suggestions
         WHERE suggestion_type = $1 AND subject = $2 AND status = 'pending'"
    )))
    .bind(suggestion_type)
    .bind(subject)
    .fetch_optional(conn)
    .await?)
}

/// A suggestion, locked for update when `lock`.
pub async fn get_suggestion(
    conn: &mut PgConnection,
    id: SuggestionId,
    lock: bool,
) -> Result<Option<Suggestion>> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUGGESTION_COLUMNS} FROM agent_suggestions WHERE id = $1{suffix}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Newest first, after the cursor; with the total matching.
pub async fn list_suggestions(
    conn: &mut PgConnection,
    f: &SuggestionFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<(Vec<Suggestion>, i64)> {
    let (at, id) = after.map_or((None, None), |k| (Some(k.t), Some(k.id)));
    const WHERE: &str = "($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR board_id = $2)
           AND ($3::text IS NULL OR priority = $3) AND ($4::text IS NULL OR suggestion_type = $4)
           AND ($5::uuid IS NULL OR agent_id = $5)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUGGESTION_COLUMNS} FROM agent_suggestions WHERE {WHERE}
           AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
         ORDER BY created_at DESC, id DESC LIMIT $8"
    )))
    .bind(f.status)
    .bind(f.board_id)
    .bind(f.priority)
    .bind(f.suggestion_type)
    .bind(f.agent_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM agent_suggestions WHERE {WHERE}"
    )))
    .bind(f.status)
    .bind(f.board_id)
    .bind(f.priority)
    .bind(f.suggestion_type)
    .bind(f.agent_id)
    .fetch_one(conn)
    .await?;
    Ok((rows, total))
}

/// Records the resolution of a pending suggestion.
pub async fn resolve_suggestion(
    conn: &mut PgConnection,
    id: SuggestionId,
    status: SuggestionStatus,
    by: Option<UserId>,
    reason: Option<&str>,
    result: Option<&Value>,
) -> Result<Suggestion> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE agent_suggestions SET status = $2, resolved_by_user_id = $3, resolved_at = now(),
             resolution_reason = $4, action_result = $5
         WHERE id = $1 RETURNING {SUGGESTION_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(by)
    .bind(reason)
    .bind(result)
    .fetch_one(conn)
    .await?)
}

/// Marks pending suggestions past their expiry as expired (system role), at most `limit`.
pub async fn expire_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<Suggestion>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE agent_suggestions SET status = 'expired', resolved_at = now()
         WHERE id IN (SELECT id FROM agent_suggestions
                      WHERE status = 'pending' AND expires_at <= now()
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {SUGGESTION_COLUMNS}"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A notification to record.
#[derive(Debug)]
pub struct NewNotification<'a> {
    /// Organization.
    pub org: OrgId,
    /// Rule.
    pub rule: RuleId,
    /// Channel.
    pub channel: &'a str,
    /// Recipients.
    pub recipients: &'a [String],
    /// Title.
    pub title: &'a str,
    /// Body.
    pub body: Option<&'a str>,
    /// Subject key.
    pub subject: &'a str,
    /// Source event.
    pub source_event: Uuid,
}

/// Records a notification; returns its id.
pub async fn insert_notification(conn: &mut PgConnection, n: &NewNotification<'_>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (id, organization_id, rule_id, channel, recipients, title, body,
             subject, source_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(n.org)
    .bind(n.rule)
    .bind(n.channel)
    .bind(serde_json::to_value(n.recipients).unwrap_or_default())
    .bind(n.title)
    .bind(n.body)
    .bind(n.subject)
    .bind(n.source_event)
    .execute(conn)
    .await?;
    Ok(id)
}
