//! H5 chat service logic (seed 000 M4 MessageRouter): a user message is checked against
//! the user's assignments, stored with the session's next seq (and a `chat.message_sent`
//! event) before anything else happens, announced to the user's sockets, and handed to
//! the agent's gateway as `chat.send` with the message id as its `idempotencyKey`, so a
//! retry never runs twice. The gateway's `chat` events come back through whichever relay
//! holds its socket: deltas go straight to the user's sockets, the final reply is stored
//! (once per run, with `chat.reply_completed`) and then announced.

use super::appender::{Append, Appender};
use super::live::ChatHub;
use super::model::{
    Accepted, AgentRoute, ChatDelivery, ChatMessage, ChatOpening, ChatRole, ChatSession,
    GatewayChatEvent, GatewayChatSession, GatewayLive, H5UserLive, MessageStatus, RunState,
    SendChat, SessionCursor,
};
use super::repo;
use crate::config::ChatConfig;
use crate::error::{Error, Result};
use crate::gateways::AuthedGateway;
use crate::gateways::router::{CallOutcome, GatewayRouter};
use crate::identity::{H5Context, OrgContext, Permission};
use crate::ids::{AgentId, ChatMessageId, ChatSessionId, GatewayId, H5UserId, OrgId};
use crate::pagination::{Page, PageParams, TimeKey};
use crate::{db, identity};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Entries kept in each in-memory cache before it is cleared.
const CACHE_LIMIT: usize = 100_000;
/// Longest client message id.
const MAX_CLIENT_ID: usize = 128;
/// Messages read per page when a socket catches up.
pub const CATCH_UP_PAGE: i64 = 500;

/// What a session's events and deliveries name (cached for routing a gateway's events).
#[derive(Debug, Clone, Copy)]
struct SessionOwner {
    session: ChatSessionId,
    user: H5UserId,
    agent: AgentId,
    gateway: GatewayId,
}

impl From<&ChatSession> for SessionOwner {
    fn from(s: &ChatSession) -> Self {
        Self {
            session: s.id,
            user: s.h5_user_id,
            agent: s.agent_id,
            gateway: s.gateway_id,
        }
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct ChatService {
    pool: PgPool,
    router: GatewayRouter,
    hub: ChatHub,
    config: Arc<ChatConfig>,
    call_timeout: Duration,
    /// Agents' routes as last read. Kept until the database refuses a message sent
    /// along one (the append checks the assignment and gateway in the same statement).
    routes: Arc<Mutex<HashMap<(H5UserId, AgentId), AgentRoute>>>,
    owners: Arc<Mutex<HashMap<ChatSessionId, SessionOwner>>>,
    /// The user's active session with an agent, as last used; checked like `routes`.
    sessions: Arc<Mutex<HashMap<(H5UserId, AgentId), ChatSession>>>,
    /// Messages a gateway accepted, recorded as `sent` in batches by [`record_sent`].
    sent: mpsc::Sender<SentMark>,
    /// Stores messages, many per commit.
    appender: Appender,
    /// User messages held for each gateway, bounded.
    backlog: Backlog,
}

/// A routed gateway chat event: resolves (once stored, for a final) to the delivery to
/// announce to a user, if any.
pub type RoutedEvent =
    futures::future::BoxFuture<'static, Result<Option<(H5UserId, ChatDelivery)>>>;

/// A user message the gateway accepted, with the run it started.
#[derive(Debug)]
struct SentMark {
    org: OrgId,
    message: ChatMessageId,
    run: Option<String>,
}

/// Marks queued for [`record_sent`] before a dispatch waits for room.
const SENT_QUEUE: usize = 16_384;
/// Marks written per transaction at most.
const SENT_BATCH: usize = 1024;
/// How long marks gather before they are written. Nothing waits for them (only the sweep
/// reads them, after 10 s); written as they came, they cost a transaction per message or
/// two at 1,000 messages/s (a fifth of PostgreSQL's time in the h5 benchmark).
const SENT_GATHER: Duration = Duration::from_millis(200);

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService").finish_non_exhaustive()
    }
}

/// Query of `GET /h5/chat/sessions/{id}/messages`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages after this seq, oldest first (catching up); without it, newest first.
    pub after_seq: Option<i64>,
}

/// Cursor of message pages.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SeqKey {
    seq: i64,
}

