//! The event log: an append-only record of every state change, written in the same
//! transaction as the change, numbered per organization without gaps, then published on
//! the event bus after commit. Subscribers that miss anything backfill from here.

pub mod bus;
pub mod feed;
pub mod outbox;
pub mod shared;

pub use bus::{EventBus, MemoryEventBus, RedisEventBus};
pub use feed::{EventFeed, FeedScope};
pub use shared::{SharedFeeds, SharedListener};

use crate::error::{Error, Result};
use crate::identity::context::{Actor, ActorKind, OrgContext};
use crate::identity::permissions::Permission;
use crate::ids::{AgentId, BoardId, OrgId, TaskId};
use crate::pagination::{Page, PageParams};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// One recorded event (seed 000 M8 `SystemEvent`, plus its sequence number and actor).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    /// Unique id.
    pub id: Uuid,
    /// Organization.
    pub organization_id: OrgId,
    /// Position in the organization's log: 1, 2, 3, ... with no gaps.
    pub seq: i64,
    /// Dotted type (`task.created`, `approval.resolved`).
    pub event_type: String,
    /// Board concerned.
    pub board_id: Option<BoardId>,
    /// Agent concerned.
    pub agent_id: Option<AgentId>,
    /// Task concerned.
    pub task_id: Option<TaskId>,
    /// Who acted.
    pub actor: Actor,
    /// Details (the new state of what changed, the changes, ...).
    pub payload: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Dotted type.
    pub event_type: String,
    /// Board concerned.
    pub board_id: Option<BoardId>,
    /// Agent concerned.
    pub agent_id: Option<AgentId>,
    /// Task concerned.
    pub task_id: Option<TaskId>,
    /// Details.
    pub payload: serde_json::Value,
    /// Who acted, when not the appending caller (the outbox forwarder and the rule engine
    /// append many actors' events at once).
    pub actor: Option<Actor>,
}

impl NewEvent {
    /// An event of `event_type` with an empty payload.
    pub fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            board_id: None,
            agent_id: None,
            task_id: None,
            payload: serde_json::Value::Object(Default::default()),
            actor: None,
        }
    }

    /// Sets the actor (instead of the one `append` is given).
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets the board.
    pub fn board(mut self, board: BoardId) -> Self {
        self.board_id = Some(board);
        self
    }

    /// Sets the task.
    pub fn task(mut self, task: TaskId) -> Self {
        self.task_id = Some(task);
        self
    }

    /// Sets the agent.
    pub fn agent(mut self, agent: Option<AgentId>) -> Self {
        self.agent_id = agent;
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
}

