//! Identity and tenancy: organizations, console users, roles, API keys, H5 end users,
//! the audit log, and the authentication every request goes through.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod context;
pub mod h5;
pub mod members;
pub mod model;
pub mod orgs;
pub mod password;
pub mod permissions;
pub mod repo;
pub mod seed;
pub mod tokens;

pub use context::{Actor, ActorKind, H5Context, OrgContext, Principal};
pub use model::{OrgStatus, OrgTier, Role};
pub use permissions::Permission;

use crate::config::{AuthConfig, RateLimitConfig};
use crate::error::{Error, Result};
use crate::ratelimit::RateLimiter;
use crate::redis::RedisHandle;
use password::PasswordHasher;
use sqlx::PgPool;
use std::sync::Arc;
use tokens::TokenService;

/// Everything identity operations need; cheap to clone.
#[derive(Clone, Debug)]
pub struct IdentityService {
    pub(crate) pool: PgPool,
    pub(crate) redis: RedisHandle,
    /// Access token issuing and verification.
    pub tokens: Arc<TokenService>,
    pub(crate) hasher: PasswordHasher,
    /// Shared rate limiter (also used by the HTTP layer for per-request limits).
    pub limiter: RateLimiter,
    pub(crate) config: Arc<AuthConfig>,
    /// Rate limit quotas.
    pub rate_limits: Arc<RateLimitConfig>,
}

impl IdentityService {
    /// Builds the service over the process's pool and Redis handle.
    pub fn new(
        pool: PgPool,
        redis: RedisHandle,
        config: AuthConfig,
        rate_limits: RateLimitConfig,
    ) -> Result<Self> {
        let hasher = PasswordHasher::new(config.password_memory_kib, config.password_iterations)?;
        Ok(Self {
            tokens: Arc::new(TokenService::new(&config)),
            limiter: RateLimiter::new(redis.clone()),
            pool,
            redis,
            hasher,
            config: Arc::new(config),
            rate_limits: Arc::new(rate_limits),
        })
    }

    /// The database pool (for capability services built on identity).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Maps a unique violation to a conflict with `message`, anything else to an error.
pub(crate) fn conflict_on_unique(err: sqlx::Error, message: &'static str) -> Error {
    if crate::db::is_unique_violation(&err, None) {
        Error::Conflict(message.into())
    } else {
        err.into()
    }
}
