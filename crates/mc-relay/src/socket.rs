//! What every relay socket shares: close codes, the closing handshake, text sends and the
//! per-socket frame allowance.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use std::time::{Duration, Instant};

/// Close code: authentication failed or was revoked.
pub const CLOSE_AUTH: u16 = 4001;
/// Close code: forbidden (or no such resource).
pub const CLOSE_FORBIDDEN: u16 = 4003;
/// Close code: protocol policy or rate.
pub const CLOSE_POLICY: u16 = 4008;
/// Close code: too slow to keep up; resume from the last seq.
pub const CLOSE_SLOW: u16 = 4009;
/// Close code: a newer socket for the same gateway took over.
pub const CLOSE_REPLACED: u16 = 4010;
/// Close code: the relay is restarting or lost its feed; reconnect and resume.
pub const CLOSE_RESTART: u16 = 1012;

/// Why a socket ends: close code and reason.
pub(crate) struct Close(pub u16, pub &'static str);

/// How long a peer has to answer our close frame before the TCP connection is dropped.
/// Dropping it while the peer still has data in flight makes our kernel answer with a
/// reset, which can discard the close frame the peer has not read yet; a peer slow to
/// read (a phone waking up, a busy test) gets this long to see why it was closed.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(5);

/// Sends `close` and finishes the closing handshake. A stalled peer gets `grace` to drain
/// what is queued; then up to [`CLOSE_REPLY_WAIT`] for its reply.
pub(crate) async fn close_gracefully(socket: &mut WebSocket, close: Close, grace: Duration) {
    let frame = Message::Close(Some(CloseFrame {
        code: close.0,
        reason: Utf8Bytes::from_static(close.1),
    }));
    if let Ok(Ok(())) = tokio::time::timeout(grace, socket.send(frame)).await {
        let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
            while let Some(Ok(message)) = socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Sends a text frame; a failure ends the socket.
pub(crate) async fn send_text(
    socket: &mut WebSocket,
    text: impl Into<Utf8Bytes>,
) -> Result<(), Close> {
    queue_text(socket, text).await?;
    flush(socket).await
}

/// Queues a text frame without flushing it (see [`flush`]); a failure ends the socket.
pub(crate) async fn queue_text(
    socket: &mut WebSocket,
    text: impl Into<Utf8Bytes>,
) -> Result<(), Close> {
    socket
        .feed(Message::Text(text.into()))
        .await
        .map_err(|_| Close(1006, "send failed"))
}

/// Writes out what [`queue_text`] queued.
pub(crate) async fn flush(socket: &mut WebSocket) -> Result<(), Close> {
    socket.flush().await.map_err(|_| Close(1006, "send failed"))
}

/// The next data frame: `Some(text)`, or `None` for a binary frame (callers answer with
/// an error). Pings and pongs only count as signs of life (`last_heard`); a close frame or
/// a broken socket ends the connection.
pub(crate) async fn next_frame(
    socket: &mut WebSocket,
    last_heard: &mut Instant,
) -> Result<Option<Utf8Bytes>, Close> {
    loop {
        let Some(message) = socket.recv().await else {
            return Err(Close(1000, "gone"));
        };
        let message = message.map_err(|_| Close(1002, "protocol error"))?;
        *last_heard = Instant::now();
        match message {
            Message::Text(text) => return Ok(Some(text)),
            Message::Binary(_) => return Ok(None),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return Err(Close(1000, "bye")),
        }
    }
}

/// Per-socket frame allowance: `rate` per second sustained, bursts of twice that.
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            rate,
            capacity: rate * 2.0,
            tokens: rate * 2.0,
            at: Instant::now(),
        }
    }

    /// How long until a token is available (zero when one is).
    pub(crate) fn wait(&mut self) -> std::time::Duration {
        self.refill();
        if self.tokens >= 1.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
    }

    pub(crate) fn take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