/// Checks that an event type is dotted lowercase (`task.created`).
pub fn validate_event_type(event_type: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = event_type.split('.').collect();
    let part_ok = |p: &&str| {
        p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if event_type.len() > 128 || parts.len() < 2 || !parts.iter().all(part_ok) {
        Err("must be dotted lowercase words, like task.created".into())
    } else {
        Ok(())
    }
}

/// Appends `events` for `org` in `tx`, commits, then publishes them on `bus`: the one way
/// a service records a change (publishing only after the commit, so no subscriber sees an
/// event that could still roll back).
pub async fn commit_with(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    bus: &dyn EventBus,
    org: OrgId,
    actor: &Actor,
    events: Vec<NewEvent>,
) -> Result<Vec<Event>> {
    let recorded = append(&mut tx, org, actor, events).await?;
    tx.commit().await?;
    bus.publish(&recorded).await;
    Ok(recorded)
}

/// Appends events in the caller's transaction (scoped to `org`) and returns them with
/// their sequence numbers. The counter row stays locked until the transaction ends, so
/// sequence order is commit order within the organization.
pub async fn append(
    conn: &mut PgConnection,
    org: OrgId,
    actor: &Actor,
    events: Vec<NewEvent>,
) -> Result<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO org_event_seq (organization_id, last_seq) VALUES ($1, $2)
         ON CONFLICT (organization_id) DO UPDATE SET last_seq = org_event_seq.last_seq + $2
         RETURNING last_seq",
    )
    .bind(org)
    .bind(count)
    .fetch_one(&mut *conn)
    .await?;
    let now = Utc::now();
    let first = last - count + 1;
    let out: Vec<Event> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| Event {
            id: Uuid::now_v7(),
            organization_id: org,
            seq: first + i as i64,
            event_type: e.event_type,
            board_id: e.board_id,
            agent_id: e.agent_id,
            task_id: e.task_id,
            actor: e.actor.unwrap_or_else(|| actor.clone()),
            payload: e.payload,
            created_at: now,
        })
        .collect();
    sqlx::query(
        "INSERT INTO agent_events (id, organization_id, seq, board_id, agent_id, task_id, event_type,
                                   actor_type, actor_id, actor_name, payload, created_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[],
                              $6::uuid[], $7::text[], $8::text[], $9::uuid[], $10::text[],
                              $11::jsonb[], $12::timestamptz[])",
    )
    .bind(out.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.organization_id.0).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.seq).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.board_id.map(|b| b.0)).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.agent_id.map(|a| a.0)).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.task_id.map(|t| t.0)).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.event_type.clone()).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.actor.kind.as_str().to_owned()).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.actor.id).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.actor.name.clone()).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.payload.clone()).collect::<Vec<_>>())
    .bind(out.iter().map(|e| e.created_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(out)
}

/// Filters of the event list, SSE and replay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this board.
    pub board_id: Option<BoardId>,
    /// Only events of this task.
    pub task_id: Option<TaskId>,
    /// Only events concerning this agent.
    pub agent_id: Option<AgentId>,
    /// Only events by this actor (user, agent or key id).
    pub actor_id: Option<Uuid>,
    /// Comma-separated types or patterns: `task.created`, `task.*`, `*`.
    pub event_type: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Parsed type filter: exact names and prefixes (from `a.*` patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl TypeFilter {
    /// Parses a comma-separated list of types and patterns.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let mut filter = TypeFilter::default();
        let Some(raw) = raw else { return Ok(filter) };
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                return Ok(TypeFilter::default());
            }
            if let Some(prefix) = item.strip_suffix('*') {
                // `task.*`, `task.dependency_*`, `task*`: a prefix of dotted lowercase words.
                let well_formed = prefix.starts_with(|c: char| c.is_ascii_lowercase())
                    && !prefix.contains("..")
                    && prefix.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'
                    });
                if !well_formed {
                    return Err(Error::invalid_field(
                        "event_type",
                        format!("{item:?} is not a type pattern like task.*"),
                    ));
                }
                filter.prefixes.push(prefix.to_owned());
            } else {
                validate_event_type(item)
                    .map_err(|m| Error::invalid_field("event_type", format!("{item:?} {m}")))?;
                filter.exact.push(item.to_owned());
            }
        }
        Ok(filter)
    }

    /// Whether `event_type` passes.
    pub fn matches(&self, event_type: &str) -> bool {
        (self.exact.is_empty() && self.prefixes.is_empty())
            || self.exact.iter().any(|e| e == event_type)
            || self
                .prefixes
                .iter()
                .any(|p| event_type.starts_with(p.as_str()))
    }
}

/// A filter ready to apply to stored and live events.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    filter: EventFilter,
    types: TypeFilter,
}

impl CompiledFilter {
    /// Validates a filter.
    pub fn new(filter: EventFilter) -> Result<Self> {
        let types = TypeFilter::parse(filter.event_type.as_deref())?;
        if let (Some(a), Some(b)) = (filter.since, filter.until)
            && a > b
        {
            return Err(Error::invalid_field("until", "must not be before since"));
        }
        Ok(Self { filter, types })
    }

    /// Whether a live event passes.
    pub fn matches(&self, e: &Event) -> bool {
        let f = &self.filter;
        f.board_id.is_none_or(|b| e.board_id == Some(b))
            && f.task_id.is_none_or(|t| e.task_id == Some(t))
            && f.agent_id.is_none_or(|a| e.agent_id == Some(a))
            && f.actor_id.is_none_or(|a| e.actor.id == a)
            && f.since.is_none_or(|t| e.created_at >= t)
            && f.until.is_none_or(|t| e.created_at < t)
            && self.types.matches(&e.event_type)
    }
}

/// A stored event row (read by the rule engine's catch-up scan too).
#[derive(FromRow)]
pub(crate) struct EventRow {
    id: Uuid,
    organization_id: OrgId,
    seq: i64,
    event_type: String,
    board_id: Option<BoardId>,
    agent_id: Option<AgentId>,
    task_id: Option<TaskId>,
    actor_type: String,
    actor_id: Uuid,
    actor_name: String,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        let kind = match r.actor_type.as_str() {
            "user" => ActorKind::User,
            "agent" => ActorKind::Agent,
            "api_key" => ActorKind::ApiKey,
            "h5_user" => ActorKind::H5User,
            _ => ActorKind::System,
        };
        Event {
            id: r.id,
            organization_id: r.organization_id,
            seq: r.seq,
            event_type: r.event_type,
            board_id: r.board_id,
            agent_id: r.agent_id,
            task_id: r.task_id,
            actor: Actor {
                kind,
                id: r.actor_id,
                name: r.actor_name,
            },
            payload: r.payload,
            created_at: r.created_at,
        }
    }
}

