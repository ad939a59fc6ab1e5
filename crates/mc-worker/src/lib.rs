//! `mc-worker`: durable job worker; its listener serves health and metrics.

use anyhow::Context;
use axum::Router;
use mc_domain::config::{ServiceConfig, WorkerConfig};
use mc_domain::db::begin_system;
use mc_domain::events::outbox;
use mc_domain::events::{EventBus, RedisEventBus};
use mc_domain::gateways::sweep::OfflineSweep;
use mc_domain::infra::Infra;
use mc_domain::jobs::schedules::{self, ScheduleSpec, Timing};
use mc_domain::jobs::worker::{Worker, WorkerOptions};
use mc_domain::jobs::{Job, JobPriority, Registry, system, tenant};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The HTTP application of this service.
pub fn router(infra: &Infra) -> Router {
    Router::new()
        .merge(mc_web::ops::routes(infra.probe.clone()))
        .layer(axum::middleware::from_fn(mc_web::metrics::track_http))
}

/// Job kinds this worker runs.
pub fn registry() -> Registry {
    tenant::register(system::register(Registry::new())).register::<OfflineSweep>()
}

/// Mission Control's own recurring jobs.
pub fn system_schedules(config: &WorkerConfig) -> Vec<ScheduleSpec> {
    let spec = |name: &str, kind: &str, payload: serde_json::Value, cron: &str| ScheduleSpec {
        name: name.to_owned(),
        kind: kind.to_owned(),
        payload,
        priority: JobPriority::Low,
        timing: Timing::Cron(cron.to_owned()),
        organization_id: None,
    };
    vec![
        spec(
            "system.token_cleanup",
            system::TokenCleanup::KIND,
            serde_json::json!(null),
            "17 * * * *",
        ),
        spec(
            "system.org_purge",
            system::OrgPurge::KIND,
            serde_json::json!(null),
            "*/10 * * * *",
        ),
        // Every 15 s, so a gateway is marked offline within threshold + 15 s.
        ScheduleSpec {
            priority: JobPriority::High,
            ..spec(
                "system.gateway_offline_sweep",
                OfflineSweep::KIND,
                serde_json::json!({ "threshold_seconds": config.gateway_offline_threshold.as_secs() }),
                "*/15 * * * * *",
            )
        },
        spec(
            "system.expire_suggestions",
            system::ExpireSuggestions::KIND,
            serde_json::json!(null),
            "*/5 * * * *",
        ),
        spec(
            "system.event_partitions",
            system::EventPartitions::KIND,
            serde_json::json!({ "ttl_days": config.event_ttl_days }),
            "23 3 * * *",
        ),
    ]
}

async fn install_schedules(infra: &Infra, config: &WorkerConfig) -> anyhow::Result<()> {
    let mut tx = begin_system(&infra.pool).await?;
    for spec in system_schedules(config) {
        schedules::upsert_system(&mut tx, &spec).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs the service on `listener` until `shutdown` fires.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(WorkerConfig::SERVICE, &config.common)
        .await
        .context("connecting to Postgres and Redis")?;
    install_schedules(&infra, &config)
        .await
        .context("installing the system schedules")?;
    let options = WorkerOptions {
        concurrency: config.concurrency,
        queues: config.queues.clone(),
        poll_interval: config.poll_interval,
        drain_timeout: config.common.shutdown_grace,
        ..WorkerOptions::new(mc_domain::infra::instance_name("worker"))
    };
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(infra.redis.clone()));
    let forwarder = tokio::spawn(outbox::forward(
        infra.pool.clone(),
        bus.clone(),
        config.poll_interval,
        shutdown.clone(),
    ));
    let worker = Worker::new(infra.pool.clone(), registry(), options).with_bus(bus);
    let jobs = tokio::spawn(worker.run(shutdown.clone()));
    let served = mc_web::serve::serve(
        listener,
        router(&infra),
        shutdown.clone(),
        config.common.shutdown_grace,
    )
    .await
    .context("serving HTTP");
    shutdown.cancel();
    jobs.await
        .context("the job runner panicked")?
        .context("the job runner failed")?;
    forwarder
        .await
        .context("the job event forwarder panicked")?
        .context("the job event forwarder failed")?;
    served
}
