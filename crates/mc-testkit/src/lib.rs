//! Test support for Mission Control.
//!
//! Tests talk to the real Postgres and Redis that `scripts/test` starts (or any others
//! named by `MC_TEST_PG_ADMIN_URL` and `MC_TEST_REDIS_URL`). Each test gets its own
//! database, cloned from a migrated template, and its own Redis key prefix, so tests run
//! in parallel without seeing each other. Services start in-process on port 0.

pub mod api;
pub mod contract;
pub mod db;
pub mod proxy;
pub mod service;
pub mod sse;
pub mod ws;

pub mod netns;
pub use db::TestDb;
pub use proxy::TcpProxy;
pub use service::{Spawned, spawn_service, spawn_service_on};

use mc_domain::config::{
    ApiConfig, AuthConfig, RateLimitConfig, RelayConfig, RulesConfig, WorkerConfig,
};

use mc_domain::config::{CommonConfig, DatabaseConfig, LogFormat, RedisConfig, TelemetryConfig};
use mc_domain::secret::Secret;
use std::time::Duration;

/// Reads a required test-environment variable, explaining how to get it when missing.
pub fn test_env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| {
        panic!(
            "{key} is not set. Integration tests need the throwaway Postgres and Redis that \
             `scripts/test` starts; run `scripts/test`, or `scripts/test --env` to start them \
             and print the variables to export."
        )
    })
}

/// A Redis configuration with a key prefix no other test uses.
pub fn redis_config() -> RedisConfig {
    RedisConfig {
        url: Secret::new(test_env("MC_TEST_REDIS_URL")),
        key_prefix: format!("mc:t{}:", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    }
}

/// JWT secrets used by every test service (and the SIGTERM test's environment).
pub const TEST_JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
/// H5 JWT secret used by every test service.
pub const TEST_H5_JWT_SECRET: &str = "test-h5-jwt-secret-0123456789abcdef012345";

/// Token settings for tests: the production defaults with cheaper password hashing
/// (argon2id at 8 MiB, one pass) so suites that log in many times stay fast.
pub fn auth_config() -> AuthConfig {
    let mut auth = AuthConfig::for_tests(
        Secret::new(TEST_JWT_SECRET),
        Secret::new(TEST_H5_JWT_SECRET),
    );
    auth.password_memory_kib = 8_192;
    auth.password_iterations = 1;
    auth
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// `mc-api` configuration for tests.
pub fn api_config(common: CommonConfig) -> ApiConfig {
    ApiConfig {
        addr: any_port(),
        common,
        auth: auth_config(),
        rate_limits: RateLimitConfig::default(),
        stream_check_interval: std::time::Duration::from_secs(1),
        gateways: gateway_config(),
        proactivity: Default::default(),
        web: mc_domain::config::WebConfig {
            dir: std::path::PathBuf::from("/nonexistent/mc-web-dist"),
            relay_browser_url: String::new(),
        },
    }
}

/// Gateway settings for tests.
pub fn gateway_config() -> mc_domain::config::GatewayConfig {
    mc_domain::config::GatewayConfig {
        registration_enabled: true,
        heartbeat_interval: std::time::Duration::from_secs(30),
        relay_public_url: "ws://127.0.0.1:8001".to_owned(),
        call_timeout: std::time::Duration::from_secs(5),
        max_frames_per_second: 10_000,
    }
}

/// `mc-relay` configuration for tests.
pub fn relay_config(common: CommonConfig) -> RelayConfig {
    RelayConfig {
        addr: any_port(),
        common,
        auth: auth_config(),
        ws: mc_domain::config::WsConfig {
            check_interval: std::time::Duration::from_secs(1),
            ..Default::default()
        },
        gateways: gateway_config(),
        // Tests that tunnel `api.request` point this at their API instance.
        api_url: "http://127.0.0.1:8000".to_owned(),
        chat: Default::default(),
    }
}

/// `mc-rules` configuration for tests.
pub fn rules_config(common: CommonConfig) -> RulesConfig {
    RulesConfig {
        addr: any_port(),
        common,
        proactivity: Default::default(),
        batch_size: 256,
        // Short, so failover tests see a dead consumer's entries taken over quickly.
        reclaim_idle: std::time::Duration::from_millis(1500),
        max_deliveries: 3,
        catchup_interval: std::time::Duration::from_secs(1),
        catchup_max_age: std::time::Duration::from_secs(24 * 3600),
        cron_minutely: false,
    }
}

/// `mc-worker` configuration for tests.
pub fn worker_config(common: CommonConfig) -> WorkerConfig {
    WorkerConfig {
        addr: any_port(),
        common,
        concurrency: 4,
        queues: vec!["default".into()],
        poll_interval: std::time::Duration::from_millis(100),
        event_ttl_days: 90,
        gateway_offline_threshold: std::time::Duration::from_secs(90),
    }
}

/// Shared service settings pointing at `database` and `redis`.
pub fn common_config(database: DatabaseConfig, redis: RedisConfig) -> CommonConfig {
    CommonConfig {
        database,
        redis,
        telemetry: TelemetryConfig {
            log_format: LogFormat::Pretty,
            log_filter: "warn".to_owned(),
            otlp_endpoint: None,
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

/// An HTTP client for tests (installs the process's TLS crypto provider first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Turns on log output for a test (`RUST_LOG` decides what is shown).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Generates the operational-contract tests for one service binary:
/// `ops_service_contract!(mc_api::run, mc_testkit::api_config, "mc-api", "MC_API_ADDR");`
#[macro_export]
macro_rules! ops_service_contract {
    ($run:path, $config:path, $bin:literal, $addr_var:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn health_readiness_and_metrics_follow_the_contract() {
            $crate::contract::ops_contract(|common| {
                $crate::spawn_service(move |listener, shutdown| {
                    $run($config(common), listener, shutdown)
                })
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn refuses_to_start_on_an_unmigrated_database() {
            $crate::contract::refuses_unmigrated_database(|common| {
                $crate::spawn_service(move |listener, shutdown| {
                    $run($config(common), listener, shutdown)
                })
            })
            .await;
        }

        #[test]
        fn configuration_errors_name_every_variable() {
            $crate::contract::config_errors_are_reported(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $addr_var,
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sigterm_drains_and_exits_zero() {
            $crate::contract::sigterm_exits_cleanly(
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                $addr_var,
            )
            .await;
        }
    };
}

/// A directory of its own under the system's temp directory, removed with what is in it
/// when dropped (also when the test panics), so test runs leave nothing behind.
#[derive(Debug)]
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// A new, not yet created, directory named `{prefix}-{uuid}`.
    pub fn new(prefix: &str) -> Self {
        Self(std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4())))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
