//! The gateway registry: registration tokens, register → heartbeat → offline →
//! re-register → deregister, relay-token rotation, the admin view, isolation and roles.

mod common;

use common::{Resp, Session, TestApi, start};
use mc_domain::events::MemoryEventBus;
use mc_domain::gateways::sweep_offline;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn new_token(api: &TestApi, admin: &Session) -> String {
    let created = api
        .post(
            Some(&admin.token),
            "/api/v1/gateway-registry/tokens",
            json!({"name": "office"}),
        )
        .await
        .expect(201);
    created.body["token"].as_str().unwrap().to_owned()
}

async fn register(api: &TestApi, org: &str, token: &str, name: &str) -> Resp {
    api.post(
        None,
        "/api/v1/gateway-registry/register",
        json!({"organization_id": org, "registration_token": token, "name": name,
               "url": "ws://127.0.0.1:18789", "workspace_root": "/opt/openclaw/workspace",
               "version": "2026.9.6", "capabilities": ["chat", "agents"]}),
    )
    .await
}

fn metrics(sessions: i64) -> Value {
    json!({"active_sessions": sessions, "memory_mb": 512.5, "cpu_pct": 12.0, "agent_count": 3})
}

async fn heartbeat(api: &TestApi, id: &str, token: &str, status: &str, sessions: i64) -> Resp {
    api.post(
        None,
        "/api/v1/gateway-registry/heartbeat",
        json!({"gateway_id": id, "relay_token": token, "status": status,
               "metrics": metrics(sessions)}),
    )
    .await
}

