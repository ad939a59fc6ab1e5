//! SQL of the job queue. Every function takes an executor; the worker and admin tooling
//! call them inside `begin_system` transactions (jobs span tenants).
//!
//! `jobs` is the record, `job_queue` what dequeue, leases and concurrency limits read
//! (migration 0013). Every statement here that changes a job's state keeps the two in step
//! in the same statement: a queue row exists iff the job is pending or running, and holds
//! its lease iff it is running.

use super::model::{Claimed, Job, JobPriority, JobState, NewJob, backoff};
use crate::error::{Error, Result};
use crate::ids::{JobId, OrgId};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

const COLUMNS: &str = "id, organization_id, kind, queue, priority, payload, state, run_at, attempts, \
     max_attempts, timeout_ms, idempotency_key, concurrency_key, concurrency_limit, lease_holder, \
     lease_expires_at, errors, result, enqueued_at, started_at, finished_at";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: JobId,
    organization_id: Option<OrgId>,
    kind: String,
    queue: String,
    priority: i16,
    payload: serde_json::Value,
    state: JobState,
    run_at: DateTime<Utc>,
    attempts: i32,
    max_attempts: i32,
    timeout_ms: i32,
    idempotency_key: Option<String>,
    concurrency_key: Option<String>,
    concurrency_limit: Option<i32>,
    lease_holder: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    errors: serde_json::Value,
    result: Option<serde_json::Value>,
    enqueued_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: r.id,
            organization_id: r.organization_id,
            kind: r.kind,
            queue: r.queue,
            priority: JobPriority::from_rank(r.priority),
            payload: r.payload,
            state: r.state,
            run_at: r.run_at,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            timeout_ms: r.timeout_ms,
            idempotency_key: r.idempotency_key,
            concurrency_key: r.concurrency_key,
            concurrency_limit: r.concurrency_limit,
            lease_holder: r.lease_holder,
            lease_expires_at: r.lease_expires_at,
            errors: r.errors,
            result: r.result,
            enqueued_at: r.enqueued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// Puts the jobs of a `FROM` clause (rows of `jobs`) in the queue.
const QUEUE_INSERT: &str = "INSERT INTO job_queue (id, organization_id, queue, priority, run_at,
                                                   concurrency_key, concurrency_limit, timeout_ms)
     SELECT id, organization_id, queue, priority, run_at, concurrency_key, concurrency_limit,
            timeout_ms";

fn timeout_ms(job: &NewJob) -> Result<i32> {
    let ms = job.timeout.as_millis();
    if !(100..=86_400_000).contains(&ms) {
        return Err(Error::invalid_field(
            "timeout",
            "must be between 100 ms and 24 h",
        ));
    }
    Ok(i32::try_from(ms).unwrap_or(i32::MAX))
}

/// Enqueues one job; with an idempotency key that already exists, returns the existing
/// job instead (`false`).
pub async fn insert(conn: &mut PgConnection, job: &NewJob) -> Result<(Job, bool)> {
    let sql = format!(
        "WITH j AS (
             INSERT INTO jobs (id, organization_id, kind, queue, priority, payload, run_at,
                               max_attempts, timeout_ms, idempotency_key, concurrency_key,
                               concurrency_limit)
             VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $8, $9, $10, $11, $12)
             ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING *
         ), queued AS ({QUEUE_INSERT} FROM j)
         SELECT {COLUMNS} FROM j"
    );
    let inserted: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(JobId::generate())
        .bind(job.organization_id)
        .bind(&job.kind)
        .bind(&job.queue)
        .bind(job.priority.rank())
        .bind(&job.payload)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .bind(timeout_ms(job)?)
        .bind(&job.idempotency_key)
        .bind(job.concurrency.as_ref().map(|(k, _)| k.as_str()))
        .bind(job.concurrency.as_ref().map(|(_, l)| *l))
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = inserted {
        return Ok((row.into(), true));
    }
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND idempotency_key = $2");
    let existing: JobRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&job.kind)
        .bind(&job.idempotency_key)
        .fetch_one(&mut *conn)
        .await?;
    Ok((existing.into(), false))
}

