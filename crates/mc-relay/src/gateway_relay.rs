//! `WS /ws/gateway/{gateway_id}/relay`: the socket a gateway's connector holds.
//!
//! First frame `{"type":"auth","payload":{"relay_token":"gw_relay_…"}}` →
//! `{"type":"auth_ok","payload":{"gateway_id","config"}}`, or `auth_error` and close 4001.
//! Then OpenClaw gateway RPC frames both ways: the control plane's `req {id, method,
//! params}` go down; the gateway's `res {id, ok, payload|error}` are routed back to the
//! caller's instance and its `event` frames are published. `heartbeat` frames are echoed.
//! The gateway's own `req`s: `agents.sync {agents: [...]}` (its `agents.list`, linked to
//! agents) and `api.request {method, path, headers, body}` (an agent's REST call).
//! One live socket per gateway: a newer one closes the older with 4010.
//! Frames beyond `GATEWAY_MAX_FRAMES_PER_SECOND` are read more slowly, not dropped.
//! Close codes: 4001 auth, 4008 policy (oversized frame, silence), 4010 replaced,
//! 1012 relay restarting.

use crate::RelayState;
use crate::socket::{
    CLOSE_AUTH, CLOSE_POLICY, CLOSE_REPLACED, CLOSE_RESTART, Close, TokenBucket, close_gracefully,
    flush, next_frame, queue_text, send_text,
};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use mc_domain::Error;
use mc_domain::agents::tunnel::TunnelRequest;
use mc_domain::chat::live::OrderedAnnouncer;
use mc_domain::chat::{ChatService, GatewayChatEvent};
use mc_domain::fanout::Delivery;
use mc_domain::gateways::AuthedGateway;
use mc_domain::gateways::router::{
    Attachment, CallOutcome, Envelope, GatewayRouter, PRESENCE_TTL, SocketPublisher,
};
use mc_domain::ids::{GatewayConnectionId, GatewayId};
use mc_web::ApiError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Requests forwarded to the gateway that are still unanswered after this are forgotten
/// (their callers have long timed out).
const IN_FLIGHT_TTL: Duration = Duration::from_secs(600);

/// Upgrades to the gateway relay socket.
pub async fn upgrade(
    State(state): State<RelayState>,
    Path(gateway): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(gateway) = gateway.parse::<GatewayId>() else {
        return ApiError(Error::invalid_field("gateway_id", "must be a UUID")).into_response();
    };
    let Some(slot) = state.connections.try_acquire() else {
        return crate::ConnectionSlots::refusal();
    };
    // Gateways send whole chat histories and agent lists: 16 × the client frame limit.
    // The transport allows twice that, so an oversized frame still gets a clear error.
    let max_frame = state.config.ws.max_frame_bytes * 16;
    ws.max_message_size(max_frame * 2)
        .max_frame_size(max_frame * 2)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            GatewaySocket {
                router: state.gateway_router.clone(),
                max_frame,
                state,
                gateway,
                socket,
                peer,
                last_heard: Instant::now(),
                in_flight: HashMap::new(),
            }
            .run()
            .await;
        })
}

struct GatewaySocket {
    state: RelayState,
    /// Cloned once per socket (it holds this instance's name).
    router: GatewayRouter,
    /// Largest accepted frame.
    max_frame: usize,
    gateway: GatewayId,
    socket: WebSocket,
    peer: SocketAddr,
    last_heard: Instant,
    /// Request id → (instance waiting for the answer, when it was sent).
    in_flight: HashMap<String, (String, Instant)>,
}

fn frame(kind: &str, payload: &Value) -> String {
    json!({ "type": kind, "payload": payload }).to_string()
}

/// Requests written to the gateway with one flush at most.
const REQUEST_BATCH: usize = 64;
/// Calls a gateway may have in flight at once (`api.request`).
const MAX_TUNNELLED: usize = 32;
/// Parallel lanes for a gateway's chat events: a session always takes the same lane, so
/// its deltas and final stay in order while sessions proceed side by side.
const CHAT_LANES: usize = 32;
/// Chat events queued per lane before the socket waits (TCP pushes back on the gateway).
const CHAT_LANE_QUEUE: usize = 256;
/// Events a lane has routed but not yet announced (finals waiting for their commit).
const CHAT_LANE_IN_FLIGHT: usize = 256;

