//! `mc-connector`: runs next to an OpenClaw gateway. Registers it with the control plane
//! (or reuses the saved identity), heartbeats with real metrics, holds the relay socket
//! with backoff, bridges control-plane calls to the gateway and its events back, and
//! serves agents a loopback HTTP proxy to the agent API. `--simulate N` replaces the
//! gateway with N scripted agents.

pub mod backend;
pub mod config;
pub mod identity;
pub mod metrics;
pub mod proxy;
pub mod relay;
pub mod rpc;

use anyhow::Context;
use backend::Backend;
use config::ConnectorConfig;
use identity::{Registry, RegistryError};
use relay::{RelayLink, RelaySupervisor};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;

/// A started connector.
#[derive(Debug)]
pub struct Running {
    /// Where the loopback proxy listens.
    pub proxy_addr: SocketAddr,
    /// The gateway id it runs as.
    pub gateway_id: String,
    /// Whether the relay socket is up.
    pub connected: watch::Receiver<bool>,
    /// Ends when the connector stops (an error if it gave up).
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the connector: identity first (fails fast if it cannot register), then the
/// heartbeat loop, the relay socket and the proxy, until `shutdown`.
pub async fn start(
    config: ConnectorConfig,
    backend: Backend,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::new(config.clone())?;
    let identity = registry
        .identity()
        .await
        .context("getting the gateway identity")?;
    let gateway_id = identity.gateway_id.clone();
    let identity = Arc::new(RwLock::new(identity));
    let listener = TcpListener::bind(config.proxy_addr)
        .await
        .with_context(|| format!("binding the agent proxy on {}", config.proxy_addr))?;
    let proxy_addr = listener.local_addr()?;
    let link = Arc::new(RelayLink::default());
    let (connected_tx, connected) = watch::channel(false);

    let proxy = {
        let shutdown = shutdown.clone();
        let app = proxy::router(link.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        })
    };
    tokio::spawn(heartbeats(
        registry.clone(),
        identity.clone(),
        backend.clone(),
        config.heartbeat_interval,
        shutdown.clone(),
    ));
    let supervisor = RelaySupervisor {
        config,
        registry,
        identity,
        backend,
        link,
        connected: connected_tx,
    };
    let done = tokio::spawn(async move {
        let result = supervisor.run(shutdown.clone()).await;
        shutdown.cancel();
        let _ = proxy.await;
        result
    });
    Ok(Running {
        proxy_addr,
        gateway_id,
        connected,
        done,
    })
}

/// Heartbeats with active sessions, memory, CPU and agent count; re-registers when the
/// control plane no longer knows the gateway.
async fn heartbeats(
    registry: Registry,
    identity: Arc<RwLock<Identity>>,
    backend: Backend,
    default_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut cpu = metrics::CpuMeter::default();
    cpu.sample();
    let mut interval = {
        let asked = identity.read().await.heartbeat_interval_seconds;
        if asked > 0 {
            Duration::from_secs(asked)
        } else {
            default_interval
        }
    };
    loop {
        let (sessions, agents) = backend.load().await;
        let figures = serde_json::json!({
            "active_sessions": sessions, "memory_mb": metrics::memory_mb(),
            "cpu_pct": cpu.sample(), "agent_count": agents,
        });
        let current = identity.read().await.clone();
        match registry.heartbeat(&current, figures).await {
            Ok(Some(asked)) if asked > 0 => interval = Duration::from_secs(asked),
            Ok(_) => {}
            Err(RegistryError::Rejected(status)) => {
                tracing::warn!(
                    status,
                    "the control plane rejected the heartbeat; registering again"
                );
                match registry.register().await {
                    Ok(fresh) => *identity.write().await = fresh,
                    Err(err) => tracing::warn!(error = %err, "registering again failed"),
                }
            }
            Err(RegistryError::Other(err)) => tracing::warn!(error = %err, "heartbeat failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

use identity::Identity;
