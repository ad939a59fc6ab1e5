//! The job queue against real Postgres: strict priority, idempotency, transactional
//! enqueue, leases and reclaim, retries to dead letters, panics, timeouts, unknown kinds,
//! drain on shutdown, and exactly-once effects with two workers and one killed, and with
//! every database connection killed mid-run.

use mc_domain::db::{begin_org, begin_system};
use mc_domain::events::outbox as job_events;
use mc_domain::events::{self, CompiledFilter, Event, EventBus, EventFilter, MemoryEventBus};
use mc_domain::fanout::Delivery;
use mc_domain::ids::{JobId, OrgId};
use mc_domain::jobs::worker::{Worker, WorkerOptions};
use mc_domain::jobs::{
    self, Job, JobContext, JobError, JobOutcome, JobPriority, JobState, NewJob, Registry, repo,
};
use mc_testkit::{TestDb, eventually};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn fast(id: &str) -> WorkerOptions {
    WorkerOptions {
        concurrency: 4,
        poll_interval: Duration::from_millis(100),
        heartbeat_interval: Duration::from_millis(200),
        lease_slack: Duration::from_millis(300),
        drain_timeout: Duration::from_millis(500),
        ..WorkerOptions::new(id)
    }
}

async fn enqueue(pool: &PgPool, job: NewJob) -> JobId {
    let mut tx = begin_system(pool).await.unwrap();
    let (job, _) = jobs::enqueue(&mut tx, &job).await.unwrap();
    tx.commit().await.unwrap();
    job.id
}

