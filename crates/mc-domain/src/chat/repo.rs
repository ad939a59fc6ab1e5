//! H5 chat persistence. Every function runs in the caller's organization-scoped
//! transaction, so row-level security applies.

use super::model::{AgentRoute, ChatMessage, ChatRole, ChatSession, MessageStatus, SessionCursor};
use crate::error::Result;
use crate::ids::{AgentId, ChatMessageId, ChatSessionId, GatewayId, H5UserId, OrgId};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};

const SESSION_COLUMNS: &str = "s.id, s.h5_user_id, s.agent_id, a.name AS agent_name, s.gateway_id,
     s.session_key, s.status, s.last_seq, s.last_message_at, s.created_at";

const MESSAGE_COLUMNS: &str =
    "id, session_id, seq, role, content, client_message_id, run_id, status, created_at";

#[derive(FromRow)]
struct RouteRow {
    organization_id: crate::ids::OrgId,
    id: AgentId,
    name: String,
    gateway_id: Option<GatewayId>,
    openclaw_agent_id: Option<String>,
    board_id: crate::ids::BoardId,
    board_name: String,
}

impl From<RouteRow> for AgentRoute {
    fn from(r: RouteRow) -> Self {
        AgentRoute {
            org_id: r.organization_id,
            agent_id: r.id,
            agent_name: r.name,
            gateway_id: r.gateway_id,
            openclaw_agent_id: r.openclaw_agent_id,
            board_id: r.board_id,
            board_name: r.board_name,
        }
    }
}

const ROUTES: &str = "SELECT a.organization_id, a.id, a.name, a.gateway_id, a.openclaw_agent_id,
            x.board_id, b.name AS board_name
     FROM h5_user_agent_assignments x
     JOIN agents a ON a.id = x.agent_id JOIN boards b ON b.id = x.board_id
     WHERE x.h5_user_id = $1";

/// The agent `user` may talk to, with its gateway binding; `None` when the user is not
/// assigned to it (or it belongs to another organization, which RLS hides).
pub async fn assigned_route(
    exec: impl PgExecutor<'_>,
    user: H5UserId,
    agent: AgentId,
) -> Result<Option<AgentRoute>> {
    let sql = format!("{ROUTES} AND x.agent_id = $2");
    let row: Option<RouteRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(agent)
        .fetch_optional(exec)
        .await?;
    Ok(row.map(AgentRoute::from))
}

/// Every agent `user` is assigned to, with its gateway binding.
pub async fn assigned_routes(exec: impl PgExecutor<'_>, user: H5UserId) -> Result<Vec<AgentRoute>> {
    let rows: Vec<RouteRow> = sqlx::query_as(ROUTES).bind(user).fetch_all(exec).await?;
    Ok(rows.into_iter().map(AgentRoute::from).collect())
}

/// One session of the organization.
pub async fn get_session(
    exec: impl PgExecutor<'_>,
    id: ChatSessionId,
) -> Result<Option<ChatSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM h5_chat_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.id = $1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(exec)
        .await?)
}

/// The user's active session with the agent.
pub async fn active_session(
    exec: impl PgExecutor<'_>,
    user: H5UserId,
    agent: AgentId,
) -> Result<Option<ChatSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM h5_chat_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.h5_user_id = $1 AND s.agent_id = $2 AND s.status = 'active'"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(agent)
        .fetch_optional(exec)
        .await?)
}

/// A new active session, or nothing when a concurrent request created one first.
pub async fn insert_session(
    exec: impl PgExecutor<'_>,
    route: &AgentRoute,
    user: H5UserId,
    id: ChatSessionId,
    gateway: GatewayId,
    session_key: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO h5_chat_sessions (id, organization_id, h5_user_id, agent_id, gateway_id,
                                       session_key)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (h5_user_id, agent_id) WHERE status = 'active' DO NOTHING",
    )
    .bind(id)
    .bind(route.org_id)
    .bind(user)
    .bind(route.agent_id)
    .bind(gateway)
    .bind(session_key)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a session to the agent's current gateway (the old gateway's OpenClaw session