/// Enqueues many jobs in one statement; duplicates by idempotency key are skipped.
/// Returns how many were inserted.
pub async fn insert_many(conn: &mut PgConnection, jobs: &[NewJob]) -> Result<u64> {
    let mut ids = Vec::with_capacity(jobs.len());
    let mut orgs = Vec::with_capacity(jobs.len());
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut queues = Vec::with_capacity(jobs.len());
    let mut priorities = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut run_ats = Vec::with_capacity(jobs.len());
    let mut max_attempts = Vec::with_capacity(jobs.len());
    let mut timeouts = Vec::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    let mut groups = Vec::with_capacity(jobs.len());
    let mut limits = Vec::with_capacity(jobs.len());
    let now = Utc::now();
    for job in jobs {
        ids.push(JobId::generate().0);
        orgs.push(job.organization_id.map(|o| o.0));
        kinds.push(job.kind.clone());
        queues.push(job.queue.clone());
        priorities.push(job.priority.rank());
        payloads.push(job.payload.clone());
        run_ats.push(job.run_at.unwrap_or(now));
        max_attempts.push(job.max_attempts);
        timeouts.push(timeout_ms(job)?);
        keys.push(job.idempotency_key.clone());
        groups.push(job.concurrency.as_ref().map(|(k, _)| k.clone()));
        limits.push(job.concurrency.as_ref().map(|(_, l)| *l));
    }
    let sql = format!(
        "WITH j AS (
             INSERT INTO jobs (id, organization_id, kind, queue, priority, payload, run_at,
                               max_attempts, timeout_ms, idempotency_key, concurrency_key,
                               concurrency_limit)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                                  $5::smallint[], $6::jsonb[], $7::timestamptz[], $8::int[],
                                  $9::int[], $10::text[], $11::text[], $12::int[])
             ON CONFLICT (kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING *
         ), queued AS ({QUEUE_INSERT} FROM j)
         SELECT count(*) FROM j"
    );
    let inserted: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(orgs)
        .bind(kinds)
        .bind(queues)
        .bind(priorities)
        .bind(payloads)
        .bind(run_ats)
        .bind(max_attempts)
        .bind(timeouts)
        .bind(keys)
        .bind(groups)
        .bind(limits)
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

/// Claims up to `limit` runnable jobs of `queues`, strictly by priority then `run_at`,
/// skipping rows other workers are claiming. Each gets a fresh lease of its own timeout
/// plus `lease_slack`.
pub async fn claim(
    conn: &mut PgConnection,
    worker: &str,
    queues: &[String],
    limit: i64,
    lease_slack: std::time::Duration,
) -> Result<Vec<Claimed>> {
    // One ordered index scan per queue (`queue = ANY(...)` would sort every pending row);
    // priority is strict within a queue, queues are served in the order given.
    // One lease token for the whole claim: a lease is the pair (job id, token), and a job
    // claimed again gets a new token, so a stale holder still matches nothing. (A token
    // per job cost a strong-random call per row in the database.)
    let token = Uuid::new_v4();
    let mut claimed = Vec::new();
    for queue in queues {
        let left = limit - i64::try_from(claimed.len()).unwrap_or(i64::MAX);
        if left <= 0 {
            break;
        }
        claimed.extend(claim_from(conn, worker, queue, left, lease_slack, token).await?);
    }
    Ok(claimed)
}

/// The claim: runnable queue rows are picked (and locked) in an ordered scan of the
/// ready-only index and leased; their jobs are marked running by primary key. Written
/// with `= ANY(ARRAY(...))` rather than joins so the plan does not depend on row
/// estimates: a generic plan of a join hashed a sequential scan of the whole table, and
/// re-planning every claim to avoid it cost more than the claim itself (hence
/// `plan_cache_mode` in [`crate::db::begin_system_generic`]).
static CLAIM_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH picked AS (
             UPDATE job_queue q
             SET lease_token = $5,
                 lease_expires_at = now() + make_interval(secs => (q.timeout_ms / 1000.0) + $4)
             WHERE q.id = ANY(ARRAY(
                 SELECT id FROM job_queue
                 WHERE lease_token IS NULL AND queue = $2 AND run_at <= now()
                   AND (concurrency_key IS NULL
                        OR (SELECT count(*) FROM job_queue r
                            WHERE r.lease_token IS NOT NULL
                              AND r.concurrency_key = job_queue.concurrency_key)
                           < concurrency_limit)
                 ORDER BY priority, run_at, id
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED))
             RETURNING q.id
         )
         UPDATE jobs j
         SET state = 'running', attempts = j.attempts + 1, lease_holder = $1,
             lease_token = $5, started_at = now(), updated_at = now(),
             lease_expires_at = now() + make_interval(secs => (j.timeout_ms / 1000.0) + $4)
         WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
         RETURNING j.lease_token, {}",
        COLUMNS
            .split(", ")
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

