//! `api.request`: an agent's REST call tunnelled through its gateway's relay socket
//! (issue 6). The gateway sends `req {method: "api.request", params: {method, path,
//! headers, body}}`; the relay checks it here and forwards it to the API as the agent.
//! Only the agent-facing API (`/api/v1/agent/…`) is reachable, and only with the key of an
//! agent bound to the calling gateway.

use super::AgentService;
use crate::error::{Error, Result};
use crate::gateways::AuthedGateway;
use crate::identity::{IdentityService, Principal};
use crate::ids::AgentId;
use serde_json::Value;

/// The only API prefix a gateway may tunnel to.
pub const TUNNEL_PATH_PREFIX: &str = "/api/v1/agent/";
/// Request headers passed on besides `Authorization`; everything else is dropped.
pub const FORWARDED_HEADERS: [&str; 6] = [
    "content-type",
    "accept",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-request-id",
];
/// Response headers returned to the gateway.
pub const RETURNED_HEADERS: [&str; 5] = [
    "content-type",
    "etag",
    "location",
    "retry-after",
    "x-request-id",
];

/// A checked `api.request`.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelRequest {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path and query, under [`TUNNEL_PATH_PREFIX`].
    pub path: String,
    /// The agent's API key (from `Authorization: Bearer …`).
    pub credential: String,
    /// Allowed headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl TunnelRequest {
    /// Parses `api.request` params; malformed ones are `invalid_request`, paths outside the
    /// agent API `forbidden`, a missing key `unauthorized`.
    pub fn parse(params: &Value) -> Result<Self> {
        let method = match params["method"]
            .as_str()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("GET") => "GET",
            Some("POST") => "POST",
            Some("PUT") => "PUT",
            Some("PATCH") => "PATCH",
            Some("DELETE") => "DELETE",
            _ => {
                return Err(Error::invalid_field(
                    "method",
                    "must be GET, POST, PUT, PATCH or DELETE",
                ));
            }
        };
        let path = params["path"]
            .as_str()
            .ok_or_else(|| Error::invalid_field("path", "required, a string"))?;
        let route = path.split('?').next().unwrap_or_default();
        if path.len() > 2048
            || path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '#')
            || route.contains("//")
            || route.split('/').any(|seg| seg == ".." || seg == ".")
            || route.contains('%')
        {
            return Err(Error::invalid_field(
                "path",
                "must be a plain absolute path of at most 2048 characters",
            ));
        }
        if !route.starts_with(TUNNEL_PATH_PREFIX) {
            return Err(Error::Forbidden(
                format!("gateways may only tunnel {TUNNEL_PATH_PREFIX}* paths").into(),
            ));
        }
        let mut headers = Vec::new();
        let mut credential = None;
        match &params["headers"] {
            Value::Null => {}
            Value::Object(map) => {
                for (name, value) in map {
                    let Some(value) = value.as_str() else {
                        return Err(Error::invalid_field("headers", "values must be strings"));
                    };
                    let name = name.to_ascii_lowercase();
                    if name == "authorization" {
                        credential = value
                            .strip_prefix("Bearer ")
                            .or_else(|| value.strip_prefix("bearer "))
                            .map(|v| v.trim().to_owned());
                    } else if FORWARDED_HEADERS.contains(&name.as_str())
                        && value.len() <= 1024
                        && !value.chars().any(char::is_control)
                    {
                        headers.push((name, value.to_owned()));
                    }
                }
            }
            _ => return Err(Error::invalid_field("headers", "must be an object")),
        }
        let credential = credential.filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::Unauthorized("Authorization: Bearer <agent API key> is required".into())
        })?;
        let body = match params.get("body") {
            None | Some(Value::Null) => None,
            Some(body) => Some(body.clone()),
        };
        Ok(Self {
            method,
            path: path.to_owned(),
            credential,
            headers,
            body,
        })
    }
}

impl AgentService {
    /// The agent the tunnelled call acts as: the key must be valid and belong to an agent
    /// bound to `gateway`. Service-account keys and console tokens are refused.
    pub async fn authorize_tunnel(
        &self,
        identity: &IdentityService,
        gateway: &AuthedGateway,
        credential: &str,
    ) -> Result<AgentId> {
        let principal = identity.authenticate_api_key(credential).await?;
        let Principal::ApiKey(key) = principal else {
            return Err(Error::Unauthorized("an agent API key is required".into()));
        };
        let Some((agent, _)) = key.agent else {
            return Err(Error::Forbidden(
                "only an agent's API key may be tunnelled through a gateway".into(),
            ));
        };
        if key.org_id != gateway.organization_id || !self.is_bound_to(gateway, agent).await? {
            return Err(Error::Forbidden(
                "this agent is not bound to the calling gateway".into(),
            ));
        }
        Ok(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Result<TunnelRequest> {
        TunnelRequest::parse(v)
    }

    #[test]
    fn only_agent_paths_with_a_key_pass() {
        let ok = parse(&json!({"method": "post", "path": "/api/v1/agent/tasks?x=1",
            "headers": {"Authorization": "Bearer mc_live_abc", "Content-Type": "application/json",
                        "Cookie": "dropped"},
            "body": {"a": 1}}))
        .unwrap();
        assert_eq!(ok.method, "POST");
        assert_eq!(ok.credential, "mc_live_abc");
        assert_eq!(
            ok.headers,
            vec![("content-type".to_owned(), "application/json".to_owned())]
        );
        assert_eq!(ok.body, Some(json!({"a": 1})));

        let key = json!({"Authorization": "Bearer k"});
        for (path, code) in [
            ("/api/v1/boards", "forbidden"),
            ("/api/v1/agent/../boards", "invalid_request"),
            ("/api/v1/agent/%2e%2e/boards", "invalid_request"),
            ("/api/v1/agent//x", "invalid_request"),
            ("api/v1/agent/boards", "forbidden"),
        ] {
            let err = parse(&json!({"method": "GET", "path": path, "headers": key})).unwrap_err();
            assert_eq!(err.code(), code, "{path}");
        }
        assert_eq!(
            parse(&json!({"method": "TRACE", "path": "/api/v1/agent/boards"}))
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        assert_eq!(
            parse(&json!({"method": "GET", "path": "/api/v1/agent/boards"}))
                .unwrap_err()
                .code(),
            "unauthorized"
        );
    }
}
