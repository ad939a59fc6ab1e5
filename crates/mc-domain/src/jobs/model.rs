//! Jobs as stored and as shown.

use crate::ids::{JobId, OrgId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

text_enum! {
    /// Dequeue tier: every runnable job of a higher tier starts before any of a lower one.
    JobPriority {
        /// First.
        Critical => "critical",
        /// Second.
        High => "high",
        /// Third (the default).
        Medium => "medium",
        /// Last.
        Low => "low",
    }
}

impl JobPriority {
    /// Stored rank: ascending order is dequeue order.
    pub fn rank(self) -> i16 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Medium => 2,
            Self::Low => 3,
        }
    }

    /// The tier of a stored rank.
    pub fn from_rank(rank: i16) -> Self {
        match rank {
            0 => Self::Critical,
            1 => Self::High,
            2 => Self::Medium,
            _ => Self::Low,
        }
    }
}

text_enum! {
    /// Where a job is in its life.
    JobState {
        /// Waiting for `run_at` and a worker.
        Pending => "pending",
        /// Held by a worker's lease.
        Running => "running",
        /// Finished successfully.
        Completed => "completed",
        /// Failed its last attempt (or cannot run at all); can be replayed.
        Dead => "dead",
        /// Cancelled before it finished.
        Cancelled => "cancelled",
    }
}

/// A job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Tenant the job works for (absent for system jobs).
    pub organization_id: Option<OrgId>,
    /// Registered kind, e.g. `sweep.gateways_offline`.
    pub kind: String,
    /// Queue name.
    pub queue: String,
    /// Tier.
    pub priority: JobPriority,
    /// Input.
    pub payload: serde_json::Value,
    /// State.
    pub state: JobState,
    /// Earliest start.
    pub run_at: DateTime<Utc>,
    /// Attempts started so far.
    pub attempts: i32,
    /// Attempts allowed before dead-lettering.
    pub max_attempts: i32,
    /// Per-attempt timeout in milliseconds.
    pub timeout_ms: i32,
    /// Deduplication key.
    pub idempotency_key: Option<String>,
    /// Concurrency group.
    pub concurrency_key: Option<String>,
    /// Jobs of the group that may run at once.
    pub concurrency_limit: Option<i32>,
    /// Worker holding the lease while running.
    pub lease_holder: Option<String>,
    /// When the lease lapses unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// One entry per failed attempt: `{attempt, error, at, worker}`.
    pub errors: serde_json::Value,
    /// Output of a completed job.
    pub result: Option<serde_json::Value>,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Registered kind.
    pub kind: String,
    /// Queue.
    pub queue: String,
    /// Tier.
    pub priority: JobPriority,
    /// Input.
    pub payload: serde_json::Value,
    /// Earliest start (now when absent).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Enqueueing the same (kind, key) again returns the existing job.
    pub idempotency_key: Option<String>,
    /// Tenant.
    pub organization_id: Option<OrgId>,
    /// Concurrency group and how many of it may run at once.
    pub concurrency: Option<(String, i32)>,
}

impl NewJob {
    /// A job of `kind` with the defaults of seed 002 FR-3 (3 attempts) and a 5-minute timeout.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            queue: "default".into(),
            priority: JobPriority::Medium,
            payload,
            run_at: None,
            max_attempts: 3,
            timeout: Duration::from_secs(300),
            idempotency_key: None,
            organization_id: None,
            concurrency: None,
        }
    }

    /// Lets at most `limit` jobs with this `key` run at once.
    pub fn concurrency(mut self, key: impl Into<String>, limit: i32) -> Self {
        self.concurrency = Some((key.into(), limit));
        self
    }

    /// Sets the tier.
    pub fn priority(mut self, priority: JobPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the earliest start.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Sets the deduplication key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the attempts allowed.
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the tenant.
    pub fn organization(mut self, org: OrgId) -> Self {
        self.organization_id = Some(org);
        self
    }
}

/// A job claimed by a worker: the lease token proves it still holds it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job as claimed (state running, attempts incremented).
    pub job: Job,
    /// The lease.
    pub lease_token: uuid::Uuid,
}

/// Retry delay after failed attempt `attempt` (1-based): exponential from 1 s, doubling,
/// capped at 30 s (seed 002 FR-3), with ±20% jitter so failures do not retry in lockstep.
pub fn backoff(attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    let base_ms = (1000u64.saturating_mul(1u64 << exp)).min(30_000);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    Duration::from_millis((base_ms as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty_with_jitter() {
        for (attempt, base) in [
            (1, 1000u64),
            (2, 2000),
            (3, 4000),
            (5, 16_000),
            (6, 30_000),
            (40, 30_000),
        ] {
            for _ in 0..50 {
                let ms = backoff(attempt).as_millis() as u64;
                assert!(
                    ms >= base * 8 / 10 && ms <= base * 12 / 10,
                    "attempt {attempt}: {ms}"
                );
            }
        }
    }

    #[test]
    fn ranks_round_trip_in_dequeue_order() {
        let ranks: Vec<i16> = JobPriority::ALL.iter().map(|p| p.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3]);
        for p in JobPriority::ALL {
            assert_eq!(JobPriority::from_rank(p.rank()), *p);
        }
    }
}
