//! The connections every service opens at start.

use crate::config::CommonConfig;
use crate::db;
use crate::error::Result;
use crate::health::ReadinessProbe;
use crate::redis::RedisHandle;
use sqlx::PgPool;

/// Postgres pool, Redis handle and readiness probe of one process.
#[derive(Clone, Debug)]
pub struct Infra {
    /// Pool of application-role connections (RLS applies).
    pub pool: PgPool,
    /// Redis commands and key naming.
    pub redis: RedisHandle,
    /// Deep readiness check over both.
    pub probe: ReadinessProbe,
}

impl Infra {
    /// Opens the pool and Redis handle, then refuses to go on unless the schema is
    /// current: a service must not run against a database it does not understand.
    pub async fn connect(service: &str, config: &CommonConfig) -> Result<Self> {
        let pool = db::pool(&config.database, service)?;
        let version = db::ensure_migrations_current(&pool).await?;
        tracing::info!(
            service,
            schema_version = version,
            "database schema is current"
        );
        let redis = RedisHandle::new(&config.redis)?;
        let probe = ReadinessProbe::new(pool.clone(), redis.clone());
        Ok(Self { pool, redis, probe })
    }
}

/// A name unique to this process, for lease holders and relay routing:
/// `{service}-{host}-{pid}-{random}`.
pub fn instance_name(service: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{service}-{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
