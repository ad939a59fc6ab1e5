//! Gateway persistence: every function takes the caller's connection (tenant-scoped
//! unless it says otherwise).

use super::model::*;
use crate::error::Result;
use crate::ids::{GatewayConnectionId, GatewayId, GatewayTokenId, OrgId};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct GatewayRow {
    id: GatewayId,
    organization_id: OrgId,
    name: String,
    url: Option<String>,
    workspace_root: Option<String>,
    version: Option<String>,
    capabilities: serde_json::Value,
    status: String,
    last_heartbeat_at: Option<DateTime<Utc>>,
    connection_info: serde_json::Value,
    auto_registered: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<GatewayRow> for Gateway {
    fn from(r: GatewayRow) -> Self {
        Self {
            id: r.id,
            organization_id: r.organization_id,
            name: r.name,
            url: r.url,
            workspace_root: r.workspace_root,
            version: r.version,
            capabilities: r.capabilities,
            status: GatewayStatus::parse(&r.status),
            last_heartbeat_at: r.last_heartbeat_at,
            connection_info: r.connection_info,
            auto_registered: r.auto_registered,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const GATEWAY_COLUMNS: &str = "id, organization_id, name, url, workspace_root, version, \
    capabilities, status, last_heartbeat_at, connection_info, auto_registered, created_at, \
    updated_at";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: GatewayTokenId,
    name: String,
    token_prefix: String,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    use_count: i32,
    created_at: DateTime<Utc>,
}

impl From<TokenRow> for RegistrationToken {
    fn from(r: TokenRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            token_prefix: r.token_prefix,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            use_count: r.use_count,
            created_at: r.created_at,
        }
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, token_prefix, expires_at, revoked_at, last_used_at, use_count, created_at";

/// Stores a registration token.
#[allow(clippy::too_many_arguments)]
pub async fn insert_token(
    conn: &mut PgConnection,
    id: GatewayTokenId,
    org: OrgId,
    name: &str,
    prefix: &str,
    hash: &str,
    created_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<RegistrationToken> {
    let sql = format!(
        "INSERT INTO gateway_registration_tokens
             (id, organization_id, name, token_prefix, token_hash, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
    );
    let row: TokenRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(org)
        .bind(name)
        .bind(prefix)
        .bind(hash)
        .bind(created_by)
        .bind(expires_at)
        .fetch_one(conn)
        .await?;
    Ok(row.into())
}

/// Registration tokens, newest first.
pub async fn list_tokens(
    conn: &mut PgConnection,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RegistrationToken>> {
    let (at, id) = after.unzip();
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM gateway_registration_tokens
         WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a token; `false` when there is no such token.
pub async fn revoke_token(conn: &mut PgConnection, id: GatewayTokenId) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE gateway_registration_tokens SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Consumes a usable registration token of the scoped organization by hash.
pub async fn use_token(conn: &mut PgConnection, hash: &str) -> Result<Option<GatewayTokenId>> {
    let id = sqlx::query_scalar(
        "UPDATE gateway_registration_tokens
         SET last_used_at = now(), use_count = use_count + 1
         WHERE token_hash = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())
         RETURNING id",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// Fields of a registration.
pub struct Registration<'a> {
    /// Organization.
    pub org: OrgId,
    /// Name.
    pub name: &'a str,
    /// URL.
    pub url: Option<&'a str>,
    /// Workspace root.
    pub workspace_root: Option<&'a str>,
    /// Version.
    pub version: Option<&'a str>,
    /// Capabilities.
    pub capabilities: serde_json::Value,
    /// Hash of the registration token used.
    pub registration_token_hash: &'a str,
    /// Its id.
    pub registration_token_id: GatewayTokenId,
    /// Hash of the new relay token.
    pub relay_token_hash: &'a str,
}

/// Creates the gateway, or (same name) updates it with a fresh relay token. Returns the
/// gateway and whether it is new.
pub async fn upsert_registration(
    conn: &mut PgConnection,
    reg: &Registration<'_>,
) -> Result<(Gateway, bool)> {
    let sql = format!(
        "INSERT INTO gateways (id, organization_id, name, url, workspace_root, version,
                               capabilities, registration_token_hash, registration_token_id,
                               relay_token_hash, auto_registered, connection_info)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true,
                 jsonb_build_object('version', $6::text, 'capabilities', $7::jsonb))
         ON CONFLICT (organization_id, name) DO UPDATE
         SET url = EXCLUDED.url, workspace_root = EXCLUDED.workspace_root,
             version = EXCLUDED.version, capabilities = EXCLUDED.capabilities,
             registration_token_hash = EXCLUDED.registration_token_hash,
             registration_token_id = EXCLUDED.registration_token_id,
             relay_token_hash = EXCLUDED.relay_token_hash,
             previous_relay_token_hash = NULL, previous_relay_token_expires_at = NULL,
             connection_info = gateways.connection_info || EXCLUDED.connection_info
         RETURNING {GATEWAY_COLUMNS}, (xmax = 0) AS inserted"
    );
    #[derive(sqlx::FromRow)]
    struct Out {
        #[sqlx(flatten)]
        gateway: GatewayRow,
        inserted: bool,
    }
    let out: Out = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(GatewayId::generate())
        .bind(reg.org)
        .bind(reg.name)
        .bind(reg.url)
        .bind(reg.workspace_root)
        .bind(reg.version)
        .bind(&reg.capabilities)
        .bind(reg.registration_token_hash)
        .bind(reg.registration_token_id)
        .bind(reg.relay_token_hash)
        .fetch_one(conn)
        .await?;
    Ok((out.gateway.into(), out.inserted))
}

/// Finds a gateway by id across organizations (authentication; no org scope needed).
pub async fn auth_lookup(
    conn: &mut PgConnection,
    id: GatewayId,
) -> Result<Option<(AuthedGateway, String, Option<String>, Option<DateTime<Utc>>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: GatewayId,
        organization_id: OrgId,
        name: String,
        status: String,
        relay_token_hash: String,
        previous_relay_token_hash: Option<String>,
        previous_relay_token_expires_at: Option<DateTime<Utc>>,
    }
    let row: Option<Row> = sqlx::query_as("SELECT * FROM auth_gateway($1)")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| {
        (
            AuthedGateway {
                id: r.id,
                organization_id: r.organization_id,
                name: r.name,
                status: GatewayStatus::parse(&r.status),
            },
            r.relay_token_hash,
            r.previous_relay_token_hash,
            r.previous_relay_token_expires_at,
        )
    }))
}

/// Records an accepted heartbeat unless the previous one is under a second old
/// (`None`: too soon). Returns the status before and after.
pub async fn record_heartbeat(
    conn: &mut PgConnection,
    id: GatewayId,
    status: GatewayStatus,
    metrics: &GatewayMetrics,
    remote_ip: Option<&str>,
) -> Result<Option<(GatewayStatus, GatewayStatus)>> {
    let metrics_json = serde_json::to_value(metrics)
        .map_err(|e| crate::Error::internal("encoding gateway metrics", e))?;
    let row: Option<(String, String)> = sqlx::query_as(
        "WITH before AS (SELECT status FROM gateways WHERE id = $1 FOR UPDATE)
         UPDATE gateways g
         SET status = $2, last_heartbeat_at = now(),
             connection_info = g.connection_info || jsonb_strip_nulls(
                 jsonb_build_object('metrics', $3::jsonb, 'ip', $4::text))
         FROM before
         WHERE g.id = $1
           AND (g.last_heartbeat_at IS NULL OR g.last_heartbeat_at < now() - interval '1 second')
         RETURNING before.status, g.status",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(&metrics_json)
    .bind(remote_ip)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((before, after)) = row else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO gateway_metrics (gateway_id, organization_id, active_sessions, memory_mb,
                                      cpu_pct, agent_count)
         SELECT id, organization_id, $2, $3, $4, $5 FROM gateways WHERE id = $1",
    )
    .bind(id)
    .bind(metrics.active_sessions)
    .bind(metrics.memory_mb)
    .bind(metrics.cpu_pct)
    .bind(metrics.agent_count)
    .execute(&mut *conn)
    .await?;
    Ok(Some((
        GatewayStatus::parse(&before),
        GatewayStatus::parse(&after),
    )))
}

/// Sets a gateway's status; returns the previous one (`None`: no such gateway). Agents
/// of a gateway that goes offline go offline with it.
pub async fn set_status(
    conn: &mut PgConnection,
    id: GatewayId,
    status: GatewayStatus,
) -> Result<Option<GatewayStatus>> {
    let before: Option<String> = sqlx::query_scalar(
        "WITH before AS (SELECT status FROM gateways WHERE id = $1 FOR UPDATE)
         UPDATE gateways g SET status = $2 FROM before WHERE g.id = $1 RETURNING before.status",
    )
    .bind(id)
    .bind(status.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if status == GatewayStatus::Offline {
        agents_offline(conn, &[id]).await?;
    }
    Ok(before.map(|b| GatewayStatus::parse(&b)))
}

/// Marks the agents of these gateways offline.
pub async fn agents_offline(conn: &mut PgConnection, gateways: &[GatewayId]) -> Result<u64> {
    let ids: Vec<Uuid> = gateways.iter().map(|g| g.0).collect();
    let done = sqlx::query(
        "UPDATE agents SET status = 'offline' WHERE gateway_id = ANY($1) AND status <> 'offline'",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// One gateway.
pub async fn get(conn: &mut PgConnection, id: GatewayId) -> Result<Option<Gateway>> {
    let sql = format!("SELECT {GATEWAY_COLUMNS} FROM gateways WHERE id = $1");
    let row: Option<GatewayRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Gateways, newest first.
pub async fn list(
    conn: &mut PgConnection,
    status: Option<GatewayStatus>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Gateway>> {
    let (at, id) = after.unzip();
    let sql = format!(
        "SELECT {GATEWAY_COLUMNS} FROM gateways
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let rows: Vec<GatewayRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(status.map(GatewayStatus::as_str))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Deletes a gateway; `false` when there is none.
pub async fn delete(conn: &mut PgConnection, id: GatewayId) -> Result<bool> {
    agents_offline(conn, &[id]).await?;
    let done = sqlx::query("DELETE FROM gateways WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the relay token, keeping the old one valid until `previous_until`.
pub async fn rotate_relay_token(
    conn: &mut PgConnection,
    id: GatewayId,
    new_hash: &str,
    previous_until: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE gateways SET previous_relay_token_hash = relay_token_hash,
                             previous_relay_token_expires_at = $3, relay_token_hash = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(new_hash)
    .bind(previous_until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Metrics samples, newest first, since `since`.
pub async fn metrics(
    conn: &mut PgConnection,
    id: GatewayId,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<MetricsSample>> {
    let rows: Vec<(DateTime<Utc>, i32, f64, f64, i32)> = sqlx::query_as(
        "SELECT recorded_at, active_sessions, memory_mb, cpu_pct, agent_count
         FROM gateway_metrics
         WHERE gateway_id = $1 AND ($2::timestamptz IS NULL OR recorded_at >= $2)
         ORDER BY recorded_at DESC LIMIT $3",
    )
    .bind(id)
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(recorded_at, s, m, c, a)| MetricsSample {
            recorded_at,
            metrics: GatewayMetrics {
                active_sessions: s,
                memory_mb: m,
                cpu_pct: c,
                agent_count: a,
            },
        })
        .collect())
}

/// Records an opened relay socket. Records of the gateway's older sockets still open are
/// closed as superseded: only one socket per gateway lives, and a relay that was killed
/// never closed its own.
pub async fn open_connection(
    conn: &mut PgConnection,
    gateway: &AuthedGateway,
    instance: &str,
    remote_addr: Option<&str>,
) -> Result<GatewayConnectionId> {
    let id = GatewayConnectionId::generate();
    sqlx::query(
        "UPDATE gateway_connections
         SET disconnected_at = now(), close_reason = 'replaced by a newer connection'
         WHERE gateway_id = $1 AND disconnected_at IS NULL",
    )
    .bind(gateway.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO gateway_connections (id, organization_id, gateway_id, relay_instance, remote_addr)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(gateway.organization_id)
    .bind(gateway.id)
    .bind(instance)
    .bind(remote_addr)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Records a closed relay socket; `false` when it was already closed.
pub async fn close_connection(
    conn: &mut PgConnection,
    id: GatewayConnectionId,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE gateway_connections SET disconnected_at = now(), close_reason = $2
         WHERE id = $1 AND disconnected_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Relay sockets of a gateway, newest first (open ones first when `open_only`).
pub async fn connections(
    conn: &mut PgConnection,
    id: GatewayId,
    open_only: bool,
    limit: i64,
) -> Result<Vec<GatewayConnection>> {
    let rows: Vec<GatewayConnection> = sqlx::query_as(
        "SELECT id, relay_instance, remote_addr, connected_at, disconnected_at, close_reason
         FROM gateway_connections
         WHERE gateway_id = $1 AND (NOT $2 OR disconnected_at IS NULL)
         ORDER BY connected_at DESC LIMIT $3",
    )
    .bind(id)
    .bind(open_only)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Gateways silent for longer than `threshold_secs`, set offline (system role).
pub async fn sweep_offline(
    conn: &mut PgConnection,
    threshold_secs: f64,
) -> Result<Vec<(GatewayId, OrgId, String, GatewayStatus)>> {
    let rows: Vec<(GatewayId, OrgId, String, String)> = sqlx::query_as(
        "WITH stale AS (
             SELECT id, status FROM gateways
             WHERE status IN ('online', 'error', 'pending')
               AND coalesce(last_heartbeat_at, created_at) < now() - make_interval(secs => $1)
             ORDER BY organization_id, id
             FOR UPDATE SKIP LOCKED)
         UPDATE gateways g SET status = 'offline' FROM stale
         WHERE g.id = stale.id
         RETURNING g.id, g.organization_id, g.name, stale.status",
    )
    .bind(threshold_secs)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<GatewayId> = rows.iter().map(|r| r.0).collect();
    agents_offline(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, org, name, before)| (id, org, name, GatewayStatus::parse(&before)))
        .collect())
}

/// Deletes metrics samples older than `days` (system role).
pub async fn prune_metrics(conn: &mut PgConnection, days: i32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM gateway_metrics WHERE recorded_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Closes the connection records a stopped relay instance left open (system role).
pub async fn close_instance_connections(
    conn: &mut PgConnection,
    instance: &str,
    reason: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE gateway_connections SET disconnected_at = now(), close_reason = $2
         WHERE relay_instance = $1 AND disconnected_at IS NULL",
    )
    .bind(instance)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
