//! Runs claimed jobs: N at a time, each under its timeout with panics caught, leases
//! renewed by heartbeat, lapsed leases of dead workers reclaimed, completions batched
//! (written beside the claims, on another connection, so the database works on both at
//! once), and on shutdown a drain that finishes or releases what it holds.

use super::model::Claimed;
use super::repo::{self, FailOutcome};
use super::{JobContext, JobError, JobOutcome, Registry};
use crate::db::{Notifications, begin_system, begin_system_generic};
use crate::error::Result;
use crate::events::{EventBus, MemoryEventBus};
use crate::ids::JobId;
use futures::FutureExt;
use sqlx::PgPool;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Name recorded as the lease holder (unique per process).
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Queues served.
    pub queues: Vec<String>,
    /// Polling period when no notification arrives; also the reclaim period.
    pub poll_interval: Duration,
    /// Lease renewal period.
    pub heartbeat_interval: Duration,
    /// Lease length beyond a job's timeout.
    pub lease_slack: Duration,
    /// Time running jobs get to finish on shutdown before they are released.
    pub drain_timeout: Duration,
    /// Jobs this worker claims between vacuums of `job_queue` (0: leave it to autovacuum).
    /// Each claim leaves dead entries at the front of the ready index that every later
    /// claim walks over until a vacuum; the table is small, so vacuuming it is cheap.
    pub vacuum_after: usize,
}

/// Vacuums of the queue are at least this far apart.
const VACUUM_INTERVAL: Duration = Duration::from_millis(250);

impl WorkerOptions {
    /// Defaults: 8 at a time on `default`, 1 s polling, 5 s heartbeat, 30 s slack.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            concurrency: 8,
            queues: vec!["default".into()],
            poll_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(5),
            lease_slack: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(20),
            vacuum_after: 2000,
        }
    }
}

/// Jobs this worker holds: job → its lease token and its cancellation.
type Running = Arc<Mutex<HashMap<JobId, (Uuid, CancellationToken)>>>;

/// Runs one repository call in a transaction as `mc_system` (jobs span tenants).
macro_rules! as_system {
    ($pool:expr, |$conn:ident| $call:expr) => {
        async {
            let mut tx = begin_system($pool).await?;
            let $conn: &mut sqlx::PgConnection = &mut tx;
            let out = $call.await?;
            tx.commit().await?;
            Ok::<_, crate::Error>(out)
        }
    };
}

/// A job runner over one pool.
pub struct Worker {
    pool: PgPool,
    registry: Arc<Registry>,
    opts: WorkerOptions,
    bus: Arc<dyn EventBus>,
}

struct Finished {
    id: JobId,
    token: Uuid,
    result: Option<serde_json::Value>,
    kind: String,
    priority: &'static str,
}

impl Worker {
    /// A worker running the kinds in `registry`.
    pub fn new(pool: PgPool, registry: Registry, opts: WorkerOptions) -> Self {
        Self {
            pool,
            registry: Arc::new(registry),
            opts,
            bus: Arc::new(MemoryEventBus::new()),
        }
    }

