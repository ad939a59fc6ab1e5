//! `mc-relay`: WebSocket relay (/ws/h5/chat, /ws/gateway/{id}/relay, /ws/board/{id}/sync).

use anyhow::Context;
use axum::Router;
use mc_domain::config::{RelayConfig, ServiceConfig};
use mc_domain::infra::Infra;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The HTTP application of this service.
pub fn router(infra: &Infra) -> Router {
    Router::new()
        .merge(mc_web::ops::routes(infra.probe.clone()))
        .layer(axum::middleware::from_fn(mc_web::metrics::track_http))
}

/// Runs the service on `listener` until `shutdown` fires.
pub async fn run(
    config: RelayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(RelayConfig::SERVICE, &config.common)
        .await
        .context("connecting to Postgres and Redis")?;
    mc_web::serve::serve(
        listener,
        router(&infra),
        shutdown,
        config.common.shutdown_grace,
    )
    .await
    .context("serving HTTP")
}
