//! The shared `main` of every service binary: read config, start telemetry, bind,
//! run until SIGTERM or Ctrl-C, exit 0 after draining.

use mc_domain::config::{Env, ServiceConfig};
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors (distinct from runtime failures).
pub const EXIT_CONFIG: u8 = 2;

/// Reads `C` from the environment or exits with every problem listed.
pub fn load_config<C: ServiceConfig>(env: &Env) -> Result<C, ExitCode> {
    C::from_env(env).map_err(|err| {
        eprint!("{err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Builds the runtime and runs a service to completion.
///
/// `run` receives the validated config, the bound listener and a token that fires on
/// SIGTERM/SIGINT; it must return once it has drained.
pub fn run_service<C, F, Fut>(config: C, run: F) -> ExitCode
where
    C: ServiceConfig + std::fmt::Debug,
    F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(C::SERVICE)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("{}: cannot start the async runtime: {err}", C::SERVICE);
            return ExitCode::FAILURE;
        }
    };
    // Outside the runtime: the OTLP exporter owns a blocking HTTP client that must not be
    // dropped on an async thread.
    let _telemetry = crate::telemetry::init(C::SERVICE, &config.common().telemetry);
    runtime.block_on(async move {
        let addr = config.addr();
        let listener = match TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(%addr, error = %err, "cannot listen");
                eprintln!("{}: cannot listen on {addr}: {err}", C::SERVICE);
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        tracing::info!(
            service = C::SERVICE,
            addr = %listener.local_addr().map_or(addr, |a| a),
            database = %config.common().database.redacted_url(),
            redis = %config.common().redis.redacted_url(),
            "starting"
        );
        match run(config, listener, shutdown).await {
            Ok(()) => {
                tracing::info!(service = C::SERVICE, "stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(service = C::SERVICE, error = %format!("{err:#}"), "failed");
                eprintln!("{}: {err:#}", C::SERVICE);
                ExitCode::FAILURE
            }
        }
    })
}

/// Fires `token` on the first SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, draining"),
        () = terminate => tracing::info!("SIGTERM received, draining"),
    }
    token.cancel();
}
