//! Domain errors as HTTP responses: `{"error":{"code","message","details"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_domain::Error;
use serde_json::json;

/// A domain error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

/// Schema of every error response (for OpenAPI).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` object of an error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `precondition_failed`, `payload_too_large`,
    /// `rate_limited`, `internal_error`, `service_unavailable`, `gateway_timeout`).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Per-field problems (for `invalid_request`).
    pub details: Vec<mc_domain::error::FieldError>,
}

/// The HTTP status for each error kind (DESIGN.md §Conventions).
pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = status_of(&err);
        if status.is_server_error() {
            tracing::error!(
                code = err.code(),
                error = %mc_domain::health::error_chain(&err),
                "request failed"
            );
        }
        let body = json!({
            "error": {
                "code": err.code(),
                "message": err.public_message(),
                "details": err.details(),
            }
        });
        let mut response = (status, axum::Json(body)).into_response();
        if let Error::RateLimited { retry_after_secs } = err {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn body_follows_the_convention() {
        let response = ApiError(Error::invalid_field("name", "must not be empty")).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["code"], "invalid_request");
        assert_eq!(value["error"]["details"][0]["field"], "name");
    }

    #[tokio::test]
    async fn rate_limited_sets_retry_after() {
        let response = ApiError(Error::RateLimited {
            retry_after_secs: 7,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[tokio::test]
    async fn internal_errors_are_opaque() {
        let response =
            ApiError(Error::internal("x", std::io::Error::other("secret path"))).into_response();
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret path"), "{text}");
        assert!(text.contains("internal_error"));
    }
}
