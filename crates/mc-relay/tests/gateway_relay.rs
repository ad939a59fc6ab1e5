//! `WS /ws/gateway/{id}/relay` against real Postgres and Redis: authentication, calls
//! routed through Redis to whichever instance holds the gateway, answers and events back,
//! replacement by a newer socket on another instance, timeouts, offline gateways and bad
//! frames.

mod common;

use common::run_api;
use mc_domain::fanout::Delivery;
use mc_domain::gateways::router::{CallOutcome, Envelope, GatewayRouter};
use mc_domain::ids::GatewayId;
use mc_domain::redis::RedisHandle;
use mc_testkit::api::{Session, TestApi};
use mc_testkit::ws::WsClient;
use mc_testkit::{Spawned, spawn_service};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Fleet {
    api: TestApi,
    admin: Session,
    gateway: String,
    relay_token: String,
}

impl Fleet {
    async fn start() -> Self {
        let api = TestApi::start(run_api).await;
        let admin = api.org_admin("relay-fleet").await;
        let token = api.registration_token(&admin).await;
        let registered = api
            .post(
                None,
                "/api/v1/gateway-registry/register",
                json!({"organization_id": admin.org_id.unwrap(), "registration_token": token,
                       "name": "office-1"}),
            )
            .await
            .expect(200);
        Self {
            gateway: registered.body["gateway_id"].as_str().unwrap().to_owned(),
            relay_token: registered.body["relay_token"].as_str().unwrap().to_owned(),
            api,
            admin,
        }
    }

    async fn relay(&self) -> Spawned {
        let config = self.api.relay_config();
        let relay = spawn_service(move |l, s| mc_relay::run(config, l, s)).await;
        relay.wait_ready().await;
        relay
    }

    fn url(&self, relay: &Spawned) -> String {
        relay.ws_url(&format!("/ws/gateway/{}/relay", self.gateway))
    }

    /// A socket authenticated as the gateway.
    async fn connect(&self, relay: &Spawned) -> WsClient {
        let mut ws = WsClient::connect(&self.url(relay)).await;
        ws.send_json(&json!({"type": "auth", "payload": {"relay_token": self.relay_token}}))
            .await;
        let ok = ws.next_json(WAIT).await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        assert_eq!(ok["payload"]["gateway_id"], self.gateway.as_str());
        ws
    }

    async fn caller(&self) -> GatewayRouter {
        let redis = RedisHandle::new(&self.api.redis).unwrap();
        GatewayRouter::start(Some(redis), format!("test-caller-{}", uuid::Uuid::new_v4()))
            .await
            .unwrap()
    }

    fn id(&self) -> GatewayId {
        self.gateway.parse().unwrap()
    }

    async fn gateway_json(&self) -> Value {
        self.api
            .get(
                &self.admin.token,
                &format!("/api/v1/gateways/{}", self.gateway),
            )
            .await
            .expect(200)
            .body
    }
}

