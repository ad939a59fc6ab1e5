//! `mc-connector [--config gateway-config.yaml] [--simulate N]`.

use anyhow::Context;
use mc_connector::backend::Backend;
use mc_connector::backend::openclaw::{DeviceIdentity, OpenClawClient};
use mc_connector::backend::simulated::Simulated;
use mc_connector::config::ConnectorConfig;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: mc-connector [--config PATH] [--simulate N]\n\
  --config PATH   gateway-config.yaml (default: ./gateway-config.yaml, or MC_CONNECTOR_CONFIG)\n\
  --simulate N    stand in for a gateway with N scripted agents";

fn parse_args() -> anyhow::Result<(PathBuf, bool, Option<usize>)> {
    let mut config = std::env::var("MC_CONNECTOR_CONFIG").ok().map(PathBuf::from);
    let mut simulate = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(args.next().context(USAGE)?)),
            "--simulate" => {
                let n: usize = args.next().context(USAGE)?.parse().context(USAGE)?;
                anyhow::ensure!((1..=10_000).contains(&n), "--simulate takes 1-10000 agents");
                simulate = Some(n);
            }
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let required = config.is_some();
    Ok((
        config.unwrap_or_else(|| PathBuf::from("gateway-config.yaml")),
        required,
        simulate,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (path, required, simulate) = parse_args()?;
    let config = ConnectorConfig::load(&path, required, &|k| std::env::var(k).ok())?;
    let shutdown = CancellationToken::new();
    let backend = match simulate {
        Some(n) => Backend::Simulated(Arc::new(Simulated::new(n))),
        None => {
            let token = config.openclaw_token.clone().context(
                "openclaw.token (OPENCLAW_GATEWAY_TOKEN) is required to reach the local gateway",
            )?;
            let device = DeviceIdentity::load_or_create(&config.state_dir)?;
            Backend::OpenClaw(OpenClawClient::start(
                config.openclaw_url.clone(),
                token,
                device,
                shutdown.clone(),
            ))
        }
    };
    let running = mc_connector::start(config, backend, shutdown.clone()).await?;
    tracing::info!(gateway_id = %running.gateway_id, proxy = %running.proxy_addr, "mc-connector running");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    running.done.await.context("connector task")?
}

/// Every gateway frame is parsed into and built from small allocations; mimalloc's
/// per-thread free lists cost a fraction of glibc malloc's bin searches here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
