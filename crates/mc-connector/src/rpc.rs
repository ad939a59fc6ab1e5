//! Request/response correlation over a WebSocket the connector holds (the relay socket and
//! the local gateway socket): frames go out through the socket task's channel, answers are
//! matched to waiting calls by id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkError {
    /// No socket right now, or it dropped while the call waited.
    Disconnected,
    /// No answer in time.
    Timeout,
}

/// See the module documentation. `T` is what an answer carries.
pub struct RpcLink<T> {
    outbound: Mutex<Option<mpsc::Sender<Message>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<T>>>,
}

impl<T> Default for RpcLink<T> {
    fn default() -> Self {
        Self {
            outbound: Mutex::default(),
            pending: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for RpcLink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcLink").finish_non_exhaustive()
    }
}

impl<T> RpcLink<T> {
    /// A socket is up: frames go to `tx`.
    pub fn attach(&self, tx: mpsc::Sender<Message>) {
        *self.outbound.lock().expect("outbound lock") = Some(tx);
    }

    /// The socket is gone: every waiting call fails with `Disconnected` at once.
    pub fn detach(&self) {
        *self.outbound.lock().expect("outbound lock") = None;
        self.pending.lock().expect("pending lock").clear();
    }

    /// Sends `frame` (whose id is `id`) and waits up to `timeout` for its answer.
    pub async fn request(
        &self,
        id: String,
        frame: serde_json::Value,
        timeout: Duration,
    ) -> Result<T, LinkError> {
        let Some(tx) = self.outbound.lock().expect("outbound lock").clone() else {
            return Err(LinkError::Disconnected);
        };
        let (done, wait) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), done);
        if tx.send(Message::text(frame.to_string())).await.is_err() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(LinkError::Disconnected);
        }
        let outcome = tokio::time::timeout(timeout, wait).await;
        self.pending.lock().expect("pending lock").remove(&id);
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(LinkError::Disconnected),
            Err(_) => Err(LinkError::Timeout),
        }
    }

    /// Hands `answer` to the call waiting for `id`; `false` when none is.
    pub fn resolve(&self, id: &str, answer: T) -> bool {
        let waiter = self.pending.lock().expect("pending lock").remove(id);
        waiter.is_some_and(|w| w.send(answer).is_ok())
    }
}