/// Direction of a query over the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// Columns of [`EventRow`], in order.
pub(crate) const EVENT_COLUMNS: &str =
    "id, organization_id, seq, event_type, board_id, agent_id, task_id, actor_type,
    actor_id, actor_name, payload, created_at";

async fn query(
    conn: &mut PgConnection,
    filter: &CompiledFilter,
    bound: Option<i64>,
    upto: Option<i64>,
    order: Order,
    limit: i64,
) -> Result<Vec<Event>> {
    let f = &filter.filter;
    // The two directions differ only in the bound's comparison and the order.
    let (after, direction) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM agent_events
         WHERE ($1::bigint IS NULL OR seq {after} $1) AND ($11::bigint IS NULL OR seq <= $11)
           AND ($2::uuid IS NULL OR board_id = $2) AND ($3::uuid IS NULL OR task_id = $3)
           AND ($4::uuid IS NULL OR agent_id = $4) AND ($5::uuid IS NULL OR actor_id = $5)
           AND ($6::timestamptz IS NULL OR created_at >= $6)
           AND ($7::timestamptz IS NULL OR created_at < $7)
           AND ((cardinality($8::text[]) = 0 AND cardinality($9::text[]) = 0)
                OR event_type = ANY($8)
                OR EXISTS (SELECT 1 FROM unnest($9::text[]) p WHERE starts_with(event_type, p)))
         ORDER BY seq {direction} LIMIT $10"
    );
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(bound)
        .bind(f.board_id)
        .bind(f.task_id)
        .bind(f.agent_id)
        .bind(f.actor_id)
        .bind(f.since)
        .bind(f.until)
        .bind(&filter.types.exact)
        .bind(&filter.types.prefixes)
        .bind(limit)
        .bind(upto)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `GET /events`: newest first, cursor on seq.
pub async fn list(
    pool: &PgPool,
    ctx: &OrgContext,
    filter: EventFilter,
    page: &PageParams,
) -> Result<Page<Event>> {
    ctx.authorize(Permission::EventsRead)?;
    let filter = CompiledFilter::new(filter)?;
    let page = page.parse::<i64>()?;
    let mut tx = crate::db::begin_org(pool, ctx.org_id).await?;
    let rows = query(
        &mut tx,
        &filter,
        page.after,
        None,
        Order::NewestFirst,
        page.fetch_limit(),
    )
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, page.limit, |e| e.seq))
}

/// Events with `after_seq < seq <= upto`, oldest first (replay for streams and board sync).
pub async fn replay(
    pool: &PgPool,
    org: OrgId,
    filter: &CompiledFilter,
    after_seq: i64,
    upto: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    let mut tx = crate::db::begin_org(pool, org).await?;
    let rows = query(
        &mut tx,
        filter,
        Some(after_seq),
        upto,
        Order::OldestFirst,
        limit,
    )
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// The organization's latest sequence number (0 before its first event).
pub async fn latest_seq(pool: &PgPool, org: OrgId) -> Result<i64> {
    let mut tx = crate::db::begin_org(pool, org).await?;
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM org_event_seq WHERE organization_id = $1")
            .bind(org)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(seq.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_patterns() {
        let f = TypeFilter::parse(Some("task.*, approval.resolved")).unwrap();
        assert!(f.matches("task.created"));
        assert!(f.matches("task.status_changed"));
        assert!(!f.matches("taskx.created"));
        assert!(f.matches("approval.resolved"));
        assert!(!f.matches("approval.requested"));
        let deps = TypeFilter::parse(Some("task.dependency_*")).unwrap();
        assert!(deps.matches("task.dependency_added") && !deps.matches("task.created"));
        assert!(
            TypeFilter::parse(Some("*"))
                .unwrap()
                .matches("anything.at_all")
        );
        assert!(TypeFilter::parse(None).unwrap().matches("x.y"));
        for bad in [
            "Task.Created",
            "drop table",
            "a",
            "a..b",
            "task.*.x",
            "***",
            "*.x*",
        ] {
            assert!(TypeFilter::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_are_dotted_lowercase() {
        assert!(validate_event_type("task.created").is_ok());
        assert!(validate_event_type("cron.hourly").is_ok());
        assert!(validate_event_type("x").is_err());
        assert!(validate_event_type("Task.created").is_err());
        assert!(validate_event_type("task.").is_err());
    }
}
