//! `WS /ws/h5/chat`: end users chat with their assigned agents (seed 000 M4 protocol).
//!
//! Client frames: `auth {token, resume?: [{session_id, last_seq}]}` (first; again later to
//! swap in a refreshed token; a reconnecting client resumes here so no live frame
//! overtakes its catch-up),
//! `chat {agent_id, content, session_id?}` with the client's message `id`,
//! `resume {session_id, last_seq}` and `heartbeat`. Server frames: `auth_ok {user_id,
//! assignments, sessions}` or `auth_error {reason}`; `chat` (a stored message, the user's
//! own from any device or the agent's reply, `role` user|agent); `chat.delta` (part of a
//! reply being written); `resumed {session_id, last_seq}` after a catch-up; `system
//! {event: agent_online|agent_offline, agent_id}`; `heartbeat`; `error {code, message}`.
//! Frames about a session carry its `seq`: a socket delivers each session's stored
//! messages once, in seq order, filling any gap from Postgres.
//! Close codes: 4001 auth missing, invalid or revoked, 4003 account suspended,
//! 4008 policy (oversized frame, flood, silence), 1012 relay restarting.

use crate::RelayState;
use crate::socket::{
    CLOSE_AUTH, CLOSE_FORBIDDEN, CLOSE_POLICY, CLOSE_RESTART, Close, TokenBucket, close_gracefully,
    flush, next_frame, queue_text, send_text,
};
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use mc_domain::Error;
use mc_domain::chat::{ChatDelivery, ChatMessage, GatewayPresence, SendChat};
use mc_domain::fanout::{Delivery, Subscription};
use mc_domain::identity::H5Context;
use mc_domain::ids::{AgentId, ChatSessionId, GatewayId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// How long a closing socket waits for its close frame to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often a socket re-checks its token (revocation, expiry, account state).
const RECHECK: Duration = Duration::from_secs(60);
/// Frames over the rate limit in a row before the socket is closed as a flood.
const FLOOD_LIMIT: u32 = 100;
/// Runs remembered as finished, so a late delta does not reopen a finished reply.
const FINISHED_RUNS: usize = 32;
/// How long a message that arrived ahead of a gap waits for the missing ones before they
/// are read from Postgres. The missing ones are nearly always committed and on their way
/// (a reply announced a moment after the user's next message); reading them at once cost
/// a query per message once replies lagged, which made them lag more.
const GAP_WAIT: Duration = Duration::from_millis(250);

/// Upgrades to the H5 chat socket.
pub async fn upgrade(State(state): State<RelayState>, ws: WebSocketUpgrade) -> Response {
    let Some(slot) = state.connections.try_acquire() else {
        return crate::ConnectionSlots::refusal();
    };
    let limits = &state.config.ws;
    // Small buffers: an idle chat socket should cost a few KiB, not the 128 KiB defaults.
    // The read buffer is allocated up front and grows for a larger frame (chat frames
    // are mostly a few hundred bytes).
    ws.read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(limits.max_frame_bytes * 8)
        .max_message_size(limits.max_frame_bytes * 2)
        .max_frame_size(limits.max_frame_bytes * 2)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let rate = state.config.ws.messages_per_second;
            let mut connection = Connection {
                state,
                socket,
                last_heard: Instant::now(),
                bucket: TokenBucket::new(rate),
                delivered: HashMap::new(),
                finished: VecDeque::new(),
                agents_on: HashMap::new(),
                held: None,
                batching: false,
            };
            connection.run().await;
        })
}

