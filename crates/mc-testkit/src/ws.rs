//! A WebSocket test client speaking JSON text frames.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server did next.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// A JSON text frame.
    Json(Value),
    /// A close frame (code, reason).
    Closed(u16, String),
    /// The connection ended without a close frame.
    Ended,
}

/// An open socket.
pub struct WsClient {
    stream: Stream,
}

impl WsClient {
    /// Connects to `url`; panics if the handshake fails.
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Self { stream }
    }

    /// Tries to connect, returning the HTTP status of a refused handshake.
    pub async fn try_connect(url: &str) -> Result<Self, u16> {
        match tokio_tungstenite::connect_async(url).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect {url}: {e}"),
        }
    }

    /// Connects to `url`, or `None` when nothing answers (a relay that was killed).
    pub async fn connect_or_none(url: &str) -> Option<Self> {
        let (stream, _) = tokio_tungstenite::connect_async(url).await.ok()?;
        Some(Self { stream })
    }

    /// Sends a JSON text frame; `false` when the socket is gone.
    pub async fn try_send_json(&mut self, value: &Value) -> bool {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .is_ok()
    }

    /// Sends a JSON text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::binary(bytes))
            .await
            .expect("send frame");
    }

    /// The next frame or close; panics after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> WsEvent {
        tokio::time::timeout(timeout, async {
            loop {
                match self.stream.next().await {
                    None | Some(Err(_)) => return WsEvent::Ended,
                    Some(Ok(Message::Text(text))) => {
                        return WsEvent::Json(
                            serde_json::from_str(text.as_str()).expect("server sent JSON"),
                        );
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(CloseFrame { code, reason }) => {
                                WsEvent::Closed(code.into(), reason.to_string())
                            }
                            None => WsEvent::Closed(1005, String::new()),
                        };
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("timed out waiting for a frame")
    }

    /// The next JSON frame; panics on close or timeout.
    pub async fn next_json(&mut self, timeout: Duration) -> Value {
        match self.next_event(timeout).await {
            WsEvent::Json(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame of type `kind`, skipping others; panics on close or timeout.
    pub async fn next_of_type(&mut self, kind: &str, timeout: Duration) -> Value {
        loop {
            let frame = self.next_json(timeout).await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the server closes; returns the close code (panics on timeout).
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            match self.next_event(timeout).await {
                WsEvent::Json(v) => frames.push(v),
                WsEvent::Closed(code, _) => return (code, frames),
                WsEvent::Ended => return (1006, frames),
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
