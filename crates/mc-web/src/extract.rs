//! Extractors whose rejections follow our error format, with the offending field named.

use crate::error::ApiError;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use mc_domain::Error;
use mc_domain::error::FieldError;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// A JSON body. Malformed JSON, wrong types, missing or unknown fields and invalid values
/// become 400 `invalid_request` naming the field; an oversized body becomes 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !is_json {
            return Err(ApiError(Error::invalid_field(
                "Content-Type",
                "must be application/json",
            )));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_error(&r))?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn body_error(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::PayloadTooLarge("request body is too large".into()))
    } else {
        ApiError(Error::invalid_field("body", rejection.body_text()))
    }
}

/// Parses JSON with field-level error reporting.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError(Error::invalid_field(
                "body",
                format!("malformed JSON: {}", strip_position(&inner.to_string())),
            ));
        }
        ApiError(Error::invalid_fields(vec![field_error(
            &path,
            &strip_position(&inner.to_string()),
        )]))
    })?;
    de.end().map_err(|_| {
        ApiError(Error::invalid_field(
            "body",
            "malformed JSON: trailing characters after the value",
        ))
    })?;
    Ok(value)
}

/// Turns serde's messages into a field and a sentence. "missing field `x`" and
/// "unknown field `x`" name the field inside the path rather than the path itself.
fn field_error(path: &str, message: &str) -> FieldError {
    let base = if path == "." { "" } else { path };
    let named = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| {
            let name = rest.split('`').next()?;
            Some(if base.is_empty() {
                name.to_owned()
            } else {
                format!("{base}.{name}")
            })
        })
    };
    if let Some(field) = named("missing field `") {
        return FieldError::new(field, "is required");
    }
    if let Some(name) = named("unknown field `") {
        // serde_path_to_error already includes the unknown key in the path.
        let field = if base.is_empty() {
            name
        } else {
            base.to_owned()
        };
        return FieldError::new(field, "is not a known field");
    }
    let field = if base.is_empty() { "body" } else { base };
    FieldError::new(field, message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters, with the same field-level errors as [`ApiJson`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                ApiError(Error::invalid_fields(vec![field_error(&path, &message)]))
            })
    }
}

/// Path parameters; a malformed id is a 400 naming the parameter, not a plain-text error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|rejection: PathRejection| {
                ApiError(Error::invalid_field("path", rejection.body_text()))
            })
    }
}

/// The client address: the TCP peer, or the first `X-Forwarded-For` hop when the
/// deployment says a trusted proxy sets it.
pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(ip) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        inner: Option<Inner>,
    }

    fn field_of(json: &str) -> (String, String) {
        let err = parse_json::<Body>(json.as_bytes()).unwrap_err().0;
        let detail = err.details()[0].clone();
        (detail.field, detail.message)
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("{}").0, "title");
        assert_eq!(field_of(r#"{"title": 5}"#).0, "title");
        assert_eq!(field_of(r#"{"title":"x","extra":1}"#).0, "extra");
        assert_eq!(field_of(r#"{"title":"x","inner":{"n":"a"}}"#).0, "inner.n");
        assert_eq!(field_of(r#"{"title":"x","inner":{}}"#).0, "inner.n");
        let (field, message) = field_of("{not json");
        assert_eq!(field, "body");
        assert!(message.starts_with("malformed JSON"), "{message}");
        assert!(!message.contains("line"), "{message}");
        assert_eq!(field_of(r#"{"title":"x"} trailing"#).0, "body");
    }
}
