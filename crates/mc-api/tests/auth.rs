//! Console authentication: login, refresh rotation and reuse detection, logout, token
//! attacks, organization context.

mod common;

use common::start;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_tokens_user_and_default_org() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let resp = api
        .post(
            None,
            "/api/v1/auth/login",
            json!({"email": admin.email, "password": admin.password}),
        )
        .await
        .expect(200);
    assert_eq!(resp.body["token_type"], "Bearer");
    assert_eq!(resp.body["expires_in"], 900);
    assert!(
        resp.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("mc_rt_")
    );
    assert_eq!(resp.body["user"]["email"], admin.email);
    assert_eq!(
        resp.body["organization_id"],
        admin.org_id.unwrap().to_string()
    );
    assert!(resp.body["user"].get("password_hash").is_none());

    let me = api
        .get(
            resp.body["access_token"].as_str().unwrap(),
            "/api/v1/auth/me",
        )
        .await
        .expect(200);
    assert_eq!(me.body["organizations"][0]["slug"], "acme");
    assert_eq!(me.body["organizations"][0]["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logins_are_rejected_with_the_right_status() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let cases = [
        (
            json!({"email": admin.email, "password": "wrong password"}),
            401,
            "unauthorized",
        ),
        (
            json!({"email": "nobody@example.com", "password": "whatever1"}),
            401,
            "unauthorized",
        ),
        (
            json!({"email": admin.email, "password": ""}),
            400,
            "invalid_request",
        ),
        (
            json!({"email": "not-an-email", "password": "x"}),
            400,
            "invalid_request",
        ),
        (json!({"email": admin.email}), 400, "invalid_request"),
        (
            json!({"email": admin.email, "password": "x", "otp": 1}),
            400,
            "invalid_request",
        ),
        (json!({"email": 5, "password": "x"}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let resp = api.post(None, "/api/v1/auth/login", body.clone()).await;
        assert_eq!(resp.status, status, "{body} -> {}", resp.body);
        assert_eq!(resp.code(), code, "{body}");
    }
    // Field-level messages name the field.
    let resp = api
        .post(None, "/api/v1/auth/login", json!({"email": admin.email}))
        .await;
    assert_eq!(resp.body["error"]["details"][0]["field"], "password");
    // Malformed JSON and a wrong content type.
    let resp = api
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(resp.status, 400);
    let raw = mc_testkit::http_client()
        .post(api.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "body");

    // Suspended accounts are refused after a correct password.
    sqlx::query("UPDATE users SET status = 'suspended' WHERE id = $1")
        .bind(admin.user_id)
        .execute(api.db.pool())
        .await
        .unwrap();
    let resp = api
        .post(
            None,
            "/api/v1/auth/login",
            json!({"email": admin.email, "password": admin.password}),
        )
        .await;
    assert_eq!(resp.status, 403, "{}", resp.body);
    // ...and their live tokens stop working on org endpoints.
    let resp = api.get(&admin.token, "/api/v1/members").await;
    assert_eq!(resp.status, 403, "{}", resp.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_per_account_and_per_ip() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    // Default per-account allowance: burst 5.
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            api.post(
                None,
                "/api/v1/auth/login",
                json!({"email": admin.email, "password": "wrong pw"}),
            )
            .await,
        );
    }
    let limited = last.unwrap();
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.code(), "rate_limited");
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    // Per IP: a tight limit across different accounts.
    let api = common::start_with(|c| {
        c.rate_limits.login_per_ip = mc_domain::config::Quota {
            per_minute: 1,
            burst: 3,
        };
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let resp = api
            .post(
                None,
                "/api/v1/auth/login",
                json!({"email": format!("u{i}@x.io"), "password": "pw"}),
            )
            .await;
        statuses.push(resp.status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let first = api
        .post(
            None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": admin.refresh}),
        )
        .await
        .expect(200);
    let second_refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    let second_access = first.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, admin.refresh);
    assert_eq!(
        first.body["organization_id"],
        admin.org_id.unwrap().to_string()
    );
    api.get(&second_access, "/api/v1/members").await.expect(200);

    // Presenting the rotated token again: reuse. The family dies, and so do live tokens.
    let reuse = api
        .post(
            None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": admin.refresh}),
        )
        .await;
    assert_eq!(reuse.status, 401);
    assert!(
        reuse.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let after = api
        .post(
            None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": second_refresh}),
        )
        .await;
    assert_eq!(after.status, 401, "the successor must be revoked too");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(api.get(&second_access, "/api/v1/members").await.status, 401);

    // A new login works again.
    let fresh = api.login(&admin.email, &admin.password).await;
    api.get(&fresh.token, "/api/v1/auth/me").await.expect(200);

    // Garbage refresh tokens.
    for token in ["", "mc_rt_nope", "x"] {
        let resp = api
            .post(
                None,
                "/api/v1/auth/refresh",
                json!({"refresh_token": token}),
            )
            .await;
        assert_eq!(resp.status, 401, "{token}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_access_token_and_the_login() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    api.post(
        Some(&admin.token),
        "/api/v1/auth/logout",
        json!({"refresh_token": admin.refresh}),
    )
    .await
    .expect(204);
    let resp = api.get(&admin.token, "/api/v1/auth/me").await;
    assert_eq!(resp.status, 401);
    assert!(
        resp.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let resp = api
        .post(
            None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": admin.refresh}),
        )
        .await;
    assert_eq!(resp.status, 401);
}

#[derive(serde::Serialize)]
struct ForgedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    org: Option<String>,
    jti: String,
    iat: i64,
    exp: i64,
    typ: &'a str,
}

fn forge(
    secret: &str,
    aud: &str,
    typ: &str,
    sub: String,
    exp_offset: i64,
    alg: Algorithm,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = ForgedClaims {
        iss: "mission-control",
        aud,
        sub,
        org: None,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: now + exp_offset,
        typ,
    };
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_foreign_tokens_are_rejected() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let sub = admin.user_id.to_string();
    let secret = mc_testkit::TEST_JWT_SECRET;
    let valid = forge(
        secret,
        "mission-control-api",
        "access",
        sub.clone(),
        600,
        Algorithm::HS256,
    );
    api.get(&valid, "/api/v1/auth/me").await.expect(200);

    let payload = valid.split('.').nth(1).unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let attacks = [
        (
            "expired",
            forge(
                secret,
                "mission-control-api",
                "access",
                sub.clone(),
                -120,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong audience",
            forge(
                secret,
                "someone-else",
                "access",
                sub.clone(),
                600,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong secret",
            forge(
                "another-secret-0123456789abcdef0123",
                "mission-control-api",
                "access",
                sub.clone(),
                600,
                Algorithm::HS256,
            ),
        ),
        (
            "HS512",
            forge(
                secret,
                "mission-control-api",
                "access",
                sub.clone(),
                600,
                Algorithm::HS512,
            ),
        ),
        ("alg none", format!("{none_header}.{payload}.")),
        (
            "h5 secret",
            forge(
                mc_testkit::TEST_H5_JWT_SECRET,
                "mission-control-h5",
                "h5",
                sub.clone(),
                600,
                Algorithm::HS256,
            ),
        ),
        ("garbled", "not.a.token".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in attacks {
        let resp = api.get(&token, "/api/v1/auth/me").await;
        assert_eq!(resp.status, 401, "{name}: {}", resp.body);
        assert_eq!(resp.code(), "unauthorized", "{name}");
    }
    // No credentials at all.
    let resp = api
        .call(Method::GET, "/api/v1/auth/me", None, None, &[])
        .await;
    assert_eq!(resp.status, 401);
    // An unknown scheme counts as no credentials.
    let resp = api
        .call(
            Method::GET,
            "/api/v1/auth/me",
            None,
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    assert_eq!(resp.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_context_comes_from_the_token_or_x_org_id() {
    let api = start().await;
    let alice = api.org_admin("alpha").await;
    let bob = api.org_admin("beta").await;
    let alpha = alice.org_id.unwrap();
    let beta = bob.org_id.unwrap();

    // Alice joins beta as a viewer.
    api.post(
        Some(&bob.token),
        "/api/v1/members",
        json!({"email": alice.email, "role": "viewer"}),
    )
    .await
    .expect(201);
    // Her token acts in alpha; X-Org-Id switches per request.
    let members = api.get(&alice.token, "/api/v1/members").await.expect(200);
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1);
    let in_beta = api
        .call(
            Method::GET,
            "/api/v1/members",
            Some(&alice.token),
            None,
            &[("x-org-id", &beta.to_string())],
        )
        .await
        .expect(200);
    assert_eq!(in_beta.body["items"].as_array().unwrap().len(), 2);
    // As a viewer in beta she cannot add members; as admin in alpha she can.
    let denied = api
        .call(
            Method::POST,
            "/api/v1/members",
            Some(&alice.token),
            Some(json!({"email": "x@y.io", "role": "viewer"})),
            &[("x-org-id", &beta.to_string())],
        )
        .await;
    assert_eq!(denied.status, 403);

    // Bob is not in alpha: 404, never 403.
    let resp = api
        .call(
            Method::GET,
            "/api/v1/members",
            Some(&bob.token),
            None,
            &[("x-org-id", &alpha.to_string())],
        )
        .await;
    assert_eq!(resp.status, 404, "{}", resp.body);
    let resp = api
        .get(&bob.token, &format!("/api/v1/organizations/{alpha}"))
        .await;
    assert_eq!(resp.status, 404);
    let resp = api
        .post(
            Some(&bob.token),
            "/api/v1/auth/switch-org",
            json!({"organization_id": alpha}),
        )
        .await;
    assert_eq!(resp.status, 404);

    // A malformed X-Org-Id is a 400 naming the header.
    let resp = api
        .call(
            Method::GET,
            "/api/v1/members",
            Some(&alice.token),
            None,
            &[("x-org-id", "nope")],
        )
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.body["error"]["details"][0]["field"], "X-Org-Id");

    // switch-org issues tokens acting in beta, and beta becomes the default at login.
    let switched = api.switch_org(&alice, beta).await;
    assert_eq!(switched.org_id, Some(beta));
    let relogin = api.login(&alice.email, &alice.password).await;
    assert_eq!(relogin.org_id, Some(beta));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_an_organization_can_create_one() {
    let api = start().await;
    api.create_user("solo@example.com", "correct horse battery")
        .await;
    let solo = api.login("solo@example.com", "correct horse battery").await;
    assert_eq!(solo.org_id, None);
    let resp = api.get(&solo.token, "/api/v1/members").await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let created = api
        .post(
            Some(&solo.token),
            "/api/v1/organizations",
            json!({"name": "Solo Works"}),
        )
        .await
        .expect(201);
    assert_eq!(created.body["slug"], "solo-works");
    assert_eq!(created.body["role"], "admin");
    let again = api
        .post(
            Some(&solo.token),
            "/api/v1/organizations",
            json!({"name": "Solo Works"}),
        )
        .await;
    assert_eq!(again.status, 409);
    let relogin = api.login("solo@example.com", "correct horse battery").await;
    assert_eq!(
        relogin.org_id.unwrap().to_string(),
        created.body["id"].as_str().unwrap()
    );
}
