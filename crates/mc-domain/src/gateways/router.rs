//! Calls from the control plane to gateways, across relay instances (seed 000 M4
//! GatewayPool + RedisBridge).
//!
//! The instance holding a gateway's relay socket listens on `{prefix}route:gw:{id}` and
//! keeps the presence key `{prefix}presence:gw:{id}` (instance and connection, with a TTL)
//! fresh. A caller on any instance publishes a request there with its own reply channel
//! `{prefix}route:relay:{instance}`; the holder writes the `req` frame to the socket and
//! publishes the gateway's `res` back. Unanswered calls end in `gateway_timeout`, calls
//! to a gateway nobody holds in `gateway_offline`. Gateway `event` frames are published
//! on `{prefix}gw:{id}:events` for whoever listens, except the `chat` events of H5
//! sessions, which the relay holding the socket routes to their users itself.

use crate::error::Result;
use crate::fanout::{Delivery, Fanout, OrderedPublisher, Subscription};
use crate::ids::{GatewayConnectionId, GatewayId};
use crate::redis::RedisHandle;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a presence key lives without a refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// Messages a listener may fall behind before it lags.
const CAPACITY: usize = 1024;

/// What travels between relay instances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    /// A call for the gateway's socket holder.
    Req {
        /// Request id (also the frame id on the socket).
        id: String,
        /// OpenClaw method.
        method: String,
        /// Its params.
        params: serde_json::Value,
        /// Instance expecting the answer.
        reply_to: String,
    },
    /// The answer, for the caller's instance.
    Res {
        /// Request id.
        id: String,
        /// Outcome.
        outcome: CallOutcome,
    },
    /// A newer socket for the gateway opened: every other holder closes.
    Replaced {
        /// The socket that stays.
        connection_id: GatewayConnectionId,
    },
    /// A frame the gateway sent unprompted (`event`).
    Event {
        /// Gateway.
        gateway_id: GatewayId,
        /// The frame as received.
        frame: serde_json::Value,
    },
}

/// The answer to a call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CallOutcome {
    /// `res {ok: true, payload}`.
    Ok {
        /// Payload.
        payload: serde_json::Value,
    },
    /// `res {ok: false, error}` or a relay failure.
    Error {
        /// `gateway_offline`, `gateway_timeout`, or the gateway's own code.
        code: String,
        /// Explanation.
        message: String,
        /// The gateway's error object, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<serde_json::Value>,
    },
}

impl CallOutcome {
    /// A relay-side failure.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        CallOutcome::Error {
            code: code.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    /// The payload, or the failure as a domain error (`gateway_timeout` → 504, an offline
    /// gateway or the gateway's own error → 503 naming its code).
    pub fn into_result(self) -> Result<serde_json::Value> {
        match self {
            CallOutcome::Ok { payload } => Ok(payload),
            CallOutcome::Error { code, message, .. } if code == "gateway_timeout" => {
                Err(crate::Error::GatewayTimeout(message.into()))
            }
            CallOutcome::Error { code, message, .. } => {
                Err(crate::Error::unavailable(format!("{code}: {message}")))
            }
        }
    }

