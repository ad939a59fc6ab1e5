//! Holds the relay socket to the control plane: authenticates with the relay token,
//! reports the gateway's agents (`agents.sync`), serves the control plane's `req`s through
//! the backend, streams the backend's events up, and carries the loopback proxy's
//! `api.request`s. Reconnects with exponential backoff and full jitter.

use crate::backend::Backend;
use crate::config::ConnectorConfig;
use crate::identity::{Identity, Registry};
use crate::rpc::{LinkError, RpcLink};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{RwLock, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Calls the connector makes on the relay (`api.request`, `agents.sync`): answers are
/// whole `res` frames.
pub type RelayLink = RpcLink<Value>;

/// Sends `req {method, params}` on the relay and waits for its `res` frame.
pub async fn relay_call(
    link: &RelayLink,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, LinkError> {
    let id = format!("conn-{}", uuid::Uuid::new_v4());
    let frame = json!({"type": "req", "id": id, "method": method, "params": params});
    link.request(id, frame, timeout).await
}

/// The delay before reconnect `attempt` (1-based): exponential from `base`, capped at
/// `max`, with full jitter over its upper half so a fleet does not reconnect in step.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// How often the agent list is reported again while connected.
const AGENT_RESYNC: Duration = Duration::from_secs(300);
/// How soon a failed agent report is retried.
const AGENT_RETRY: Duration = Duration::from_secs(2);

/// How a session ended.
enum Ended {
    /// The connector is stopping.
    Shutdown,
    /// The socket was authenticated and then dropped: reconnect from the base delay.
    AfterConnect(String),
    /// It never got past authentication.
    Failed(String),
    /// The relay refused the token: register again.
    Rejected,
}

/// Everything the relay loop needs.
pub struct RelaySupervisor {
    /// Settings.
    pub config: ConnectorConfig,
    /// Registry client.
    pub registry: Registry,
    /// Current identity (renewed on rejection).
    pub identity: Arc<RwLock<Identity>>,
    /// The local gateway.
    pub backend: Backend,
    /// Shared with the proxy.
    pub link: Arc<RelayLink>,
    /// Whether the relay socket is up (for the proxy's readiness and tests).
    pub connected: watch::Sender<bool>,
}

impl std::fmt::Debug for RelaySupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySupervisor").finish_non_exhaustive()
    }
}

