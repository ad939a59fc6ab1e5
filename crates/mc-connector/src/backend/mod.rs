//! What the connector bridges the control plane to: the local OpenClaw gateway, or a
//! simulated one (`--simulate N`).

pub mod openclaw;
pub mod simulated;

use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

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

    /// The gateway's `event` frames (as `{type: "event", event, payload, seq?}`).
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        match self {
            Backend::Simulated(s) => s.subscribe(),
            Backend::OpenClaw(c) => c.subscribe(),
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
