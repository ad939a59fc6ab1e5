//! API keys: shown once, both headers, roles, rotation grace, revocation, expiry.

mod common;

use common::start;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_authenticate_with_their_role_in_their_org() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let created = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "deploy bot", "role": "operator"}),
        )
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("mc_live_") && secret.len() == 51,
        "{secret}"
    );
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Listed without the secret.
    let listed = api.get(&admin.token, "/api/v1/api-keys").await.expect(200);
    let text = listed.body.to_string();
    assert!(!text.contains(&secret[8..]), "secret leaked in list");
    assert_eq!(
        listed.body["items"][0]["display_prefix"],
        format!("mc_live_{}…", &secret[8..12])
    );
    // Stored only as a hash.
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys LIMIT 1")
        .fetch_one(&api.db.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&secret[8..]));

    // Both ways of presenting the key.
    api.get(&secret, "/api/v1/members").await.expect(200);
    api.call(
        Method::GET,
        "/api/v1/members",
        None,
        None,
        &[("x-api-key", &secret)],
    )
    .await
    .expect(200);
    // Its role applies: operators may not manage members.
    let resp = api
        .call(
            Method::POST,
            "/api/v1/members",
            None,
            Some(json!({"email": "a@b.io", "role": "viewer"})),
            &[("x-api-key", &secret)],
        )
        .await;
    assert_eq!(resp.status, 403);
    // It is bound to its organization.
    let other = api.org_admin("other").await;
    let resp = api
        .call(
            Method::GET,
            "/api/v1/members",
            Some(&secret),
            None,
            &[("x-org-id", &other.org_id.unwrap().to_string())],
        )
        .await;
    assert_eq!(resp.status, 404);
    // Near-misses fail.
    for bad in [
        format!("{}x", &secret[..50]),
        "mc_live_short".to_owned(),
        secret.replace("mc_live_", "mc_test_"),
    ] {
        assert_eq!(api.get(&bad, "/api/v1/members").await.status, 401, "{bad}");
    }
    // Revocation is immediate.
    api.delete(&admin.token, &format!("/api/v1/api-keys/{id}"))
        .await
        .expect(200);
    let resp = api.get(&secret, "/api/v1/members").await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_both_keys_working_for_the_grace_period() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let old = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "agent", "role": "developer"}),
        )
        .await
        .expect(201);
    let old_secret = old.body["secret"].as_str().unwrap().to_owned();
    let old_id = old.body["id"].as_str().unwrap();
    let rotated = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/api-keys/{old_id}/rotate"),
            json!({"grace_seconds": 2}),
        )
        .await
        .expect(201);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert_eq!(rotated.body["role"], "developer");
    api.get(&old_secret, "/api/v1/members").await.expect(200);
    api.get(&new_secret, "/api/v1/members").await.expect(200);
    // Rotating the old one again conflicts.
    let again = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/api-keys/{old_id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = api.get(&old_secret, "/api/v1/members").await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("grace")
    );
    api.get(&new_secret, "/api/v1/members").await.expect(200);

    let too_long = api
        .post(
            Some(&admin.token),
            &format!(
                "/api/v1/api-keys/{}/rotate",
                rotated.body["id"].as_str().unwrap()
            ),
            json!({"grace_seconds": 99_999_999}),
        )
        .await;
    assert_eq!(too_long.status, 400);

    // Audit shows creation, rotation.
    let audit = api
        .get(&admin.token, "/api/v1/audit-log?action=api_key.*")
        .await
        .expect(200);
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["api_key.rotated", "api_key.created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_privilege_limits() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let resp = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "x", "role": "viewer", "expires_at": past}),
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"]["details"][0]["field"], "expires_at");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let key = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "brief", "role": "viewer", "expires_at": soon}),
        )
        .await
        .expect(201);
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    api.get(&secret, "/api/v1/members").await.expect(200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = api.get(&secret, "/api/v1/members").await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // An operator cannot mint keys at all.
    let op = api.member(&admin, "operator").await;
    assert_eq!(
        api.post(
            Some(&op.token),
            "/api/v1/api-keys",
            json!({"name": "x", "role": "viewer"})
        )
        .await
        .status,
        403
    );
    // Unknown agent.
    let resp = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "x", "role": "viewer", "agent_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"]["details"][0]["field"], "agent_id");
    // API keys cannot log out or switch organizations.
    let k = api
        .post(
            Some(&admin.token),
            "/api/v1/api-keys",
            json!({"name": "k", "role": "viewer"}),
        )
        .await
        .expect(201);
    let s = k.body["secret"].as_str().unwrap();
    assert_eq!(
        api.post(Some(s), "/api/v1/auth/logout", json!({}))
            .await
            .status,
        400
    );
    assert_eq!(api.get(s, "/api/v1/auth/me").await.status, 403);
}