/// Tasks that route a gateway's `chat` events to H5 users (stored replies, deltas).
struct ChatLanes(Vec<mpsc::Sender<GatewayChatEvent>>);

impl ChatLanes {
    fn start(state: &RelayState, gateway: &AuthedGateway) -> Self {
        // One queue to Redis for all lanes, pipelined: before, each delta and final waited
        // for its own Redis round trip inside its lane.
        let announcer = state.chat.hub().ordered_announcer();
        let lanes = (0..CHAT_LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<GatewayChatEvent>(CHAT_LANE_QUEUE);
                let lane = run_lane(state.chat.clone(), announcer.clone(), gateway.clone(), rx);
                tokio::spawn(lane);
                tx
            })
            .collect();
        Self(lanes)
    }

    async fn route(&self, event: GatewayChatEvent) {
        // UUIDv7: the low bits are random, so they spread sessions over the lanes.
        let lane = (event.session_id.as_uuid().as_u128() % self.0.len() as u128) as usize;
        let _ = self.0[lane].send(event).await;
    }
}

/// One lane: routes each event as it arrives (a final is queued for storing at once) and
/// announces the results in arrival order as they become ready, so a reply waiting for its
/// commit holds up only what comes after it in its own lane, and the commits of many
/// replies are grouped instead of taken one after another.
async fn run_lane(
    chat: ChatService,
    announcer: OrderedAnnouncer,
    gateway: AuthedGateway,
    mut events: mpsc::Receiver<GatewayChatEvent>,
) {
    let announce = async |user, delivery| {
        // Logged, not retried: what was stored is caught up from Postgres.
        if let Err(err) = announcer.announce(user, &delivery).await {
            tracing::warn!(error = %err, "announcing a chat reply failed");
        }
    };
    let mut routed = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            Some(result) = routed.next(), if !routed.is_empty() => match result {
                Ok(Some((user, delivery))) => announce(user, delivery).await,
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "storing a gateway chat reply failed"),
            },
            event = events.recv(), if routed.len() < CHAT_LANE_IN_FLIGHT => {
                let Some(event) = event else { break };
                match chat.route_gateway_event(&gateway, event).await {
                    Ok(next) => routed.push_back(next),
                    Err(err) => tracing::warn!(error = %err, "routing a gateway chat event failed"),
                }
            }
        }
    }
    // The socket closed: what was routed is still announced.
    while let Some(result) = routed.next().await {
        if let Ok(Some((user, delivery))) = result {
            announce(user, delivery).await;
        }
    }
}

/// Where tasks serving the gateway's calls send their answers.
struct GatewayCalls<'a> {
    answers: &'a mpsc::Sender<String>,
    slots: &'a Arc<Semaphore>,
}

/// A `res` frame for the gateway: the payload, or the error with its stable code.
fn res_frame(id: &str, outcome: mc_domain::Result<Value>) -> String {
    match outcome {
        Ok(payload) => json!({"type": "res", "id": id, "ok": true, "payload": payload}),
        Err(err) => {
            if matches!(
                err,
                Error::Internal { .. } | Error::ServiceUnavailable { .. }
            ) {
                tracing::warn!(error = %err, "serving a gateway call failed");
            }
            json!({"type": "res", "id": id, "ok": false, "error": {
                "code": err.code(), "message": err.public_message(),
            }})
        }
    }
    .to_string()
}

fn error_frame(code: &str, message: &str, id: Option<&str>) -> String {
    let mut f = json!({ "type": "error", "payload": { "code": code, "message": message } });
    if let Some(id) = id {
        f["id"] = json!(id);
    }
    f.to_string()
}

impl GatewaySocket {
    async fn run(mut self) {
        let close = match self.serve().await {
            Ok(close) | Err(close) => close,
        };
        close_gracefully(&mut self.socket, close, Duration::from_secs(5)).await;
    }

    async fn send(&mut self, text: String) -> Result<(), Close> {
        send_text(&mut self.socket, text).await
    }

