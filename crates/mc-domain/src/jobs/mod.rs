//! The durable job queue (issue 5): typed jobs stored in Postgres, claimed in strict
//! priority order under leases, retried with backoff, dead-lettered with their history.
//!
//! - [`Job`] is what a job kind implements; [`Registry`] maps kinds to handlers.
//! - [`enqueue`] / [`enqueue_many`] write inside the caller's transaction, so a job exists
//!   iff its cause committed.
//! - [`worker::Worker`] runs them (in `mc-worker`).

pub mod admin;
pub mod events;
pub mod model;
pub mod repo;
pub mod schedules;
pub mod system;
pub mod tenant;
pub mod worker;

pub use model::{Claimed, Job as JobRecord, JobPriority, JobState, NewJob, backoff};

use crate::error::Result;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a running job sees.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The database (jobs open their own transactions).
    pub pool: PgPool,
    /// The job as claimed (its attempt number is `job.attempts`).
    pub job: JobRecord,
    /// This attempt's lease; see [`complete_in`].
    pub lease_token: uuid::Uuid,
    /// Cancelled when the job times out, is cancelled, loses its lease, or the worker
    /// stops; long jobs should check it.
    pub cancel: CancellationToken,
    /// Where jobs publish the events they append (after their commit).
    pub bus: Arc<dyn crate::events::EventBus>,
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth retrying (after backoff, while attempts remain).
    Retry(String),
    /// Will never succeed: dead-letter now.
    Fatal(String),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retry(m) | JobError::Fatal(m) => f.write_str(m),
        }
    }
}

impl From<crate::Error> for JobError {
    fn from(err: crate::Error) -> Self {
        match err {
            crate::Error::InvalidRequest { .. }
            | crate::Error::NotFound { .. }
            | crate::Error::Forbidden(_) => JobError::Fatal(err.to_string()),
            other => JobError::Retry(format!("{other:#}")),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        // Database trouble is usually transient (restarts, failovers): retry.
        JobError::Retry(format!("database: {err}"))
    }
}

/// The outcome of one attempt: an optional result document, or an error.
pub type JobOutcome = std::result::Result<Option<serde_json::Value>, JobError>;

/// A kind of job: its payload type and how to run it.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// Registered name (`[a-z][a-z0-9_.]*`).
    const KIND: &'static str;
    /// Default tier.
    const PRIORITY: JobPriority = JobPriority::Medium;
    /// Attempts before dead-lettering (seed 002 FR-3: 3).
    const MAX_ATTEMPTS: i32 = 3;
    /// Per-attempt timeout.
    const TIMEOUT: Duration = Duration::from_secs(300);
    /// Queue.
    const QUEUE: &'static str = "default";

    /// Runs one attempt.
    fn run(self, ctx: JobContext) -> impl Future<Output = JobOutcome> + Send;

    /// This job as a row to enqueue, with the kind's defaults.
    fn to_new_job(&self) -> Result<NewJob> {
        let payload = serde_json::to_value(self)
            .map_err(|e| crate::Error::internal("serializing a job payload", e))?;
        Ok(NewJob::new(Self::KIND, payload)
            .priority(Self::PRIORITY)
            .max_attempts(Self::MAX_ATTEMPTS)
            .timeout(Self::TIMEOUT)
            .queue(Self::QUEUE))
    }
}

type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, JobOutcome> + Send + Sync>;

/// Job kinds a worker can run.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Handler>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers job kind `J`.
    pub fn register<J: Job>(mut self) -> Self {
        let handler: Handler = Arc::new(|ctx: JobContext| {
            Box::pin(async move {
                let job: J = serde_json::from_value(ctx.job.payload.clone()).map_err(|e| {
                    JobError::Fatal(format!("payload does not fit {}: {e}", J::KIND))
                })?;
                job.run(ctx).await
            })
        });
        self.handlers.insert(J::KIND, handler);
        self
    }

    pub(crate) fn handler(&self, kind: &str) -> Option<&Handler> {
        self.handlers.get(kind)
    }

    /// Registered kinds.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}

/// Enqueues `job` in the caller's transaction; returns the job and whether it is new
/// (`false`: its idempotency key already existed).
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<(JobRecord, bool)> {
    validate(job)?;
    let (record, created) = repo::insert(conn, job).await?;
    if created {
        count_enqueued(job, 1);
    }
    Ok((record, created))
}

/// Counts enqueued jobs (before commit: a rolled-back enqueue is still counted, which
/// the metric's help text says).
fn count_enqueued(job: &NewJob, n: u64) {
    metrics::counter!("mc_jobs_enqueued_total", "kind" => job.kind.clone(), "priority" => job.priority.as_str())
        .increment(n);
}

/// Enqueues many jobs in one statement in the caller's transaction.
pub async fn enqueue_many(conn: &mut PgConnection, jobs: &[NewJob]) -> Result<u64> {
    for job in jobs {
        validate(job)?;
    }
    let inserted = repo::insert_many(conn, jobs).await?;
    if inserted == jobs.len() as u64 {
        let mut tally: HashMap<(&str, JobPriority), u64> = HashMap::new();
        for job in jobs {
            *tally.entry((job.kind.as_str(), job.priority)).or_default() += 1;
        }
        for ((kind, priority), n) in tally {
            metrics::counter!("mc_jobs_enqueued_total", "kind" => kind.to_owned(), "priority" => priority.as_str())
                .increment(n);
        }
    } else if let Some(first) = jobs.first() {
        // Some were duplicates; which ones is not known here.
        count_enqueued(first, inserted);
    }
    Ok(inserted)
}

/// Completes the job inside the caller's transaction, so its effects and its completion
/// commit together (exactly-once effects). Returns `false` when the lease was lost: the
/// caller must roll back.
pub async fn complete_in(
    conn: &mut PgConnection,
    ctx: &JobContext,
    result: Option<serde_json::Value>,
) -> Result<bool> {
    let done = repo::complete(&mut *conn, &[(ctx.job.id, ctx.lease_token, result)]).await?;
    Ok(!done.is_empty())
}

fn validate(job: &NewJob) -> Result<()> {
    let kind_ok = job.kind.len() <= 100
        && job.kind.starts_with(|c: char| c.is_ascii_lowercase())
        && job
            .kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if !kind_ok {
        return Err(crate::Error::invalid_field(
            "kind",
            "must be lowercase letters, digits, '_' and '.'",
        ));
    }
    if !(1..=100).contains(&job.max_attempts) {
        return Err(crate::Error::invalid_field("max_attempts", "must be 1-100"));
    }
    if let Some((key, limit)) = &job.concurrency {
        if key.is_empty() || key.chars().count() > 200 {
            return Err(crate::Error::invalid_field(
                "concurrency_key",
                "must be 1-200 characters",
            ));
        }
        if !(1..=10_000).contains(limit) {
            return Err(crate::Error::invalid_field(
                "concurrency_limit",
                "must be 1-10000",
            ));
        }
    }
    Ok(())
}