/// stays behind).
pub async fn rebind_session(
    exec: impl PgExecutor<'_>,
    id: ChatSessionId,
    gateway: GatewayId,
    session_key: &str,
) -> Result<()> {
    sqlx::query("UPDATE h5_chat_sessions SET gateway_id = $2, session_key = $3 WHERE id = $1")
        .bind(id)
        .bind(gateway)
        .bind(session_key)
        .execute(exec)
        .await?;
    Ok(())
}

/// A message to append.
pub struct NewMessage<'a> {
    /// Whose session it is (row-level security is scoped to it while it is stored).
    pub org: OrgId,
    /// Session.
    pub session: ChatSessionId,
    /// Author.
    pub role: ChatRole,
    /// Text.
    pub content: &'a str,
    /// Idempotency id within the session.
    pub client_message_id: &'a str,
    /// Gateway run.
    pub run_id: Option<&'a str>,
    /// Initial status.
    pub status: MessageStatus,
    /// The gateway a user message is handed to, checked (migration 0016); `None` for a
    /// reply.
    pub gateway: Option<GatewayId>,
}

/// Appends `messages` in one statement (migration 0016), in the order given (sort them
/// by organization and session: see migrations 0012 and 0016). A client id already stored
/// in the session, or repeated earlier in `messages`, gives the stored message with
/// `duplicate`. Each result is `(index into messages, stored message, duplicate)`; a
/// message whose session does not exist has none, nor has one naming a gateway it may not
/// be sent to (the session is closed or elsewhere, the agent moved, or the user is no
/// longer assigned to it). `event_content`: the outbox events carry the text.
///
/// Row-level security is scoped to each message's organization by the statement itself,
/// so outside a transaction it is one round trip that commits before it returns (sqlx
/// reads a result to the end, past the commit, before handing it over).
pub async fn append_many(
    exec: impl PgExecutor<'_>,
    messages: &[NewMessage<'_>],
    event_content: bool,
) -> Result<Vec<(usize, ChatMessage, bool)>> {
    #[derive(FromRow)]
    struct Row {
        ord: i32,
        id: ChatMessageId,
        seq: i64,
        status: MessageStatus,
        run_id: Option<String>,
        created_at: DateTime<Utc>,
        content: String,
        duplicate: bool,
    }
    let orgs: Vec<OrgId> = messages.iter().map(|m| m.org).collect();
    let ids: Vec<ChatMessageId> = messages.iter().map(|_| ChatMessageId::generate()).collect();
    let sessions: Vec<ChatSessionId> = messages.iter().map(|m| m.session).collect();
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    let contents: Vec<&str> = messages.iter().map(|m| m.content).collect();
    let client_ids: Vec<&str> = messages.iter().map(|m| m.client_message_id).collect();
    let runs: Vec<Option<&str>> = messages.iter().map(|m| m.run_id).collect();
    let statuses: Vec<&str> = messages.iter().map(|m| m.status.as_str()).collect();
    let gateways: Vec<Option<GatewayId>> = messages.iter().map(|m| m.gateway).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT ord, id, seq, status, run_id, created_at, content, duplicate
         FROM h5_chat_store_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&orgs)
    .bind(&ids)
    .bind(&sessions)
    .bind(&roles)
    .bind(&contents)
    .bind(&client_ids)
    .bind(&runs)
    .bind(&statuses)
    .bind(&gateways)
    .bind(event_content)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let index = usize::try_from(r.ord).ok()?.checked_sub(1)?;
            let new = messages.get(index)?;
            let message = ChatMessage {
                id: r.id,
                session_id: new.session,
                seq: r.seq,
                role: new.role,
                content: r.content,
                client_message_id: new.client_message_id.to_owned(),
                run_id: r.run_id,
                status: r.status,
                created_at: r.created_at,
            };
            Some((index, message, r.duplicate))
        })
        .collect())
}

