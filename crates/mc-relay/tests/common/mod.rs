//! What the relay's integration tests share.

/// `mc_api::run` in the shape `TestApi::start` takes.
pub fn run_api(
    config: mc_domain::config::ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(mc_api::run(config, listener, shutdown))
}