    /// The next JSON frame (`None`: a bad frame already answered with an error).
    async fn receive(&mut self) -> Result<Option<Value>, Close> {
        let Some(text) = next_frame(&mut self.socket, &mut self.last_heard).await? else {
            self.send(error_frame(
                "INVALID_MESSAGE",
                "binary frames are not supported",
                None,
            ))
            .await?;
            return Ok(None);
        };
        if text.len() > self.max_frame {
            self.send(error_frame(
                "PAYLOAD_TOO_LARGE",
                "frame exceeds 16 × WS_MAX_FRAME_BYTES",
                None,
            ))
            .await?;
            return Err(Close(CLOSE_POLICY, "frame too large"));
        }
        match serde_json::from_str::<Value>(text.as_str()) {
            Ok(value) if value.get("type").and_then(Value::as_str).is_some() => Ok(Some(value)),
            Ok(_) => {
                self.send(error_frame(
                    "INVALID_MESSAGE",
                    "frames are JSON objects with a string type",
                    None,
                ))
                .await?;
                Ok(None)
            }
            Err(err) => {
                self.send(error_frame(
                    "INVALID_MESSAGE",
                    &format!("not JSON: {err}"),
                    None,
                ))
                .await?;
                Ok(None)
            }
        }
    }

    async fn authenticate(&mut self) -> Result<Result<AuthedGateway, Close>, Close> {
        let first =
            match tokio::time::timeout(self.state.config.ws.auth_timeout, self.receive()).await {
                Err(_) => {
                    self.send(frame(
                        "auth_error",
                        &json!({"reason": "no auth frame in time"}),
                    ))
                    .await?;
                    return Ok(Err(Close(CLOSE_AUTH, "auth timeout")));
                }
                Ok(first) => first?,
            };
        let token = first
            .as_ref()
            .filter(|f| f["type"] == "auth")
            .and_then(|f| f["payload"]["relay_token"].as_str())
            .map(str::to_owned);
        let Some(token) = token else {
            self.send(frame(
                "auth_error",
                &json!({"reason": "the first frame must be auth {relay_token}"}),
            ))
            .await?;
            return Ok(Err(Close(CLOSE_AUTH, "auth required")));
        };
        match self.state.gateways.authenticate(self.gateway, &token).await {
            Ok(gateway) => Ok(Ok(gateway)),
            Err(Error::Unauthorized(_)) => {
                self.send(frame("auth_error", &json!({"reason": "invalid_token"})))
                    .await?;
                Ok(Err(Close(CLOSE_AUTH, "invalid token")))
            }
            Err(err) => {
                tracing::warn!(error = %err, "gateway authentication failed");
                self.send(frame("auth_error", &json!({"reason": "unavailable"})))
                    .await?;
                Ok(Err(Close(CLOSE_RESTART, "try again")))
            }
        }
    }

    async fn serve(&mut self) -> Result<Close, Close> {
        let gateway = match self.authenticate().await? {
            Ok(gateway) => gateway,
            Err(close) => return Ok(close),
        };
        let instance = self.router.instance().to_owned();
        let peer = self.peer.to_string();
        let connection = match self
            .state
            .gateways
            .relay_connected(&gateway, &instance, Some(&peer))
            .await
        {
            Ok(id) => id,
            Err(err) => {
                tracing::warn!(error = %err, "recording a gateway connection failed");
                return Ok(Close(CLOSE_RESTART, "try again"));
            }
        };
        let attachment = match self.router.attach(gateway.id, connection).await {
            Ok(a) => a,
            Err(err) => {
                tracing::warn!(error = %err, "routing a gateway connection failed");
                let _ = self
                    .state
                    .gateways
                    .relay_disconnected(&gateway, connection, "routing unavailable")
                    .await;
                return Ok(Close(CLOSE_RESTART, "try again"));
            }
        };
        let config = self.state.gateways.gateway_config();
        let hub = self.state.chat.hub().clone();
        if let Err(err) = hub
            .publish_gateway(gateway.organization_id, gateway.id, true)
            .await
        {
            tracing::warn!(error = %err, "announcing a gateway to chat users failed");
        }
        let result = async {
            self.send(frame(
                "auth_ok",
                &json!({"gateway_id": gateway.id, "connection_id": connection, "config": config}),
            ))
            .await?;
            self.relay(&gateway, connection, attachment).await
        }
        .await;
        let (code, reason) = match &result {
            Ok(c) | Err(c) => (c.0, c.1),
        };
        let _ = self.router.detach(gateway.id, connection).await;
        // Replaced by a newer socket: the gateway is still online.
        if code != CLOSE_REPLACED
            && let Err(err) = hub
                .publish_gateway(gateway.organization_id, gateway.id, false)
                .await
        {
            tracing::warn!(error = %err, "announcing a gateway to chat users failed");
        }
        if let Err(err) = self
            .state
            .gateways
            .relay_disconnected(&gateway, connection, reason)
            .await
        {
            tracing::warn!(error = %err, "recording a gateway disconnect failed");
        }
        result
    }

