//! `mc-rules`: the rule engine. It consumes the event stream as a member of a consumer
//! group, catches up from the event log, ticks cron triggers once per period across all
//! instances, and serves health and metrics.

use anyhow::Context;
use axum::Router;
use mc_domain::config::{RulesConfig, ServiceConfig};
use mc_domain::events::{EventBus, RedisEventBus};
use mc_domain::infra::Infra;
use mc_domain::proactivity::consumer::{ConsumerSettings, RuleConsumer};
use mc_domain::proactivity::{Engine, catchup, cron};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the catch-up scan leaves the newest events to the stream.
const CATCHUP_GRACE: Duration = Duration::from_secs(2);

/// The HTTP application of this service.
pub fn router(infra: &Infra) -> Router {
    Router::new()
        .merge(mc_web::ops::routes(infra.probe.clone()))
        .layer(axum::middleware::from_fn(mc_web::metrics::track_http))
}

/// The consumer this process runs (a fresh name per process: a restarted instance leaves
/// its old name's pending entries to be claimed like a dead consumer's).
pub fn consumer(infra: &Infra, config: &RulesConfig, engine: Engine) -> RuleConsumer {
    RuleConsumer::new(
        engine,
        infra.redis.clone(),
        mc_domain::infra::instance_name("rules"),
        ConsumerSettings {
            batch_size: config.batch_size,
            reclaim_idle: config.reclaim_idle,
            max_deliveries: config.max_deliveries,
        },
    )
}

async fn catch_up_loop(engine: Engine, config: RulesConfig, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(config.catchup_interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ages = catchup::CatchUpAges {
            grace: CATCHUP_GRACE,
            give_up_after: config.reclaim_idle
                * u32::try_from(config.max_deliveries + 1).unwrap_or(u32::MAX),
            max_age: config.catchup_max_age,
        };
        if let Err(err) = catchup::catch_up(&engine, ages).await {
            tracing::warn!(error = %err, "rule engine catch-up failed");
        }
    }
}

/// Runs the service on `listener` until `shutdown` fires.
pub async fn run(
    config: RulesConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(RulesConfig::SERVICE, &config.common)
        .await
        .context("connecting to Postgres and Redis")?;
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(infra.redis.clone()));
    // One engine (and one cache of compiled rules) for the consumer and the catch-up scan.
    let engine = Engine::new(
        infra.pool.clone(),
        bus.clone(),
        config.proactivity.suggestion_expiry,
    );
    let consumer = consumer(&infra, &config, engine.clone());
    consumer
        .ensure_group()
        .await
        .context("creating the consumer group")?;
    tracing::info!(
        consumer = consumer.name(),
        "rule engine consuming the event stream"
    );
    let tasks = [
        tokio::spawn(consumer.run(shutdown.clone())),
        tokio::spawn(catch_up_loop(engine, config.clone(), shutdown.clone())),
        tokio::spawn(cron::run_ticker(
            infra.pool.clone(),
            bus,
            config.cron_minutely,
            shutdown.clone(),
        )),
    ];
    let served = mc_web::serve::serve(
        listener,
        router(&infra),
        shutdown.clone(),
        config.common.shutdown_grace,
    )
    .await
    .context("serving HTTP");
    shutdown.cancel();
    for task in tasks {
        task.await.context("a rule engine task panicked")?;
    }
    served
}