    /// Publishes the events jobs append on `bus` (a process-local bus by default).
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = bus;
        self
    }

    /// Runs until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let mut notes = Notifications::new(self.pool.clone(), "mc_jobs");
        let slots = Arc::new(Semaphore::new(self.opts.concurrency));
        let running: Running = Arc::default();
        let freed = Arc::new(tokio::sync::Notify::new());
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut completer = AbortOnDrop(tokio::spawn(complete_batches(self.pool.clone(), done_rx)));
        let mut claimed_since_vacuum = 0usize;
        let mut last_vacuum = std::time::Instant::now();
        let vacuuming = Arc::new(AtomicBool::new(false));
        let stop_side_tasks = CancellationToken::new();
        let mut heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.pool.clone(),
            running.clone(),
            self.opts.clone(),
            stop_side_tasks.clone(),
        )));
        let mut jobs = tokio::task::JoinSet::new();
        let mut poll = tokio::time::interval(self.opts.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            notes.ensure().await;
            let free = slots.available_permits();
            let mut claimed_full = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claimed) => {
                        claimed_full = claimed.len() == free;
                        claimed_since_vacuum += claimed.len();
                        if self.opts.vacuum_after > 0
                            && claimed_since_vacuum >= self.opts.vacuum_after
                            && last_vacuum.elapsed() >= VACUUM_INTERVAL
                            && !vacuuming.swap(true, Ordering::AcqRel)
                        {
                            claimed_since_vacuum = 0;
                            last_vacuum = std::time::Instant::now();
                            tokio::spawn(vacuum_queue(self.pool.clone(), vacuuming.clone()));
                        }
                        for c in claimed {
                            let permit = slots.clone().try_acquire_owned().expect("free slot");
                            let run = self.start(c, &running, &done_tx, &freed);
                            jobs.spawn(async move {
                                run.await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "claiming jobs failed; will retry"),
                }
            }
            while jobs.try_join_next().is_some() {}
            if claimed_full {
                // Likely more work waiting. Claim again once a quarter of the slots are
                // free (or 2 ms passed): one claim per batch, not one per finished job.
                let want = (self.opts.concurrency / 4).max(1);
                let deadline = tokio::time::Instant::now() + Duration::from_millis(2);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = freed.notified() => {}
                }
                while slots.available_permits() < want {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = freed.notified() => {}
                        () = tokio::time::sleep_until(deadline) => break,
                    }
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = notes.recv() => {}
                () = freed.notified() => {}
                _ = poll.tick() => self.maintain().await,
            }
        }
        // Drain: let running jobs finish, then release whatever is left.
        let drained = tokio::time::timeout(self.opts.drain_timeout, async {
            while jobs.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            let left: Vec<(JobId, Uuid)> = {
                let held = running.lock().expect("running lock");
                held.values().for_each(|(_, cancel)| cancel.cancel());
                held.iter().map(|(id, (token, _))| (*id, *token)).collect()
            };
            jobs.abort_all();
            // Aborted runs drop their completion senders once they are gone.
            while jobs.join_next().await.is_some() {}
            match as_system!(&self.pool, |c| repo::release(c, &left)).await {
                Ok(n) => tracing::info!(released = n, "released unfinished jobs on shutdown"),
                Err(err) => {
                    tracing::warn!(error = %err, "releasing jobs failed; their leases will lapse")
                }
            }
        }
        drop(done_tx);
        let _ = (&mut completer.0).await;
        stop_side_tasks.cancel();
        let _ = (&mut heartbeat.0).await;
        Ok(())
    }

    async fn claim(&self, n: usize) -> Result<Vec<Claimed>> {
        let mut tx = begin_system_generic(&self.pool).await?;
        let claimed = repo::claim(
            &mut tx,
            &self.opts.id,
            &self.opts.queues,
            i64::try_from(n).unwrap_or(i64::MAX),
            self.opts.lease_slack,
        )
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Periodic upkeep: reclaim lapsed leases, fire due schedules, publish queue depth.
    async fn maintain(&self) {
        match as_system!(&self.pool, |c| super::schedules::fire_due(c, 100)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(fired = n, "schedules fired"),
            Err(err) => tracing::warn!(error = %err, "firing schedules failed"),
        }
        match as_system!(&self.pool, |c| repo::reclaim_expired(c)).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(reclaimed = n, "reclaimed jobs whose worker stopped"),
            Err(err) => tracing::warn!(error = %err, "reclaiming lapsed leases failed"),
        }
        if let Ok(depth) = as_system!(&self.pool, |c| repo::pending_depth(c)).await {
            for p in super::JobPriority::ALL {
                let pending = depth
                    .iter()
                    .filter(|(pp, _)| pp == p)
                    .map(|(_, n)| *n)
                    .sum::<i64>();
                metrics::gauge!("mc_jobs_queue_depth", "priority" => p.as_str())
                    .set(pending as f64);
            }
        }
    }

    /// The future running one claimed job to its recorded outcome.
    fn start(
        &self,
        claimed: Claimed,
        running: &Running,
        done: &mpsc::UnboundedSender<Finished>,
        freed: &Arc<tokio::sync::Notify>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let cancel = CancellationToken::new();
        running
            .lock()
            .expect("running lock")
            .insert(claimed.job.id, (claimed.lease_token, cancel.clone()));
        let pool = self.pool.clone();
        let registry = self.registry.clone();
        let bus = self.bus.clone();
        let worker = self.opts.id.clone();
        let running = running.clone();
        let done = done.clone();
        let freed = freed.clone();
        async move {
            let Claimed { job, lease_token } = claimed;
            let id = job.id;
            let kind = job.kind.clone();
            let priority = job.priority.as_str();
            let attempts = job.attempts;
            let timeout = Duration::from_millis(u64::try_from(job.timeout_ms).unwrap_or(1000));
            let waited = (chrono::Utc::now() - job.run_at.max(job.enqueued_at))
                .to_std()
                .unwrap_or_default();
            metrics::histogram!("mc_job_start_latency_seconds", "priority" => priority)
                .record(waited.as_secs_f64());
            let started = std::time::Instant::now();
            let outcome: JobOutcome = match registry.handler(&kind) {
                None => Err(JobError::Fatal(format!("unknown job kind {kind:?}"))),
                Some(handler) => {
                    let ctx = JobContext {
                        pool: pool.clone(),
                        job,
                        lease_token,
                        cancel: cancel.clone(),
                        bus,
                    };
                    let attempt = AssertUnwindSafe(handler(ctx)).catch_unwind();
                    tokio::select! {
                        result = tokio::time::timeout(timeout, attempt) => match result {
                            Err(_) => {
                                cancel.cancel();
                                Err(JobError::Retry(format!("timed out after {} ms", timeout.as_millis())))
                            }
                            Ok(Err(panic)) => Err(JobError::Retry(format!("panicked: {}", panic_message(&panic)))),
                            Ok(Ok(outcome)) => outcome,
                        },
                        () = cancel.cancelled() => Err(JobError::Retry("stopped: lease lost, cancelled or shutting down".into())),
                    }
                }
            };
            metrics::histogram!("mc_job_run_seconds", "kind" => kind.clone())
                .record(started.elapsed().as_secs_f64());
            running.lock().expect("running lock").remove(&id);
            match outcome {
                Ok(result) => {
                    let _ = done.send(Finished {
                        id,
                        token: lease_token,
                        result,
                        kind,
                        priority,
                    });
                }
                Err(err) => {
                    // Boxed: the recording's futures are large, and a job's future is
                    // moved into its task on every spawn.
                    Box::pin(record_failure(
                        pool,
                        worker,
                        id,
                        lease_token,
                        attempts,
                        err,
                        kind,
                        priority,
                    ))
                    .await;
                }
            }
            freed.notify_one();
        }
    }
}

