//! The one error type of the domain, with stable machine-readable codes.
//!
//! Every layer above maps these to its wire format: HTTP status plus
//! `{"error":{"code","message","details"}}`, WebSocket `error` frames, job failures.

use serde::Serialize;
use std::borrow::Cow;

/// Result alias used throughout the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with one input field, reported back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field (`settings.timezone`), or `body` for the whole input.
    pub field: String,
    /// What is wrong, in words a caller can act on.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the domain, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or violates a rule; `details` names the fields.
    #[error("{message}")]
    InvalidRequest {
        /// Summary for humans.
        message: String,
        /// Per-field problems.
        details: Vec<FieldError>,
    },
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// The resource does not exist, or the caller may not know that it does.
    #[error("{resource} not found")]
    NotFound {
        /// Kind of resource (`board`, `task`, `organization`).
        resource: &'static str,
    },
    /// The request conflicts with current state (duplicate, cycle, already resolved).
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// A precondition such as `If-Match` did not hold.
    #[error("{0}")]
    PreconditionFailed(Cow<'static, str>),
    /// The input is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(Cow<'static, str>),
    /// Too many requests; try again after the given number of seconds.
    #[error("rate limit exceeded, retry in {retry_after_secs}s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// A dependency (database, Redis, gateway) is unavailable right now.
    #[error("{message}")]
    ServiceUnavailable {
        /// What is unavailable.
        message: Cow<'static, str>,
        /// The underlying failure, kept for logs.
        #[source]
        source: Option<BoxError>,
    },
    /// An upstream (a gateway) did not answer in time.
    #[error("{0}")]
    GatewayTimeout(Cow<'static, str>),
    /// A bug or an unexpected failure; details go to the log, not to the caller.
    #[error("internal error: {context}")]
    Internal {
        /// What we were doing.
        context: Cow<'static, str>,
        /// The underlying failure.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Stable code for the wire (`invalid_request`, `not_found`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest { .. } => "invalid_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::ServiceUnavailable { .. } => "service_unavailable",
            Error::GatewayTimeout(_) => "gateway_timeout",
            Error::Internal { .. } => "internal_error",
        }
    }

    /// The message safe to show a caller: internal failures are not described.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal { .. } => "an internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    /// Field-level details, empty for most kinds.
    pub fn details(&self) -> &[FieldError] {
        match self {
            Error::InvalidRequest { details, .. } => details,
            _ => &[],
        }
    }

    /// An invalid-request error about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let detail = FieldError::new(field, message);
        Error::InvalidRequest {
            message: format!("{}: {}", detail.field, detail.message),
            details: vec![detail],
        }
    }

    /// An invalid-request error with a list of field problems.
    pub fn invalid_fields(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [] => "invalid request".to_owned(),
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Error::InvalidRequest { message, details }
    }

    /// An internal error with context and a source.
    pub fn internal(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A dependency is unavailable.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Error::ServiceUnavailable {
            message: message.into(),
            source: None,
        }
    }

    /// A copy for the caller: same kind and message, without the (uncloneable) source.
    pub fn public_clone(&self) -> Error {
        match self {
            Error::InvalidRequest { message, details } => Error::InvalidRequest {
                message: message.clone(),
                details: details.clone(),
            },
            Error::Unauthorized(m) => Error::Unauthorized(m.clone()),
            Error::Forbidden(m) => Error::Forbidden(m.clone()),
            Error::NotFound { resource } => Error::NotFound { resource },
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::PreconditionFailed(m) => Error::PreconditionFailed(m.clone()),
            Error::PayloadTooLarge(m) => Error::PayloadTooLarge(m.clone()),
            Error::RateLimited { retry_after_secs } => Error::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            Error::ServiceUnavailable { message, .. } => Error::ServiceUnavailable {
                message: message.clone(),
                source: None,
            },
            Error::GatewayTimeout(m) => Error::GatewayTimeout(m.clone()),
            Error::Internal { context, .. } => Error::Internal {
                context: context.clone(),
                source: None,
            },
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Conflict(_)
                | Error::RateLimited { .. }
                | Error::ServiceUnavailable { .. }
                | Error::GatewayTimeout(_)
                | Error::Internal { .. }
        )
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Error::ServiceUnavailable {
                message: "database unavailable".into(),
                source: Some(Box::new(err)),
            },
            sqlx::Error::Database(ref db)
                if db.code().as_deref().is_some_and(is_transient_pg_code) =>
            {
                Error::ServiceUnavailable {
                    message: "database unavailable".into(),
                    source: Some(Box::new(err)),
                }
            }
            other => Error::Internal {
                context: "database query failed".into(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// SQLSTATEs that mean "the database is going away or overloaded", not "your query is wrong".
fn is_transient_pg_code(code: &str) -> bool {
    // 08: connection exception; 57P01..03: admin/crash shutdown, cannot connect now;
    // 53300: too many connections.
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

impl From<::redis::RedisError> for Error {
    fn from(err: ::redis::RedisError) -> Self {
        if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
            Error::ServiceUnavailable {
                message: "redis unavailable".into(),
                source: Some(Box::new(err)),
            }
        } else {
            Error::Internal {
                context: "redis command failed".into(),
                source: Some(Box::new(err)),
            }
        }
    }
}

/// Adds context to failures on the way up, without touching caller-facing kinds.
pub trait ResultExt<T> {
    /// Replaces the context of an internal error; other kinds pass through unchanged.
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|err| match err.into() {
            Error::Internal { source, .. } => Error::Internal {
                context: context.into(),
                source,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            Error::invalid_field("name", "required").code(),
            "invalid_request"
        );
        assert_eq!(Error::NotFound { resource: "board" }.code(), "not_found");
        assert_eq!(
            Error::RateLimited {
                retry_after_secs: 3
            }
            .code(),
            "rate_limited"
        );
        assert_eq!(Error::unavailable("db").code(), "service_unavailable");
    }

    #[test]
    fn internal_errors_do_not_leak_details() {
        let err = Error::internal("loading board", std::io::Error::other("disk on fire"));
        assert_eq!(err.public_message(), "an internal error occurred");
        assert!(err.to_string().contains("loading board"));
    }

    #[test]
    fn context_only_rewrites_internal_errors() {
        let failed: std::result::Result<(), Error> =
            Err(Error::internal("x", std::io::Error::other("y")));
        match failed.context("saving task") {
            Err(Error::Internal { context, .. }) => assert_eq!(context, "saving task"),
            other => panic!("unexpected {other:?}"),
        }
        let missing: std::result::Result<(), Error> = Err(Error::NotFound { resource: "task" });
        assert!(matches!(
            missing.context("saving task"),
            Err(Error::NotFound { resource: "task" })
        ));
    }

    #[test]
    fn invalid_fields_summarises() {
        let err = Error::invalid_fields(vec![
            FieldError::new("a", "required"),
            FieldError::new("b", "too long"),
        ]);
        assert_eq!(err.to_string(), "2 fields are invalid");
        assert_eq!(err.details().len(), 2);
    }
}