/// Client frames.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Auth {
        #[serde(default)]
        id: Option<String>,
        payload: AuthPayload,
    },
    Chat {
        #[serde(default)]
        id: Option<String>,
        payload: ChatPayload,
        /// Clients may stamp frames (seed §6 `WSMessage.timestamp`); the server's own time counts.
        #[serde(default, rename = "timestamp")]
        _timestamp: Option<serde::de::IgnoredAny>,
    },
    Resume {
        #[serde(default)]
        id: Option<String>,
        payload: ResumePayload,
    },
    Heartbeat {
        #[serde(default)]
        id: Option<String>,
        #[serde(default, rename = "payload")]
        _payload: Option<serde::de::IgnoredAny>,
        #[serde(default, rename = "timestamp")]
        _timestamp: Option<serde::de::IgnoredAny>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthPayload {
    token: String,
    /// Sessions to resume as part of connecting (session → last seq seen), so nothing
    /// live overtakes the catch-up.
    #[serde(default)]
    resume: Vec<ResumePayload>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatPayload {
    agent_id: AgentId,
    content: String,
    #[serde(default)]
    session_id: Option<ChatSessionId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumePayload {
    session_id: ChatSessionId,
    last_seq: i64,
}

impl ClientFrame {
    /// The frame, or the client's frame id (if readable) and what is wrong with it. Valid
    /// frames are decoded once; only a bad one is looked at again to explain the error.
    fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
        let invalid = match serde_json::from_str::<Self>(text) {
            Ok(frame) => return Ok(frame),
            Err(err) => err,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| (None, format!("not JSON: {e}")))?;
        let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        let message = match value.get("type").and_then(Value::as_str) {
            None => "frames are JSON objects with a string type".to_owned(),
            Some("auth" | "chat" | "resume" | "heartbeat") => format!("invalid frame: {invalid}"),
            Some(other) => format!("unknown frame type {other:?}"),
        };
        Err((id, message))
    }
}

fn error_frame(
    id: Option<&str>,
    seq: Option<i64>,
    code: &str,
    message: &str,
    extra: Value,
) -> String {
    let mut payload = json!({"code": code, "message": message});
    if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
        p.extend(e);
    }
    let mut frame = json!({"type": "error", "payload": payload});
    if let Some(id) = id {
        frame["id"] = json!(id);
    }
    if let Some(seq) = seq {
        frame["seq"] = json!(seq);
    }
    frame.to_string()
}

/// The wire code of a refused chat message.
fn chat_error_code(err: &Error) -> &'static str {
    match err {
        Error::Forbidden(_) => "FORBIDDEN",
        Error::NotFound { .. } => "NOT_FOUND",
        Error::InvalidRequest { .. } => "INVALID_MESSAGE",
        Error::PayloadTooLarge(_) => "MESSAGE_TOO_LARGE",
        Error::Conflict(_) => "CONFLICT",
        Error::RateLimited { .. } => "RATE_LIMITED",
        Error::ServiceUnavailable { .. } | Error::GatewayTimeout(_) => "AGENT_UNAVAILABLE",
        // Our own failure (logged where it happened), not the agent's.
        Error::Unauthorized(_) => "UNAUTHORIZED",
        Error::PreconditionFailed(_) | Error::Internal { .. } => "INTERNAL_ERROR",
    }
}

fn message_frame(agent: AgentId, message: &ChatMessage) -> String {
    json!({
        "type": "chat",
        "id": message.client_message_id,
        "seq": message.seq,
        "payload": {
            "agent_id": agent,
            "session_id": message.session_id,
            "message_id": message.id,
            "role": message.role,
            "content": message.content,
            "status": message.status,
            "run_id": message.run_id,
            "created_at": message.created_at,
        },
        "timestamp": message.created_at,
    })
    .to_string()
}

struct Connection {
    state: RelayState,
    socket: WebSocket,
    last_heard: Instant,
    bucket: TokenBucket,
    /// Session → the highest seq this socket has delivered.
    delivered: HashMap<ChatSessionId, i64>,
    /// Runs whose final reply was delivered.
    finished: VecDeque<String>,
    /// Gateway → the assigned agents it runs (for `system` frames).
    agents_on: HashMap<GatewayId, Vec<AgentId>>,
    /// Messages waiting for a gap before them to close (boxed: idle sockets hold none).
    held: Option<Box<Held>>,
    /// Frames are queued, not flushed one by one, while a batch of deliveries is written.
    batching: bool,
}

/// Messages that arrived ahead of a gap in their session, by session and seq.
struct Held {
    /// When whatever is still missing is read from Postgres.
    deadline: tokio::time::Instant,
    messages: HashMap<ChatSessionId, BTreeMap<i64, (AgentId, ChatMessage)>>,
}

/// Deliveries written with one flush at most.
const DELIVERY_BATCH: usize = 32;