/// The session key of an H5 conversation with an OpenClaw agent.
pub fn session_key(openclaw_agent_id: &str, session: ChatSessionId) -> String {
    format!("agent:{openclaw_agent_id}:h5-{session}")
}

/// The H5 session a gateway session key belongs to, if it is one of ours.
pub fn session_of_key(key: &str) -> Option<ChatSessionId> {
    key.rsplit_once(":h5-")?.1.parse().ok()
}

impl ChatService {
    /// A service over the database, the gateway router and the live hub.
    pub fn new(
        pool: PgPool,
        router: GatewayRouter,
        hub: ChatHub,
        config: ChatConfig,
        call_timeout: Duration,
    ) -> Self {
        let (sent, marks) = mpsc::channel(SENT_QUEUE);
        tokio::spawn(record_sent(pool.clone(), marks));
        let appender = Appender::start(pool.clone(), config.event_include_content);
        Self {
            pool,
            router,
            hub,
            config: Arc::new(config),
            call_timeout,
            routes: Arc::default(),
            owners: Arc::default(),
            sessions: Arc::default(),
            sent,
            appender,
            backlog: Backlog::default(),
        }
    }

    /// The live hub (subscriptions and presence).
    pub fn hub(&self) -> &ChatHub {
        &self.hub
    }

    /// Where `agent` is reached, if `user` is assigned to it. A route with a gateway is
    /// kept until a message sent along it is refused (see [`send`](Self::send)); one
    /// without is read again next time, so an agent that gets linked is reachable at once.
    pub async fn route(&self, user: &H5Context, agent: AgentId) -> Result<AgentRoute> {
        let key = (user.user_id, agent);
        if let Some(route) = self.routes.lock().expect("routes lock").get(&key) {
            return Ok(route.clone());
        }
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let route = repo::assigned_route(&mut *tx, user.user_id, agent).await?;
        tx.commit().await?;
        let route =
            route.ok_or_else(|| Error::Forbidden("you are not assigned to this agent".into()))?;
        if route.gateway_id.is_some() && route.openclaw_agent_id.is_some() {
            let mut routes = self.routes.lock().expect("routes lock");
            if routes.len() >= CACHE_LIMIT {
                routes.clear();
            }
            routes.insert(key, route.clone());
        }
        Ok(route)
    }

    /// Drops what is cached about the user's conversation with the agent.
    fn forget_conversation(&self, user: H5UserId, agent: AgentId) {
        self.routes
            .lock()
            .expect("routes lock")
            .remove(&(user, agent));
        self.sessions
            .lock()
            .expect("sessions lock")
            .remove(&(user, agent));
    }

    fn remember_owner(&self, session: &ChatSession) {
        let mut owners = self.owners.lock().expect("owners lock");
        if owners.len() >= CACHE_LIMIT {
            owners.clear();
        }
        owners.insert(session.id, SessionOwner::from(session));
    }

    /// Validates and stores a user message (see the module documentation); a retry with
    /// the same client id returns the stored message with `duplicate`. `RateLimited`
    /// means one thing here: the gateway's backlog on this instance is full
    /// (`CHAT_MAX_BACKLOG_PER_GATEWAY`) and nothing was stored.
    pub async fn send(&self, user: &H5Context, mut input: SendChat) -> Result<Accepted> {
        if input.content.trim().is_empty() {
            return Err(Error::invalid_field("content", "must not be empty"));
        }
        if input.content.chars().count() > self.config.max_message_chars {
            return Err(Error::PayloadTooLarge(
                format!(
                    "content is longer than {} characters (CHAT_MAX_MESSAGE_CHARS)",
                    self.config.max_message_chars
                )
                .into(),
            ));
        }
        let client_id = match input.client_message_id.take() {
            Some(id) if id.is_empty() || id.len() > MAX_CLIENT_ID => {
                return Err(Error::invalid_field(
                    "id",
                    format!("a message id is 1 to {MAX_CLIENT_ID} bytes"),
                ));
            }
            Some(id) => id,
            None => uuid::Uuid::now_v7().to_string(),
        };
        // What is cached is used as it is: the append refuses the message if the user was
        // unassigned, the agent moved or the session closed since. Then the route and
        // session are read again and the message appended once more.
        let mut stored = None;
        for cached in [true, false] {
            if !cached {
                self.forget_conversation(user.user_id, input.agent_id);
            }
            let (session, append) = self.prepare_append(user, &input, &client_id).await?;
            // Refused before anything is stored: the client keeps the message and sends
            // it again (RATE_LIMITED), so a slow gateway bounds what waits for it here.
            let slot = self
                .backlog
                .take(session.gateway_id, self.config.max_backlog_per_gateway)
                .ok_or(Error::RateLimited {
                    retry_after_secs: 1,
                })?;
            if let Some((message, duplicate)) = self.appender.append(append).await? {
                stored = Some((session, message, duplicate, slot));
                break;
            }
        }
        let Some((session, message, duplicate, slot)) = stored else {
            self.forget_conversation(user.user_id, input.agent_id);
            return Err(Error::NotFound {
                resource: "chat session",
            });
        };
        self.remember_owner(&session);
        if !duplicate {
            // Other devices (and this socket, which also delivers it itself) learn of it
            // without holding up the hand-over to the gateway.
            let (chat, owner) = (self.clone(), user.user_id);
            let delivery = ChatDelivery::Message {
                agent_id: session.agent_id,
                message: message.clone(),
            };
            tokio::spawn(async move { chat.announce(owner, &delivery).await });
        }
        Ok(Accepted {
            session,
            message,
            duplicate,
            backlog: Some(slot),
        })
    }