impl RelaySupervisor {
    /// Runs until `shutdown`, or until `reconnect_max_retries` attempts in a row failed.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut failures: u32 = 0;
        loop {
            let ended = self.session(&shutdown).await;
            let _ = self.connected.send(false);
            self.link.detach();
            match ended {
                Ended::Shutdown => return Ok(()),
                Ended::AfterConnect(why) => {
                    tracing::warn!(reason = %why, "relay connection lost; reconnecting");
                    failures = 1;
                }
                Ended::Failed(why) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(reason = %why, attempt = failures, "relay connection failed");
                }
                Ended::Rejected => {
                    failures = failures.saturating_add(1);
                    tracing::warn!("the relay refused the relay token; registering again");
                    match self.registry.register().await {
                        Ok(fresh) => *self.identity.write().await = fresh,
                        Err(err) => tracing::warn!(error = %err, "registering again failed"),
                    }
                }
            }
            if self
                .config
                .reconnect_max_retries
                .is_some_and(|max| u64::from(failures) > max)
            {
                anyhow::bail!("gave up after {failures} failed relay connections");
            }
            let delay = backoff(
                failures,
                self.config.reconnect_base,
                self.config.reconnect_max,
            );
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(&self, shutdown: &CancellationToken) -> Ended {
        let identity = self.identity.read().await.clone();
        let connect = tokio::time::timeout(
            Duration::from_secs(15),
            // No Nagle: replies stream as many small frames that must leave at once.
            tokio_tungstenite::connect_async_with_config(
                identity.relay_ws_url.as_str(),
                None,
                true,
            ),
        );
        let mut ws = tokio::select! {
            () = shutdown.cancelled() => return Ended::Shutdown,
            c = connect => match c {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => return Ended::Failed(format!("connecting: {e}")),
                Err(_) => return Ended::Failed("connecting timed out".into()),
            },
        };
        let auth = json!({"type": "auth", "payload": {"relay_token": identity.relay_token}});
        if let Err(e) = ws.send(Message::text(auth.to_string())).await {
            return Ended::Failed(format!("sending auth: {e}"));
        }
        let first = tokio::time::timeout(Duration::from_secs(15), ws.next()).await;
        let reply: Value = match first {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str(&text).unwrap_or_default(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return match frame {
                    Some(f) if u16::from(f.code) == 4001 => Ended::Rejected,
                    other => Ended::Failed(format!("closed during auth: {other:?}")),
                };
            }
            _ => return Ended::Failed("no answer to auth".into()),
        };
        match reply["type"].as_str() {
            Some("auth_ok") => {}
            Some("auth_error") if reply["payload"]["reason"] == "invalid_token" => {
                return Ended::Rejected;
            }
            _ => return Ended::Failed(format!("auth refused: {reply}")),
        }
        tracing::info!(gateway_id = %identity.gateway_id, "relay connected");
        let (tx, mut outbound) = mpsc::channel::<Message>(1024);
        self.link.attach(tx.clone());
        let _ = self.connected.send(true);
        let events = self.backend.events().clone();
        // Ends the agent reports with this socket.
        let session = shutdown.child_token();
        let _session_guard = session.clone().drop_guard();
        self.report_agents(session);
        let mut keepalive = tokio::time::interval(Duration::from_secs(20));
        keepalive.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ended::Shutdown;
                }
                Some(out) = outbound.recv() => {
                    if let Err(e) = ws.send(out).await {
                        return Ended::AfterConnect(format!("sending: {e}"));
                    }
                }
                Some(frame) = events.next() => {
                    if let Err(e) = ws.send(Message::text(frame.to_string())).await {
                        events.put_back(frame).await;
                        return Ended::AfterConnect(format!("sending: {e}"));
                    }
                }
                _ = keepalive.tick() => {
                    if let Err(e) = ws.send(Message::text(r#"{"type":"heartbeat"}"#)).await {
                        return Ended::AfterConnect(format!("sending: {e}"));
                    }
                }
                frame = ws.next() => match frame {
                    None => return Ended::AfterConnect("the relay closed the socket".into()),
                    Some(Err(e)) => return Ended::AfterConnect(format!("reading: {e}")),
                    Some(Ok(Message::Close(frame))) => {
                        return Ended::AfterConnect(format!("closed by the relay: {frame:?}"));
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(answer) = self.handle(&text, &tx).await
                            && let Err(e) = ws.send(Message::text(answer)).await
                        {
                            return Ended::AfterConnect(format!("sending: {e}"));
                        }
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// Tells the control plane which agents the gateway has, for as long as this socket
    /// lives: at once, again every few seconds while the gateway cannot be asked (it may
    /// still be starting), then every [`AGENT_RESYNC`] to pick up added or removed agents.
    fn report_agents(&self, session: CancellationToken) {
        let (backend, link) = (self.backend.clone(), self.link.clone());
        tokio::spawn(async move {
            loop {
                let pause = match backend.call("agents.list", json!({})).await {
                    Ok(list) => {
                        match relay_call(&link, "agents.sync", list, Duration::from_secs(30)).await
                        {
                            Ok(res) if res["ok"] == true => AGENT_RESYNC,
                            Ok(res) => {
                                tracing::warn!(error = %res["error"], "the control plane refused the agent list");
                                AGENT_RESYNC
                            }
                            Err(_) => AGENT_RETRY,
                        }
                    }
                    Err(err) => {
                        tracing::warn!(code = %err.code, "listing the gateway's agents failed; retrying");
                        AGENT_RETRY
                    }
                };
                tokio::select! {
                    () = session.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        });
    }

    /// Serves one frame from the relay; returns an immediate answer to send, if any.
    async fn handle(&self, text: &str, tx: &mpsc::Sender<Message>) -> Option<String> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            tracing::warn!("ignoring a frame from the relay that is not JSON");
            return None;
        };
        match frame["type"].as_str() {
            Some("req") => {
                let id = frame["id"].clone();
                let method = frame["method"].as_str().unwrap_or_default().to_owned();
                let params = frame.get("params").cloned().unwrap_or(Value::Null);
                if id.is_null() || method.is_empty() {
                    tracing::warn!("ignoring a req without id or method");
                    return None;
                }
                match &self.backend {
                    // The simulation answers at once and queues its events: answering
                    // inline keeps the ack ahead of them, as the real gateway does.
                    Backend::Simulated(_) => {
                        let outcome = self.backend.call(&method, params).await;
                        Some(res_frame(&id, outcome))
                    }
                    Backend::OpenClaw(_) => {
                        let (backend, tx) = (self.backend.clone(), tx.clone());
                        tokio::spawn(async move {
                            let outcome = backend.call(&method, params).await;
                            let _ = tx.send(Message::text(res_frame(&id, outcome))).await;
                        });
                        None
                    }
                }
            }
            Some("res") => {
                let id = frame["id"].as_str().unwrap_or_default().to_owned();
                if !self.link.resolve(&id, frame) {
                    tracing::debug!(id, "answer for a call nobody waits for");
                }
                None
            }
            Some("heartbeat") => None,
            Some("error") => {
                tracing::warn!(error = %frame["payload"], "the relay reported an error");
                None
            }
            _ => {
                tracing::warn!("ignoring an unexpected frame from the relay");
                None
            }
        }
    }
}

fn res_frame(id: &Value, outcome: Result<Value, crate::backend::RpcError>) -> String {
    match outcome {
        Ok(payload) => json!({"type": "res", "id": id, "ok": true, "payload": payload}),
        Err(err) => json!({"type": "res", "id": id, "ok": false,
                           "error": {"code": err.code, "message": err.message}}),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..100 {
            let first = backoff(1, base, max);
            assert!(first >= Duration::from_millis(500) && first <= base);
            let later = backoff(30, base, max);
            assert!(later >= Duration::from_secs(5) && later <= max);
        }
        assert!(backoff(3, base, max) >= Duration::from_secs(2));
    }
}
