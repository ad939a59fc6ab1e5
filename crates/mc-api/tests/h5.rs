//! H5 end users: their own auth, admin management, and token separation from admins.

mod common;

use common::start;
use mc_testkit::api::TestApi;
use reqwest::Method;
use serde_json::{Value, json};

async fn board_and_agent(api: &TestApi, org: mc_domain::ids::OrgId) -> (uuid::Uuid, uuid::Uuid) {
    let admin = api.db.admin_pool().await;
    let board = uuid::Uuid::now_v7();
    let agent = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO boards (id, organization_id, name, slug) VALUES ($1, $2, 'Support', 'support')")
        .bind(board)
        .bind(org)
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO agents (id, organization_id, name) VALUES ($1, $2, 'Helper')")
        .bind(agent)
        .bind(org)
        .execute(&admin)
        .await
        .unwrap();
    (board, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_refresh_and_profile() {
    let api = start().await;
    let admin = api.org_admin("shop").await;
    let org = admin.org_id.unwrap();

    // By slug and by id.
    let reg = api
        .post(None, "/api/v1/h5/auth/register", json!({"organization_slug": "shop", "username": "Alice", "password": "alice-password", "display_name": "Alice"}))
        .await
        .expect(201);
    assert_eq!(reg.body["user"]["username"], "alice");
    assert_eq!(reg.body["user"]["organization_id"], org.to_string());
    assert!(
        reg.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("mc_h5rt_")
    );
    api.post(
        None,
        "/api/v1/h5/auth/register",
        json!({"organization_id": org, "username": "bob", "password": "bob-password"}),
    )
    .await
    .expect(201);

    let bad = [
        (
            json!({"organization_slug": "shop", "username": "alice", "password": "another-pass"}),
            409,
        ),
        (
            json!({"organization_slug": "nope", "username": "carol", "password": "carol-pass"}),
            404,
        ),
        (
            json!({"organization_id": org, "organization_slug": "shop", "username": "carol", "password": "carol-pass"}),
            400,
        ),
        (json!({"username": "carol", "password": "carol-pass"}), 400),
        (
            json!({"organization_slug": "shop", "username": "carol", "password": "short"}),
            400,
        ),
        (
            json!({"organization_slug": "shop", "username": "carol", "password": ""}),
            400,
        ),
        (
            json!({"organization_slug": "shop", "username": "c", "password": "carol-pass"}),
            400,
        ),
        (
            json!({"organization_slug": "shop", "username": "carol", "password": "carol-pass", "metadata": {}}),
            400,
        ),
        (
            json!({"organization_slug": "shop", "username": "carol", "password": "carol-pass", "email": "nope"}),
            400,
        ),
    ];
    for (body, status) in bad {
        let resp = api
            .post(None, "/api/v1/h5/auth/register", body.clone())
            .await;
        assert_eq!(resp.status, status, "{body}: {}", resp.body);
    }

    let login = api
        .post(
            None,
            "/api/v1/h5/auth/login",
            json!({"organization_slug": "shop", "username": "ALICE", "password": "alice-password"}),
        )
        .await
        .expect(200);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let wrong = api
        .post(
            None,
            "/api/v1/h5/auth/login",
            json!({"organization_slug": "shop", "username": "alice", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status, 401);

    let me = api.get(&token, "/api/v1/h5/auth/me").await.expect(200);
    assert_eq!(me.body["user"]["username"], "alice");
    assert_eq!(me.body["assignments"], json!([]));
    let patched = api
        .patch(
            &token,
            "/api/v1/h5/auth/me",
            json!({"display_name": "Alice W", "avatar_url": "https://cdn.example.com/a.png"}),
        )
        .await
        .expect(200);
    assert_eq!(patched.body["user"]["display_name"], "Alice W");
    assert_eq!(
        api.patch(
            &token,
            "/api/v1/h5/auth/me",
            json!({"avatar_url": "javascript:alert(1)"})
        )
        .await
        .status,
        400
    );

    // Refresh rotation with reuse detection.
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let rotated = api
        .post(
            None,
            "/api/v1/h5/auth/refresh",
            json!({"refresh_token": refresh}),
        )
        .await
        .expect(200);
    assert_ne!(
        rotated.body["refresh_token"],
        Value::String(refresh.clone())
    );
    assert_eq!(
        api.post(
            None,
            "/api/v1/h5/auth/refresh",
            json!({"refresh_token": refresh})
        )
        .await
        .status,
        401
    );
    let successor = rotated.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        api.post(
            None,
            "/api/v1/h5/auth/refresh",
            json!({"refresh_token": successor})
        )
        .await
        .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h5_and_admin_tokens_are_not_interchangeable() {
    let api = start().await;
    let admin = api.org_admin("shop").await;
    let reg = api
        .post(
            None,
            "/api/v1/h5/auth/register",
            json!({"organization_slug": "shop", "username": "alice", "password": "alice-password"}),
        )
        .await
        .expect(201);
    let h5 = reg.body["access_token"].as_str().unwrap();
    assert_eq!(api.get(h5, "/api/v1/auth/me").await.status, 401);
    assert_eq!(api.get(h5, "/api/v1/members").await.status, 401);
    assert_eq!(api.get(h5, "/api/v1/h5/users").await.status, 401);
    assert_eq!(
        api.get(&admin.token, "/api/v1/h5/auth/me").await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_search_assign_and_suspend() {
    let api = start().await;
    let admin = api.org_admin("shop").await;
    let org = admin.org_id.unwrap();
    let (board, agent) = board_and_agent(&api, org).await;
    for name in ["alice", "bob", "carol", "dave"] {
        api.post(Some(&admin.token), "/api/v1/h5/users", json!({"username": name, "password": "password-123", "email": format!("{name}@shop.io")}))
            .await
            .expect(201);
    }
    let page = api
        .get(&admin.token, "/api/v1/h5/users?limit=3")
        .await
        .expect(200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(page.body["total"], 4);
    let next = page.body["next_cursor"].as_str().unwrap();
    let page2 = api
        .get(
            &admin.token,
            &format!("/api/v1/h5/users?limit=3&cursor={next}"),
        )
        .await
        .expect(200);
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 1);
    let search = api
        .get(&admin.token, "/api/v1/h5/users?q=car")
        .await
        .expect(200);
    assert_eq!(search.body["total"], 1);
    assert_eq!(search.body["items"][0]["username"], "carol");
    let like = api
        .get(&admin.token, "/api/v1/h5/users?q=%25")
        .await
        .expect(200);
    assert_eq!(like.body["total"], 0, "% is matched literally");

    let alice = api.get(&admin.token, "/api/v1/h5/users?q=alice").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let assigned = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/h5/users/{alice}/assign"),
            json!({"agent_id": agent, "board_id": board}),
        )
        .await
        .expect(200);
    assert_eq!(assigned.body["assignments"][0]["agent_name"], "Helper");
    assert_eq!(assigned.body["assignments"][0]["board_name"], "Support");
    // Unknown agent/board: field errors. Another org's agent looks the same: unknown.
    let other = api.org_admin("elsewhere").await;
    let (other_board, other_agent) = board_and_agent(&api, other.org_id.unwrap()).await;
    let resp = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/h5/users/{alice}/assign"),
            json!({"agent_id": other_agent, "board_id": other_board}),
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"]["details"].as_array().unwrap().len(), 2);

    // The user sees the assignment.
    let login = api
        .post(
            None,
            "/api/v1/h5/auth/login",
            json!({"organization_id": org, "username": "alice", "password": "password-123"}),
        )
        .await
        .expect(200);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let me = api.get(&token, "/api/v1/h5/auth/me").await.expect(200);
    assert_eq!(me.body["assignments"][0]["agent_id"], agent.to_string());

    api.delete(
        &admin.token,
        &format!("/api/v1/h5/users/{alice}/assign/{agent}"),
    )
    .await
    .expect(204);
    assert_eq!(
        api.delete(
            &admin.token,
            &format!("/api/v1/h5/users/{alice}/assign/{agent}")
        )
        .await
        .status,
        404
    );
    let detail = api
        .get(&admin.token, &format!("/api/v1/h5/users/{alice}"))
        .await
        .expect(200);
    assert_eq!(detail.body["assignments"], json!([]));

    // Suspension ends sessions and blocks login.
    api.post(
        Some(&admin.token),
        &format!("/api/v1/h5/users/{alice}/suspend"),
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(api.get(&token, "/api/v1/h5/auth/me").await.status, 401);
    let resp = api
        .post(
            None,
            "/api/v1/h5/auth/login",
            json!({"organization_id": org, "username": "alice", "password": "password-123"}),
        )
        .await;
    assert_eq!(resp.status, 403);
    let refresh = login.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        api.post(
            None,
            "/api/v1/h5/auth/refresh",
            json!({"refresh_token": refresh})
        )
        .await
        .status,
        401
    );
    api.post(
        Some(&admin.token),
        &format!("/api/v1/h5/users/{alice}/activate"),
        json!({}),
    )
    .await
    .expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    api.post(
        None,
        "/api/v1/h5/auth/login",
        json!({"organization_id": org, "username": "alice", "password": "password-123"}),
    )
    .await
    .expect(200);

    // Other organizations cannot see these users.
    let resp = api
        .get(&other.token, &format!("/api/v1/h5/users/{alice}"))
        .await;
    assert_eq!(resp.status, 404);
    let resp = api
        .call(
            Method::GET,
            "/api/v1/h5/users",
            Some(&other.token),
            None,
            &[("x-org-id", &org.to_string())],
        )
        .await;
    assert_eq!(resp.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_registration_can_be_turned_off() {
    let api = start().await;
    let admin = api.org_admin("closed").await;
    api.patch(
        &admin.token,
        &format!("/api/v1/organizations/{}", admin.org_id.unwrap()),
        json!({"settings": {"h5_self_registration": false}}),
    )
    .await
    .expect(200);
    let resp = api
        .post(
            None,
            "/api/v1/h5/auth/register",
            json!({"organization_slug": "closed", "username": "eve", "password": "eve-password"}),
        )
        .await;
    assert_eq!(resp.status, 403);
    // Admins can still create users.
    api.post(
        Some(&admin.token),
        "/api/v1/h5/users",
        json!({"username": "eve", "password": "eve-password"}),
    )
    .await
    .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_access_token_and_the_login() {
    let api = start().await;
    api.org_admin("shop").await;
    let credentials =
        json!({"organization_slug": "shop", "username": "dora", "password": "dora-password"});
    api.post(
        None,
        "/api/v1/h5/auth/register",
        json!({"organization_slug": "shop", "username": "dora", "password": "dora-password"}),
    )
    .await
    .expect(201);
    let phone = api
        .post(None, "/api/v1/h5/auth/login", credentials.clone())
        .await
        .expect(200);
    let tablet = api
        .post(None, "/api/v1/h5/auth/login", credentials)
        .await
        .expect(200);
    let token = phone.body["access_token"].as_str().unwrap().to_owned();
    let refresh = phone.body["refresh_token"].as_str().unwrap().to_owned();

    // Needs the H5 token; a bad body is a 400, not a logout.
    api.post(None, "/api/v1/h5/auth/logout", json!({}))
        .await
        .expect(401);
    api.post(
        Some(&token),
        "/api/v1/h5/auth/logout",
        json!({"refresh_token": 7}),
    )
    .await
    .expect(400);
    api.get(&token, "/api/v1/h5/auth/me").await.expect(200);

    let out = api
        .post(
            Some(&token),
            "/api/v1/h5/auth/logout",
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.body);
    api.get(&token, "/api/v1/h5/auth/me").await.expect(401);
    api.post(
        None,
        "/api/v1/h5/auth/refresh",
        json!({"refresh_token": refresh}),
    )
    .await
    .expect(401);
    // Another device's login is its own.
    let other = tablet.body["access_token"].as_str().unwrap();
    api.get(other, "/api/v1/h5/auth/me").await.expect(200);
}
