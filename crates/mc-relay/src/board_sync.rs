//! `WS /ws/board/{board_id}/sync`: live board state for the console.
//!
//! First frame `auth`; then `auth_ok` and `board.state` (or, with `last_seq`, a replay of
//! what was missed); then `task.created|task.updated|task.deleted|suggestion.new|
//! board.updated|board.deleted` frames, each with its event `seq`. Clients send
//! `task.move`, `task.create`, `resume {last_seq}` and `heartbeat`.
//! Close codes: 4001 auth invalid or revoked, 4003 forbidden or no such board,
//! 4008 policy (oversized frame, flood, silence), 4009 slow consumer, 1012 relay restarting.

use crate::RelayState;
use crate::board_protocol::{self as protocol, ClientFrame, Effect};
use crate::rooms::{Ended, Membership};
use crate::socket::{Close, TokenBucket, close_gracefully, next_frame, send_text};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use mc_domain::boards::{Access, CreateTask, TransitionTask};
use mc_domain::events::{self, CompiledFilter, EventFilter};
use mc_domain::identity::{OrgContext, Permission};
use mc_domain::ids::BoardId;
use mc_domain::{Error, Result};
use mc_web::ApiError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use crate::socket::{CLOSE_AUTH, CLOSE_FORBIDDEN, CLOSE_POLICY, CLOSE_RESTART, CLOSE_SLOW};

/// How long a closing socket waits for its close frame to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Frames written per socket in one go when several are waiting.
const SEND_BATCH: usize = 32;

/// Events replayed at most on resume; further behind, the client gets `board.state`.
const MAX_REPLAY: i64 = 5000;

/// Upgrades to the board socket.
pub async fn upgrade(
    State(state): State<RelayState>,
    Path(board): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(board) = board.parse::<BoardId>() else {
        return ApiError(Error::invalid_field("board_id", "must be a UUID")).into_response();
    };
    let Some(slot) = state.connections.try_acquire() else {
        return crate::ConnectionSlots::refusal();
    };
    let limits = &state.config.ws;
    // The read buffer is allocated up front (client frames are small and it grows for a
    // larger one); writes go out as they come.
    ws.read_buffer_size(2 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(limits.max_frame_bytes * 4)
        .max_frame_size(limits.max_frame_bytes * 4)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            Connection::new(state, board, socket).run().await;
        })
}

struct Connection {
    state: RelayState,
    board: BoardId,
    socket: WebSocket,
    last_heard: Instant,
    bucket: TokenBucket,
}

struct Authed {
    ctx: OrgContext,
    token: String,
    access: Access,
}

impl Connection {
    fn new(state: RelayState, board: BoardId, socket: WebSocket) -> Self {
        let rate = state.config.ws.messages_per_second;
        Self {
            state,
            board,
            socket,
            last_heard: Instant::now(),
            bucket: TokenBucket::new(rate),
        }
    }

    async fn run(mut self) {
        let close = match self.serve().await {
            Ok(close) | Err(close) => close,
        };
        close_gracefully(&mut self.socket, close, CLOSE_GRACE).await;
    }

