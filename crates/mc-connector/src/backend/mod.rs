//! What the connector bridges the control plane to: the local OpenClaw gateway, or a
//! simulated one (`--simulate N`).

pub mod openclaw;
pub mod simulated;

use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

/// An RPC failure as OpenClaw reports it (`res {ok: false, error: {code, message}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// `INVALID_REQUEST`, `UNAVAILABLE`, …
    pub code: String,
    /// Explanation.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The local gateway.
#[derive(Clone)]
pub enum Backend {
    /// Scripted agents answering deterministically.
    Simulated(Arc<simulated::Simulated>),
    /// A real OpenClaw gateway over its WebSocket protocol.
    OpenClaw(Arc<openclaw::OpenClawClient>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Simulated(_) => f.write_str("Backend::Simulated"),
            Backend::OpenClaw(_) => f.write_str("Backend::OpenClaw"),
        }
    }
}

impl Backend {
    /// Calls `method` on the gateway.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match self {
            Backend::Simulated(s) => s.call(method, &params),
            Backend::OpenClaw(c) => c.call(method, params).await,
        }
    }

    /// The gateway's `event` frames (as `{type: "event", event, payload, seq?}`), in order.
    pub fn events(&self) -> &Arc<EventQueue> {
        match self {
            Backend::Simulated(s) => s.events(),
            Backend::OpenClaw(c) => c.events(),
        }
    }

    /// `(active sessions, agents)` for heartbeats.
    pub async fn load(&self) -> (i64, i64) {
        let count = |v: &Result<Value, RpcError>, key: &str| {
            v.as_ref()
                .ok()
                .and_then(|v| v[key].as_array().map(|a| a.len() as i64))
                .unwrap_or(0)
        };
        let sessions = self.call("sessions.list", serde_json::json!({})).await;
        let agents = self.call("agents.list", serde_json::json!({})).await;
        (count(&sessions, "sessions"), count(&agents, "agents"))
    }
}

/// Frames a bounded queue holds before producers wait.
const EVENT_QUEUE: usize = 4096;

/// The gateway's event frames on their way to the relay link, in order (a chat reply
/// dropped here would be lost). When the relay link falls behind or is down, the queue
/// fills and producers wait, so the gateway's socket is read more slowly instead. A frame
/// the link took but could not send is put back and goes first on the next link.
#[derive(Debug)]
pub struct EventQueue {
    tx: mpsc::Sender<Value>,
    /// The frame put back, then the queue.
    rx: Mutex<(Option<Value>, mpsc::Receiver<Value>)>,
}

impl Default for EventQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        Self {
            tx,
            rx: Mutex::new((None, rx)),
        }
    }
}

impl EventQueue {
    /// Adds a frame, waiting while the queue is full.
    pub async fn push(&self, frame: Value) {
        // The receiver lives as long as the queue, so sending cannot fail.
        let _ = self.tx.send(frame).await;
    }

    /// The next frame (one consumer at a time: the relay link).
    pub async fn next(&self) -> Option<Value> {
        let mut rx = self.rx.lock().await;
        match rx.0.take() {
            Some(frame) => Some(frame),
            None => rx.1.recv().await,
        }
    }

    /// Puts back a frame taken by [`next`](Self::next) that could not be sent.
    pub async fn put_back(&self, frame: Value) {
        self.rx.lock().await.0 = Some(frame);
    }
}
