//! `mc-connector --simulate` against the real API and relay (Postgres, Redis, WebSockets):
//! it registers and saves its identity, links its agents, heartbeats with real metrics,
//! serves `chat.send` with streamed `chat` events, tunnels agents' REST calls from its
//! loopback proxy, and reconnects after the network drops and after the relay restarts.

mod common;

use common::{connector_config, reply_of, run_api};
use mc_connector::backend::Backend;
use mc_connector::backend::simulated::{Simulated, reply_for};
use mc_domain::gateways::router::{CallOutcome, GatewayRouter};
use mc_domain::redis::RedisHandle;
use mc_testkit::api::TestApi;
use mc_testkit::{Spawned, TcpProxy, eventually, spawn_service_on};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

async fn relay_on(api: &TestApi, addr: SocketAddr) -> Spawned {
    let config = api.relay_config();
    let relay = spawn_service_on(addr, move |l, s| mc_relay::run(config, l, s)).await;
    relay.wait_ready().await;
    relay
}

async fn wait_connected(running: &mut mc_connector::Running, up: bool) {
    tokio::time::timeout(WAIT, running.connected.wait_for(|c| *c == up))
        .await
        .unwrap_or_else(|_| panic!("connector never became connected={up}"))
        .unwrap();
}

/// Sends chat.send through any relay and collects the streamed reply.
async fn chat(
    router: &GatewayRouter,
    gateway: mc_domain::ids::GatewayId,
    session: &str,
    message: &str,
    key: &str,
) -> (Value, String) {
    let mut events = router.subscribe_events(gateway).await.unwrap();
    let ack = router
        .call(
            gateway,
            "chat.send",
            json!({"sessionKey": session, "message": message, "idempotencyKey": key}),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let CallOutcome::Ok { payload: ack } = ack else {
        panic!("chat.send failed: {ack:?}")
    };
    let run = ack["runId"].as_str().unwrap().to_owned();
    let reply = reply_of(&mut events, &run, session, WAIT).await;
    assert_eq!(
        reply.text,
        reply.deltas.concat(),
        "the final text is the deltas joined"
    );
    (ack, reply.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_gateway_registers_chats_tunnels_and_survives_relay_loss() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("connector-org").await;
    let token = api.registration_token(&admin).await;
    let relay = relay_on(&api, "127.0.0.1:0".parse().unwrap()).await;
    let relay_addr = relay.addr;
    // The connector reaches the relay through a proxy the test can cut.
    let network = TcpProxy::start(relay_addr.to_string()).await;
    let scratch = mc_testkit::ScratchDir::new("mc-connector");
    let dir = scratch.path();
    let config = connector_config(
        &api,
        &admin,
        &token,
        &format!("ws://{}", network.host_port()),
        dir,
    );
    let shutdown = CancellationToken::new();
    let backend = Backend::Simulated(Arc::new(Simulated::new(2)));
    let mut running = mc_connector::start(config.clone(), backend.clone(), shutdown.clone())
        .await
        .unwrap();
    wait_connected(&mut running, true).await;
    let gateway = running.gateway_id.clone();
    assert!(dir.join("identity.json").exists(), "the identity is saved");

    // Its agents are linked and online; heartbeats carry real process figures.
    let agents = eventually(WAIT, "two linked agents", || async {
        let page = api
            .get(
                &admin.token,
                &format!("/api/v1/agents?gateway_id={gateway}&status=online"),
            )
            .await
            .expect(200);
        let items = page.body["items"].as_array().unwrap().clone();
        (items.len() == 2).then_some(items)
    })
    .await;
    let sim1 = agents
        .iter()
        .find(|a| a["openclaw_agent_id"] == "sim-1")
        .unwrap()
        .clone();
    let sample = eventually(WAIT, "a heartbeat sample", || async {
        let m = api
            .get(&admin.token, &format!("/api/v1/gateways/{gateway}/metrics"))
            .await
            .expect(200);
        m.body.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert!(sample["memory_mb"].as_f64().unwrap() > 1.0, "{sample}");
    assert_eq!(sample["agent_count"], 2);

    // chat.send from the control plane, answered by the agent named in the session key.
    let caller = GatewayRouter::start(
        Some(RedisHandle::new(&api.redis).unwrap()),
        format!("test-caller-{}", uuid::Uuid::new_v4()),
    )
    .await
    .unwrap();
    let gw_id = gateway.parse().unwrap();
    let session = sim1["session_key"].as_str().unwrap().to_owned();
    let (ack, reply) = chat(&caller, gw_id, &session, "status report", "idem-1").await;
    assert_eq!(ack["status"], "started");
    assert_eq!(reply, reply_for("Simulated agent 1", "status report"));

    // An agent's REST call through the loopback proxy, as that agent.
    let board = api
        .create(
            &admin.token,
            "/api/v1/boards",
            json!({"name": "Office"}),
            "id",
        )
        .await;
    api.patch(
        &admin.token,
        &format!("/api/v1/agents/{}", sim1["id"].as_str().unwrap()),
        json!({"board_id": board}),
    )
    .await
    .expect(200);
    let key = api
        .create(
            &admin.token,
            "/api/v1/api-keys",
            json!({"name": "sim-1", "role": "developer", "agent_id": sim1["id"]}),
            "secret",
        )
        .await;
    let http = reqwest::Client::new();
    let proxy = format!("http://{}", running.proxy_addr);
    let created = http
        .post(format!("{proxy}/api/v1/agent/boards/{board}/tasks"))
        .bearer_auth(&key)
        .json(&json!({"title": "Filed from the office"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let task: Value = created.json().await.unwrap();
    assert_eq!(task["created_by_type"], "agent");
    let refused = http
        .get(format!("{proxy}/api/v1/boards"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "only the agent API is tunnelled");
    let not_json = http
        .post(format!("{proxy}/api/v1/agent/boards/{board}/tasks"))
        .bearer_auth(&key)
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    // The network drops: the connector notices, the proxy says so, and it comes back.
    network.cut();
    wait_connected(&mut running, false).await;
    let down = http
        .get(format!("{proxy}/api/v1/agent/boards"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    network.restore();
    wait_connected(&mut running, true).await;

    // The relay restarts (a new process on the same port): the connector reconnects and
    // chat works again.
    relay.stop().await.unwrap();
    wait_connected(&mut running, false).await;
    let relay = relay_on(&api, relay_addr).await;
    wait_connected(&mut running, true).await;
    // One open connection record: the older ones are closed, whatever ended them.
    let records = api
        .get(
            &admin.token,
            &format!("/api/v1/gateways/{gateway}/connections"),
        )
        .await
        .expect(200);
    let open = records.body["relay_connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["disconnected_at"].is_null())
        .count();
    assert_eq!(open, 1, "{}", records.body);
    let (_, again) = chat(&caller, gw_id, &session, "still there?", "idem-2").await;
    assert_eq!(again, reply_for("Simulated agent 1", "still there?"));
    let ok = http
        .get(format!("{proxy}/api/v1/agent/boards"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // A restarted connector reuses its saved identity instead of registering again.
    shutdown.cancel();
    running.done.await.unwrap().unwrap();
    let mut no_token = config.clone();
    no_token.registration_token = None;
    let shutdown = CancellationToken::new();
    let mut second = mc_connector::start(no_token, backend, shutdown.clone())
        .await
        .unwrap();
    assert_eq!(second.gateway_id, gateway);
    wait_connected(&mut second, true).await;
    let gateways = api.get(&admin.token, "/api/v1/gateways").await.expect(200);
    assert_eq!(gateways.body["items"].as_array().unwrap().len(), 1);
    shutdown.cancel();
    second.done.await.unwrap().unwrap();
    relay.stop().await.unwrap();
}
