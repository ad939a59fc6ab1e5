//! Forwards checked `api.request` calls to the API over HTTP and turns the answer into the
//! `res` payload `{status, headers, body}`.

use mc_domain::agents::tunnel::{RETURNED_HEADERS, TunnelRequest};
use mc_domain::gateways::AuthedGateway;
use mc_domain::{Error, Result};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// HTTP client for the API, shared by every gateway socket of this relay.
#[derive(Debug, Clone)]
pub struct ApiTunnel {
    client: reqwest::Client,
    base: String,
}

impl ApiTunnel {
    /// A client for the API at `base` (no trailing slash); calls give up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("building the API client", e))?;
        Ok(Self {
            client,
            base: base.to_owned(),
        })
    }

    /// Sends `request` as the agent and reads the API's answer.
    pub async fn forward(&self, gateway: &AuthedGateway, request: TunnelRequest) -> Result<Value> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| Error::internal("tunnel method", e))?;
        let mut builder = self
            .client
            .request(method, format!("{}{}", self.base, request.path))
            .bearer_auth(&request.credential)
            .header("x-mc-gateway-id", gateway.id.to_string());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| {
            if e.is_timeout() {
                Error::GatewayTimeout("the API did not answer in time".into())
            } else {
                Error::ServiceUnavailable {
                    message: "the API is unreachable from the relay".into(),
                    source: Some(Box::new(e)),
                }
            }
        })?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for name in RETURNED_HEADERS {
            if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
                headers.insert(name.to_owned(), json!(value));
            }
        }
        let is_json = headers
            .get("content-type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains("json"));
        let text = response
            .text()
            .await
            .map_err(|e| Error::ServiceUnavailable {
                message: "the API's answer broke off".into(),
                source: Some(Box::new(e)),
            })?;
        let body = if text.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        Ok(json!({ "status": status, "headers": headers, "body": body }))
    }
}
