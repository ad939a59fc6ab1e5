//! A minimal Server-Sent Events reader for tests: parses `id:`, `event:` and `data:`
//! fields the way a browser's `EventSource` does.

use std::time::Duration;

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    /// `id:` field, if any.
    pub id: Option<String>,
    /// `event:` field (`message` when absent).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

impl SseMessage {
    /// The data parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// An open event stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen so far (heartbeats).
    pub comments: usize,
}

impl SseStream {
    /// Opens `url` with optional bearer token and extra headers; panics unless 200.
    pub async fn open(url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Self {
        let mut request = crate::http_client().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("open stream");
        assert_eq!(response.status().as_u16(), 200, "stream refused: {url}");
        Self {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The response headers.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.response.headers()
    }

    /// The next event, `None` when the stream ended; panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseMessage> {
        tokio::time::timeout(timeout, self.next_inner())
            .await
            .expect("timed out waiting for an SSE event")
    }

    async fn next_inner(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = self.parse(&block) {
                    return Some(message);
                }
                continue;
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn parse(&mut self, block: &str) -> Option<SseMessage> {
        let mut id = None;
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        if data.is_empty() && event.is_none() {
            return None;
        }
        Some(SseMessage {
            id,
            event: event.unwrap_or_else(|| "message".to_owned()),
            data: data.join("\n"),
        })
    }
}