async fn claim_from(
    conn: &mut PgConnection,
    worker: &str,
    queue: &str,
    limit: i64,
    lease_slack: std::time::Duration,
    token: Uuid,
) -> Result<Vec<Claimed>> {
    #[derive(sqlx::FromRow)]
    struct ClaimRow {
        lease_token: Uuid,
        #[sqlx(flatten)]
        job: JobRow,
    }
    let rows: Vec<ClaimRow> = sqlx::query_as(sqlx::AssertSqlSafe(CLAIM_SQL.as_str()))
        .bind(worker)
        .bind(queue)
        .bind(limit)
        .bind(lease_slack.as_secs_f64())
        .bind(token)
        .fetch_all(&mut *conn)
        .await?;
    let mut claimed: Vec<Claimed> = rows
        .into_iter()
        .map(|r| Claimed {
            job: r.job.into(),
            lease_token: r.lease_token,
        })
        .collect();
    // UPDATE ... RETURNING does not keep the CTE's order.
    claimed.sort_by_key(|c| (c.job.priority.rank(), c.job.run_at, c.job.id.0));
    enforce_concurrency_limits(conn, &mut claimed).await?;
    Ok(claimed)
}

/// The filter in [`claim`] counts jobs already running, but one batch can hold several
/// jobs of a key, and claimers race. So, per key claimed (locks taken in key order), count
/// again under an advisory lock held to commit, and give back what exceeds the limit.
async fn enforce_concurrency_limits(
    conn: &mut PgConnection,
    claimed: &mut Vec<Claimed>,
) -> Result<()> {
    let mut keys: Vec<String> = claimed
        .iter()
        .filter_map(|c| c.job.concurrency_key.clone())
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    let mut give_back: Vec<(JobId, Uuid)> = Vec::new();
    for key in &keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('mc_jobs:' || $1, 0))")
            .bind(key)
            .execute(&mut *conn)
            .await?;
        let (running, limit): (i64, i32) = sqlx::query_as(
            "SELECT count(*), coalesce(min(concurrency_limit), 1) FROM job_queue
             WHERE lease_token IS NOT NULL AND concurrency_key = $1",
        )
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
        let excess = usize::try_from(running - i64::from(limit)).unwrap_or(0);
        // Ours are the newest claims of the key: give back the lowest-ranked of them.
        let ours: Vec<(JobId, Uuid)> = claimed
            .iter()
            .rev()
            .filter(|c| c.job.concurrency_key.as_deref() == Some(key))
            .map(|c| (c.job.id, c.lease_token))
            .take(excess)
            .collect();
        give_back.extend(ours);
    }
    if !give_back.is_empty() {
        release(&mut *conn, &give_back).await?;
        claimed.retain(|c| !give_back.contains(&(c.job.id, c.lease_token)));
    }
    Ok(())
}

/// Extends the leases still held (`(job, token)` pairs); returns the jobs whose lease is
/// no longer held (reclaimed or cancelled), whose runs should stop.
pub async fn heartbeat(
    ex: impl PgExecutor<'_>,
    held: &[(JobId, Uuid)],
    lease_slack: std::time::Duration,
) -> Result<Vec<JobId>> {
    let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = held.iter().map(|(id, t)| (id.0, *t)).unzip();
    let renewed: Vec<Uuid> = sqlx::query_scalar(
        "WITH renewed AS (
             UPDATE job_queue q
             SET lease_expires_at = now() + make_interval(secs => (q.timeout_ms / 1000.0) + $3)
             WHERE q.id = ANY($1) AND q.lease_token = ($2::uuid[])[array_position($1, q.id)]
             RETURNING q.id
         )
         UPDATE jobs j
         SET lease_expires_at = now() + make_interval(secs => (j.timeout_ms / 1000.0) + $3),
             updated_at = now()
         WHERE j.id = ANY(ARRAY(SELECT id FROM renewed))
         RETURNING j.id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(lease_slack.as_secs_f64())
    .fetch_all(ex)
    .await?;
    Ok(ids
        .into_iter()
        .filter(|id| !renewed.contains(id))
        .map(JobId)
        .collect())
}

/// A finished run to record: the job, its lease token and its result.
pub type Completion = (JobId, Uuid, Option<serde_json::Value>);

/// Completes jobs whose leases are still held; returns the ids completed. A stale worker's
/// token matches nothing, so it cannot complete a job it lost.
pub async fn complete(ex: impl PgExecutor<'_>, done: &[Completion]) -> Result<Vec<JobId>> {
    let ids: Vec<Uuid> = done.iter().map(|(id, _, _)| id.0).collect();
    let tokens: Vec<Uuid> = done.iter().map(|(_, t, _)| *t).collect();
    let results: Vec<Option<&serde_json::Value>> =
        done.iter().map(|(_, _, r)| r.as_ref()).collect();
    let ids: Vec<JobId> = sqlx::query_scalar("SELECT job_complete($1, $2, $3)")
        .bind(ids)
        .bind(tokens)
        .bind(results)
        .fetch_all(ex)
        .await?;
    Ok(ids)
}