/// Answers the next `req` on `ws` with `payload`; returns the request frame.
async fn answer(ws: &mut WsClient, payload: Value) -> Value {
    let req = ws.next_of_type("req", WAIT).await;
    ws.send_json(&json!({"type": "res", "id": req["id"], "ok": true, "payload": payload}))
        .await;
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_frames_before_auth_are_refused() {
    let fleet = Fleet::start().await;
    let relay = fleet.relay().await;
    let mut ws = WsClient::connect(&fleet.url(&relay)).await;
    ws.send_json(&json!({"type": "req", "id": "1", "method": "health"}))
        .await;
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4001);
    assert_eq!(frames[0]["type"], "auth_error");

    let mut ws = WsClient::connect(&fleet.url(&relay)).await;
    ws.send_json(&json!({"type": "auth", "payload": {"relay_token": "gw_relay_wrong"}}))
        .await;
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4001);
    assert_eq!(frames[0]["payload"]["reason"], "invalid_token");

    // Another gateway's id with this gateway's token.
    let other = relay.ws_url(&format!("/ws/gateway/{}/relay", uuid::Uuid::now_v7()));
    let mut ws = WsClient::connect(&other).await;
    ws.send_json(&json!({"type": "auth", "payload": {"relay_token": fleet.relay_token}}))
        .await;
    assert_eq!(ws.expect_close(WAIT).await.0, 4001);

    let bad_path = relay.ws_url("/ws/gateway/not-a-uuid/relay");
    assert_eq!(WsClient::try_connect(&bad_path).await.err(), Some(400));
    assert_eq!(fleet.gateway_json().await["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_the_gateway_on_whichever_relay_holds_it() {
    let fleet = Fleet::start().await;
    let relay_a = fleet.relay().await;
    let relay_b = fleet.relay().await;
    let caller = fleet.caller().await;

    // Nobody holds the gateway yet.
    let outcome = caller
        .call(fleet.id(), "health", json!({}), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, CallOutcome::Error { code, .. } if code == "gateway_offline"),
        "{outcome:?}"
    );

    let mut on_a = fleet.connect(&relay_a).await;
    let gw = fleet.gateway_json().await;
    assert_eq!(
        gw["status"], "online",
        "a relay socket marks the gateway online"
    );
    let call = {
        let caller = caller.clone();
        let id = fleet.id();
        tokio::spawn(async move {
            caller
                .call(
                    id,
                    "chat.send",
                    json!({"sessionKey": "agent:mc-1:main", "message": "hi", "idempotencyKey": "k1"}),
                    Duration::from_secs(5),
                )
                .await
                .unwrap()
        })
    };
    let req = answer(&mut on_a, json!({"runId": "run-1", "status": "started"})).await;
    assert_eq!(req["method"], "chat.send");
    assert_eq!(req["params"]["idempotencyKey"], "k1");
    assert_eq!(
        call.await.unwrap(),
        CallOutcome::Ok {
            payload: json!({"runId": "run-1", "status": "started"})
        }
    );

    // The gateway's events reach subscribers on any instance.
    let mut events = caller.subscribe_events(fleet.id()).await.unwrap();
    on_a.send_json(&json!({"type": "event", "event": "chat", "seq": 7,
                           "payload": {"runId": "run-1", "state": "delta", "deltaText": "Hel"}}))
        .await;
    let delivered = tokio::time::timeout(WAIT, events.rx.recv())
        .await
        .unwrap()
        .unwrap();
    let Delivery::Item(envelope) = delivered else {
        panic!("unexpected resync")
    };
    let Envelope::Event { frame, .. } = envelope.as_ref() else {
        panic!("expected an event, got {envelope:?}")
    };
    assert_eq!(frame["payload"]["deltaText"], "Hel");

    // An error answer passes through with the gateway's code.
    let call = {
        let caller = caller.clone();
        let id = fleet.id();
        tokio::spawn(async move {
            caller
                .call(id, "chat.send", json!({}), Duration::from_secs(5))
                .await
                .unwrap()
        })
    };
    let req = on_a.next_of_type("req", WAIT).await;
    on_a.send_json(&json!({"type": "res", "id": req["id"], "ok": false,
                           "error": {"code": "INVALID_REQUEST", "message": "sessionKey required"}}))
        .await;
    match call.await.unwrap() {
        CallOutcome::Error { code, message, .. } => {
            assert_eq!(
                (code.as_str(), message.as_str()),
                ("INVALID_REQUEST", "sessionKey required")
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // Bad frames get error frames; the socket stays usable.
    on_a.send_text("{not json").await;
    assert_eq!(
        on_a.next_of_type("error", WAIT).await["payload"]["code"],
        "INVALID_MESSAGE"
    );
    on_a.send_json(&json!({"type": "res", "id": "nobody-asked", "ok": true}))
        .await;
    assert_eq!(
        on_a.next_of_type("error", WAIT).await["payload"]["code"],
        "UNKNOWN_REQUEST"
    );
    on_a.send_json(&json!({"type": "req", "id": "g1", "method": "teleport", "params": {}}))
        .await;
    let res = on_a.next_of_type("res", WAIT).await;
    assert_eq!(
        (res["id"].as_str(), res["ok"].as_bool()),
        (Some("g1"), Some(false))
    );
    assert_eq!(res["error"]["code"], "UNKNOWN_METHOD");
    on_a.send_json(&json!({"type": "heartbeat"})).await;
    assert_eq!(on_a.next_json(WAIT).await["type"], "heartbeat");

    // A gateway that never answers: the caller gets gateway_timeout.
    let outcome = caller
        .call(
            fleet.id(),
            "sessions.list",
            json!({}),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcome, CallOutcome::Error { code, .. } if code == "gateway_timeout"),
        "{outcome:?}"
    );
    let _ = on_a.next_of_type("req", WAIT).await;

    // A newer socket on relay B replaces the one on relay A; calls follow it.
    let mut on_b = fleet.connect(&relay_b).await;
    let (code, _) = on_a.expect_close(WAIT).await;
    assert_eq!(code, 4010);
    drop(on_a);
    let call = {
        let caller = caller.clone();
        let id = fleet.id();
        tokio::spawn(async move {
            caller
                .call(id, "agents.list", json!({}), Duration::from_secs(5))
                .await
                .unwrap()
        })
    };
    answer(&mut on_b, json!({"agents": [{"id": "main"}]})).await;
    assert!(matches!(call.await.unwrap(), CallOutcome::Ok { .. }));

    // The admin view lists the open socket on B and the closed one on A.
    let connections = fleet
        .api
        .get(
            &fleet.admin.token,
            &format!("/api/v1/gateways/{}/connections", fleet.gateway),
        )
        .await
        .expect(200);
    let rows = connections.body["relay_connections"].as_array().unwrap();
    assert!(rows[0]["disconnected_at"].is_null(), "{rows:?}");
    assert!(
        rows[0]["relay_instance"]
            .as_str()
            .unwrap()
            .starts_with("relay-")
    );
    assert!(
        rows.iter()
            .any(|r| r["close_reason"] == "replaced by a newer connection")
    );

    // An oversized frame gets a clear error and closes the socket (4008).
    let huge = "x".repeat(65_536 * 16 + 1);
    on_b.send_json(&json!({"type": "event", "event": "chat", "payload": {"text": huge}}))
        .await;
    let (code, frames) = on_b.expect_close(WAIT).await;
    assert_eq!(code, 4008);
    assert_eq!(
        frames.last().unwrap()["payload"]["code"],
        "PAYLOAD_TOO_LARGE"
    );

    // Gone: calls fail fast as offline.
    mc_testkit::eventually(WAIT, "presence cleared", || {
        let caller = caller.clone();
        let id = fleet.id();
        async move {
            let outcome = caller
                .call(id, "health", json!({}), Duration::from_millis(200))
                .await
                .unwrap();
            matches!(&outcome, CallOutcome::Error { code, .. } if code == "gateway_offline")
                .then_some(())
        }
    })
    .await;
}

/// Sends `req` from the gateway and returns the relay's `res`.
async fn gateway_call(ws: &mut WsClient, id: &str, method: &str, params: Value) -> Value {
    ws.send_json(&json!({"type": "req", "id": id, "method": method, "params": params}))
        .await;
    let res = ws.next_of_type("res", WAIT).await;
    assert_eq!(res["id"], id, "{res}");
    res
}

fn api_request(method: &str, path: &str, key: Option<&str>, body: Value) -> Value {
    let mut headers = json!({"Content-Type": "application/json"});
    if let Some(key) = key {
        headers["Authorization"] = json!(format!("Bearer {key}"));
    }
    let mut params = json!({"method": method, "path": path, "headers": headers});
    params["body"] = body;
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_link_their_agents_and_tunnel_their_rest_calls() {
    let fleet = Fleet::start().await;
    let relay = fleet.relay().await;
    let mut ws = fleet.connect(&relay).await;
    let (api, admin) = (&fleet.api, &fleet.admin);

    // The connector reports what agents.list says; new ids become agents, online.
    let res = gateway_call(
        &mut ws,
        "s1",
        "agents.sync",
        json!({"defaultId": "main", "agents": [{"id": "main", "name": "Main"},
               {"id": "research", "identity": {"name": "Researcher"}}, {"name": "no id"},
               {"id": "main", "name": "a repeat"}]}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(
        res["payload"],
        json!({"created": 2, "online": 0, "offline": 0})
    );
    let agents = api
        .get(
            &admin.token,
            &format!("/api/v1/agents?gateway_id={}", fleet.gateway),
        )
        .await
        .expect(200);
    let by_oc = |oc: &str| -> Value {
        agents.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["openclaw_agent_id"] == oc)
            .cloned()
            .unwrap()
    };
    let (main, research) = (by_oc("main"), by_oc("research"));
    assert_eq!(
        (main["status"].as_str(), main["name"].as_str()),
        (Some("online"), Some("Main"))
    );
    assert_eq!(research["name"], "Researcher");

    // Keys: main may write, research only read; a third agent is not on this gateway.
    let board = api
        .create(&admin.token, "/api/v1/boards", json!({"name": "Ops"}), "id")
        .await;
    let stranger = api
        .post(
            Some(&admin.token),
            "/api/v1/agents",
            json!({"name": "Stranger", "board_id": board}),
        )
        .await
        .expect(201)
        .body;
    let mut keys = Vec::new();
    for (agent, role) in [
        (&main, "operator"),
        (&research, "viewer"),
        (&stranger, "operator"),
    ] {
        api.patch(
            &admin.token,
            &format!("/api/v1/agents/{}", agent["id"].as_str().unwrap()),
            json!({"board_id": board}),
        )
        .await
        .expect(200);
        let key = api
            .post(
                Some(&admin.token),
                "/api/v1/api-keys",
                json!({"name": "k", "role": role, "agent_id": agent["id"]}),
            )
            .await
            .expect(201);
        keys.push(key.body["secret"].as_str().unwrap().to_owned());
    }

    // A bound agent's call goes through as that agent.
    let create = format!("/api/v1/agent/boards/{board}/tasks");
    let res = gateway_call(
        &mut ws,
        "a1",
        "api.request",
        api_request(
            "POST",
            &create,
            Some(&keys[0]),
            json!({"title": "From the office"}),
        ),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"]["status"], 201, "{res}");
    assert_eq!(res["payload"]["body"]["title"], "From the office");
    assert!(
        res["payload"]["headers"]["content-type"]
            .as_str()
            .unwrap()
            .contains("json")
    );
    let listed = gateway_call(
        &mut ws,
        "a2",
        "api.request",
        api_request("GET", "/api/v1/agent/boards", Some(&keys[0]), Value::Null),
    )
    .await;
    assert_eq!(listed["payload"]["body"][0]["id"], board.as_str());

    // The API's own role check answers through the tunnel: a viewer cannot create tasks.
    let res = gateway_call(
        &mut ws,
        "a3",
        "api.request",
        api_request("POST", &create, Some(&keys[1]), json!({"title": "Nope"})),
    )
    .await;
    assert_eq!(res["ok"], true);
    assert_eq!(res["payload"]["status"], 403, "{res}");
    assert_eq!(res["payload"]["body"]["error"]["code"], "forbidden");

    // Refused by the relay: an agent of no gateway, a console path, no key, a bad key,
    // malformed params.
    for (id, params, code) in [
        (
            "r1",
            api_request("GET", "/api/v1/agent/boards", Some(&keys[2]), Value::Null),
            "forbidden",
        ),
        (
            "r2",
            api_request("GET", "/api/v1/boards", Some(&keys[0]), Value::Null),
            "forbidden",
        ),
        (
            "r3",
            api_request("GET", "/api/v1/agent/boards", None, Value::Null),
            "unauthorized",
        ),
        (
            "r4",
            api_request(
                "GET",
                "/api/v1/agent/boards",
                Some("mc_live_bogus"),
                Value::Null,
            ),
            "unauthorized",
        ),
        ("r5", json!({"method": "GET"}), "invalid_request"),
        (
            "r6",
            api_request(
                "GET",
                "/api/v1/agent/../boards",
                Some(&keys[0]),
                Value::Null,
            ),
            "invalid_request",
        ),
    ] {
        let res = gateway_call(&mut ws, id, "api.request", params).await;
        assert_eq!(
            (res["ok"].as_bool(), res["error"]["code"].as_str()),
            (Some(false), Some(code)),
            "{res}"
        );
    }

    // An admin's sync pulls agents.list; research is gone from the gateway, so offline.
    let sync = {
        let (url, token) = (
            api.url(&format!("/api/v1/gateways/{}/sync-agents", fleet.gateway)),
            admin.token.clone(),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let req = answer(
        &mut ws,
        json!({"defaultId": "main", "agents": [{"id": "main"}]}),
    )
    .await;
    assert_eq!(req["method"], "agents.list");
    assert_eq!(
        sync.await.unwrap(),
        // Main was online already: only research's change counts.
        json!({"created": 0, "online": 0, "offline": 1})
    );
    let research_now = api
        .get(
            &admin.token,
            &format!("/api/v1/agents/{}", research["id"].as_str().unwrap()),
        )
        .await
        .expect(200);
    assert_eq!(research_now.body["status"], "offline");

    // Research is back: it comes online; an unchanged re-sync reports nothing.
    let both = json!({"agents": [{"id": "main"}, {"id": "research"}]});
    let res = gateway_call(&mut ws, "s2", "agents.sync", both.clone()).await;
    assert_eq!(
        res["payload"],
        json!({"created": 0, "online": 1, "offline": 0}),
        "{res}"
    );
    let res = gateway_call(&mut ws, "s3", "agents.sync", both).await;
    assert_eq!(
        res["payload"],
        json!({"created": 0, "online": 0, "offline": 0}),
        "{res}"
    );
}