    async fn send(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Close> {
        send_text(&mut self.socket, text).await
    }

    /// The next text frame from the client, handling pings, size and rate limits.
    async fn receive(&mut self) -> Result<Option<ClientFrame>, Close> {
        let Some(text) = next_frame(&mut self.socket, &mut self.last_heard).await? else {
            self.reject_frame(None, "binary frames are not supported")
                .await?;
            return Ok(None);
        };
        if !self.bucket.take() {
            let frame = protocol::error(
                None,
                "RATE_LIMITED",
                "too many frames",
                &serde_json::json!([]),
            );
            self.send(frame).await?;
            return Err(Close(CLOSE_POLICY, "rate limit"));
        }
        if text.len() > self.state.config.ws.max_frame_bytes {
            let frame = protocol::error(
                None,
                "PAYLOAD_TOO_LARGE",
                "frame exceeds WS_MAX_FRAME_BYTES",
                &serde_json::json!([]),
            );
            self.send(frame).await?;
            return Err(Close(CLOSE_POLICY, "frame too large"));
        }
        match ClientFrame::parse(text.as_str()) {
            Ok(frame) => Ok(Some(frame)),
            Err(message) => {
                self.reject_frame(None, &message).await?;
                Ok(None)
            }
        }
    }

    async fn reject_frame(&mut self, id: Option<&str>, message: &str) -> Result<(), Close> {
        let frame = protocol::error(id, "INVALID_MESSAGE", message, &serde_json::json!([]));
        self.send(frame).await
    }

    async fn serve(&mut self) -> Result<Close, Close> {
        let timeout = self.state.config.ws.auth_timeout;
        let first = match tokio::time::timeout(timeout, self.receive()).await {
            Err(_) => {
                self.send(protocol::auth_error("no auth frame in time"))
                    .await?;
                return Ok(Close(CLOSE_AUTH, "auth timeout"));
            }
            Ok(frame) => frame?,
        };
        let Some(ClientFrame::Auth(protocol::AuthFrame {
            token,
            org_id,
            last_seq,
        })) = first
        else {
            self.send(protocol::auth_error("the first frame must be auth"))
                .await?;
            return Ok(Close(CLOSE_AUTH, "auth required"));
        };
        let authed =
            match Box::pin(Self::authenticate(&self.state, self.board, token, org_id)).await {
                Ok(authed) => authed,
                Err(err @ (Error::NotFound { .. } | Error::Forbidden(_))) => {
                    self.send(protocol::auth_error(&err.public_message()))
                        .await?;
                    return Ok(Close(CLOSE_FORBIDDEN, "forbidden"));
                }
                Err(err) => {
                    self.send(protocol::auth_error(&err.public_message()))
                        .await?;
                    return Ok(Close(CLOSE_AUTH, "auth failed"));
                }
            };
        // Join before reading the state, so nothing falls between the two.
        let mut membership = Box::pin(self.state.rooms.join(authed.ctx.org_id, self.board))
            .await
            .map_err(|_| Close(CLOSE_RESTART, "unavailable"))?;
        let actor = serde_json::to_value(&authed.ctx.actor).unwrap_or_default();
        let mut cursor = membership.joined_at;
        self.send(protocol::auth_ok(&self.board.to_string(), &actor, cursor))
            .await?;
        match last_seq {
            Some(after) => cursor = Box::pin(self.resume(&authed, after, cursor)).await?,
            None => cursor = Box::pin(self.send_state(&authed)).await?,
        }
        self.live(&authed, &mut membership, cursor).await
    }

    /// (Not a method: `&self` across an await would need the socket to be `Sync`.)
    async fn authenticate(
        state: &RelayState,
        board: BoardId,
        token: String,
        org: Option<mc_domain::ids::OrgId>,
    ) -> Result<Authed> {
        let principal = state.identity.authenticate(&token).await?;
        let ctx = state.identity.org_context(&principal, org).await?;
        ctx.authorize(Permission::BoardsRead)?;
        let access = if ctx.agent_id.is_some() {
            Access::AgentScope
        } else {
            Access::Role(Permission::TasksRead)
        };
        // Fails with not_found for a board the caller cannot see (another org's too).
        state.boards.get_board(&ctx, board).await?;
        Ok(Authed { ctx, token, access })
    }

    /// Sends `board.state`; returns its seq.
    async fn send_state(&mut self, authed: &Authed) -> Result<i64, Close> {
        let state = self
            .state
            .boards
            .board_state(&authed.ctx, self.board)
            .await
            .map_err(|_| Close(CLOSE_RESTART, "unavailable"))?;
        let frame = protocol::board_state(
            &serde_json::to_value(&state.board).unwrap_or_default(),
            &serde_json::to_value(&state.tasks).unwrap_or_default(),
            state.seq,
        );
        self.send(frame).await?;
        Ok(state.seq)
    }

    /// Replays the board's events in `(after, cursor]`; returns the new cursor.
    async fn resume(&mut self, authed: &Authed, after: i64, cursor: i64) -> Result<i64, Close> {
        let pool = &self.state.infra.pool.clone();
        let org = authed.ctx.org_id;
        let latest = events::latest_seq(pool, org)
            .await
            .map_err(|_| Close(CLOSE_RESTART, "unavailable"))?;
        if after < 0 || after > latest {
            let err = Error::invalid_field(
                "last_seq",
                format!("must be between 0 and the latest seq ({latest})"),
            );
            self.send(protocol::domain_error(None, &err)).await?;
            return Ok(cursor);
        }
        if after >= cursor {
            // The client is ahead of this room; skip live frames it already has.
            return Ok(after);
        }
        let filter = CompiledFilter::new(EventFilter {
            board_id: Some(self.board),
            ..Default::default()
        })
        .map_err(|_| Close(1011, "filter"))?;
        let mut from = after;
        let mut sent = 0i64;
        while from < cursor {
            let page = events::replay(pool, org, &filter, from, Some(cursor), 500)
                .await
                .map_err(|_| Close(CLOSE_RESTART, "unavailable"))?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            sent += page.len() as i64;
            if sent > MAX_REPLAY {
                // Too far behind to replay usefully: start over from the full state.
                return self.send_state(authed).await;
            }
            for event in &page {
                if let Some((text, _)) = protocol::render(event) {
                    self.send(text).await?;
                }
            }
            from = last;
        }
        Ok(cursor)
    }

    /// The connected loop. What a socket holds while idle is this future, so every
    /// sizeable step (storage, catch-up, re-authentication) is boxed: allocated while it
    /// runs, not reserved in every idle socket.
    async fn live(
        &mut self,
        authed: &Authed,
        membership: &mut Membership,
        mut cursor: i64,
    ) -> Result<Close, Close> {
        let ws = self.state.config.ws.clone();
        // One timer for both chores and one kick future for the whole loop, because every
        // delivery re-polls each pending branch (10,000 times per event on a busy board).
        let mut next_ping = Instant::now() + ws.heartbeat_interval;
        let mut next_recheck = Instant::now() + ws.check_interval;
        let chores = tokio::time::sleep_until(next_ping.min(next_recheck).into());
        tokio::pin!(chores);
        // Polled only while a write waits on a stalled peer: a room that drops this socket
        // also ends its queue, so an idle socket learns it from `rx` and a busy one from
        // `dropped_as_slow` before each batch; checking the token on every delivery costs
        // a lock per frame.
        let kicked = membership.kicked.clone().cancelled_owned();
        tokio::pin!(kicked);
        let slow = || Close(CLOSE_SLOW, "slow consumer; resume from your last seq");
        loop {
            tokio::select! {
                biased;
                frame = membership.rx.recv() => {
                    let Some(mut frame) = frame else {
                        return Ok(match membership.ended() {
                            Ended::SlowConsumer => slow(),
                            Ended::Unavailable => Close(CLOSE_RESTART, "resume from your last seq"),
                        });
                    };
                    if membership.dropped_as_slow() {
                        return Ok(slow());
                    }
                    // Frames that queued up meanwhile go out in the same write: a busy
                    // relay makes one send per socket per wake-up, not one per frame.
                    let mut fed = 0u64;
                    let mut gone = false;
                    for taken in 1..=SEND_BATCH {
                        if frame.seq > cursor {
                            cursor = frame.seq;
                            gone = frame.effect == Effect::BoardGone;
                            // The send first: the token is looked at only if the peer stalls.
                            tokio::select! {
                                biased;
                                sent = self.socket.feed(Message::Text(frame.text)) => sent.map_err(|_| Close(1006, "send failed"))?,
                                () = &mut kicked => return Ok(slow()),
                            }
                            fed += 1;
                            if gone {
                                break;
                            }
                        }
                        if taken == SEND_BATCH {
                            break;
                        }
                        match membership.rx.try_recv() {
                            Ok(more) => frame = more,
                            Err(_) => break,
                        }
                    }
                    if fed > 0 {
                        tokio::select! {
                            biased;
                            sent = self.socket.flush() => sent.map_err(|_| Close(1006, "send failed"))?,
                            () = &mut kicked => return Ok(slow()),
                        }
                        self.state.frames_sent.fetch_add(fed, Ordering::Relaxed);
                    }
                    if gone {
                        return Ok(Close(1000, "board deleted"));
                    }
                }
                incoming = self.receive() => {
                    let Some(frame) = incoming? else { continue };
                    cursor = Box::pin(self.handle(authed, frame, cursor)).await?;
                }
                () = &mut chores => {
                    let now = Instant::now();
                    if now >= next_ping {
                        if self.last_heard.elapsed() > ws.heartbeat_timeout {
                            return Ok(Close(CLOSE_POLICY, "heartbeat timeout"));
                        }
                        self.socket
                            .send(Message::Ping(Default::default()))
                            .await
                            .map_err(|_| Close(1006, "send failed"))?;
                        next_ping = now + ws.heartbeat_interval;
                    }
                    if now >= next_recheck {
                        if !Box::pin(self.state.session_checks.still_allowed(&self.state.identity, &authed.token, authed.ctx.org_id)).await {
                            self.send(protocol::auth_error("session revoked")).await?;
                            return Ok(Close(CLOSE_AUTH, "session revoked"));
                        }
                        next_recheck = now + ws.check_interval;
                    }
                    chores.as_mut().reset(next_ping.min(next_recheck).into());
                }
            }
        }
    }

    async fn handle(
        &mut self,
        authed: &Authed,
        frame: ClientFrame,
        cursor: i64,
    ) -> Result<i64, Close> {
        match frame {
            ClientFrame::Auth(_) => {
                self.reject_frame(None, "already authenticated").await?;
            }
            ClientFrame::Heartbeat => self.send(protocol::heartbeat()).await?,
            ClientFrame::Resume(protocol::ResumeFrame { last_seq }) => {
                return self.resume(authed, last_seq, cursor).await;
            }
            ClientFrame::TaskMove(protocol::TaskMoveFrame {
                id,
                task_id,
                status,
                position,
            }) => {
                let input = TransitionTask {
                    status,
                    position,
                    evidence: None,
                    comment: None,
                };
                let result = self
                    .state
                    .boards
                    .move_task_on_board(&authed.ctx, self.board, task_id, input, authed.access)
                    .await;
                self.reply(id.as_deref(), result).await?;
            }
            ClientFrame::TaskCreate(protocol::TaskCreateFrame {
                id,
                title,
                status,
                priority,
                assignee_id,
                description,
            }) => {
                let input = CreateTask {
                    title,
                    description,
                    status,
                    priority,
                    assignee_agent_id: assignee_id,
                    assignee_user_id: None,
                    due_at: None,
                    estimate_hours: None,
                    evidence: None,
                    tag_ids: None,
                    position: None,
                };
                let access = match authed.access {
                    Access::AgentScope => Access::AgentScope,
                    Access::Role(_) => Access::Role(Permission::TasksCreate),
                };
                let result = self
                    .state
                    .boards
                    .create_task(&authed.ctx, self.board, input, access)
                    .await;
                self.reply(id.as_deref(), result).await?;
            }
        }
        Ok(cursor)
    }

    async fn reply(
        &mut self,
        id: Option<&str>,
        result: Result<mc_domain::boards::Task>,
    ) -> Result<(), Close> {
        let frame = match result {
            Ok(task) => protocol::ack(id, &serde_json::to_value(&task).unwrap_or_default()),
            Err(err) => protocol::domain_error(id, &err),
        };
        self.send(frame).await
    }
}

/// Recent answers to "may this session still read this organization's boards", shared by
/// the sockets of one session (a console with several tabs, one check rather than one per
/// tab). Each socket asks every `MC_STREAM_CHECK_INTERVAL_SECONDS`; an answer is reused
/// for half that, so a revoked session is closed within one and a half intervals.
pub struct SessionChecks {
    ttl: Duration,
    answers: Mutex<HashMap<(String, mc_domain::ids::OrgId), (Instant, bool)>>,
}

/// Answers kept at most before expired ones are dropped.
const SESSION_CHECKS_MAX: usize = 50_000;

impl SessionChecks {
    /// Checks reused for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            answers: Mutex::default(),
        }
    }

    /// Whether the session behind `token` may still read boards in `org`.
    pub async fn still_allowed(
        &self,
        identity: &mc_domain::identity::IdentityService,
        token: &str,
        org: mc_domain::ids::OrgId,
    ) -> bool {
        let key = (token.to_owned(), org);
        if let Some((at, allowed)) = self.answers.lock().expect("session checks").get(&key)
            && at.elapsed() < self.ttl
        {
            return *allowed;
        }
        let allowed = match identity.authenticate(token).await {
            Ok(principal) => identity
                .org_context(&principal, Some(org))
                .await
                .is_ok_and(|now| now.role.can(Permission::BoardsRead)),
            // Our own outage is not a revocation (and is not remembered).
            Err(Error::ServiceUnavailable { .. }) => return true,
            Err(_) => false,
        };
        let mut answers = self.answers.lock().expect("session checks");
        if answers.len() >= SESSION_CHECKS_MAX {
            let ttl = self.ttl;
            answers.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        answers.insert(key, (Instant::now(), allowed));
        allowed
    }
}