async fn state(pool: &PgPool, id: JobId) -> jobs::JobRecord {
    let mut tx = begin_system(pool).await.unwrap();
    let job = repo::get(&mut *tx, id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    job
}

async fn wait_for_state(pool: &PgPool, id: JobId, want: JobState) -> jobs::JobRecord {
    eventually(WAIT, &format!("job {id} {want}"), || async move {
        let job = state(pool, id).await;
        (job.state == want).then_some(job)
    })
    .await
}

async fn claim(pool: &PgPool, worker: &str, n: i64, slack: Duration) -> Vec<jobs::Claimed> {
    let mut tx = begin_system(pool).await.unwrap();
    let claimed = repo::claim(&mut tx, worker, &["default".to_owned()], n, slack)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    claimed
}

/// The queue invariant of migration 0013: a `job_queue` row exists iff the job is pending
/// or running, and holds the job's lease iff it is running.
async fn assert_queue_matches_jobs(pool: &PgPool) {
    let mut tx = begin_system(pool).await.unwrap();
    let broken: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT coalesce(j.id, q.id), coalesce(j.state, 'missing job')
         FROM jobs j FULL JOIN job_queue q ON q.id = j.id
         WHERE (j.state IN ('pending', 'running')) IS DISTINCT FROM (q.id IS NOT NULL)
            OR (q.id IS NOT NULL AND (
                 q.lease_token IS DISTINCT FROM j.lease_token
              OR q.lease_expires_at IS DISTINCT FROM j.lease_expires_at
              OR (q.queue, q.priority, q.run_at, q.timeout_ms) IS DISTINCT FROM
                 (j.queue, j.priority, j.run_at, j.timeout_ms)
              OR (j.state = 'running') <> (q.lease_token IS NOT NULL)))",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(broken.is_empty(), "jobs and job_queue disagree: {broken:?}");
}

fn spawn_worker(
    pool: &PgPool,
    registry: Registry,
    opts: WorkerOptions,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let worker = Worker::new(pool.clone(), registry, opts);
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { worker.run(token).await.unwrap() });
    (shutdown, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dequeue_is_strictly_by_priority_then_age() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    // Seed 002 FR-1: 5 critical, 10 high, 20 medium pending; 10 dequeues give 5 critical
    // then 5 high. Enqueued interleaved and lowest first, to make order matter.
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.push(NewJob::new("test.noop", json!({"i": i, "p": "medium"})));
        if i < 10 {
            batch.push(
                NewJob::new("test.noop", json!({"i": i, "p": "high"})).priority(JobPriority::High),
            );
        }
        if i < 5 {
            batch.push(
                NewJob::new("test.noop", json!({"i": i, "p": "critical"}))
                    .priority(JobPriority::Critical),
            );
        }
    }
    let mut tx = begin_system(pool).await.unwrap();
    assert_eq!(jobs::enqueue_many(&mut tx, &batch).await.unwrap(), 35);
    tx.commit().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        let c = claim(pool, "w", 1, Duration::from_secs(30)).await;
        got.push(c[0].job.payload["p"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, [vec!["critical"; 5], vec!["high"; 5]].concat());
    // A batch claim keeps the order too.
    let batch = claim(pool, "w", 10, Duration::from_secs(30)).await;
    let tiers: Vec<_> = batch.iter().map(|c| c.job.priority).collect();
    assert_eq!(
        tiers,
        [vec![JobPriority::High; 5], vec![JobPriority::Medium; 5]].concat()
    );
    // Depth reports what is really there.
    let mut tx = begin_system(pool).await.unwrap();
    let depth = repo::depth(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let pending_medium = depth
        .iter()
        .find(|(p, s, _)| *p == JobPriority::Medium && *s == JobState::Pending)
        .unwrap()
        .2;
    assert_eq!(pending_medium, 15);
    assert_queue_matches_jobs(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_and_the_callers_transaction() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let job = NewJob::new("test.noop", json!({})).idempotency_key("order-42");
    let first = enqueue(pool, job.clone()).await;
    let second = enqueue(pool, job.clone()).await;
    assert_eq!(first, second);
    // A rolled-back cause leaves no job.
    let mut tx = begin_system(pool).await.unwrap();
    jobs::enqueue(
        &mut tx,
        &NewJob::new("test.noop", json!({})).idempotency_key("rolled-back"),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = begin_system(pool).await.unwrap();
    let (_, created) = jobs::enqueue(
        &mut tx,
        &NewJob::new("test.noop", json!({})).idempotency_key("rolled-back"),
    )
    .await
    .unwrap();
    assert!(created);
    // Bad input is refused before it reaches the table.
    let err = jobs::enqueue(&mut tx, &NewJob::new("Bad Kind", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.details()[0].field, "kind");
    let err = jobs::enqueue(
        &mut tx,
        &NewJob::new("test.noop", json!({})).max_attempts(0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.details()[0].field, "max_attempts");
    assert_queue_matches_jobs(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_is_reclaimed_and_the_stale_holder_cannot_finish() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let id = enqueue(
        pool,
        NewJob::new("test.noop", json!({})).timeout(Duration::from_millis(100)),
    )
    .await;
    let stale = claim(pool, "dead-worker", 1, Duration::ZERO)
        .await
        .remove(0);
    assert_eq!(stale.job.attempts, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tx = begin_system(pool).await.unwrap();
    assert_eq!(repo::reclaim_expired(&mut *tx).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let job = state(pool, id).await;
    assert_eq!(job.state, JobState::Pending);
    assert!(
        job.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("lease expired")
    );
    let fresh = claim(pool, "live-worker", 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(fresh.job.attempts, 2);
    // The stale worker wakes up: it can neither complete nor fail the job.
    assert!(
        repo::complete(pool, &[(id, stale.lease_token, None)])
            .await
            .unwrap()
            .is_empty()
    );
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        repo::fail(
            &mut conn,
            id,
            stale.lease_token,
            1,
            "dead-worker",
            "late",
            true
        )
        .await
        .unwrap(),
        repo::FailOutcome::LeaseLost
    );
    assert_eq!(
        repo::heartbeat(pool, &[(id, stale.lease_token)], Duration::ZERO)
            .await
            .unwrap(),
        vec![id]
    );
    assert_eq!(
        repo::complete(pool, &[(id, fresh.lease_token, Some(json!({"ok": true})))])
            .await
            .unwrap(),
        vec![id]
    );
    assert_eq!(state(pool, id).await.state, JobState::Completed);
    assert_queue_matches_jobs(pool).await;
}

#[derive(Serialize, Deserialize)]
struct Flaky {
    fail_times: i32,
}

impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
    async fn run(self, ctx: JobContext) -> JobOutcome {
        if ctx.job.attempts <= self.fail_times {
            Err(JobError::Retry(format!(
                "attempt {} failed",
                ctx.job.attempts
            )))
        } else {
            Ok(Some(json!({"attempt": ctx.job.attempts})))
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Panics;

impl Job for Panics {
    const KIND: &'static str = "test.panics";
    const MAX_ATTEMPTS: i32 = 1;
    #[allow(clippy::panic)]
    async fn run(self, _ctx: JobContext) -> JobOutcome {
        panic!("boom")
    }
}

#[derive(Serialize, Deserialize)]
struct Hangs;

impl Job for Hangs {
    const KIND: &'static str = "test.hangs";
    const MAX_ATTEMPTS: i32 = 1;
    const TIMEOUT: Duration = Duration::from_millis(200);
    async fn run(self, _ctx: JobContext) -> JobOutcome {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(None)
    }
}

#[derive(Serialize, Deserialize)]
struct Typed {
    count: u32,
}

impl Job for Typed {
    const KIND: &'static str = "test.typed";
    async fn run(self, _ctx: JobContext) -> JobOutcome {
        Ok(Some(json!({"count": self.count})))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_backoff_then_every_bad_job_reaches_a_terminal_state() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let registry = Registry::new()
        .register::<Flaky>()
        .register::<Panics>()
        .register::<Hangs>()
        .register::<Typed>();
    let recovers = enqueue(pool, Flaky { fail_times: 1 }.to_new_job().unwrap()).await;
    let gives_up = enqueue(
        pool,
        Flaky { fail_times: 99 }
            .to_new_job()
            .unwrap()
            .max_attempts(2),
    )
    .await;
    let panics = enqueue(pool, Panics.to_new_job().unwrap()).await;
    let hangs = enqueue(pool, Hangs.to_new_job().unwrap()).await;
    let unknown = enqueue(pool, NewJob::new("test.nobody_runs_this", json!({}))).await;
    let garbled = enqueue(pool, NewJob::new("test.typed", json!({"count": "many"}))).await;
    let fine = enqueue(pool, Typed { count: 3 }.to_new_job().unwrap()).await;
    let (shutdown, handle) = spawn_worker(pool, registry, fast("w1"));

    let job = wait_for_state(pool, fine, JobState::Completed).await;
    assert_eq!(job.result, Some(json!({"count": 3})));
    let job = wait_for_state(pool, recovers, JobState::Completed).await;
    assert_eq!((job.attempts, job.errors.as_array().unwrap().len()), (2, 1));
    // The retry waited for the backoff (1 s ± 20%).
    let retry_at = job.started_at.unwrap();
    let failed_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(job.errors[0]["at"].clone()).unwrap();
    assert!(
        (retry_at - failed_at).num_milliseconds() >= 700,
        "{retry_at} vs {failed_at}"
    );

    let job = wait_for_state(pool, gives_up, JobState::Dead).await;
    assert_eq!(job.errors.as_array().unwrap().len(), 2);
    assert_eq!(job.errors[1]["error"], "attempt 2 failed");
    let job = wait_for_state(pool, panics, JobState::Dead).await;
    assert!(
        job.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("panicked: boom")
    );
    let job = wait_for_state(pool, hangs, JobState::Dead).await;
    assert!(
        job.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    let job = wait_for_state(pool, unknown, JobState::Dead).await;
    assert_eq!(job.attempts, 1, "unknown kinds are not retried");
    assert!(
        job.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown job kind")
    );
    let job = wait_for_state(pool, garbled, JobState::Dead).await;
    assert!(
        job.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("payload does not fit")
    );

    // Dead letters can be replayed (and then fail again, with their history kept).
    let mut tx = begin_system(pool).await.unwrap();
    assert_eq!(repo::replay(&mut *tx, &[panics], None).await.unwrap(), 1);
    tx.commit().await.unwrap();
    eventually(WAIT, "replayed job dead again", || async {
        let job = state(pool, panics).await;
        (job.state == JobState::Dead && job.errors.as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap();
    assert_queue_matches_jobs(pool).await;
}

#[derive(Serialize, Deserialize)]
struct Slow;

impl Job for Slow {
    const KIND: &'static str = "test.slow";
    async fn run(self, ctx: JobContext) -> JobOutcome {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(None),
            () = ctx.cancel.cancelled() => Err(JobError::Retry("cancelled".into())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_unfinished_jobs_and_cancel_stops_them() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let held = enqueue(pool, Slow.to_new_job().unwrap()).await;
    let (shutdown, handle) = spawn_worker(pool, Registry::new().register::<Slow>(), fast("w1"));
    wait_for_state(pool, held, JobState::Running).await;
    shutdown.cancel();
    handle.await.unwrap();
    let job = state(pool, held).await;
    assert_eq!(
        (job.state, job.attempts),
        (JobState::Pending, 0),
        "released, attempt not counted"
    );

    // Cancelling a running job stops it; it stays cancelled.
    let (shutdown, handle) = spawn_worker(pool, Registry::new().register::<Slow>(), fast("w2"));
    wait_for_state(pool, held, JobState::Running).await;
    let mut tx = begin_system(pool).await.unwrap();
    assert!(repo::cancel(&mut *tx, held).await.unwrap());
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(state(pool, held).await.state, JobState::Cancelled);
    shutdown.cancel();
    handle.await.unwrap();
    assert_queue_matches_jobs(pool).await;
}

#[derive(Serialize, Deserialize)]
struct Effect {
    n: i32,
}

impl Job for Effect {
    const KIND: &'static str = "test.effect";
    const TIMEOUT: Duration = Duration::from_secs(1);
    const MAX_ATTEMPTS: i32 = 20;
    async fn run(self, ctx: JobContext) -> JobOutcome {
        // Effect and completion commit together.
        let mut tx = ctx
            .pool
            .begin()
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        sqlx::query("INSERT INTO job_effects (job_id, n) VALUES ($1, $2)")
            .bind(ctx.job.id)
            .bind(self.n)
            .execute(&mut *tx)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
        if jobs::complete_in(&mut tx, &ctx, None).await? {
            tx.commit()
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
        }
        Ok(None)
    }
}

/// `total` [`Effect`] jobs enqueued into a fresh `job_effects` table.
async fn enqueue_effects(pool: &PgPool, total: i32) {
    sqlx::query("CREATE TABLE job_effects (job_id uuid NOT NULL, n int NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    let batch: Vec<NewJob> = (0..total)
        .map(|n| Effect { n }.to_new_job().unwrap())
        .collect();
    let mut tx = begin_system(pool).await.unwrap();
    jobs::enqueue_many(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();
}

/// An [`Effect`] worker whose leases lapse quickly once it stops renewing them.
fn spawn_effect_worker(
    pool: &PgPool,
    id: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let opts = WorkerOptions {
        lease_slack: Duration::from_millis(500),
        ..fast(id)
    };
    spawn_worker(pool, Registry::new().register::<Effect>(), opts)
}

/// Waits until more than 20 effects are recorded (read through `reader`).
async fn wait_for_some_effects(reader: &PgPool) {
    eventually(WAIT, "some progress", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM job_effects")
            .fetch_one(reader)
            .await
            .ok()?;
        (n > 20).then_some(())
    })
    .await;
}

/// Waits until every job is completed, then asserts each effect happened exactly once.
async fn assert_every_effect_exactly_once(admin: &PgPool, total: i32) {
    eventually(Duration::from_secs(60), "every job completed", || async {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'completed'")
            .fetch_one(admin)
            .await
            .ok()?;
        (open == 0).then_some(())
    })
    .await;
    let (effects, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT n) FROM job_effects")
            .fetch_one(admin)
            .await
            .unwrap();
    assert_eq!(
        (effects, distinct),
        (i64::from(total), i64::from(total)),
        "lost or doubled effects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_lose_nothing_and_complete_nothing_twice() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let admin = db.admin_pool().await;
    let total = 400;
    enqueue_effects(pool, total).await;
    let (_victim_shutdown, victim) = spawn_effect_worker(pool, "victim");
    let (shutdown, survivor) = spawn_effect_worker(pool, "survivor");
    // Kill the victim abruptly mid-run (no drain, no release): its leases must lapse.
    wait_for_some_effects(pool).await;
    victim.abort();
    let _ = victim.await;

    assert_every_effect_exactly_once(&admin, total).await;
    shutdown.cancel();
    survivor.await.unwrap();
    assert_queue_matches_jobs(pool).await;
}

/// What a Postgres restart does to a worker: every connection it holds dies mid-statement
/// or mid-transaction, repeatedly, while two workers drain. Nothing may be lost or done
/// twice, and the workers carry on once the database answers again. (`scripts/bench
/// queue` restarts the server itself; tests share one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_run_lose_nothing_and_complete_nothing_twice() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let admin = db.admin_pool().await;
    let total = 400;
    enqueue_effects(pool, total).await;
    let (shutdown_a, worker_a) = spawn_effect_worker(pool, "a");
    let (shutdown_b, worker_b) = spawn_effect_worker(pool, "b");
    wait_for_some_effects(&admin).await;
    // Terminate every connection of the application role in this database, ten times
    // over two seconds: claims, heartbeats, jobs and completion batches all lose theirs.
    let mut killed = 0i64;
    for _ in 0..10 {
        killed += sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND usename = 'mc_app'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(killed > 0, "no worker connection was terminated");

    assert_every_effect_exactly_once(&admin, total).await;
    shutdown_a.cancel();
    shutdown_b.cancel();
    worker_a.await.unwrap();
    worker_b.await.unwrap();
    assert_queue_matches_jobs(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_key_never_runs_more_than_its_limit() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let batch: Vec<NewJob> = (0..10)
        .map(|i| NewJob::new("test.noop", json!({"i": i})).concurrency("agent-7", 2))
        .chain((0..3).map(|i| NewJob::new("test.noop", json!({"free": i}))))
        .collect();
    let mut tx = begin_system(pool).await.unwrap();
    jobs::enqueue_many(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();

    // One batch claim holding many jobs of the key gets only two of them.
    let first = claim(pool, "w", 20, Duration::from_secs(30)).await;
    let keyed = |c: &[jobs::Claimed]| c.iter().filter(|c| c.job.concurrency_key.is_some()).count();
    assert_eq!((keyed(&first), first.len()), (2, 5));
    assert!(
        claim(pool, "w", 20, Duration::from_secs(30))
            .await
            .is_empty()
    );
    // Finishing one frees one place.
    let done = first
        .iter()
        .find(|c| c.job.concurrency_key.is_some())
        .unwrap();
    repo::complete(pool, &[(done.job.id, done.lease_token, None)])
        .await
        .unwrap();
    assert_eq!(
        keyed(&claim(pool, "w", 20, Duration::from_secs(30)).await),
        1
    );

    // Racing claimers never exceed the limit either.
    let mut tx = begin_system(pool).await.unwrap();
    let more: Vec<NewJob> = (0..20)
        .map(|i| NewJob::new("test.noop", json!({"r": i})).concurrency("agent-8", 3))
        .collect();
    jobs::enqueue_many(&mut tx, &more).await.unwrap();
    tx.commit().await.unwrap();
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                claim(&pool, &format!("racer-{i}"), 20, Duration::from_secs(30))
                    .await
                    .len()
            })
        })
        .collect();
    let mut total = 0;
    for r in racers {
        total += r.await.unwrap();
    }
    assert_eq!(total, 3);

    // Bad limits are refused.
    let mut tx = begin_system(pool).await.unwrap();
    let err = jobs::enqueue(
        &mut tx,
        &NewJob::new("test.noop", json!({})).concurrency("k", 0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.details()[0].field, "concurrency_limit");
    assert_queue_matches_jobs(pool).await;
}

async fn new_org(pool: &PgPool) -> OrgId {
    let org = OrgId::generate();
    let mut tx = begin_org(pool, org).await.unwrap();
    sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, $2, 'Jobs')")
        .bind(org)
        .bind(format!("jobs-{}", &org.to_string()[..8]))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    org
}

/// Event types recorded for one job, in log order.
fn types_for(events: &[Event], job: JobId) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.payload["job_id"] == json!(job))
        .map(|e| e.event_type.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizations_job_changes_are_events_in_its_log_in_order() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let org = new_org(pool).await;
    let bus = MemoryEventBus::new();
    let mut live = bus.subscribe_org(org).await.unwrap();
    let recovers = enqueue(
        pool,
        Flaky { fail_times: 1 }
            .to_new_job()
            .unwrap()
            .organization(org),
    )
    .await;
    let dies = enqueue(
        pool,
        Flaky { fail_times: 9 }
            .to_new_job()
            .unwrap()
            .max_attempts(1)
            .organization(org),
    )
    .await;
    let system = enqueue(pool, Typed { count: 1 }.to_new_job().unwrap()).await;
    let registry = Registry::new().register::<Flaky>().register::<Typed>();
    let (shutdown, handle) = spawn_worker(pool, registry, fast("w-events"));
    wait_for_state(pool, recovers, JobState::Completed).await;
    wait_for_state(pool, dies, JobState::Dead).await;
    wait_for_state(pool, system, JobState::Completed).await;
    shutdown.cancel();
    handle.await.unwrap();

    let all = CompiledFilter::new(EventFilter::default()).unwrap();
    assert!(
        events::replay(pool, org, &all, 0, None, 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing reaches the log before the forwarder runs"
    );
    let mut forwarded = 0;
    loop {
        let n = job_events::forward_once(pool, &bus, 3).await.unwrap();
        if n == 0 {
            break;
        }
        forwarded += n;
    }
    let log = events::replay(pool, org, &all, 0, None, 100).await.unwrap();
    assert_eq!(forwarded, log.len());
    assert_eq!(
        types_for(&log, recovers),
        [
            "job.enqueued",
            "job.started",
            "job.retry_scheduled",
            "job.started",
            "job.completed"
        ]
    );
    assert_eq!(
        types_for(&log, dies),
        ["job.enqueued", "job.started", "job.dead_lettered"]
    );
    assert!(
        types_for(&log, system).is_empty(),
        "system jobs stay out of tenant logs"
    );
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as i64).collect::<Vec<_>>());
    let retry = log
        .iter()
        .find(|e| e.event_type == "job.retry_scheduled")
        .unwrap();
    assert_eq!(retry.payload["error"]["error"], "attempt 1 failed");
    assert_eq!(retry.payload["previous_state"], "running");
    assert_eq!(retry.payload["kind"], "test.flaky");
    assert_eq!(
        retry.actor.name, "w-events",
        "the worker holding the lease acted"
    );
    let dead = log
        .iter()
        .find(|e| e.event_type == "job.dead_lettered")
        .unwrap();
    assert_eq!(dead.payload["attempts"], 1);
    // Published too, in order.
    for expected in &log {
        match live.rx.recv().await.unwrap() {
            Delivery::Item(got) => assert_eq!(got.seq, expected.seq),
            Delivery::Resync => panic!("unexpected resync"),
        }
    }
    // The outbox is empty: a second forwarder has nothing to do.
    assert_eq!(job_events::forward_once(pool, &bus, 10).await.unwrap(), 0);
    assert_queue_matches_jobs(pool).await;
}

/// An outbox row as the chat trigger writes it: no notification follows.
async fn outbox_row(pool: &PgPool, org: OrgId, n: i64) {
    let mut tx = begin_system(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO event_outbox (organization_id, event_type, actor_type, actor_id, actor_name, payload)
         VALUES ($1, 'chat.message_sent', 'h5_user', $1, 'h5 user', jsonb_build_object('n', $2::bigint))",
    )
    .bind(org)
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_that_just_moved_events_looks_again_soon_without_a_notification() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let org = new_org(pool).await;
    let all = CompiledFilter::new(EventFilter::default()).unwrap();
    // The payload numbers logged so far, once there are `count` of them.
    let logged = |count: usize| {
        let (pool, all) = (pool.clone(), all.clone());
        async move {
            let log = events::replay(&pool, org, &all, 0, None, 100)
                .await
                .unwrap();
            (log.len() == count).then(|| {
                log.iter()
                    .map(|e| e.payload["n"].as_i64().unwrap())
                    .collect::<Vec<_>>()
            })
        }
    };
    outbox_row(pool, org, 1).await;
    // The fallback poll is an hour away: only the follow-up (every 50 ms for a poll after
    // the first row moved) can bring the second row, whenever it comes.
    let shutdown = CancellationToken::new();
    let forwarder = tokio::spawn(job_events::forward(
        pool.clone(),
        std::sync::Arc::new(MemoryEventBus::new()),
        Duration::from_secs(3600),
        shutdown.clone(),
    ));
    let first = eventually(WAIT, "the first event in the log", || logged(1)).await;
    assert_eq!(first, [1]);
    // A gap of several follow-ups with nothing to move does not end the following.
    tokio::time::sleep(job_events::FOLLOW_UP * 6).await;
    outbox_row(pool, org, 2).await;
    let both = eventually(WAIT, "the second event in the log", || logged(2)).await;
    assert_eq!(both, [1, 2]);
    shutdown.cancel();
    forwarder.await.unwrap().unwrap();
}