    /// Reads a `res` frame's outcome.
    pub fn from_res(frame: &serde_json::Value) -> Self {
        if frame["ok"].as_bool() == Some(true) {
            CallOutcome::Ok {
                payload: frame.get("payload").cloned().unwrap_or_default(),
            }
        } else {
            let error = frame.get("error").cloned().unwrap_or_default();
            CallOutcome::Error {
                code: error["code"].as_str().unwrap_or("gateway_error").to_owned(),
                message: error["message"]
                    .as_str()
                    .unwrap_or("the gateway reported an error")
                    .to_owned(),
                details: Some(error),
            }
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<CallOutcome>>>>;

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct GatewayRouter {
    fanout: Fanout<Envelope>,
    redis: Option<RedisHandle>,
    instance: String,
    pending: Pending,
}

impl std::fmt::Debug for GatewayRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouter")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// A gateway socket's feed of requests and replacement notices.
pub struct Attachment {
    /// Deliveries for the socket.
    pub rx: Subscription<Envelope>,
}

impl GatewayRouter {
    /// A router for this relay `instance` (unique per process), through Redis, or
    /// in-process without it. Starts listening for answers.
    pub async fn start(redis: Option<RedisHandle>, instance: String) -> Result<Self> {
        let fanout = match &redis {
            Some(handle) => Fanout::redis(handle.clone(), CAPACITY),
            None => Fanout::local(CAPACITY),
        };
        let router = Self {
            fanout,
            redis,
            instance,
            pending: Arc::default(),
        };
        let mut replies = router
            .fanout
            .subscribe(&router.channel(&format!("route:relay:{}", router.instance)))
            .await?;
        let pending = router.pending.clone();
        tokio::spawn(async move {
            loop {
                match replies.rx.recv().await {
                    Ok(Delivery::Item(envelope)) => {
                        if let Envelope::Res { id, outcome } = envelope.as_ref() {
                            let waiter = pending.lock().expect("pending lock").remove(id);
                            if let Some(waiter) = waiter {
                                let _ = waiter.send(outcome.clone());
                            }
                        }
                    }
                    Ok(Delivery::Resync)
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(router)
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn channel(&self, suffix: &str) -> String {
        match &self.redis {
            Some(handle) => handle.key(suffix),
            None => suffix.to_owned(),
        }
    }

    fn route(&self, gateway: GatewayId) -> String {
        self.channel(&format!("route:gw:{gateway}"))
    }

    fn presence_key(&self, gateway: GatewayId) -> String {
        self.channel(&format!("presence:gw:{gateway}"))
    }

    fn events_channel(&self, gateway: GatewayId) -> String {
        self.channel(&format!("gw:{gateway}:events"))
    }

    async fn publish(&self, channel: String, envelope: &Envelope) -> Result<()> {
        self.fanout.publish(&[(channel, encode(envelope)?)]).await
    }

    /// Which instance and connection hold the gateway, if any (`None` without Redis
    /// means: ask the local subscribers).
    pub async fn presence(&self, gateway: GatewayId) -> Result<Option<String>> {
        match &self.redis {
            Some(handle) => {
                let mut conn = handle.conn();
                let value: Option<String> = redis::cmd("GET")
                    .arg(self.presence_key(gateway))
                    .query_async(&mut conn)
                    .await?;
                Ok(value)
            }
            None => Ok(Some(self.instance.clone())),
        }
    }

    /// Calls `method` on the gateway and waits up to `timeout` for its answer. The
    /// request itself tells whether anyone holds the gateway: Redis counts the relays
    /// subscribed to its route (none: `gateway_offline`), so no presence read comes first.
    pub async fn call(
        &self,
        gateway: GatewayId,
        method: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<CallOutcome> {
        let id = format!("mc-{}", uuid::Uuid::now_v7());
        let request = encode(&Envelope::Req {
            id: id.clone(),
            method: method.to_owned(),
            params,
            reply_to: self.instance.clone(),
        })?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), tx);
        let receivers = self
            .fanout
            .publish_counted(&self.route(gateway), &request)
            .await;
        let outcome = match receivers {
            Err(err) => {
                self.pending.lock().expect("pending lock").remove(&id);
                return Err(err);
            }
            Ok(0) => CallOutcome::error(
                "gateway_offline",
                "the gateway is not connected to any relay",
            ),
            Ok(_) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(outcome)) => outcome,
                _ => CallOutcome::error(
                    "gateway_timeout",
                    format!("no answer to {method} within {} ms", timeout.as_millis()),
                ),
            },
        };
        self.pending.lock().expect("pending lock").remove(&id);
        Ok(outcome)
    }

    /// Takes over the gateway's route for a new socket: marks presence, tells older
    /// sockets (on any instance) to close, and returns the socket's feed.
    pub async fn attach(
        &self,
        gateway: GatewayId,
        connection: GatewayConnectionId,
    ) -> Result<Attachment> {
        let rx = self.fanout.subscribe(&self.route(gateway)).await?;
        self.refresh(gateway, connection).await?;
        self.publish(
            self.route(gateway),
            &Envelope::Replaced {
                connection_id: connection,
            },
        )
        .await?;
        Ok(Attachment { rx })
    }

    /// Renews the presence key (call well within [`PRESENCE_TTL`]).
    pub async fn refresh(&self, gateway: GatewayId, connection: GatewayConnectionId) -> Result<()> {
        if let Some(handle) = &self.redis {
            let mut conn = handle.conn();
            let _: () = redis::cmd("SET")
                .arg(self.presence_key(gateway))
                .arg(format!("{}/{connection}", self.instance))
                .arg("PX")
                .arg(PRESENCE_TTL.as_millis() as u64)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Drops presence when it is still this socket's.
    pub async fn detach(&self, gateway: GatewayId, connection: GatewayConnectionId) -> Result<()> {
        if let Some(handle) = &self.redis {
            let mut conn = handle.conn();
            let _: i64 = redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
            .key(self.presence_key(gateway))
            .arg(format!("{}/{connection}", self.instance))
            .invoke_async(&mut conn)
            .await?;
        }
        Ok(())
    }

    /// What a gateway's socket publishes (answers, events), in the order it read them,
    /// without a Redis round trip per frame.
    pub fn socket_publisher(&self, gateway: GatewayId) -> SocketPublisher {
        SocketPublisher {
            router: self.clone(),
            gateway,
            publisher: self.fanout.ordered_publisher(),
        }
    }

    /// Listens to the gateway's `event` frames.
    pub async fn subscribe_events(&self, gateway: GatewayId) -> Result<Subscription<Envelope>> {
        self.fanout.subscribe(&self.events_channel(gateway)).await
    }
}

fn encode(envelope: &Envelope) -> Result<String> {
    serde_json::to_string(envelope)
        .map_err(|e| crate::Error::internal("encoding a relay envelope", e))
}

/// A gateway socket's answers and events on their way to Redis, in the order the socket
/// read them (an ack stays ahead of the run's events); see [`GatewayRouter::socket_publisher`].
#[derive(Debug)]
pub struct SocketPublisher {
    router: GatewayRouter,
    gateway: GatewayId,
    publisher: OrderedPublisher,
}

impl SocketPublisher {
    /// Sends the gateway's answer to the instance that asked.
    pub async fn respond(&self, reply_to: &str, id: String, outcome: CallOutcome) -> Result<()> {
        let channel = self.router.channel(&format!("route:relay:{reply_to}"));
        let envelope = encode(&Envelope::Res { id, outcome })?;
        self.publisher.publish(channel, envelope).await
    }

    /// Publishes an `event` frame of the gateway.
    pub async fn publish_event(&self, frame: serde_json::Value) -> Result<()> {
        let envelope = encode(&Envelope::Event {
            gateway_id: self.gateway,
            frame,
        })?;
        self.publisher
            .publish(self.router.events_channel(self.gateway), envelope)
            .await
    }
}