/// What happened to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled for another attempt.
    Retrying,
    /// Out of attempts (or not retryable): dead-lettered.
    Dead,
    /// The lease was no longer held; nothing changed.
    LeaseLost,
}

/// Records a failed attempt (`attempts` is the job's count, this attempt included);
/// retries after the FR-3 backoff unless attempts are used up or `retryable` is false, in
/// which case the job is dead-lettered with its history.
pub async fn fail(
    conn: &mut PgConnection,
    id: JobId,
    token: Uuid,
    attempts: i32,
    worker: &str,
    error: &str,
    retryable: bool,
) -> Result<FailOutcome> {
    let delay = backoff(attempts).as_secs_f64();
    let row: Option<(String,)> = sqlx::query_as(
        "WITH failed AS (
             UPDATE jobs
             SET state = CASE WHEN $4 AND attempts < max_attempts THEN 'pending' ELSE 'dead' END,
                 run_at = CASE WHEN $4 AND attempts < max_attempts
                               THEN now() + make_interval(secs => $5) ELSE run_at END,
                 finished_at = CASE WHEN $4 AND attempts < max_attempts THEN NULL ELSE now() END,
                 errors = errors || jsonb_build_array(jsonb_build_object(
                     'attempt', attempts, 'error', $3::text, 'at', now(), 'worker', $2::text)),
                 lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
                 updated_at = now()
             WHERE id = $6 AND lease_token = $1 AND state = 'running'
             RETURNING id, state, run_at
         ), requeued AS (
             UPDATE job_queue q SET lease_token = NULL, lease_expires_at = NULL, run_at = f.run_at
             FROM failed f WHERE q.id = f.id AND f.state = 'pending'
         ), removed AS (
             DELETE FROM job_queue q USING failed f WHERE q.id = f.id AND f.state = 'dead'
         )
         SELECT state FROM failed",
    )
    .bind(token)
    .bind(worker)
    .bind(truncate(error))
    .bind(retryable)
    .bind(delay)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => FailOutcome::LeaseLost,
        Some((state,)) if state == "dead" => FailOutcome::Dead,
        Some(_) => FailOutcome::Retrying,
    })
}

/// Gives running jobs (`(job, token)` pairs) back to the queue (a draining worker that
/// could not finish them), without counting the attempt as failed.
pub async fn release(ex: impl PgExecutor<'_>, held: &[(JobId, Uuid)]) -> Result<u64> {
    let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = held.iter().map(|(id, t)| (id.0, *t)).unzip();
    let done = sqlx::query(
        "WITH released AS (
             UPDATE job_queue q SET lease_token = NULL, lease_expires_at = NULL, run_at = now()
             WHERE q.id = ANY($1) AND q.lease_token = ($2::uuid[])[array_position($1, q.id)]
             RETURNING q.id
         )
         UPDATE jobs j
         SET state = 'pending', attempts = greatest(j.attempts - 1, 0), run_at = now(),
             lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE j.id = ANY(ARRAY(SELECT id FROM released)) AND j.state = 'running'",
    )
    .bind(ids)
    .bind(tokens)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Returns jobs whose lease lapsed (their worker died) to the queue, or dead-letters them
/// when that was their last attempt. Returns how many were reclaimed.
pub async fn reclaim_expired(ex: impl PgExecutor<'_>) -> Result<u64> {
    // Leases being completed or renewed right now are locked: skipped, not waited for.
    let reclaimed: i64 = sqlx::query_scalar(
        "WITH lapsed AS (
             SELECT id FROM job_queue
             WHERE lease_token IS NOT NULL AND lease_expires_at < now()
             FOR UPDATE SKIP LOCKED
         ), reclaimed AS (
             UPDATE jobs j
             SET state = CASE WHEN j.attempts < j.max_attempts THEN 'pending' ELSE 'dead' END,
                 run_at = now(),
                 finished_at = CASE WHEN j.attempts < j.max_attempts THEN NULL ELSE now() END,
                 errors = j.errors || jsonb_build_array(jsonb_build_object(
                     'attempt', j.attempts,
                     'error', 'lease expired: the worker stopped heartbeating',
                     'at', now(), 'worker', j.lease_holder)),
                 lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
                 updated_at = now()
             WHERE j.id = ANY(ARRAY(SELECT id FROM lapsed)) AND j.state = 'running'
             RETURNING j.id, j.state
         ), requeued AS (
             UPDATE job_queue q SET lease_token = NULL, lease_expires_at = NULL, run_at = now()
             WHERE q.id = ANY(ARRAY(SELECT id FROM reclaimed WHERE state = 'pending'))
         ), removed AS (
             DELETE FROM job_queue q
             WHERE q.id = ANY(ARRAY(SELECT id FROM reclaimed WHERE state = 'dead'))
         )
         SELECT count(*) FROM reclaimed",
    )
    .fetch_one(ex)
    .await?;
    Ok(u64::try_from(reclaimed).unwrap_or(0))
}

