//! Job queue benchmarks: enqueue (single and batched), no-op drain throughput, enqueue→start
//! latency at a steady rate, strict priority under load, and a SIGKILL chaos run.

use anyhow::{Context, bail};
use mc_domain::db::begin_system;
use mc_domain::jobs::worker::{Worker, WorkerOptions};
use mc_domain::jobs::{self, Job, JobContext, JobOutcome, JobPriority, NewJob, Registry};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Does nothing: measures the queue itself.
#[derive(Serialize, Deserialize)]
struct Noop;

impl Job for Noop {
    const KIND: &'static str = "bench.noop";
    async fn run(self, _ctx: JobContext) -> JobOutcome {
        Ok(None)
    }
}

/// Records its completion in the same transaction as the job's own completion.
#[derive(Serialize, Deserialize)]
struct Effect {
    n: i64,
}

impl Job for Effect {
    const KIND: &'static str = "bench.effect";
    const TIMEOUT: Duration = Duration::from_secs(2);
    const MAX_ATTEMPTS: i32 = 100;
    async fn run(self, ctx: JobContext) -> JobOutcome {
        let mut tx = ctx.pool.begin().await?;
        sqlx::query("INSERT INTO bench_effects (n) VALUES ($1)")
            .bind(self.n)
            .execute(&mut *tx)
            .await?;
        if jobs::complete_in(&mut tx, &ctx, None).await? {
            tx.commit().await?;
        }
        Ok(None)
    }
}

async fn pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .connect(url)
        .await?)
}

async fn reset(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = begin_system(pool).await?;
    sqlx::query("DELETE FROM jobs WHERE kind LIKE 'bench.%'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn count(pool: &PgPool, sql: &'static str) -> anyhow::Result<i64> {
    let mut tx = begin_system(pool).await?;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(n)
}

async fn enqueue_batched(
    pool: &PgPool,
    n: usize,
    batch: usize,
    mix: bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut left = n;
    let mut i = 0usize;
    while left > 0 {
        let size = left.min(batch);
        let jobs: Vec<NewJob> = (0..size)
            .map(|k| {
                let priority = if mix {
                    JobPriority::ALL[(i + k) % 4]
                } else {
                    JobPriority::Medium
                };
                Noop.to_new_job().expect("payload").priority(priority)
            })
            .collect();
        let mut tx = begin_system(pool).await?;
        jobs::enqueue_many(&mut tx, &jobs).await?;
        tx.commit().await?;
        left -= size;
        i += size;
    }
    Ok(started.elapsed())
}

fn worker(
    pool: &PgPool,
    concurrency: usize,
    registry: Registry,
    id: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let opts = WorkerOptions {
        concurrency,
        poll_interval: Duration::from_millis(200),
        ..WorkerOptions::new(id)
    };
    let w = Worker::new(pool.clone(), registry, opts);
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        if let Err(err) = w.run(token).await {
            eprintln!("worker failed: {err:#}");
        }
    });
    (shutdown, handle)
}