async fn event_types(api: &TestApi, admin: &Session) -> Vec<String> {
    let log = api
        .get(
            &admin.token,
            "/api/v1/events?event_type=gateway.*&limit=100",
        )
        .await
        .expect(200);
    let mut types: Vec<String> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    types.reverse();
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_registers_heartbeats_goes_offline_and_deregisters() {
    let api = start().await;
    let admin = api.org_admin("fleet").await;
    let org = admin.org_id.unwrap().to_string();
    let reg_token = new_token(&api, &admin).await;
    assert!(reg_token.starts_with("gw_reg_") && reg_token.len() > 40);
    let listed = api
        .get(&admin.token, "/api/v1/gateway-registry/tokens")
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(
        !listed.body.to_string().contains(&reg_token),
        "the secret is shown once"
    );

    // Bad registrations.
    assert_eq!(
        register(&api, &org, "gw_reg_wrong", "gw-1")
            .await
            .expect(401)
            .code(),
        "unauthorized"
    );
    let other = api.org_admin("fleet-other").await;
    let other_org = other.org_id.unwrap().to_string();
    register(&api, &other_org, &reg_token, "gw-1")
        .await
        .expect(401);
    register(&api, &org, &reg_token, "  ").await.expect(400);
    api.post(
        None,
        "/api/v1/gateway-registry/register",
        json!({"organization_id": org, "registration_token": reg_token, "name": "x", "metadata": {}}),
    )
    .await
    .expect(400);

    let registered = register(&api, &org, &reg_token, "gw-1").await.expect(200);
    let id = registered.body["gateway_id"].as_str().unwrap().to_owned();
    let relay = registered.body["relay_token"].as_str().unwrap().to_owned();
    assert!(relay.starts_with("gw_relay_"));
    assert_eq!(
        registered.body["relay_ws_url"],
        format!("ws://127.0.0.1:8001/ws/gateway/{id}/relay")
    );
    assert_eq!(registered.body["heartbeat_interval_seconds"], 30);
    let gw = api
        .get(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(200);
    assert_eq!(gw.body["status"], "pending");
    assert_eq!(gw.body["auto_registered"], true);
    assert_eq!(gw.body["capabilities"], json!(["chat", "agents"]));

    // Heartbeats: wrong token, bad metrics, then accepted, then too soon.
    heartbeat(&api, &id, "gw_relay_nope", "online", 1)
        .await
        .expect(401);
    api.post(
        None,
        "/api/v1/gateway-registry/heartbeat",
        json!({"gateway_id": id, "relay_token": relay, "status": "online",
               "metrics": {"active_sessions": -1, "memory_mb": 1, "cpu_pct": 1, "agent_count": 0}}),
    )
    .await
    .expect(400);
    heartbeat(&api, &id, &relay, "sleepy", 1).await.expect(400);
    let ack = heartbeat(&api, &id, &relay, "online", 2).await.expect(200);
    assert_eq!(ack.body["ok"], true);
    let flood = heartbeat(&api, &id, &relay, "online", 2).await.expect(429);
    assert!(flood.header("retry-after").is_some());
    let gw = api
        .get(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(200);
    assert_eq!(gw.body["status"], "online");
    assert_eq!(gw.body["connection_info"]["metrics"]["active_sessions"], 2);
    assert_eq!(gw.body["connection_info"]["version"], "2026.9.6");
    let history = api
        .get(&admin.token, &format!("/api/v1/gateways/{id}/metrics"))
        .await
        .expect(200);
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    assert_eq!(history.body[0]["memory_mb"], 512.5);
    let online = api
        .get(&admin.token, "/api/v1/gateways?status=online")
        .await
        .expect(200);
    assert_eq!(online.body["items"][0]["id"], id.as_str());

    // An agent on this gateway; silence past the threshold takes both offline.
    let pool = api.db.admin_pool().await;
    sqlx::query(
        "INSERT INTO agents (id, organization_id, name, gateway_id, status)
         VALUES (gen_random_uuid(), $1::uuid, 'scout', $2::uuid, 'online')",
    )
    .bind(&org)
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    let bus = MemoryEventBus::new();
    assert_eq!(
        sweep_offline(api.db.pool(), &bus, Duration::from_secs(90))
            .await
            .unwrap(),
        0,
        "a fresh heartbeat keeps it online"
    );
    sqlx::query(
        "UPDATE gateways SET last_heartbeat_at = now() - interval '91 seconds' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        sweep_offline(api.db.pool(), &bus, Duration::from_secs(90))
            .await
            .unwrap(),
        1
    );
    let gw = api
        .get(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(200);
    assert_eq!(gw.body["status"], "offline");
    let agent_status: String =
        sqlx::query_scalar("SELECT status FROM agents WHERE gateway_id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        agent_status, "offline",
        "agents go offline with their gateway"
    );
    // Back online with the next heartbeat.
    heartbeat(&api, &id, &relay, "online", 0).await.expect(200);
    assert_eq!(
        event_types(&api, &admin).await,
        [
            "gateway.registered",
            "gateway.online",
            "gateway.offline",
            "gateway.online"
        ]
    );

    // Rotation: the old token works during the grace period, not after.
    let rotated = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/gateways/{id}/rotate-relay-token"),
            json!({"grace_seconds": 300}),
        )
        .await
        .expect(200);
    let relay2 = rotated.body["relay_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    heartbeat(&api, &id, &relay, "online", 0).await.expect(200);
    let rotated = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/gateways/{id}/rotate-relay-token"),
            json!({"grace_seconds": 0}),
        )
        .await
        .expect(200);
    let relay3 = rotated.body["relay_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    heartbeat(&api, &id, &relay, "online", 0).await.expect(401);
    heartbeat(&api, &id, &relay2, "online", 0).await.expect(401);
    heartbeat(&api, &id, &relay3, "error", 0).await.expect(200);
    api.post(
        Some(&admin.token),
        &format!("/api/v1/gateways/{id}/rotate-relay-token"),
        json!({"grace_seconds": 100000}),
    )
    .await
    .expect(400);

    // Re-registering the same name reuses the gateway and replaces its relay token.
    let again = register(&api, &org, &reg_token, "gw-1").await.expect(200);
    assert_eq!(again.body["gateway_id"], id.as_str());
    let relay4 = again.body["relay_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    heartbeat(&api, &id, &relay3, "online", 0).await.expect(401);

    // Another organization sees none of it.
    api.get(&other.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(404);
    api.post(
        Some(&other.token),
        &format!("/api/v1/gateways/{id}/rotate-relay-token"),
        json!({}),
    )
    .await
    .expect(404);

    // Deregister: wrong token refused, right one removes it.
    let bad = api
        .call(
            Method::DELETE,
            "/api/v1/gateway-registry/deregister",
            None,
            Some(json!({"gateway_id": id, "relay_token": relay3})),
            &[],
        )
        .await;
    assert_eq!(bad.status, 401);
    api.call(
        Method::DELETE,
        "/api/v1/gateway-registry/deregister",
        None,
        Some(json!({"gateway_id": id, "relay_token": relay4})),
        &[],
    )
    .await
    .expect(200);
    api.get(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(404);
    assert_eq!(
        event_types(&api, &admin).await.last().map(String::as_str),
        Some("gateway.deregistered")
    );

    // A revoked registration token registers nothing.
    let token_id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    api.delete(
        &admin.token,
        &format!("/api/v1/gateway-registry/tokens/{token_id}"),
    )
    .await
    .expect(204);
    register(&api, &org, &reg_token, "gw-2").await.expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_gateways_and_viewers_read_them() {
    let api = start().await;
    let admin = api.org_admin("fleet-roles").await;
    let org = admin.org_id.unwrap().to_string();
    let token = new_token(&api, &admin).await;
    let id = register(&api, &org, &token, "gw-r").await.expect(200).body["gateway_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = api.member(&admin, "viewer").await;
    let operator = api.member(&admin, "operator").await;
    api.get(&viewer.token, "/api/v1/gateways").await.expect(200);
    api.get(&viewer.token, &format!("/api/v1/gateways/{id}/connections"))
        .await
        .expect(200);
    for s in [&viewer, &operator] {
        api.post(Some(&s.token), "/api/v1/gateway-registry/tokens", json!({}))
            .await
            .expect(403);
        api.get(&s.token, "/api/v1/gateway-registry/tokens")
            .await
            .expect(403);
        api.delete(&s.token, &format!("/api/v1/gateways/{id}"))
            .await
            .expect(403);
    }
    api.post(
        Some(&admin.token),
        "/api/v1/gateway-registry/tokens",
        json!({"expires_in_days": 0}),
    )
    .await
    .expect(400);
    api.get(&admin.token, "/api/v1/gateways/not-a-uuid")
        .await
        .expect(400);
    api.get(&admin.token, "/api/v1/gateways?status=sleepy")
        .await
        .expect(400);
    api.delete(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(204);
    api.delete(&admin.token, &format!("/api/v1/gateways/{id}"))
        .await
        .expect(404);
}
