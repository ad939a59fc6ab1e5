//! `/api/v1/agents`: an admin creates, binds, changes and deletes agents; other roles read;
//! another organization's boards and gateways cannot be referenced; an agent's API key is
//! recorded on it; syncing with a gateway that is not connected fails clearly.

mod common;

use common::{Session, TestApi, start};
use serde_json::{Value, json};

async fn gateway(api: &TestApi, admin: &Session, name: &str) -> String {
    let token = api.registration_token(admin).await;
    api.post(
        None,
        "/api/v1/gateway-registry/register",
        json!({"organization_id": admin.org_id.unwrap(), "registration_token": token, "name": name}),
    )
    .await
    .expect(200)
    .body["gateway_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn board(api: &TestApi, admin: &Session, name: &str) -> String {
    api.create(&admin.token, "/api/v1/boards", json!({"name": name}), "id")
        .await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_agents_bound_to_gateways_and_others_read_them() {
    let api = start().await;
    let admin = api.org_admin("agents-org").await;
    let gw = gateway(&api, &admin, "office").await;
    let board_id = board(&api, &admin, "Launch").await;

    let created = api
        .post(
            Some(&admin.token),
            "/api/v1/agents",
            json!({"name": "Researcher", "gateway_id": gw, "openclaw_agent_id": "research",
                   "board_id": board_id, "capabilities": ["search", "summarise"]}),
        )
        .await
        .expect(201);
    let agent = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["status"], "offline");
    assert_eq!(
        created.body["session_key"],
        format!("agent:research:mc-{agent}").as_str()
    );
    assert_eq!(created.body["capabilities"], json!(["search", "summarise"]));

    // The same OpenClaw id twice on one gateway is a conflict; without a gateway it is
    // meaningless.
    let dup = api
        .post(
            Some(&admin.token),
            "/api/v1/agents",
            json!({"name": "Again", "gateway_id": gw, "openclaw_agent_id": "research"}),
        )
        .await
        .expect(409);
    assert_eq!(dup.code(), "conflict");
    api.post(
        Some(&admin.token),
        "/api/v1/agents",
        json!({"name": "Loose", "openclaw_agent_id": "x"}),
    )
    .await
    .expect(400);
    api.post(
        Some(&admin.token),
        "/api/v1/agents",
        json!({"name": "Bad key", "session_key": "main session"}),
    )
    .await
    .expect(400);
    api.post(
        Some(&admin.token),
        "/api/v1/agents",
        json!({"name": "Odd", "colour": "blue"}),
    )
    .await
    .expect(400);

    let plain = api
        .post(
            Some(&admin.token),
            "/api/v1/agents",
            json!({"name": "Planner"}),
        )
        .await
        .expect(201);
    let planner = plain.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        plain.body["session_key"],
        format!("agent:mc-{planner}:main").as_str()
    );

    // Filters and roles: a viewer reads, an operator cannot manage.
    let viewer = api.member(&admin, "viewer").await;
    let on_gw = api
        .get(&viewer.token, &format!("/api/v1/agents?gateway_id={gw}"))
        .await
        .expect(200);
    assert_eq!(ids(&on_gw.body), vec![agent.clone()]);
    let all = api
        .get(&viewer.token, "/api/v1/agents?limit=1")
        .await
        .expect(200);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    assert!(all.body["next_cursor"].is_string());
    let operator = api.member(&admin, "operator").await;
    api.post(
        Some(&operator.token),
        "/api/v1/agents",
        json!({"name": "Nope"}),
    )
    .await
    .expect(403);
    api.delete(&operator.token, &format!("/api/v1/agents/{agent}"))
        .await
        .expect(403);

    // Another organization's board or gateway cannot be referenced, nor its agents seen.
    let other = api.org_admin("agents-other").await;
    let foreign_gw = gateway(&api, &other, "elsewhere").await;
    let foreign_board = board(&api, &other, "Theirs").await;
    let bad = api
        .patch(
            &admin.token,
            &format!("/api/v1/agents/{agent}"),
            json!({"gateway_id": foreign_gw}),
        )
        .await
        .expect(400);
    assert_eq!(bad.body["error"]["details"][0]["field"], "gateway_id");
    api.patch(
        &admin.token,
        &format!("/api/v1/agents/{agent}"),
        json!({"board_id": foreign_board}),
    )
    .await
    .expect(400);
    api.get(&other.token, &format!("/api/v1/agents/{agent}"))
        .await
        .expect(404);

    // Status: online and busy come from the gateway; an admin may mark error.
    api.patch(
        &admin.token,
        &format!("/api/v1/agents/{agent}"),
        json!({"status": "online"}),
    )
    .await
    .expect(400);
    let errored = api
        .patch(
            &admin.token,
            &format!("/api/v1/agents/{agent}"),
            json!({"status": "error", "name": "Researcher 2"}),
        )
        .await
        .expect(200);
    assert_eq!(errored.body["status"], "error");
    assert_eq!(errored.body["name"], "Researcher 2");
    // Unbinding from the gateway clears what only made sense there.
    let unbound = api
        .patch(
            &admin.token,
            &format!("/api/v1/agents/{agent}"),
            json!({"gateway_id": null, "openclaw_agent_id": null}),
        )
        .await
        .expect(200);
    assert_eq!(unbound.body["gateway_id"], Value::Null);
    assert_eq!(unbound.body["status"], "offline");

    // A key issued for the agent is recorded on it; deleting the agent removes the key.
    let key = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "planner key", "role": "operator", "agent_id": planner}),
        )
        .await
        .expect(201);
    let fetched = api
        .get(&admin.token, &format!("/api/v1/agents/{planner}"))
        .await
        .expect(200);
    assert_eq!(fetched.body["api_key_id"], key.body["id"]);
    // The newest usable key is the current one; revoking it falls back to the older one.
    let spare = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "spare", "role": "viewer", "agent_id": planner}),
        )
        .await
        .expect(201);
    let current = |body: &Value| body["api_key_id"].clone();
    let agent_path = format!("/api/v1/agents/{planner}");
    assert_eq!(
        current(&api.get(&admin.token, &agent_path).await.expect(200).body),
        spare.body["id"]
    );
    api.delete(
        &admin.token,
        &format!("/api/v1/api-keys/{}", spare.body["id"].as_str().unwrap()),
    )
    .await
    .expect(200);
    assert_eq!(
        current(&api.get(&admin.token, &agent_path).await.expect(200).body),
        key.body["id"]
    );
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    api.get(&secret, "/api/v1/agent/boards").await.expect(200);
    api.delete(&admin.token, &format!("/api/v1/agents/{planner}"))
        .await
        .expect(204);
    api.get(&secret, "/api/v1/agent/boards").await.expect(401);
    api.get(&admin.token, &format!("/api/v1/agents/{planner}"))
        .await
        .expect(404);

    // Syncing with a gateway no relay holds fails at once with a clear 503.
    let offline = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/gateways/{gw}/sync-agents"),
            json!({}),
        )
        .await
        .expect(503);
    assert!(
        offline.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gateway_offline")
    );
    api.post(
        Some(&admin.token),
        &format!("/api/v1/gateways/{foreign_gw}/sync-agents"),
        json!({}),
    )
    .await
    .expect(404);

    let log = api
        .get(&admin.token, "/api/v1/events?event_type=agent.*&limit=100")
        .await
        .expect(200);
    let types: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "agent.created").count(), 2);
    assert!(types.contains(&"agent.updated") && types.contains(&"agent.deleted"));
}