/// Where a socket's feed stands after a batch of deliveries.
enum FeedState {
    /// Nothing missed.
    Live,
    /// Deliveries were dropped (lag) or may have been (transport reconnect).
    Behind,
    /// The feed ended.
    Closed,
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

struct Authed {
    user: H5Context,
    token: String,
}

impl Connection {
    async fn run(&mut self) {
        let close = match self.serve().await {
            Ok(close) | Err(close) => close,
        };
        close_gracefully(&mut self.socket, close, CLOSE_GRACE).await;
    }

    async fn send(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Close> {
        if self.batching {
            return queue_text(&mut self.socket, text).await;
        }
        send_text(&mut self.socket, text).await
    }

    /// Delivers `first` and whatever else is already waiting (up to [`DELIVERY_BATCH`]),
    /// written with one flush: a reply's deltas, or its final and the next message,
    /// arrive together and cost one write instead of one each. Returns whether the feed
    /// lagged or resynchronised (catch up from Postgres) or closed.
    async fn deliver_ready(
        &mut self,
        first: &ChatDelivery,
        rx: &mut broadcast::Receiver<Delivery<ChatDelivery>>,
    ) -> Result<FeedState, Close> {
        self.batching = true;
        let mut written = self.deliver(first).await;
        let mut state = FeedState::Live;
        for _ in 1..DELIVERY_BATCH {
            if written.is_err() {
                break;
            }
            match rx.try_recv() {
                Ok(Delivery::Item(next)) => written = self.deliver(&next).await,
                Ok(Delivery::Resync) | Err(TryRecvError::Lagged(_)) => {
                    state = FeedState::Behind;
                    break;
                }
                Err(TryRecvError::Closed) => {
                    state = FeedState::Closed;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        self.batching = false;
        written?;
        flush(&mut self.socket).await?;
        Ok(state)
    }

    async fn auth_error(&mut self, reason: &str, close: Close) -> Result<Close, Close> {
        self.send(json!({"type": "auth_error", "payload": {"reason": reason}}).to_string())
            .await?;
        Ok(close)
    }

    /// The next frame; `None` after answering a bad one with an error frame.
    async fn receive(&mut self) -> Result<Option<ClientFrame>, Close> {
        let mut refused = 0u32;
        loop {
            let Some(text) = next_frame(&mut self.socket, &mut self.last_heard).await? else {
                let frame = error_frame(
                    None,
                    None,
                    "INVALID_MESSAGE",
                    "binary frames are not supported",
                    json!({}),
                );
                self.send(frame).await?;
                return Ok(None);
            };
            if text.len() > self.state.config.ws.max_frame_bytes {
                let frame = error_frame(
                    None,
                    None,
                    "PAYLOAD_TOO_LARGE",
                    "frame exceeds WS_MAX_FRAME_BYTES",
                    json!({}),
                );
                self.send(frame).await?;
                return Err(Close(CLOSE_POLICY, "frame too large"));
            }
            if !self.bucket.take() {
                refused += 1;
                if refused >= FLOOD_LIMIT {
                    return Err(Close(CLOSE_POLICY, "flood"));
                }
                let id = serde_json::from_str::<Value>(text.as_str())
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
                let frame = error_frame(
                    id.as_deref(),
                    None,
                    "RATE_LIMITED",
                    "too many frames; this one was dropped, send it again later",
                    json!({"retry_after_ms": self.bucket.wait().as_millis() as u64 + 1}),
                );
                self.send(frame).await?;
                continue;
            }
            return match ClientFrame::parse(text.as_str()) {
                Ok(frame) => Ok(Some(frame)),
                Err((id, message)) => {
                    let frame =
                        error_frame(id.as_deref(), None, "INVALID_MESSAGE", &message, json!({}));
                    self.send(frame).await?;
                    Ok(None)
                }
            };
        }
    }

    async fn serve(&mut self) -> Result<Close, Close> {
        let timeout = self.state.config.ws.auth_timeout;
        let first = match tokio::time::timeout(timeout, self.receive()).await {
            Err(_) => {
                return self
                    .auth_error("no auth frame in time", Close(CLOSE_AUTH, "auth timeout"))
                    .await;
            }
            Ok(frame) => frame?,
        };
        let Some(ClientFrame::Auth { payload, .. }) = first else {
            return self
                .auth_error(
                    "the first frame must be auth {token}",
                    Close(CLOSE_AUTH, "auth required"),
                )
                .await;
        };
        let chat = self.state.chat.clone();
        let user = match Box::pin(self.state.identity.authenticate_h5(&payload.token)).await {
            Ok(user) => user,
            Err(Error::ServiceUnavailable { .. }) => {
                return self
                    .auth_error("unavailable", Close(CLOSE_RESTART, "try again"))
                    .await;
            }
            Err(_) => {
                return self
                    .auth_error("invalid_token", Close(CLOSE_AUTH, "invalid token"))
                    .await;
            }
        };
        // Listen before reading where each session stands, so nothing falls between.
        let opened: mc_domain::Result<_> = Box::pin(async {
            let messages = chat.hub().subscribe_user(user.user_id).await?;
            let gateways = chat.hub().subscribe_gateways(user.org_id).await?;
            // Refuses suspended or deleted accounts.
            let opening = chat.open(&user).await?;
            Ok((messages, gateways, opening))
        })
        .await;
        let (mut messages, mut gateways, opening) = match opened {
            Ok(opened) => opened,
            Err(Error::Forbidden(reason)) => {
                return self
                    .auth_error(&reason, Close(CLOSE_FORBIDDEN, "forbidden"))
                    .await;
            }
            Err(Error::Unauthorized(_)) => {
                return self
                    .auth_error("invalid_token", Close(CLOSE_AUTH, "invalid token"))
                    .await;
            }
            Err(_) => {
                return self
                    .auth_error("unavailable", Close(CLOSE_RESTART, "try again"))
                    .await;
            }
        };
        self.delivered = opening
            .sessions
            .iter()
            .map(|c| (c.session_id, c.seq))
            .collect();
        let mut online = HashMap::new();
        for route in &opening.routes {
            if let Some(gateway) = route.gateway_id {
                self.agents_on
                    .entry(gateway)
                    .or_default()
                    .push(route.agent_id);
                if let std::collections::hash_map::Entry::Vacant(entry) = online.entry(gateway) {
                    entry.insert(
                        Box::pin(chat.gateway_online(gateway))
                            .await
                            .unwrap_or(false),
                    );
                }
            }
        }
        let assignments: Vec<Value> = opening
            .routes
            .iter()
            .map(|r| {
                let online = r.gateway_id.and_then(|g| online.get(&g).copied());
                json!({
                    "agent_id": r.agent_id, "agent_name": r.agent_name,
                    "board_id": r.board_id, "board_name": r.board_name,
                    "online": online.unwrap_or(false),
                })
            })
            .collect();
        let sessions: Vec<Value> = self
            .delivered
            .iter()
            .map(|(id, seq)| json!({"session_id": id, "last_seq": seq}))
            .collect();
        self.send(
            json!({"type": "auth_ok", "payload": {
                "user_id": user.user_id, "assignments": assignments, "sessions": sessions,
            }})
            .to_string(),
        )
        .await?;
        if let Err(err) = Box::pin(chat.hub().connected(user.user_id)).await {
            tracing::warn!(error = %err, "recording H5 presence failed");
        }
        for resume in payload.resume {
            Box::pin(self.resume(&user, None, resume)).await?;
        }
        let mut authed = Authed {
            user,
            token: payload.token,
        };
        let result = self.live(&mut authed, &mut messages, &mut gateways).await;
        if let Err(err) = Box::pin(chat.hub().disconnected(authed.user.user_id)).await {
            tracing::warn!(error = %err, "recording H5 presence failed");
        }
        result
    }

    /// The connected loop. What a socket holds while idle is this future, so every
    /// sizeable step (storage, Redis, catch-up) is boxed: allocated while it runs, not
    /// reserved in every idle socket (the whole state was 26 KiB before).
    async fn live(
        &mut self,
        authed: &mut Authed,
        messages: &mut Subscription<ChatDelivery>,
        gateways: &mut Subscription<GatewayPresence>,
    ) -> Result<Close, Close> {
        let ws = self.state.config.ws.clone();
        let mut ping = tokio::time::interval(ws.heartbeat_interval);
        ping.tick().await;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        let shutdown = self.state.shutdown.clone();
        loop {
            let gap_deadline = self.held.as_ref().map(|held| held.deadline);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(Close(CLOSE_RESTART, "relay restarting; resume from your last seq")),
                () = sleep_until(gap_deadline) => Box::pin(self.fill_held(&authed.user)).await?,
                delivery = messages.rx.recv() => match delivery {
                    Ok(Delivery::Item(delivery)) => match Box::pin(self.deliver_ready(&delivery, &mut messages.rx)).await? {
                        FeedState::Live => {}
                        FeedState::Behind => Box::pin(self.catch_up_all(&authed.user)).await?,
                        FeedState::Closed => return Ok(Close(CLOSE_RESTART, "resume from your last seq")),
                    },
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => Box::pin(self.catch_up_all(&authed.user)).await?,
                    Err(RecvError::Closed) => return Ok(Close(CLOSE_RESTART, "resume from your last seq")),
                },
                presence = gateways.rx.recv() => match presence {
                    Ok(Delivery::Item(presence)) => Box::pin(self.announce_gateway(&presence)).await?,
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Ok(Close(CLOSE_RESTART, "resume from your last seq")),
                },
                incoming = self.receive() => {
                    let Some(frame) = incoming? else { continue };
                    if let Some(close) = Box::pin(self.handle(authed, frame)).await? {
                        return Ok(close);
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > ws.heartbeat_timeout {
                        return Ok(Close(CLOSE_POLICY, "heartbeat timeout"));
                    }
                    self.socket.send(Message::Ping(Default::default())).await
                        .map_err(|_| Close(1006, "send failed"))?;
                }
                _ = recheck.tick() => {
                    match Box::pin(self.state.identity.authenticate_h5(&authed.token)).await {
                        Ok(_) | Err(Error::ServiceUnavailable { .. }) => {}
                        Err(_) => return Box::pin(self.auth_error("token expired or revoked; authenticate again", Close(CLOSE_AUTH, "token expired"))).await,
                    }
                }
            }
        }
    }

    async fn handle(
        &mut self,
        authed: &mut Authed,
        frame: ClientFrame,
    ) -> Result<Option<Close>, Close> {
        match frame {
            ClientFrame::Heartbeat { id, .. } => {
                let mut reply = json!({"type": "heartbeat", "timestamp": chrono::Utc::now()});
                if let Some(id) = id {
                    reply["id"] = json!(id);
                }
                self.send(reply.to_string()).await?;
            }
            ClientFrame::Auth { id, payload } => {
                // A refreshed token for the same user keeps the socket open.
                match self.state.identity.authenticate_h5(&payload.token).await {
                    Ok(user) if user.user_id == authed.user.user_id => {
                        authed.token = payload.token;
                        let mut reply = json!({"type": "auth_ok", "payload": {"user_id": user.user_id, "refreshed": true}});
                        if let Some(id) = id {
                            reply["id"] = json!(id);
                        }
                        self.send(reply.to_string()).await?;
                    }
                    Ok(_) => {
                        let frame = error_frame(
                            id.as_deref(),
                            None,
                            "FORBIDDEN",
                            "a socket belongs to one user; open another for a different account",
                            json!({}),
                        );
                        self.send(frame).await?;
                    }
                    Err(_) => {
                        let frame = error_frame(
                            id.as_deref(),
                            None,
                            "UNAUTHORIZED",
                            "invalid token; the socket keeps its current one",
                            json!({}),
                        );
                        self.send(frame).await?;
                    }
                }
            }
            ClientFrame::Chat { id, payload, .. } => self.chat(authed, id, payload).await?,
            ClientFrame::Resume { id, payload } => self.resume(&authed.user, id, payload).await?,
        }
        Ok(None)
    }

    async fn chat(
        &mut self,
        authed: &Authed,
        id: Option<String>,
        payload: ChatPayload,
    ) -> Result<(), Close> {
        let chat = self.state.chat.clone();
        let input = SendChat {
            agent_id: payload.agent_id,
            content: payload.content,
            session_id: payload.session_id,
            client_message_id: id.clone(),
        };
        let accepted = match chat.send(&authed.user, input).await {
            Ok(accepted) => accepted,
            Err(err) => {
                let mut extra = json!({"agent_id": payload.agent_id});
                let mut message = err.public_message();
                if let Error::RateLimited { retry_after_secs } = err {
                    // From `send`, this is the gateway's full backlog (its documented
                    // meaning). Nothing was stored: the client sends it again after this.
                    extra["retry_after_ms"] = json!(retry_after_secs * 1000);
                    extra["reason"] = json!("gateway_busy");
                    message = "the agent's gateway is busy; the message was not stored, send it again later".to_owned();
                }
                let frame =
                    error_frame(id.as_deref(), None, chat_error_code(&err), &message, extra);
                return self.send(frame).await;
            }
        };
        // The stored message is the acknowledgement (its seq places it).
        let delivery = ChatDelivery::Message {
            agent_id: accepted.session.agent_id,
            message: accepted.message.clone(),
        };
        if accepted.duplicate {
            // A retry: confirm it even if this socket delivered it before.
            self.send(message_frame(accepted.session.agent_id, &accepted.message))
                .await?;
        } else {
            self.deliver(&delivery).await?;
        }
        let user = authed.user.clone();
        tokio::spawn(async move {
            if let Err(err) = chat.dispatch(&user, &accepted).await {
                tracing::warn!(error = %err, "handing a chat message to its gateway failed");
            }
        });
        Ok(())
    }

    async fn resume(
        &mut self,
        user: &H5Context,
        id: Option<String>,
        payload: ResumePayload,
    ) -> Result<(), Close> {
        let session = match self.state.chat.own_session(user, payload.session_id).await {
            Ok(session) => session,
            Err(Error::NotFound { .. }) => {
                let frame = error_frame(
                    id.as_deref(),
                    None,
                    "FORBIDDEN",
                    "no such session of yours",
                    json!({"session_id": payload.session_id}),
                );
                return self.send(frame).await;
            }
            Err(_) => return Err(Close(CLOSE_RESTART, "unavailable; resume again")),
        };
        if payload.last_seq < 0 || payload.last_seq > session.last_seq {
            let message = format!("last_seq must be between 0 and {}", session.last_seq);
            let frame = error_frame(
                id.as_deref(),
                Some(session.last_seq),
                "INVALID_MESSAGE",
                &message,
                json!({"session_id": session.id}),
            );
            return self.send(frame).await;
        }
        self.delivered.insert(session.id, payload.last_seq);
        self.catch_up(user, session.id, session.agent_id, session.last_seq)
            .await?;
        let last = self
            .delivered
            .get(&session.id)
            .copied()
            .unwrap_or(payload.last_seq);
        let mut frame = json!({"type": "resumed", "seq": last, "payload": {"session_id": session.id, "last_seq": last}});
        if let Some(id) = id {
            frame["id"] = json!(id);
        }
        self.send(frame.to_string()).await
    }

    /// Sends the session's stored messages after what this socket delivered, up to `upto`.
    async fn catch_up(
        &mut self,
        user: &H5Context,
        session: ChatSessionId,
        agent: AgentId,
        upto: i64,
    ) -> Result<(), Close> {
        loop {
            let after = self.delivered.get(&session).copied().unwrap_or(0);
            if after >= upto {
                return Ok(());
            }
            let page = self
                .state
                .chat
                .messages_after(user, session, after)
                .await
                .map_err(|_| Close(CLOSE_RESTART, "unavailable; resume from your last seq"))?;
            let page: Vec<ChatMessage> = page.into_iter().filter(|m| m.seq <= upto).collect();
            let Some(last) = page.last().map(|m| m.seq) else {
                return Ok(());
            };
            for message in &page {
                self.send(message_frame(agent, message)).await?;
                self.note_finished(message);
            }
            self.delivered.insert(session, last);
        }
    }

    /// Delivers the held messages of `session` that follow on from what was delivered.
    async fn release_held(&mut self, session: ChatSessionId) -> Result<(), Close> {
        loop {
            let last = self.delivered.get(&session).copied().unwrap_or(0);
            let Some(held) = self.held.as_mut() else {
                return Ok(());
            };
            let Some(waiting) = held.messages.get_mut(&session) else {
                return Ok(());
            };
            // What was delivered meanwhile (a catch-up) is not sent again.
            while waiting
                .first_key_value()
                .is_some_and(|(seq, _)| *seq <= last)
            {
                waiting.pop_first();
            }
            let next = match waiting.first_key_value() {
                Some((seq, _)) if *seq == last + 1 => waiting.pop_first(),
                _ => None,
            };
            if waiting.is_empty() {
                held.messages.remove(&session);
                if held.messages.is_empty() {
                    self.held = None;
                }
            }
            let Some((seq, (agent, message))) = next else {
                return Ok(());
            };
            self.send(message_frame(agent, &message)).await?;
            self.delivered.insert(session, seq);
            self.note_finished(&message);
        }
    }

    /// The gaps that did not close by themselves within [`GAP_WAIT`]: read from Postgres
    /// up to the last held message (which is committed, so it comes back too).
    async fn fill_held(&mut self, user: &H5Context) -> Result<(), Close> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        for (session, waiting) in held.messages {
            if let Some((upto, (agent, _))) = waiting.last_key_value() {
                self.catch_up(user, session, *agent, *upto).await?;
            }
        }
        Ok(())
    }

    /// After a lag or a transport reconnect: catch up every session that moved.
    async fn catch_up_all(&mut self, user: &H5Context) -> Result<(), Close> {
        let cursors = self
            .state
            .chat
            .session_cursors(user)
            .await
            .map_err(|_| Close(CLOSE_RESTART, "unavailable; resume from your last seq"))?;
        for cursor in cursors {
            if self.delivered.get(&cursor.session_id).copied().unwrap_or(0) < cursor.seq {
                self.catch_up(user, cursor.session_id, cursor.agent_id, cursor.seq)
                    .await?;
            }
        }
        Ok(())
    }

    fn note_finished(&mut self, message: &ChatMessage) {
        if let Some(run) = &message.run_id
            && message.role == mc_domain::chat::ChatRole::Agent
        {
            if self.finished.len() >= FINISHED_RUNS {
                self.finished.pop_front();
            }
            self.finished.push_back(run.clone());
        }
    }

    async fn deliver(&mut self, delivery: &ChatDelivery) -> Result<(), Close> {
        match delivery {
            ChatDelivery::Message { agent_id, message } => {
                let last = self
                    .delivered
                    .get(&message.session_id)
                    .copied()
                    .unwrap_or(0);
                if message.seq <= last {
                    return Ok(());
                }
                if message.seq > last + 1 {
                    // Published out of order or missed: the earlier ones are committed and
                    // most likely on their way; held until they come or GAP_WAIT passes.
                    let held = self.held.get_or_insert_with(|| {
                        Box::new(Held {
                            deadline: tokio::time::Instant::now() + GAP_WAIT,
                            messages: HashMap::new(),
                        })
                    });
                    held.messages
                        .entry(message.session_id)
                        .or_default()
                        .insert(message.seq, (*agent_id, message.clone()));
                    return Ok(());
                }
                self.send(message_frame(*agent_id, message)).await?;
                self.delivered.insert(message.session_id, message.seq);
                self.note_finished(message);
                self.release_held(message.session_id).await?;
            }
            ChatDelivery::Delta {
                session_id,
                agent_id,
                run_id,
                delta,
                content,
            } => {
                if self.finished.contains(run_id) {
                    return Ok(());
                }
                let seq = self.delivered.get(session_id).copied().unwrap_or(0);
                let frame = json!({"type": "chat.delta", "seq": seq, "payload": {
                    "agent_id": agent_id, "session_id": session_id, "run_id": run_id,
                    "role": "agent", "delta": delta, "content": content,
                }});
                self.send(frame.to_string()).await?;
            }
            ChatDelivery::Failed {
                agent_id,
                message,
                code,
                reason,
            } => {
                let frame = error_frame(
                    Some(&message.client_message_id),
                    Some(message.seq),
                    code,
                    reason,
                    json!({"agent_id": agent_id, "session_id": message.session_id, "message_id": message.id}),
                );
                self.send(frame).await?;
            }
        }
        Ok(())
    }

    async fn announce_gateway(&mut self, presence: &GatewayPresence) -> Result<(), Close> {
        let Some(agents) = self.agents_on.get(&presence.gateway_id).cloned() else {
            return Ok(());
        };
        let event = if presence.online {
            "agent_online"
        } else {
            "agent_offline"
        };
        for agent in agents {
            let frame = json!({"type": "system", "payload": {"event": event, "agent_id": agent}});
            self.send(frame.to_string()).await?;
        }
        Ok(())
    }
}