    /// The session a user message goes to (cached, or read and cached) and the append
    /// that stores it there, naming the gateway it will be handed to.
    async fn prepare_append(
        &self,
        user: &H5Context,
        input: &SendChat,
        client_id: &str,
    ) -> Result<(ChatSession, Append)> {
        let route = self.route(user, input.agent_id).await?;
        let (Some(gateway), Some(openclaw_id)) = (route.gateway_id, &route.openclaw_agent_id)
        else {
            return Err(Error::unavailable("this agent is not linked to a gateway"));
        };
        let key = (user.user_id, input.agent_id);
        let session = match self.cached_session(key, input.session_id, gateway) {
            Some(session) => session,
            None => {
                // Found (or created) in its own transaction; a read-only one costs no
                // fsync. The message itself goes through the appender like any other.
                let mut tx = db::begin_org(&self.pool, user.org_id).await?;
                let session = self
                    .session_for_send(
                        &mut tx,
                        user,
                        &route,
                        input.session_id,
                        gateway,
                        openclaw_id,
                    )
                    .await?;
                tx.commit().await?;
                let mut sessions = self.sessions.lock().expect("sessions lock");
                if sessions.len() >= CACHE_LIMIT {
                    sessions.clear();
                }
                sessions.insert(key, session.clone());
                session
            }
        };
        let append = Append {
            org: user.org_id,
            session: session.id,
            role: ChatRole::User,
            content: input.content.clone(),
            client_message_id: client_id.to_owned(),
            run_id: None,
            status: MessageStatus::Received,
            gateway: Some(gateway),
        };
        Ok((session, append))
    }

    /// The user's active session with the agent as last used, if it is on `gateway` and
    /// the one `named` (when a session is named).
    fn cached_session(
        &self,
        key: (H5UserId, AgentId),
        named: Option<ChatSessionId>,
        gateway: GatewayId,
    ) -> Option<ChatSession> {
        let sessions = self.sessions.lock().expect("sessions lock");
        let session = sessions.get(&key)?;
        let usable = session.gateway_id == gateway && named.is_none_or(|id| id == session.id);
        usable.then(|| session.clone())
    }

