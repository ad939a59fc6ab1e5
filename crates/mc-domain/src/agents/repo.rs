//! Agent persistence: every function takes the caller's (tenant-scoped) connection.

use super::model::*;
use crate::error::Result;
use crate::ids::{AgentId, ApiKeyId, BoardId, GatewayId};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: AgentId,
    name: String,
    board_id: Option<BoardId>,
    gateway_id: Option<GatewayId>,
    openclaw_agent_id: Option<String>,
    session_key: Option<String>,
    status: String,
    last_seen_at: Option<DateTime<Utc>>,
    capabilities: serde_json::Value,
    current_load: i32,
    api_key_id: Option<ApiKeyId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AgentRow> for Agent {
    fn from(r: AgentRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            board_id: r.board_id,
            gateway_id: r.gateway_id,
            openclaw_agent_id: r.openclaw_agent_id,
            session_key: r.session_key,
            status: AgentStatus::parse(&r.status),
            last_seen_at: r.last_seen_at,
            capabilities: r.capabilities,
            current_load: r.current_load,
            api_key_id: r.api_key_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The agent's current key is its newest one that is neither revoked nor expired.
const AGENT_COLUMNS: &str = "id, name, board_id, gateway_id, openclaw_agent_id, session_key, \
    status, last_seen_at, capabilities, current_load, created_at, updated_at, \
    (SELECT k.id FROM api_keys k WHERE k.agent_id = agents.id AND k.revoked_at IS NULL \
       AND (k.expires_at IS NULL OR k.expires_at > now()) \
     ORDER BY k.created_at DESC LIMIT 1) AS api_key_id";

/// The session key the control plane uses unless told otherwise.
pub fn default_session_key(id: AgentId, openclaw_agent_id: Option<&str>) -> String {
    match openclaw_agent_id {
        Some(oc) => format!("agent:{oc}:mc-{id}"),
        None => format!("agent:mc-{id}:main"),
    }
}

/// Fields of a new agent.
#[derive(Debug)]
pub struct NewAgent<'a> {
    /// Id.
    pub id: AgentId,
    /// Name.
    pub name: &'a str,
    /// Board.
    pub board_id: Option<BoardId>,
    /// Gateway.
    pub gateway_id: Option<GatewayId>,
    /// Id inside the gateway.
    pub openclaw_agent_id: Option<&'a str>,
    /// Session key.
    pub session_key: &'a str,
    /// Capability tags.
    pub capabilities: serde_json::Value,
}

/// Inserts an agent of `org`.
pub async fn insert(
    conn: &mut PgConnection,
    org: crate::ids::OrgId,
    new: &NewAgent<'_>,
) -> std::result::Result<Agent, sqlx::Error> {
    let row: AgentRow = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO agents (id, organization_id, name, board_id, gateway_id, openclaw_agent_id,
                             session_key, capabilities)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {AGENT_COLUMNS}"
    )))
    .bind(new.id)
    .bind(org)
    .bind(new.name)
    .bind(new.board_id)
    .bind(new.gateway_id)
    .bind(new.openclaw_agent_id)
    .bind(new.session_key)
    .bind(&new.capabilities)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// One agent.
pub async fn get(conn: &mut PgConnection, id: AgentId) -> Result<Option<Agent>> {
    let row: Option<AgentRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Agents, newest first.
pub async fn list(
    conn: &mut PgConnection,
    filter: &AgentFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Agent>> {
    let (at, id) = after.unzip();
    let rows: Vec<AgentRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {AGENT_COLUMNS} FROM agents
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::uuid IS NULL OR gateway_id = $2)
           AND ($3::uuid IS NULL OR board_id = $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6"
    )))
    .bind(filter.status.map(AgentStatus::as_str))
    .bind(filter.gateway_id)
    .bind(filter.board_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Applies a validated patch; `None` when there is no such agent. Unbinding from a
/// gateway takes the agent offline.
pub async fn update(
    conn: &mut PgConnection,
    id: AgentId,
    u: &UpdateAgent,
    capabilities: Option<serde_json::Value>,
) -> std::result::Result<Option<Agent>, sqlx::Error> {
    let row: Option<AgentRow> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE agents SET
             name = coalesce($2, name),
             board_id = CASE WHEN $3 THEN $4 ELSE board_id END,
             gateway_id = CASE WHEN $5 THEN $6 ELSE gateway_id END,
             openclaw_agent_id = CASE WHEN $7 THEN $8 ELSE openclaw_agent_id END,
             session_key = coalesce($9, session_key),
             capabilities = coalesce($10, capabilities),
             status = CASE WHEN $5 AND $6 IS NULL THEN 'offline' ELSE coalesce($11, status) END
         WHERE id = $1 RETURNING {AGENT_COLUMNS}"
    )))
    .bind(id)
    .bind(u.name.as_ref().map(|n| n.as_str().to_owned()))
    .bind(u.board_id.is_some())
    .bind(u.board_id.flatten())
    .bind(u.gateway_id.is_some())
    .bind(u.gateway_id.flatten())
    .bind(u.openclaw_agent_id.is_some())
    .bind(u.openclaw_agent_id.clone().flatten())
    .bind(u.session_key.as_deref())
    .bind(capabilities)
    .bind(u.status.map(AgentStatus::as_str))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Deletes an agent; `false` when there is none.