/// Cancels a pending or running job; `false` when it already finished.
pub async fn cancel(ex: impl PgExecutor<'_>, id: JobId) -> Result<bool> {
    let cancelled: i64 = sqlx::query_scalar(
        "WITH cancelled AS (
             UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(),
                 lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL
             WHERE id = $1 AND state IN ('pending', 'running')
             RETURNING id
         ), removed AS (
             DELETE FROM job_queue WHERE id = ANY(ARRAY(SELECT id FROM cancelled))
         )
         SELECT count(*) FROM cancelled",
    )
    .bind(id)
    .fetch_one(ex)
    .await?;
    Ok(cancelled == 1)
}

/// Puts dead (or cancelled) jobs back in the queue with a fresh set of attempts, keeping
/// their error history. With `ids` empty, every dead job of `kind` (or all) is replayed.
pub async fn replay(ex: impl PgExecutor<'_>, ids: &[JobId], kind: Option<&str>) -> Result<u64> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
    let sql = format!(
        "WITH j AS (
             UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), finished_at = NULL,
                 updated_at = now()
             WHERE state = 'dead'
               AND (cardinality($1::uuid[]) = 0 OR id = ANY($1))
               AND ($2::text IS NULL OR kind = $2)
             RETURNING *
         ), queued AS ({QUEUE_INSERT} FROM j)
         SELECT count(*) FROM j"
    );
    let replayed: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(kind)
        .fetch_one(ex)
        .await?;
    Ok(u64::try_from(replayed).unwrap_or(0))
}

/// One job.
pub async fn get(ex: impl PgExecutor<'_>, id: JobId) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(Into::into))
}

/// Job counts by priority and state (terminal states included).
pub async fn depth(ex: impl PgExecutor<'_>) -> Result<Vec<(JobPriority, JobState, i64)>> {
    let rows: Vec<(i16, JobState, i64)> = sqlx::query_as(
        "SELECT priority, state, count(*) FROM jobs GROUP BY priority, state ORDER BY 1, 2",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(p, s, n)| (JobPriority::from_rank(p), s, n))
        .collect())
}

/// Pending jobs by priority (read from the queue, so it stays cheap however many finished
/// jobs `jobs` holds).
pub async fn pending_depth(ex: impl PgExecutor<'_>) -> Result<Vec<(JobPriority, i64)>> {
    let rows: Vec<(i16, i64)> = sqlx::query_as(
        "SELECT priority, count(*) FROM job_queue WHERE lease_token IS NULL GROUP BY priority",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(p, n)| (JobPriority::from_rank(p), n))
        .collect())
}

fn truncate(error: &str) -> String {
    error.chars().take(4000).collect()
}

/// Filters of the job list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs of this tier.
    pub priority: Option<JobPriority>,
}

/// Jobs visible to the executor's role, newest first, after `(enqueued_at, id)`.
pub async fn list(
    ex: impl PgExecutor<'_>,
    filter: &JobFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Job>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs
         WHERE ($1::text IS NULL OR state = $1)
           AND ($2::text IS NULL OR kind = $2)
           AND ($3::smallint IS NULL OR priority = $3)
           AND ($4::timestamptz IS NULL OR (enqueued_at, id) < ($4, $5))
         ORDER BY enqueued_at DESC, id DESC
         LIMIT $6"
    );
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.kind.as_deref())
        .bind(filter.priority.map(JobPriority::rank))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Puts one dead or cancelled job back in the queue with fresh attempts; `None` when it
/// is in another state.
pub async fn retry(ex: impl PgExecutor<'_>, id: JobId) -> Result<Option<Job>> {
    let sql = format!(
        "WITH j AS (
             UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), finished_at = NULL,
                 updated_at = now()
             WHERE id = $1 AND state IN ('dead', 'cancelled')
             RETURNING *
         ), queued AS ({QUEUE_INSERT} FROM j)
         SELECT {COLUMNS} FROM j"
    );
    let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(Into::into))
}
