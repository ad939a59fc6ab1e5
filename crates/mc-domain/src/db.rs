//! Postgres: the connection pool, the embedded migrations and their status.

use crate::config::DatabaseConfig;
use crate::error::{Error, Result};
use crate::ids::OrgId;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool, Postgres, Transaction};
use std::str::FromStr;

/// The migrations in `migrations/`, compiled into every binary so each knows which
/// schema version it needs.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Name of the table in which sqlx records applied migrations.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Opens a pool for `service` without connecting yet; the first query connects.
pub fn pool(config: &DatabaseConfig, service: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(config.url.expose())
        .map_err(|err| Error::invalid_field("DATABASE_URL", format!("not a Postgres URL: {err}")))?
        .application_name(service)
        // Statement logging at INFO would put every query in the service log;
        // slow statements still surface as warnings.
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, std::time::Duration::from_secs(1));
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options))
}

/// A transaction scoped to one organization: row-level security shows and accepts only
/// that organization's rows until it ends.
pub async fn begin_org(pool: &PgPool, org: OrgId) -> Result<Transaction<'static, Postgres>> {
    begin_org_as(pool, org, "BEGIN").await
}

/// [`begin_org`] for bookkeeping whose loss in a crash is harmless (it is redone): the
/// commit does not wait for the WAL flush.
pub async fn begin_org_lazy(pool: &PgPool, org: OrgId) -> Result<Transaction<'static, Postgres>> {
    begin_org_as(pool, org, "BEGIN; SET LOCAL synchronous_commit = off").await
}

/// [`begin_org`] at REPEATABLE READ: every statement reads the same snapshot.
pub async fn begin_org_snapshot(
    pool: &PgPool,
    org: OrgId,
) -> Result<Transaction<'static, Postgres>> {
    begin_org_as(pool, org, "BEGIN ISOLATION LEVEL REPEATABLE READ").await
}

async fn begin_org_as(
    pool: &PgPool,
    org: OrgId,
    begin: &str,
) -> Result<Transaction<'static, Postgres>> {
    // BEGIN and the setting travel as one simple query: one round trip, not two, on
    // every tenant transaction. The org is a UUID we formatted, so nothing is injected.
    let sql = format!("{begin}; SELECT set_config('app.current_org_id', '{org}', true)");
    Ok(pool.begin_with(AssertSqlSafe(sql)).await?)
}

/// Switches an open transaction to another organization (for batches spanning several).
pub async fn set_org(tx: &mut Transaction<'static, Postgres>, org: OrgId) -> Result<()> {
    sqlx::query("SELECT set_config('app.current_org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A transaction for cross-tenant system work (sweepers, the rule engine, purges), run
/// as the `mc_system` role, which bypasses row-level security.
pub async fn begin_system(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool.begin_with("BEGIN; SET LOCAL ROLE mc_system").await?)
}

/// [`begin_system`] for the queue's claim rounds: prepared statements use their generic
/// plan at once. Their custom plans are no better (the statements are written so the plan
/// does not depend on the parameters), and making one on every call took longer than
/// running it.
pub async fn begin_system_generic(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with(
            "BEGIN; SET LOCAL ROLE mc_system; SET LOCAL plan_cache_mode = force_generic_plan",
        )
        .await?)
}

/// Whether a database error is a unique-constraint violation (optionally on `constraint`).
pub fn is_unique_violation(err: &sqlx::Error, constraint: Option<&str>) -> bool {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            constraint.is_none_or(|c| db.constraint() == Some(c))
        }
        _ => false,
    }
}

/// Whether a database error is a foreign-key violation.
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23503"))
}

/// How the database's schema compares with the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationState {
    /// Every embedded migration is applied (the database may also be ahead).
    Current {
        /// Highest applied version.
        version: i64,
    },
    /// Some embedded migrations are not applied yet.
    Behind {
        /// Highest applied version, if any.
        applied: Option<i64>,
        /// Versions that still need to run.
        pending: Vec<i64>,
    },
    /// A migration failed half-way and must be repaired by hand.
    Dirty {
        /// The failed version.
        version: i64,
    },
    /// An applied migration's file was edited after it ran.
    Modified {
        /// The edited version.
        version: i64,
    },
}

impl MigrationState {
    /// Whether services may run against this schema.
    pub fn is_current(&self) -> bool {
        matches!(self, MigrationState::Current { .. })
    }

