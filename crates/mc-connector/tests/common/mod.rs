//! What the connector's integration tests share: the API as a spawnable service.

use tokio_util::sync::CancellationToken;

/// `mc_api::run` in the shape `TestApi::start` takes.
pub fn run_api(
    config: mc_domain::config::ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(mc_api::run(config, listener, shutdown))
}
