//! Readiness: whether this process can do useful work right now.

use crate::db;
use crate::redis::RedisHandle;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Outcome of one dependency check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Whether the dependency answered correctly.
    pub ok: bool,
    /// How long the check took.
    pub latency_ms: u64,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Outcome of all checks.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check by name: `postgres`, `redis`, `migrations`.
    pub checks: BTreeMap<&'static str, CheckResult>,
}

impl Readiness {
    /// True when every check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.values().all(|c| c.ok)
    }
}

/// Checks Postgres, Redis and the schema version, each under a timeout.
#[derive(Clone, Debug)]
pub struct ReadinessProbe {
    pool: PgPool,
    redis: RedisHandle,
    timeout: Duration,
}

impl ReadinessProbe {
    /// Builds a probe over the process's shared pool and Redis handle.
    pub fn new(pool: PgPool, redis: RedisHandle) -> Self {
        Self {
            pool,
            redis,
            timeout: Duration::from_secs(2),
        }
    }

    /// Runs every check concurrently.
    pub async fn check(&self) -> Readiness {
        let postgres = timed(self.timeout, async {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let redis = timed(self.timeout, async {
            self.redis.ping().await.map_err(|e| error_chain(&e))
        });
        let migrations = timed(self.timeout, async {
            let state = db::migration_state(&self.pool)
                .await
                .map_err(|e| error_chain(&e))?;
            if state.is_current() {
                Ok(())
            } else {
                Err(state.describe())
            }
        });
        let (postgres, redis, migrations) = tokio::join!(postgres, redis, migrations);
        let checks = BTreeMap::from([
            ("postgres", postgres),
            ("redis", redis),
            ("migrations", migrations),
        ]);
        let ready = checks.values().all(|c| c.ok);
        Readiness {
            status: if ready { "ready" } else { "not_ready" },
            checks,
        }
    }
}

async fn timed(limit: Duration, check: impl Future<Output = Result<(), String>>) -> CheckResult {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {}ms", limit.as_millis())),
    };
    CheckResult {
        ok: outcome.is_ok(),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error: outcome.err(),
    }
}

/// The error and its sources on one line (the top-level message alone is often vague).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
