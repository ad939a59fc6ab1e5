//! Helpers shared by mc-api's integration tests.
#![allow(dead_code, unused_imports)]

use mc_domain::config::ApiConfig;
pub use mc_testkit::api::{Resp, Session, TestApi};

/// How the test kit starts this crate's API.
pub fn run(
    config: ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(mc_api::run(config, listener, shutdown))
}

/// A running API with test defaults.
pub async fn start() -> TestApi {
    TestApi::start(run).await
}

/// A running API with adjusted configuration.
pub async fn start_with(adjust: impl FnOnce(&mut ApiConfig)) -> TestApi {
    TestApi::start_with(run, adjust).await
}
