//! The operational contract every binary must honour, written once and run against each:
//! `/healthz`, `/readyz` (deep, and honest during outages), `/metrics`, refusing an
//! unmigrated database, reporting configuration errors, and draining on SIGTERM.

use crate::{Spawned, TcpProxy, TestDb, common_config, eventually, redis_config};
use mc_domain::config::CommonConfig;
use mc_domain::secret::Secret;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("valid url");
    format!(
        "{}:{}",
        parsed.host_str().expect("host"),
        parsed.port().expect("explicit port")
    )
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(err) => panic!("GET {url} failed: {err}"),
    }
}

async fn readyz(client: &reqwest::Client, svc: &Spawned) -> (u16, Value) {
    let (status, body) = get(client, &svc.url("/readyz")).await;
    let json =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("readyz body is JSON: {body}"));
    (status, json)
}

/// Asserts the `/healthz`, `/readyz` and `/metrics` contract, including a Postgres and a
/// Redis outage (through proxies the test cuts and restores).
pub async fn ops_contract<F, Fut>(start: F)
where
    F: FnOnce(CommonConfig) -> Fut,
    Fut: Future<Output = Spawned>,
{
    let db = TestDb::migrated().await;
    let pg_proxy = TcpProxy::start(db.server_addr()).await;
    let mut redis = redis_config();
    let redis_target = host_port(redis.url.expose());
    let redis_proxy = TcpProxy::start(redis_target.clone()).await;
    redis.url = Secret::new(redis.url.expose().replacen(
        &redis_target,
        &redis_proxy.host_port(),
        1,
    ));
    let svc = start(common_config(
        db.config_via(Some(&pg_proxy.host_port())),
        redis,
    ))
    .await;
    let client = crate::http_client();

    let (status, body) = get(&client, &svc.url("/healthz")).await;
    assert_eq!(status, 200, "healthz: {body}");

    let (status, body) = eventually(Duration::from_secs(10), "readyz 200", || async {
        let (status, body) = readyz(&client, &svc).await;
        (status == 200).then_some((status, body))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    for check in ["postgres", "redis", "migrations"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check} in {body}");
    }

    let (status, text) = get(&client, &svc.url("/metrics")).await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|err| panic!("metrics are not Prometheus text: {err}\n{text}"));
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    assert!(
        names.contains(&"mc_http_requests_total"),
        "request counter missing from {names:?}"
    );
    assert!(
        names.contains(&"mc_ready"),
        "readiness gauge missing from {names:?}"
    );

    // Postgres becomes unreachable: not ready, naming the check; still alive.
    pg_proxy.cut();
    let body = eventually(Duration::from_secs(15), "readyz 503 (postgres)", || async {
        let (status, body) = readyz(&client, &svc).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["postgres"]["ok"], false, "{body}");
    assert!(body["checks"]["postgres"]["error"].is_string(), "{body}");
    assert_eq!(body["checks"]["redis"]["ok"], true, "{body}");
    let (status, _) = get(&client, &svc.url("/healthz")).await;
    assert_eq!(status, 200, "liveness must not depend on Postgres");

    pg_proxy.restore();
    eventually(
        Duration::from_secs(15),
        "readyz 200 after postgres returns",
        || async { (readyz(&client, &svc).await.0 == 200).then_some(()) },
    )
    .await;

    // Same for Redis.
    redis_proxy.cut();
    let body = eventually(Duration::from_secs(15), "readyz 503 (redis)", || async {
        let (status, body) = readyz(&client, &svc).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["checks"]["redis"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["postgres"]["ok"], true, "{body}");
    redis_proxy.restore();
    eventually(
        Duration::from_secs(15),
        "readyz 200 after redis returns",
        || async { (readyz(&client, &svc).await.0 == 200).then_some(()) },
    )
    .await;

    svc.stop().await.expect("service stops cleanly");
}

/// Asserts that a service refuses to start on a database whose migrations are behind,
/// and says how to fix it.
pub async fn refuses_unmigrated_database<F, Fut>(start: F)
where
    F: FnOnce(CommonConfig) -> Fut,
    Fut: Future<Output = Spawned>,
{
    let db = TestDb::empty().await;
    let svc = start(common_config(db.config(), redis_config())).await;
    let result = tokio::time::timeout(Duration::from_secs(20), svc.join())
        .await
        .expect("service gives up promptly");
    let err = result.expect_err("service must refuse an unmigrated database");
    let text = format!("{err:#}");
    assert!(text.contains("behind"), "{text}");
    assert!(text.contains("mc-api migrate"), "{text}");
}

fn base_command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The binaries read .env from the working directory; run where there is none.
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

/// Asserts that a binary started with a broken environment exits with code 2 and one
/// message naming every bad variable, without echoing secret values.
pub fn config_errors_are_reported(bin: &str, addr_var: &str) {
    let output = base_command(bin)
        .env(addr_var, "not-an-address")
        .env("REDIS_URL", "http://wrong-scheme")
        .env("DATABASE_MAX_CONNECTIONS", "lots")
        .env("LOG_FORMAT", "xml")
        .env("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "0")
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    for var in [
        addr_var,
        "DATABASE_URL",
        "REDIS_URL",
        "DATABASE_MAX_CONNECTIONS",
        "LOG_FORMAT",
        "DATABASE_ACQUIRE_TIMEOUT_SECONDS",
    ] {
        assert!(stderr.contains(var), "{var} not named in:\n{stderr}");
    }
    let count: usize = stderr
        .split(" configuration problem")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no problem count in:\n{stderr}"));
    assert!(count >= 6, "expected at least 6 problems:\n{stderr}");

    let output = base_command(bin)
        .env("DATABASE_URL", "postgres://mc_app:do-not-print-me@[broken")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("JWT_SECRET", crate::TEST_JWT_SECRET)
        .env("H5_JWT_SECRET", crate::TEST_H5_JWT_SECRET)
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        !stderr.contains("do-not-print-me"),
        "secret leaked:\n{stderr}"
    );
}

/// Runs the real binary against a migrated database, waits until it is ready, sends
/// SIGTERM and asserts it drains and exits 0 without logging secrets.
pub async fn sigterm_exits_cleanly(bin: &str, addr_var: &str) {
    let db = TestDb::migrated().await;
    let redis = redis_config();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let child = base_command(bin)
        .env(addr_var, format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db.app_url())
        .env("REDIS_URL", redis.url.expose())
        .env("REDIS_KEY_PREFIX", &redis.key_prefix)
        .env("RUST_LOG", "info")
        .env("JWT_SECRET", crate::TEST_JWT_SECRET)
        .env("H5_JWT_SECRET", crate::TEST_H5_JWT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    // Killed if the test fails before the binary exits on its own.
    let mut child = KillOnDrop(Some(child));
    let client = crate::http_client();
    let url = format!("http://127.0.0.1:{port}/readyz");
    eventually(Duration::from_secs(30), "binary ready", || async {
        let ok = client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        ok.then_some(())
    })
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        loop {
            if child.try_wait().expect("wait").is_some() {
                return child.take().wait_with_output().expect("output");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "binary did not exit within 20s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join waiter");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "exit status after SIGTERM; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("SIGTERM received"), "{stdout}");
    assert!(stdout.contains("stopped cleanly"), "{stdout}");
    // Logs are JSON lines, and the database password never appears in them.
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    let password = url::Url::parse(db.app_url())
        .expect("url")
        .password()
        .map(str::to_owned)
        .expect("app url has a password");
    assert!(
        !stdout.contains(&format!(":{password}@")),
        "password in logs"
    );
}

/// A child process that is killed when the guard is dropped without being taken (a test
/// that fails half-way leaves no process behind).
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    /// The child, no longer killed on drop.
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("child already taken")
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("child already taken")
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("child already taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