/// Waits until no bench job is pending or running. The probe reads the queue's ready and
/// lease indexes and stops at the first open job (a count of every open row every 50 ms
/// would load the database it measures).
async fn wait_drained(pool: &PgPool, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let open = count(
            pool,
            "SELECT count(*) FROM (
                 (SELECT 1 FROM job_queue q JOIN jobs j ON j.id = q.id
                  WHERE q.lease_token IS NULL AND j.kind LIKE 'bench.%'
                  ORDER BY q.queue, q.priority, q.run_at, q.id LIMIT 1)
                 UNION ALL
                 (SELECT 1 FROM job_queue q JOIN jobs j ON j.id = q.id
                  WHERE q.lease_token IS NOT NULL AND j.kind LIKE 'bench.%'
                  ORDER BY q.lease_expires_at LIMIT 1)) t",
        )
        .await?;
        if open == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            let open = count(pool, "SELECT count(*) FROM jobs WHERE kind LIKE 'bench.%' AND state IN ('pending', 'running')").await?;
            bail!("{open} jobs still open after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drains the `n` jobs waiting with one worker process's runner, 64 at a time; jobs/s.
async fn drain(pool: &PgPool, n: usize) -> anyhow::Result<f64> {
    let (stop, handle) = worker(pool, 64, Registry::new().register::<Noop>(), "bench-drain");
    let drained = wait_drained(pool, Duration::from_secs(600)).await?;
    stop.cancel();
    handle.await?;
    Ok(n as f64 / drained.as_secs_f64())
}

/// `mc-bench queue-drain <database-url> <jobs>`: only the drain, repeated `rounds` times
/// (for iterating on the queue; `queue` is the full report).
pub async fn drain_only(url: &str, n: usize, rounds: usize) -> anyhow::Result<()> {
    let pool = pool(url, 40).await?;
    for _ in 0..rounds {
        reset(&pool).await?;
        enqueue_batched(&pool, n, 1000, false).await?;
        sqlx::query("VACUUM ANALYZE jobs").execute(&pool).await.ok();
        let rate = drain(&pool, n).await?;
        println!("drain {n}: {rate:.0} jobs/s");
    }
    reset(&pool).await?;
    Ok(())
}

/// `mc-bench queue <database-url> <jobs>`: prints Markdown rows.
pub async fn run(url: &str, n: usize) -> anyhow::Result<()> {
    let pool = pool(url, 40).await?;
    reset(&pool).await?;

    // Single enqueue: one job per transaction, 8 concurrent producers.
    let singles = n / 10;
    let started = Instant::now();
    let mut producers = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        producers.push(tokio::spawn(async move {
            for _ in 0..singles / 8 {
                let mut tx = begin_system(&pool).await?;
                jobs::enqueue(&mut tx, &Noop.to_new_job()?).await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        }));
    }
    for p in producers {
        p.await??;
    }
    let single = started.elapsed();
    println!(
        "| enqueue, one job per transaction (8 producers) | {} | {:.0} jobs/s |",
        singles / 8 * 8,
        (singles / 8 * 8) as f64 / single.as_secs_f64()
    );
    reset(&pool).await?;

    let batched = enqueue_batched(&pool, n, 1000, false).await?;
    println!(
        "| enqueue, batches of 1,000 | {n} | {:.0} jobs/s |",
        n as f64 / batched.as_secs_f64()
    );

    let rate = drain(&pool, n).await?;
    println!("| drain no-op jobs (one worker, concurrency 64) | {n} | {rate:.0} jobs/s |");
    reset(&pool).await?;

    // Steady state: jobs arrive at a fixed rate while the worker runs; enqueue→start.
    let (stop, handle) = worker(
        &pool,
        64,
        Registry::new().register::<Noop>(),
        "bench-steady",
    );
    let rate = 2000u32;
    let secs = 10u32;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..(rate * secs / 100) {
        tick.tick().await;
        let jobs: Vec<NewJob> = (0..20)
            .map(|_| Noop.to_new_job().expect("payload"))
            .collect();
        let mut tx = begin_system(&pool).await?;
        jobs::enqueue_many(&mut tx, &jobs).await?;
        tx.commit().await?;
    }
    wait_drained(&pool, Duration::from_secs(120)).await?;
    stop.cancel();
    handle.await?;
    let mut tx = begin_system(&pool).await?;
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
         FROM (SELECT extract(epoch FROM started_at - enqueued_at) * 1000 AS ms FROM jobs
               WHERE kind = 'bench.noop' AND state = 'completed') t",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    println!(
        "| enqueue→start at a steady {rate} jobs/s for {secs} s (batches of 20 every 10 ms) | {} | p50 {p50:.1} ms, p99 {p99:.1} ms |",
        rate * secs
    );
    reset(&pool).await?;

    // Strict priority: all four tiers saturated at once; count lower-tier jobs that
    // started while a higher-tier job was still waiting.
    let mixed = 20_000;
    enqueue_batched(&pool, mixed, 1000, true).await?;
    let (stop, handle) = worker(
        &pool,
        64,
        Registry::new().register::<Noop>(),
        "bench-priority",
    );
    wait_drained(&pool, Duration::from_secs(300)).await?;
    stop.cancel();
    handle.await?;
    let violations = count(
        &pool,
        "WITH last AS MATERIALIZED (
             SELECT priority, max(started_at) AS at FROM jobs
             WHERE kind = 'bench.noop' GROUP BY priority),
         bound AS MATERIALIZED (
             SELECT l.priority, (SELECT max(h.at) FROM last h WHERE h.priority < l.priority) AS higher
             FROM last l)
         SELECT count(*) FROM jobs lo JOIN bound b ON b.priority = lo.priority
         WHERE lo.kind = 'bench.noop' AND lo.started_at < b.higher",
    )
    .await?;
    println!(
        "| strict priority: {mixed} jobs, four tiers enqueued together, drained at concurrency 64 | {mixed} | {violations} lower-tier starts while a higher tier waited |"
    );
    reset(&pool).await?;
    Ok(())
}

/// `mc-bench chaos-worker <database-url>`: a worker process running `bench.effect` jobs
/// until killed.
pub async fn chaos_worker(url: &str) -> anyhow::Result<()> {
    let pool = pool(url, 16).await?;
    let opts = WorkerOptions {
        concurrency: 16,
        poll_interval: Duration::from_millis(200),
        heartbeat_interval: Duration::from_millis(500),
        lease_slack: Duration::from_secs(1),
        ..WorkerOptions::new(format!("chaos-{}", std::process::id()))
    };
    Worker::new(pool, Registry::new().register::<Effect>(), opts)
        .run(CancellationToken::new())
        .await
        .context("worker")?;
    Ok(())
}

/// `mc-bench chaos-setup <database-url> <jobs>` / `chaos-check`: enqueue, then verify.
pub async fn chaos_setup(url: &str, n: i64) -> anyhow::Result<()> {
    let pool = pool(url, 4).await?;
    reset(&pool).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_effects")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE bench_effects (n bigint NOT NULL)")
        .execute(&pool)
        .await?;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| Effect { n: i }.to_new_job().expect("payload"))
        .collect();
    for chunk in jobs.chunks(1000) {
        let mut tx = begin_system(&pool).await?;
        jobs::enqueue_many(&mut tx, chunk).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Prints the chaos outcome once every job is terminal (or fails after `timeout_s`).
pub async fn chaos_check(url: &str, n: i64, fault: &str, timeout_s: u64) -> anyhow::Result<()> {
    let pool = pool(url, 4).await?;
    wait_drained(&pool, Duration::from_secs(timeout_s)).await?;
    let completed = count(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'bench.effect' AND state = 'completed'",
    )
    .await?;
    let (effects, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT n) FROM bench_effects")
            .fetch_one(&pool)
            .await?;
    let lost = n - distinct;
    let twice = effects - distinct;
    println!(
        "| chaos: {n} jobs, two worker processes, {fault} | {completed} completed | lost {lost}, completed twice {twice} |"
    );
    if lost != 0 || twice != 0 || completed != n {
        bail!("chaos run lost or duplicated work");
    }
    Ok(())
}