    /// A sentence for operators, including what to do.
    pub fn describe(&self) -> String {
        match self {
            MigrationState::Current { version } => format!("schema is current (version {version})"),
            MigrationState::Behind { applied, pending } => format!(
                "database schema is behind: applied version {}, {} migration(s) pending ({}); run `mc-api migrate`",
                applied.map_or_else(|| "none".to_owned(), |v| v.to_string()),
                pending.len(),
                pending
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            MigrationState::Dirty { version } => format!(
                "migration {version} failed part-way; repair the database, delete its row from {MIGRATIONS_TABLE}, then run `mc-api migrate`"
            ),
            MigrationState::Modified { version } => format!(
                "migration {version} was changed after it was applied; migrations are forward-only, add a new one instead"
            ),
        }
    }
}

/// Reads the applied migrations and compares them with [`MIGRATOR`].
pub async fn migration_state(pool: &PgPool) -> Result<MigrationState> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let applied: Vec<(i64, bool, Vec<u8>)> = if table_exists {
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(compare(&applied))
}

fn compare(applied: &[(i64, bool, Vec<u8>)]) -> MigrationState {
    if let Some((version, _, _)) = applied.iter().find(|(_, success, _)| !success) {
        return MigrationState::Dirty { version: *version };
    }
    let mut pending = Vec::new();
    for migration in MIGRATOR.iter() {
        match applied.iter().find(|(v, _, _)| *v == migration.version) {
            Some((_, _, checksum)) if checksum.as_slice() != migration.checksum.as_ref() => {
                return MigrationState::Modified {
                    version: migration.version,
                };
            }
            Some(_) => {}
            None => pending.push(migration.version),
        }
    }
    let highest = applied.iter().map(|(v, _, _)| *v).max();
    if pending.is_empty() {
        MigrationState::Current {
            version: highest.unwrap_or(0),
        }
    } else {
        MigrationState::Behind {
            applied: highest,
            pending,
        }
    }
}

/// Fails with an operator-facing message unless the schema is current.
pub async fn ensure_migrations_current(pool: &PgPool) -> Result<i64> {
    match migration_state(pool).await? {
        MigrationState::Current { version } => Ok(version),
        other => Err(Error::unavailable(other.describe())),
    }
}

/// Applies every pending migration (idempotent; concurrent runs serialise on a lock).
pub async fn migrate(pool: &PgPool) -> Result<MigrationState> {
    MIGRATOR.run(pool).await.map_err(|err| {
        let hint = match &err {
            sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("42501") =>
            {
                " (permission denied: extensions and roles are created once by a superuser, see deploy/sql/bootstrap.sql and docs/database.md)"
            }
            _ => "",
        };
        Error::unavailable(format!("migration failed: {err}{hint}"))
    })?;
    migration_state(pool).await
}

/// Highest version among the embedded migrations.
pub fn latest_embedded_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// A `LISTEN` on one channel that never fails its owner: when Postgres is away it
/// reconnects later (at most once a second) and, meanwhile, [`Notifications::recv`]
/// simply waits, so owners keep polling as their fallback.
pub struct Notifications {
    pool: PgPool,
    channel: &'static str,
    listener: Option<sqlx::postgres::PgListener>,
    last_attempt: Option<std::time::Instant>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("channel", &self.channel)
            .field("connected", &self.listener.is_some())
            .finish()
    }
}

impl Notifications {
    /// Not connected yet; the first [`Notifications::ensure`] connects.
    pub fn new(pool: PgPool, channel: &'static str) -> Self {
        Self {
            pool,
            channel,
            listener: None,
            last_attempt: None,
        }
    }

    /// Connects and listens if not connected (logging, not failing, when it cannot).
    pub async fn ensure(&mut self) {
        if self.listener.is_some()
            || self
                .last_attempt
                .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return;
        }
        self.last_attempt = Some(std::time::Instant::now());
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
            listener.listen(self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match connected {
            Ok(listener) => self.listener = Some(listener),
            Err(err) => {
                tracing::warn!(channel = self.channel, error = %err, "cannot listen; polling only")
            }
        }
    }

    /// The next notification's payload; waits forever while not connected, and drops
    /// the connection on error (the next [`Notifications::ensure`] reconnects).
    pub async fn recv(&mut self) -> Option<String> {
        let Some(listener) = self.listener.as_mut() else {
            return std::future::pending().await;
        };
        match listener.recv().await {
            Ok(note) => Some(note.payload().to_owned()),
            Err(err) => {
                tracing::warn!(channel = self.channel, error = %err, "notifications interrupted");
                self.listener = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_applied() -> Vec<(i64, bool, Vec<u8>)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, true, m.checksum.to_vec()))
            .collect()
    }

    #[test]
    fn empty_database_is_behind_by_everything() {
        let state = compare(&[]);
        let expected: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(
            state,
            MigrationState::Behind {
                applied: None,
                pending: expected
            }
        );
        assert!(state.describe().contains("mc-api migrate"));
    }

    #[test]
    fn fully_applied_is_current() {
        let state = compare(&all_applied());
        assert_eq!(
            state,
            MigrationState::Current {
                version: latest_embedded_version()
            }
        );
    }

    #[test]
    fn a_newer_database_is_still_current() {
        let mut applied = all_applied();
        applied.push((99_999_999_999_999, true, vec![1, 2, 3]));
        assert!(compare(&applied).is_current());
    }

    #[test]
    fn failed_and_edited_migrations_are_reported() {
        let mut applied = all_applied();
        applied[0].1 = false;
        assert!(matches!(compare(&applied), MigrationState::Dirty { .. }));
        let mut applied = all_applied();
        applied[0].2 = vec![0];
        assert!(matches!(compare(&applied), MigrationState::Modified { .. }));
    }
}
