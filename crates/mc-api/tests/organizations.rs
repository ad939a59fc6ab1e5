//! Organizations (settings, lifecycle) and members (invite, roles, removal), with audit.

mod common;

use common::start;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated_and_persisted() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap();
    let path = format!("/api/v1/organizations/{org}");
    let got = api.get(&admin.token, &path).await.expect(200);
    assert_eq!(got.body["settings"]["timezone"], "UTC");
    assert_eq!(got.body["status"], "active");

    let updated = api
        .patch(&admin.token, &path, json!({"name": "Acme Inc", "settings": {"timezone": "Asia/Shanghai", "locale": "zh-CN"}}))
        .await
        .expect(200);
    assert_eq!(updated.body["name"], "Acme Inc");
    assert_eq!(updated.body["settings"]["locale"], "zh-CN");
    assert_eq!(
        api.get(&admin.token, &path).await.body["settings"]["timezone"],
        "Asia/Shanghai"
    );

    let bad = [
        (
            json!({"settings": {"timezone": "Mars/Base"}}),
            "settings.timezone",
        ),
        (json!({"settings": {"colour": "red"}}), "settings.colour"),
        (json!({"settings": {"locale": "fr"}}), "settings.locale"),
        (
            json!({"settings": {"deletion_grace_hours": 0}}),
            "settings.deletion_grace_hours",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(129)}), "name"),
        (json!({"slug": "x"}), "slug"),
    ];
    for (body, field) in bad {
        let resp = api.patch(&admin.token, &path, body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.body);
        assert_eq!(
            resp.body["error"]["details"][0]["field"], field,
            "{body}: {}",
            resp.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_suspend_reactivate_delete_restore() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap();
    let base = format!("/api/v1/organizations/{org}");

    let suspended = api
        .post(Some(&admin.token), &format!("{base}/suspend"), json!({}))
        .await
        .expect(200);
    assert_eq!(suspended.body["status"], "suspended");
    // Read-only: reads work, writes are refused.
    api.get(&admin.token, "/api/v1/members").await.expect(200);
    let write = api
        .post(
            Some(&admin.token),
            "/api/v1/members",
            json!({"email": "a@b.io", "role": "viewer"}),
        )
        .await;
    assert_eq!(write.status, 403);
    assert!(
        write.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    // Suspending twice conflicts.
    assert_eq!(
        api.post(Some(&admin.token), &format!("{base}/suspend"), json!({}))
            .await
            .status,
        409
    );

    api.post(Some(&admin.token), &format!("{base}/reactivate"), json!({}))
        .await
        .expect(200);
    api.post(
        Some(&admin.token),
        "/api/v1/members",
        json!({"email": "a@b.io", "role": "viewer"}),
    )
    .await
    .expect(201);

    let deleted = api.delete(&admin.token, &base).await.expect(202);
    assert_eq!(deleted.body["status"], "pending_deletion");
    let at: chrono::DateTime<chrono::Utc> = deleted.body["deletion_scheduled_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (at - chrono::Utc::now()).num_hours();
    assert!((71..=72).contains(&hours), "grace period {hours}h");
    assert_eq!(
        api.patch(&admin.token, &base, json!({"name": "x"}))
            .await
            .status,
        403
    );

    let restored = api
        .post(Some(&admin.token), &format!("{base}/restore"), json!({}))
        .await
        .expect(200);
    assert_eq!(restored.body["status"], "active");
    assert!(restored.body["deletion_scheduled_at"].is_null());

    // Every transition is in the audit log, newest first.
    let audit = api
        .get(&admin.token, "/api/v1/audit-log?action=organization.*")
        .await
        .expect(200);
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "organization.restored",
            "organization.deletion_requested",
            "organization.reactivated",
            "organization.suspended",
            "organization.created",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_invite_accept_role_change_and_removal() {
    let api = start().await;
    let admin = api.org_admin("acme").await;

    // Invite someone without an account: an invitation token comes back once.
    let added = api
        .post(Some(&admin.token), "/api/v1/members", json!({"email": "New.Person@Example.com", "role": "developer", "display_name": "New Person"}))
        .await
        .expect(201);
    assert_eq!(
        added.body["member"]["user"]["email"],
        "new.person@example.com"
    );
    assert_eq!(added.body["member"]["user"]["status"], "invited");
    let token = added.body["invitation_token"].as_str().unwrap().to_owned();
    let user_id = added.body["member"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Invited accounts cannot log in yet.
    let resp = api
        .post(
            None,
            "/api/v1/auth/login",
            json!({"email": "new.person@example.com", "password": "anything-at-all"}),
        )
        .await;
    assert_eq!(resp.status, 401);
    // Accepting sets the password and logs in, acting in the inviting organization.
    let short = api
        .post(
            None,
            "/api/v1/auth/accept-invite",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(short.status, 400);
    assert_eq!(short.body["error"]["details"][0]["field"], "password");
    let accepted = api
        .post(
            None,
            "/api/v1/auth/accept-invite",
            json!({"token": token, "password": "a much better password"}),
        )
        .await
        .expect(200);
    assert_eq!(
        accepted.body["organization_id"],
        admin.org_id.unwrap().to_string()
    );
    let dev_token = accepted.body["access_token"].as_str().unwrap().to_owned();
    // The token is single-use.
    let again = api
        .post(
            None,
            "/api/v1/auth/accept-invite",
            json!({"token": token, "password": "a much better password"}),
        )
        .await;
    assert_eq!(again.status, 400);

    // Adding the same person twice conflicts.
    let dup = api
        .post(
            Some(&admin.token),
            "/api/v1/members",
            json!({"email": "new.person@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(dup.status, 409);

    // A developer may not manage API keys; promoted to admin, they may, at once.
    let key = json!({"name": "ci", "role": "viewer"});
    assert_eq!(
        api.post(Some(&dev_token), "/api/v1/api-keys", key.clone())
            .await
            .status,
        403
    );
    api.patch(
        &admin.token,
        &format!("/api/v1/members/{user_id}"),
        json!({"role": "admin"}),
    )
    .await
    .expect(200);
    api.post(Some(&dev_token), "/api/v1/api-keys", key)
        .await
        .expect(201);

    // The last admin cannot be demoted or removed.
    api.patch(
        &admin.token,
        &format!("/api/v1/members/{user_id}"),
        json!({"role": "viewer"}),
    )
    .await
    .expect(200);
    let resp = api
        .patch(
            &admin.token,
            &format!("/api/v1/members/{}", admin.user_id),
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(resp.status, 409);
    assert_eq!(
        api.delete(&admin.token, &format!("/api/v1/members/{}", admin.user_id))
            .await
            .status,
        409
    );
    let bad_role = api
        .patch(
            &admin.token,
            &format!("/api/v1/members/{user_id}"),
            json!({"role": "root"}),
        )
        .await;
    assert_eq!(bad_role.status, 400);

    // Removal takes effect on the very next request: 404, not 403.
    api.delete(&admin.token, &format!("/api/v1/members/{user_id}"))
        .await
        .expect(204);
    assert_eq!(api.get(&dev_token, "/api/v1/members").await.status, 404);
    assert_eq!(
        api.delete(&admin.token, &format!("/api/v1/members/{user_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&admin.token, "/api/v1/members/not-a-uuid")
            .await
            .status,
        400
    );

    // Audit: additions, role changes, removal.
    let audit = api
        .get(&admin.token, "/api/v1/audit-log?action=member.*")
        .await
        .expect(200);
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "member.added",
        "member.invitation_accepted",
        "member.role_changed",
        "member.removed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_with_opaque_cursors() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    for i in 0..5 {
        api.post(
            Some(&admin.token),
            "/api/v1/members",
            json!({"email": format!("p{i}@example.com"), "role": "viewer"}),
        )
        .await
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/members?limit=2&cursor={c}"),
            None => "/api/v1/members?limit=2".to_owned(),
        };
        let page = api.get(&admin.token, &path).await.expect(200);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|m| m["user"]["email"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 6, "no duplicates across pages");
    for bad in ["limit=0", "limit=101", "limit=abc", "cursor=garbage!"] {
        let resp = api
            .get(&admin.token, &format!("/api/v1/members?{bad}"))
            .await;
        assert_eq!(resp.status, 400, "{bad}");
    }
    let resp = api
        .call(Method::GET, "/api/v1/nope", Some(&admin.token), None, &[])
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.code(), "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_append_only() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let admin_pool = api.db.admin_pool().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&admin_pool)
        .await
        .unwrap();
    assert!(count >= 2, "login and creation are audited");
    for sql in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&admin_pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&admin_pool)
        .await
        .unwrap();
    assert_eq!(after, count);
    let _ = admin;
}
