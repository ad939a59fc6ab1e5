//! The loopback HTTP proxy agents use for the control plane's agent API: a request to
//! `http://127.0.0.1:18790/api/v1/agent/...` with the agent's `Authorization` header is sent
//! up the relay socket as `api.request` and the answer comes back as the HTTP response.

use crate::relay::{RelayLink, relay_call};
use crate::rpc::LinkError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// How long an API call through the relay may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(35);

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message, "details": []}})),
    )
        .into_response()
}

async fn forward(
    State(link): State<Arc<RelayLink>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    let mut forwarded = Map::new();
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            forwarded.insert(name.as_str().to_owned(), json!(value));
        }
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let params =
        json!({"method": method.as_str(), "path": path, "headers": forwarded, "body": body});
    let res = match relay_call(&link, "api.request", params, CALL_TIMEOUT).await {
        Ok(res) => res,
        Err(LinkError::Disconnected) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the connector is not connected to the control plane",
            );
        }
        Err(LinkError::Timeout) => {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "the control plane did not answer in time",
            );
        }
    };
    if res["ok"] != true {
        let code = res["error"]["code"].as_str().unwrap_or("bad_gateway");
        let message = res["error"]["message"]
            .as_str()
            .unwrap_or("the relay refused the call");
        let status = match code {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden" => StatusCode::FORBIDDEN,
            "invalid_request" => StatusCode::BAD_REQUEST,
            "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "gateway_timeout" => StatusCode::GATEWAY_TIMEOUT,
            "service_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        return error(status, code, message);
    }
    let payload = &res["payload"];
    let status = payload["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = match &payload["body"] {
        Value::Null => status.into_response(),
        Value::String(text) if !is_json(payload) => (status, text.clone()).into_response(),
        other => (status, axum::Json(other.clone())).into_response(),
    };
    if let Some(headers) = payload["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

fn is_json(payload: &Value) -> bool {
    payload["headers"]["content-type"]
        .as_str()
        .is_some_and(|t| t.contains("json"))
}

/// The proxy's routes.
pub fn router(link: Arc<RelayLink>) -> Router {
    Router::new()
        .fallback(forward)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(link)
}