    async fn relay(
        &mut self,
        gateway: &AuthedGateway,
        connection: GatewayConnectionId,
        mut attachment: Attachment,
    ) -> Result<Close, Close> {
        let ws = self.state.config.ws.clone();
        let mut ping = tokio::time::interval(ws.heartbeat_interval.min(PRESENCE_TTL / 3));
        ping.tick().await;
        let shutdown = self.state.shutdown.clone();
        let mut bucket = TokenBucket::new(self.state.config.gateways.max_frames_per_second.max(1));
        // Answers to the gateway's own calls (`api.request`) come back from tasks.
        let (answers_tx, mut answers) = mpsc::channel::<String>(MAX_TUNNELLED);
        let tunnel_slots = Arc::new(Semaphore::new(MAX_TUNNELLED));
        let chat_lanes = ChatLanes::start(&self.state, gateway);
        // Answers and events leave for Redis in the order read, pipelined: a round trip
        // per frame would bound a busy gateway to a few thousand frames a second.
        let publisher = self.router.socket_publisher(gateway.id);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(Close(CLOSE_RESTART, "relay restarting")),
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > ws.heartbeat_timeout {
                        return Ok(Close(CLOSE_POLICY, "heartbeat timeout"));
                    }
                    if self.router.refresh(gateway.id, connection).await.is_err() {
                        tracing::warn!("refreshing gateway presence failed");
                    }
                    self.socket.send(Message::Ping(Default::default())).await
                        .map_err(|_| Close(1006, "send failed"))?;
                    let now = Instant::now();
                    self.in_flight.retain(|_, (_, at)| now.duration_since(*at) < IN_FLIGHT_TTL);
                }
                delivery = attachment.rx.rx.recv() => match delivery {
                    Ok(Delivery::Item(envelope)) => {
                        // Requests already waiting go out with it, in one write.
                        let mut next = Some(envelope);
                        let mut batch = 0;
                        while let Some(envelope) = next.take() {
                            match envelope.as_ref() {
                                Envelope::Req { id, method, params, reply_to } => {
                                    self.in_flight.insert(id.clone(), (reply_to.clone(), Instant::now()));
                                    let f = json!({"type": "req", "id": id, "method": method, "params": params});
                                    queue_text(&mut self.socket, f.to_string()).await?;
                                }
                                Envelope::Replaced { connection_id } if *connection_id != connection => {
                                    return Ok(Close(CLOSE_REPLACED, "replaced by a newer connection"));
                                }
                                _ => {}
                            }
                            batch += 1;
                            if batch < REQUEST_BATCH
                                && let Ok(Delivery::Item(envelope)) = attachment.rx.rx.try_recv()
                            {
                                next = Some(envelope);
                            }
                        }
                        flush(&mut self.socket).await?;
                    }
                    Ok(Delivery::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Ok(Close(CLOSE_RESTART, "routing stopped"));
                    }
                },
                Some(answer) = answers.recv() => self.send(answer).await?,
                incoming = self.receive() => {
                    let Some(f) = incoming? else { continue };
                    // A busy gateway streams many chat events: over its allowance the relay
                    // reads it more slowly (TCP pushes back) rather than dropping anything.
                    while !bucket.take() {
                        metrics::counter!("mc_gateway_frames_throttled_total").increment(1);
                        tokio::time::sleep(bucket.wait()).await;
                    }
                    if f["type"] == "req" {
                        let calls = GatewayCalls { answers: &answers_tx, slots: &tunnel_slots };
                        self.serve_call(gateway, &f, calls).await?;
                    } else if f["type"] == "event"
                        && let Some(event) = GatewayChatEvent::parse(&f)
                    {
                        // An H5 session's chat event is routed here and nowhere else:
                        // nobody else listens for it (4 publishes per reply before).
                        chat_lanes.route(event).await;
                    } else {
                        self.handle(&publisher, f).await?;
                    }
                }
            }
        }
    }

    /// A `req` from the gateway: `agents.sync` (link its agents) is answered here,
    /// `api.request` (an agent's REST call) in a task so slow API calls do not hold up
    /// the socket; anything else is `UNKNOWN_METHOD`.
    async fn serve_call(
        &mut self,
        gateway: &AuthedGateway,
        f: &Value,
        calls: GatewayCalls<'_>,
    ) -> Result<(), Close> {
        let Some(id) = f.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return self
                .send(error_frame(
                    "INVALID_MESSAGE",
                    "req needs a string id",
                    None,
                ))
                .await;
        };
        let params = f.get("params").cloned().unwrap_or(Value::Null);
        match f["method"].as_str().unwrap_or_default() {
            "agents.sync" => {
                let outcome = self.state.agents.link_reported(gateway, &params).await;
                self.send(res_frame(&id, outcome.map(|s| json!(s)))).await
            }
            "api.request" => {
                let request = match TunnelRequest::parse(&params) {
                    Ok(request) => request,
                    Err(err) => return self.send(res_frame(&id, Err(err))).await,
                };
                let Ok(slot) = calls.slots.clone().try_acquire_owned() else {
                    let busy = Error::RateLimited {
                        retry_after_secs: 1,
                    };
                    return self.send(res_frame(&id, Err(busy))).await;
                };
                let (state, gateway, answers) =
                    (self.state.clone(), gateway.clone(), calls.answers.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let outcome = async {
                        state
                            .agents
                            .authorize_tunnel(&state.identity, &gateway, &request.credential)
                            .await?;
                        state.tunnel.forward(&gateway, request).await
                    }
                    .await;
                    let _ = answers.send(res_frame(&id, outcome)).await;
                });
                Ok(())
            }
            method => {
                let res = json!({"type": "res", "id": id, "ok": false, "error": {
                    "code": "UNKNOWN_METHOD",
                    "message": format!("the control plane does not serve {method:?}"),
                }});
                self.send(res.to_string()).await
            }
        }
    }

    async fn handle(&mut self, publisher: &SocketPublisher, f: Value) -> Result<(), Close> {
        let id = f.get("id").and_then(Value::as_str).map(str::to_owned);
        match f["type"].as_str().unwrap_or_default() {
            "res" => {
                let Some(id) = id else {
                    return self
                        .send(error_frame("INVALID_MESSAGE", "res needs an id", None))
                        .await;
                };
                let Some((reply_to, _)) = self.in_flight.remove(&id) else {
                    return self
                        .send(error_frame(
                            "UNKNOWN_REQUEST",
                            "no request with this id is waiting",
                            Some(&id),
                        ))
                        .await;
                };
                if let Err(err) = publisher
                    .respond(&reply_to, id, CallOutcome::from_res(&f))
                    .await
                {
                    tracing::warn!(error = %err, "routing a gateway answer failed");
                }
                Ok(())
            }
            "event" => {
                if f.get("event").and_then(Value::as_str).is_none() {
                    return self
                        .send(error_frame(
                            "INVALID_MESSAGE",
                            "event needs an event name",
                            None,
                        ))
                        .await;
                }
                if let Err(err) = publisher.publish_event(f).await {
                    tracing::warn!(error = %err, "publishing a gateway event failed");
                }
                Ok(())
            }
            "heartbeat" => self.send(json!({"type": "heartbeat"}).to_string()).await,
            "auth" => {
                self.send(error_frame(
                    "INVALID_MESSAGE",
                    "already authenticated",
                    id.as_deref(),
                ))
                .await
            }
            other => {
                let message = format!("unknown frame type {other:?}");
                self.send(error_frame("INVALID_MESSAGE", &message, id.as_deref()))
                    .await
            }
        }
    }
}