    /// The session a message goes to: the named one (the user's, with this agent) or the
    /// user's active one with the agent, created on first use.
    async fn session_for_send(
        &self,
        tx: &mut sqlx::PgConnection,
        user: &H5Context,
        route: &AgentRoute,
        named: Option<ChatSessionId>,
        gateway: GatewayId,
        openclaw_id: &str,
    ) -> Result<ChatSession> {
        let mut session = match named {
            Some(id) => {
                let session = repo::get_session(&mut *tx, id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "chat session",
                    })?;
                if session.h5_user_id != user.user_id {
                    return Err(Error::NotFound {
                        resource: "chat session",
                    });
                }
                if session.agent_id != route.agent_id {
                    return Err(Error::invalid_field(
                        "session_id",
                        "this session is with another agent",
                    ));
                }
                if session.status != "active" {
                    return Err(Error::Conflict("this chat session is closed".into()));
                }
                session
            }
            None => match repo::active_session(&mut *tx, user.user_id, route.agent_id).await? {
                Some(session) => session,
                None => {
                    let id = ChatSessionId::generate();
                    let key = session_key(openclaw_id, id);
                    repo::insert_session(&mut *tx, route, user.user_id, id, gateway, &key).await?;
                    // Either ours or the one a concurrent request created.
                    repo::active_session(&mut *tx, user.user_id, route.agent_id)
                        .await?
                        .ok_or_else(|| {
                            Error::internal(
                                "creating a chat session",
                                "no active session after insert",
                            )
                        })?
                }
            },
        };
        if session.gateway_id != gateway {
            // The agent moved: continue the conversation on its new gateway.
            let key = session_key(openclaw_id, session.id);
            repo::rebind_session(&mut *tx, session.id, gateway, &key).await?;
            session.gateway_id = gateway;
            session.session_key = key;
        }
        Ok(session)
    }

    /// Publishes a delivery to the user's sockets on every instance (logged, not
    /// returned, on failure: what was stored is caught up from Postgres).
    pub async fn announce(&self, user: H5UserId, delivery: &ChatDelivery) {
        // Stored first: a socket that misses this catches up from Postgres.
        if let Err(err) = self.hub.publish_user(user, delivery).await {
            tracing::warn!(error = %err, "announcing a chat message failed");
        }
    }

    /// Hands a stored user message to its gateway (`chat.send`), retrying what may not
    /// have arrived; records `sent` with the run, or `failed` and tells the user's
    /// sockets (`AGENT_UNAVAILABLE`). A message the gateway already accepted is not
    /// sent again.
    pub async fn dispatch(&self, user: &H5Context, accepted: &Accepted) -> Result<()> {
        let message = &accepted.message;
        if message.status == MessageStatus::Sent {
            return Ok(());
        }
        let params = json!({
            "sessionKey": accepted.session.session_key,
            "message": message.content,
            "idempotencyKey": message.id.to_string(),
        });
        let mut attempt = 0;
        let failure = loop {
            attempt += 1;
            let outcome = self
                .router
                .call(
                    accepted.session.gateway_id,
                    "chat.send",
                    params.clone(),
                    self.call_timeout,
                )
                .await;
            let (code, reason) = match outcome {
                Ok(CallOutcome::Ok { payload }) => {
                    let mark = SentMark {
                        org: user.org_id,
                        message: message.id,
                        run: payload["runId"].as_str().map(str::to_owned),
                    };
                    // Only fails when the recorder is gone (shutting down); the sweep then
                    // sends it again under the same idempotency key, which runs nothing twice.
                    let _ = self.sent.send(mark).await;
                    return Ok(());
                }
                Ok(CallOutcome::Error { code, message, .. }) => (code, message),
                Err(err) => ("unavailable".to_owned(), err.public_message()),
            };
            // An offline gateway or one that refused the message will not change its
            // mind on a retry; a lost request or answer might.
            let retry = matches!(code.as_str(), "gateway_timeout" | "unavailable")
                && attempt < self.config.send_attempts;
            if !retry {
                break (code, reason);
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        };
        self.forget_conversation(user.user_id, accepted.session.agent_id);
        self.set_failed(user.org_id, message).await?;
        let reason = match failure.0.as_str() {
            "gateway_offline" => "the agent's gateway is offline".to_owned(),
            "gateway_timeout" => "the agent's gateway did not answer".to_owned(),
            code => format!("the gateway refused the message ({code}: {})", failure.1),
        };
        self.announce(
            user.user_id,
            &ChatDelivery::Failed {
                agent_id: accepted.session.agent_id,
                message: ChatMessage {
                    status: MessageStatus::Failed,
                    ..message.clone()
                },
                code: "AGENT_UNAVAILABLE".to_owned(),
                reason,
            },
        )
        .await;
        Ok(())
    }

    /// Sends again the user messages that were stored but never accepted by a gateway
    /// because the relay handling them died in between (their sockets saw them stored, so
    /// their clients will not retry). Safe on every instance at once: the gateway runs a
    /// message once per idempotency key. Returns how many were retried.
    pub async fn resend_unsent(&self, settle: Duration, give_up: Duration) -> Result<usize> {
        let to_chrono =
            |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let mut tx = db::begin_system(&self.pool).await?;
        let unsent =
            repo::unsent_messages(&mut *tx, to_chrono(settle), to_chrono(give_up), 200).await?;
        let ids: Vec<ChatSessionId> = unsent.iter().map(|u| u.message.session_id).collect();
        let sessions: HashMap<ChatSessionId, ChatSession> = repo::sessions_by_id(&mut *tx, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        tx.commit().await?;
        let retries: Vec<_> = unsent
            .into_iter()
            .filter_map(|u| {
                let session = sessions.get(&u.message.session_id)?.clone();
                Some((u.organization_id, session, u.message))
            })
            .collect();
        let count = retries.len();
        futures::future::join_all(
            retries
                .into_iter()
                .map(|(org, session, message)| async move {
                    let user = H5Context {
                        user_id: session.h5_user_id,
                        org_id: org,
                        jti: uuid::Uuid::nil(),
                    };
                    let accepted = Accepted {
                        session,
                        message,
                        duplicate: true,
                        backlog: None,
                    };
                    if let Err(err) = self.dispatch(&user, &accepted).await {
                        tracing::warn!(error = %err, "re-sending a chat message failed");
                    }
                }),
        )
        .await;
        Ok(count)
    }

    /// `failed` is worth an fsync: the user is told, and a lost update would make the
    /// sweep send the message after all.
    async fn set_failed(&self, org: OrgId, message: &ChatMessage) -> Result<()> {
        let mut tx = db::begin_org(&self.pool, org).await?;
        repo::set_message_status(&mut *tx, message.id, MessageStatus::Failed, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Routes a gateway's `chat` event of an H5 session to its user: a delta goes
    /// straight to the user's sockets; a final (or error, or abort) is queued at once for
    /// storing (once per run), so a session's replies keep their order. Returns what to
    /// await for the delivery to announce with [`announce`](Self::announce)
    /// (`None`: nothing to announce, e.g. a replayed final or a session not on this
    /// gateway). A caller may route the next events while earlier ones are being stored,
    /// and announces the deliveries in the order it routed them.
    pub async fn route_gateway_event(
        &self,
        gateway: &AuthedGateway,
        event: GatewayChatEvent,
    ) -> Result<RoutedEvent> {
        let owner = self.owner(gateway, event.session_id).await?;
        // A gateway speaks only for sessions that run on it.
        let Some(owner) = owner.filter(|o| o.gateway == gateway.id) else {
            tracing::debug!(session_id = %event.session_id, gateway = %gateway.id, "chat event for a session not on this gateway");
            return Ok(Box::pin(std::future::ready(Ok(None))));
        };
        let status = match event.state {
            RunState::Delta => {
                let delivery = ChatDelivery::Delta {
                    session_id: event.session_id,
                    agent_id: owner.agent,
                    run_id: event.run_id,
                    delta: event.delta,
                    content: event.text,
                };
                return Ok(Box::pin(std::future::ready(Ok(Some((
                    owner.user, delivery,
                ))))));
            }
            RunState::Final => MessageStatus::Completed,
            RunState::Aborted => MessageStatus::Aborted,
            RunState::Error => MessageStatus::Error,
        };
        let content = match (status, event.error_message) {
            (MessageStatus::Error, Some(error)) if event.text.is_empty() => error,
            (MessageStatus::Error, None) if event.text.is_empty() => {
                "the agent failed to answer".to_owned()
            }
            _ => event.text,
        };
        let stored = self
            .appender
            .submit(Append {
                org: gateway.organization_id,
                session: owner.session,
                role: ChatRole::Agent,
                content,
                client_message_id: format!("run:{}", event.run_id),
                run_id: Some(event.run_id),
                status,
                gateway: None,
            })
            .await?;
        Ok(Box::pin(async move {
            Ok(match stored.await? {
                // A final replayed after a reconnect: stored and announced the first time.
                None | Some((_, true)) => None,
                Some((message, false)) => Some((
                    owner.user,
                    ChatDelivery::Message {
                        agent_id: owner.agent,
                        message,
                    },
                )),
            })
        }))
    }

    async fn owner(
        &self,
        gateway: &AuthedGateway,
        session: ChatSessionId,
    ) -> Result<Option<SessionOwner>> {
        // A cached owner on another gateway may be out of date (the session moved with
        // its agent, perhaps through another relay): read it again.
        if let Some(owner) = self.owners.lock().expect("owners lock").get(&session)
            && owner.gateway == gateway.id
        {
            return Ok(Some(*owner));
        }
        let mut tx = db::begin_org(&self.pool, gateway.organization_id).await?;
        let found = repo::get_session(&mut *tx, session).await?;
        tx.commit().await?;
        Ok(found.map(|s| {
            self.remember_owner(&s);
            SessionOwner::from(&s)
        }))
    }

    /// What a new chat socket starts from, read in one transaction: the account must be
    /// active (`forbidden` when suspended, `unauthorized` when gone), then the user's
    /// agents with their gateways and boards, and where each session stands.
    pub async fn open(&self, user: &H5Context) -> Result<ChatOpening> {
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let account = identity::repo::get_h5_user(&mut *tx, user.user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("account no longer exists".into()))?;
        if account.status != identity::model::H5UserStatus::Active {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        let routes = repo::assigned_routes(&mut *tx, user.user_id).await?;
        let sessions = repo::session_cursors(&mut *tx, user.user_id).await?;
        tx.commit().await?;
        Ok(ChatOpening { routes, sessions })
    }

    /// Where each of the user's sessions stands now.
    pub async fn session_cursors(&self, user: &H5Context) -> Result<Vec<SessionCursor>> {
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let cursors = repo::session_cursors(&mut *tx, user.user_id).await?;
        tx.commit().await?;
        Ok(cursors)
    }

    /// Whether a relay holds the gateway's socket now.
    pub async fn gateway_online(&self, gateway: GatewayId) -> Result<bool> {
        Ok(self.router.presence(gateway).await?.is_some())
    }

    /// The user's own session (`not_found` for anyone else's).
    pub async fn own_session(&self, user: &H5Context, id: ChatSessionId) -> Result<ChatSession> {
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let session = repo::get_session(&mut *tx, id).await?;
        tx.commit().await?;
        session
            .filter(|s| s.h5_user_id == user.user_id)
            .ok_or(Error::NotFound {
                resource: "chat session",
            })
    }

    /// Messages of one of the user's sessions after `after`, oldest first, at most a page
    /// of [`CATCH_UP_PAGE`].
    pub async fn messages_after(
        &self,
        user: &H5Context,
        session: ChatSessionId,
        after: i64,
    ) -> Result<Vec<ChatMessage>> {
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let rows = repo::messages_after(&mut *tx, session, after, CATCH_UP_PAGE).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// `GET /h5/chat/sessions`: the user's sessions, most recent activity first.
    pub async fn list_sessions(
        &self,
        user: &H5Context,
        page: &PageParams,
    ) -> Result<Page<ChatSession>> {
        let page = page.parse::<TimeKey>()?;
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let rows = repo::sessions_of_user(
            &mut *tx,
            user.user_id,
            page.after.map(|k| (k.t, k.id)),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |s| TimeKey {
            t: s.last_message_at.unwrap_or(s.created_at),
            id: s.id.as_uuid(),
        }))
    }

    /// `GET /h5/chat/sessions/{id}/messages`: newest first with a cursor, or oldest first
    /// after `after_seq`.
    pub async fn list_messages(
        &self,
        user: &H5Context,
        session: ChatSessionId,
        query: &MessageQuery,
        page: &PageParams,
    ) -> Result<Page<ChatMessage>> {
        let request = page.parse::<SeqKey>()?;
        self.own_session(user, session).await?;
        let mut tx = db::begin_org(&self.pool, user.org_id).await?;
        let page = match query.after_seq {
            Some(after) if after < 0 => {
                return Err(Error::invalid_field("after_seq", "must be 0 or more"));
            }
            Some(after) => {
                let from = request.after.as_ref().map_or(after, |k| k.seq.max(after));
                let rows =
                    repo::messages_after(&mut *tx, session, from, request.fetch_limit()).await?;
                Page::from_rows(rows, request.limit, |m| SeqKey { seq: m.seq })
            }
            None => {
                let rows = repo::messages_before(
                    &mut *tx,
                    session,
                    request.after.as_ref().map(|k| k.seq),
                    request.fetch_limit(),
                )
                .await?;
                Page::from_rows(rows, request.limit, |m| SeqKey { seq: m.seq })
            }
        };
        tx.commit().await?;
        Ok(page)
    }

    /// `GET /h5/users/{id}` (admin): the user with live sockets and chat sessions.
    pub async fn h5_user_live(
        &self,
        identity: &identity::IdentityService,
        ctx: &OrgContext,
        id: H5UserId,
    ) -> Result<H5UserLive> {
        let detail = identity.get_h5_user(ctx, id).await?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let sessions = repo::sessions_of_user(&mut *tx, id, None, 100).await?;
        tx.commit().await?;
        Ok(H5UserLive {
            detail,
            live: self.hub.presence(id).await?,
            sessions,
        })
    }

    /// `GET /gateways/{id}/connections`: the gateway's relay sockets and its active chat
    /// sessions with their users' open sockets.
    pub async fn gateway_live(
        &self,
        gateways: &crate::gateways::GatewayService,
        ctx: &OrgContext,
        gateway: GatewayId,
    ) -> Result<GatewayLive> {
        let relay_connections = gateways.connections(ctx, gateway).await?;
        ctx.authorize(Permission::GatewaysRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let sessions = repo::sessions_on_gateway(&mut *tx, gateway, 100).await?;
        tx.commit().await?;
        let users: Vec<H5UserId> = sessions.iter().map(|s| s.h5_user_id).collect();
        let live = self.hub.presence_of(&users).await?;
        let out = sessions
            .into_iter()
            .zip(live)
            .map(|(session, live)| GatewayChatSession {
                session,
                user_connections: live.connections,
            })
            .collect();
        Ok(GatewayLive {
            relay_connections,
            chat_sessions: out,
        })
    }
}

/// Records `sent` for the messages gateways accepted, gathered for [`SENT_GATHER`] and
/// written in one transaction. Not worth an fsync: lost in a crash, a message is back to
/// `received` and only sent again by the sweep under the same idempotency key, which the
/// gateway runs once.
async fn record_sent(pool: PgPool, mut marks: mpsc::Receiver<SentMark>) {
    let mut batch = Vec::with_capacity(SENT_BATCH);
    while marks.recv_many(&mut batch, SENT_BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + SENT_GATHER;
        while batch.len() < SENT_BATCH {
            let room = SENT_BATCH - batch.len();
            match tokio::time::timeout_at(deadline, marks.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Err(err) = write_sent(&pool, &mut batch).await {
            tracing::warn!(error = %err, count = batch.len(), "recording sent chat messages failed; the sweep re-sends them");
        }
        batch.clear();
    }
}

async fn write_sent(pool: &PgPool, batch: &mut [SentMark]) -> Result<()> {
    batch.sort_by_key(|m| m.org);
    let mut groups = batch.chunk_by(|a, b| a.org == b.org);
    let Some(first) = groups.next() else {
        return Ok(());
    };
    let mut tx = db::begin_org_lazy(pool, first[0].org).await?;
    for (i, group) in std::iter::once(first).chain(groups).enumerate() {
        if i > 0 {
            // Row-level security stays on: each organization's marks under its own setting.
            db::set_org(&mut tx, group[0].org).await?;
        }
        let ids: Vec<ChatMessageId> = group.iter().map(|m| m.message).collect();
        let runs: Vec<Option<&str>> = group.iter().map(|m| m.run.as_deref()).collect();
        repo::set_messages_sent(&mut *tx, &ids, &runs).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// User messages this instance holds for each gateway: being stored, or waiting for the
/// gateway to take them (see [`ChatConfig::max_backlog_per_gateway`]).
#[derive(Debug, Clone, Default)]
struct Backlog(Arc<Mutex<HashMap<GatewayId, usize>>>);

impl Backlog {
    /// A place in `gateway`'s backlog, or `None` when it holds `limit` already.
    fn take(&self, gateway: GatewayId, limit: usize) -> Option<BacklogSlot> {
        let mut held = self.0.lock().expect("backlog lock");
        let count = held.entry(gateway).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        metrics::gauge!("mc_chat_backlog").increment(1.0);
        Some(BacklogSlot {
            backlog: self.clone(),
            gateway,
        })
    }
}

/// One user message's place in its gateway's backlog; given up when dropped.
#[derive(Debug)]
pub struct BacklogSlot {
    backlog: Backlog,
    gateway: GatewayId,
}

impl Drop for BacklogSlot {
    fn drop(&mut self) {
        let mut held = self.backlog.0.lock().expect("backlog lock");
        if let Some(count) = held.get_mut(&self.gateway) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.gateway);
            }
        }
        metrics::gauge!("mc_chat_backlog").decrement(1.0);
    }
}