/// Records that gateways accepted these user messages, each with the run it started.
pub async fn set_messages_sent(
    exec: impl PgExecutor<'_>,
    ids: &[ChatMessageId],
    runs: &[Option<&str>],
) -> Result<()> {
    sqlx::query(
        "UPDATE h5_chat_messages m SET status = 'sent', run_id = coalesce(u.run, m.run_id)
         FROM unnest($1::uuid[], $2::text[]) AS u(id, run) WHERE m.id = u.id",
    )
    .bind(ids)
    .bind(runs)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records the outcome of handing a user message to the gateway.
pub async fn set_message_status(
    exec: impl PgExecutor<'_>,
    id: ChatMessageId,
    status: MessageStatus,
    run_id: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE h5_chat_messages SET status = $2, run_id = coalesce($3, run_id) WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(run_id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Messages of a session with seq in `(after, after + limit]`, oldest first.
pub async fn messages_after(
    exec: impl PgExecutor<'_>,
    session: ChatSessionId,
    after: i64,
    limit: i64,
) -> Result<Vec<ChatMessage>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM h5_chat_messages
         WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(session)
        .bind(after)
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// Messages of a session with seq below `before` (all when `None`), newest first.
pub async fn messages_before(
    exec: impl PgExecutor<'_>,
    session: ChatSessionId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ChatMessage>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM h5_chat_messages
         WHERE session_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(session)
        .bind(before)
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// A user's sessions, most recent activity first, after the `(last activity, id)` key.
pub async fn sessions_of_user(
    exec: impl PgExecutor<'_>,
    user: H5UserId,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<ChatSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM h5_chat_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.h5_user_id = $1
           AND ($2::timestamptz IS NULL
                OR (coalesce(s.last_message_at, s.created_at), s.id) < ($2, $3))
         ORDER BY coalesce(s.last_message_at, s.created_at) DESC, s.id DESC LIMIT $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// Where each of a user's sessions stands (the baseline of a new socket).
pub async fn session_cursors(
    exec: impl PgExecutor<'_>,
    user: H5UserId,
) -> Result<Vec<SessionCursor>> {
    Ok(
        sqlx::query_as("SELECT id, agent_id, last_seq FROM h5_chat_sessions WHERE h5_user_id = $1")
            .bind(user)
            .fetch_all(exec)
            .await?,
    )
}

/// Active sessions on a gateway, most recent activity first.
pub async fn sessions_on_gateway(
    exec: impl PgExecutor<'_>,
    gateway: GatewayId,
    limit: i64,
) -> Result<Vec<ChatSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM h5_chat_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.gateway_id = $1 AND s.status = 'active'
         ORDER BY s.last_message_at DESC NULLS LAST, s.id DESC LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(gateway)
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// A user message no gateway has accepted yet.
#[derive(Debug, FromRow)]
pub struct Unsent {
    /// Organization.
    pub organization_id: crate::ids::OrgId,
    /// The message (its id is the gateway's idempotency key).
    #[sqlx(flatten)]
    pub message: ChatMessage,
}

/// User messages still `received` (never accepted by a gateway) stored between `older`
/// and `newer` ago, across organizations (system transaction), oldest first.
pub async fn unsent_messages(
    exec: impl PgExecutor<'_>,
    newer: chrono::Duration,
    older: chrono::Duration,
    limit: i64,
) -> Result<Vec<Unsent>> {
    let sql = format!(
        "SELECT organization_id, {MESSAGE_COLUMNS} FROM h5_chat_messages
         WHERE status = 'received' AND created_at < now() - $1 AND created_at > now() - $2
         ORDER BY created_at LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(newer)
        .bind(older)
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// The sessions with these ids.
pub async fn sessions_by_id(
    exec: impl PgExecutor<'_>,
    ids: &[ChatSessionId],
) -> Result<Vec<ChatSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM h5_chat_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.id = ANY($1)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(exec)
        .await?)
}