/// Vacuums `job_queue` (another worker's vacuum in progress: skipped).
async fn vacuum_queue(pool: PgPool, vacuuming: Arc<AtomicBool>) {
    let started = std::time::Instant::now();
    match sqlx::query("VACUUM (SKIP_LOCKED) job_queue")
        .execute(&pool)
        .await
    {
        Ok(_) => {
            metrics::histogram!("mc_jobs_queue_vacuum_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        Err(err) => tracing::warn!(error = %err, "vacuuming the job queue failed"),
    }
    vacuuming.store(false, Ordering::Release);
}

/// Records a failed attempt: a retry later, or a dead letter.
#[allow(clippy::too_many_arguments)]
async fn record_failure(
    pool: PgPool,
    worker: String,
    id: JobId,
    lease_token: Uuid,
    attempts: i32,
    err: JobError,
    kind: String,
    priority: &'static str,
) {
    let retryable = matches!(err, JobError::Retry(_));
    let message = err.to_string();
    let recorded = as_system!(&pool, |c| repo::fail(
        c,
        id,
        lease_token,
        attempts,
        &worker,
        &message,
        retryable
    ));
    match recorded.await {
        Ok(FailOutcome::Dead) => {
            tracing::warn!(kind, error = %err, "job dead-lettered");
            metrics::counter!("mc_jobs_dead_total", "kind" => kind, "priority" => priority)
                .increment(1);
        }
        Ok(FailOutcome::Retrying) => {
            metrics::counter!("mc_jobs_failed_total", "kind" => kind, "priority" => priority)
                .increment(1);
        }
        Ok(FailOutcome::LeaseLost) => {}
        Err(e) => {
            tracing::warn!(error = %e, "recording a failed attempt failed; the lease will lapse and the job retry")
        }
    }
}

/// Writes completions in batches (one statement per batch), each batch what finished
/// while the previous one was written.
async fn complete_batches(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Finished>) {
    let mut batch = Vec::with_capacity(512);
    while rx.recv_many(&mut batch, 512).await > 0 {
        let rows: Vec<repo::Completion> = batch
            .iter()
            .map(|f| (f.id, f.token, f.result.clone()))
            .collect();
        let mut delay = Duration::from_millis(100);
        loop {
            match repo::complete(&pool, &rows).await {
                Ok(_) => break,
                Err(err) => {
                    // Keep trying while the database is away; if it stays away, the
                    // leases lapse and the jobs run again (at-least-once).
                    tracing::warn!(error = %err, "recording completions failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for f in batch.drain(..) {
            metrics::counter!("mc_jobs_completed_total", "kind" => f.kind, "priority" => f.priority)
                .increment(1);
        }
    }
}

/// Renews the leases of running jobs; stops jobs whose lease was lost.
async fn heartbeat(pool: PgPool, running: Running, opts: WorkerOptions, stop: CancellationToken) {
    let mut tick = tokio::time::interval(opts.heartbeat_interval);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let held: Vec<(JobId, Uuid)> = running
            .lock()
            .expect("running lock")
            .iter()
            .map(|(id, (token, _))| (*id, *token))
            .collect();
        if held.is_empty() {
            continue;
        }
        match as_system!(&pool, |c| repo::heartbeat(c, &held, opts.lease_slack)).await {
            Ok(lost) => {
                let held = running.lock().expect("running lock");
                for id in lost {
                    if let Some((_, cancel)) = held.get(&id) {
                        cancel.cancel();
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "lease heartbeat failed"),
        }
    }
}

/// Keeps a side task tied to the worker: if the worker's future is dropped (the process
/// is going down hard), the task goes with it instead of renewing leases forever.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