pub async fn delete(conn: &mut PgConnection, id: AgentId) -> Result<bool> {
    let done = sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct LinkedRow {
    #[sqlx(flatten)]
    agent: AgentRow,
    inserted: bool,
    came_online: bool,
}

/// Links a gateway's `agents.list` report in two statements whatever its size: creates
/// agents for new OpenClaw ids, brings reported ones back online (busy ones stay busy),
/// takes the gateway's others offline. Returns the agents created and what changed
/// (agents already online are not counted, so a periodic re-sync of an unchanged gateway
/// reports nothing).
pub async fn link_reported(
    conn: &mut PgConnection,
    org: crate::ids::OrgId,
    gateway: GatewayId,
    reported: &[ReportedAgent],
) -> Result<(Vec<Agent>, LinkSummary)> {
    let ids: Vec<AgentId> = reported.iter().map(|_| AgentId::generate()).collect();
    let oc_ids: Vec<&str> = reported
        .iter()
        .map(|a| a.openclaw_agent_id.as_str())
        .collect();
    let names: Vec<&str> = reported.iter().map(|a| a.name.as_str()).collect();
    let keys: Vec<String> = ids
        .iter()
        .zip(&oc_ids)
        .map(|(id, oc)| default_session_key(*id, Some(oc)))
        .collect();
    // `before` reads the rows as they were when the statement began; `xmax = 0` tells a
    // fresh insert from an update of an existing row.
    let rows: Vec<LinkedRow> = sqlx::query_as(AssertSqlSafe(format!(
        "WITH before AS (
             SELECT openclaw_agent_id, status FROM agents WHERE gateway_id = $2
         ), upserted AS (
             INSERT INTO agents (id, organization_id, name, gateway_id, openclaw_agent_id,
                                 session_key, status, last_seen_at)
             SELECT r.id, $1, r.name, $2, r.oc, r.session_key, 'online', now()
             FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[])
                  AS r(id, oc, name, session_key)
             ON CONFLICT (gateway_id, openclaw_agent_id)
                 WHERE gateway_id IS NOT NULL AND openclaw_agent_id IS NOT NULL
             DO UPDATE SET last_seen_at = now(),
                 status = CASE WHEN agents.status IN ('busy', 'online') THEN agents.status
                               ELSE 'online' END
             RETURNING {AGENT_COLUMNS}, (xmax = 0) AS inserted
         )
         SELECT u.*, coalesce(b.status NOT IN ('busy', 'online'), false) AS came_online
         FROM upserted u LEFT JOIN before b ON b.openclaw_agent_id = u.openclaw_agent_id"
    )))
    .bind(org)
    .bind(gateway)
    .bind(&ids)
    .bind(&oc_ids)
    .bind(&names)
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let gone = sqlx::query(
        "UPDATE agents SET status = 'offline'
         WHERE gateway_id = $1 AND status <> 'offline'
           AND (openclaw_agent_id IS NULL OR NOT (openclaw_agent_id = ANY($2)))",
    )
    .bind(gateway)
    .bind(&oc_ids)
    .execute(&mut *conn)
    .await?;
    let mut summary = LinkSummary {
        offline: gone.rows_affected() as u32,
        ..LinkSummary::default()
    };
    let mut created = Vec::new();
    for row in rows {
        if row.inserted {
            summary.created += 1;
            created.push(row.agent.into());
        } else if row.came_online {
            summary.online += 1;
        }
    }
    Ok((created, summary))
}

/// Whether `agent` is bound to `gateway`.
pub async fn is_bound_to(
    conn: &mut PgConnection,
    agent: AgentId,
    gateway: GatewayId,
) -> Result<bool> {
    let bound: Option<bool> =
        sqlx::query_scalar("SELECT true FROM agents WHERE id = $1 AND gateway_id = $2")
            .bind(agent)
            .bind(gateway)
            .fetch_optional(conn)
            .await?;
    Ok(bound.is_some())
}

/// Whether the board and gateway (when given) exist in the caller's organization.
/// Foreign keys alone would accept another organization's rows: they ignore RLS.
pub async fn references_exist(
    conn: &mut PgConnection,
    board: Option<BoardId>,
    gateway: Option<GatewayId>,
) -> Result<(bool, bool)> {
    Ok(sqlx::query_as(
        "SELECT $1::uuid IS NULL OR EXISTS (SELECT 1 FROM boards WHERE id = $1),
                $2::uuid IS NULL OR EXISTS (SELECT 1 FROM gateways WHERE id = $2)",
    )
    .bind(board)
    .bind(gateway)
    .fetch_one(conn)
    .await?)
}
