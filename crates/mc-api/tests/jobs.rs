//! `/queue/depth`, `/jobs`, dead letters: an organization sees and manages only its own
//! jobs, operators and admins only.

mod common;

use common::{Session, TestApi, start};
use mc_domain::db::begin_org;
use mc_domain::jobs::{self, JobPriority, NewJob};
use serde_json::json;

async fn enqueue(api: &TestApi, s: &Session, kind: &str, priority: JobPriority) -> String {
    let org = s.org_id.unwrap();
    let mut tx = begin_org(api.db.pool(), org).await.unwrap();
    let (job, _) = jobs::enqueue(
        &mut tx,
        &NewJob::new(kind, json!({"k": kind}))
            .priority(priority)
            .organization(org),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    job.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_inspect_cancel_retry_and_replay_their_jobs() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let tok = admin.token.clone();
    let a = enqueue(&api, &admin, "webhook.deliver", JobPriority::High).await;
    let b = enqueue(&api, &admin, "webhook.deliver", JobPriority::Low).await;
    let c = enqueue(&api, &admin, "export.csv", JobPriority::Low).await;

    let depth = api.get(&tok, "/api/v1/queue/depth").await.expect(200);
    let pending_low = depth
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["priority"] == "low" && r["state"] == "pending")
        .unwrap()["count"]
        .clone();
    assert_eq!(pending_low, 2);

    let listed = api
        .get(&tok, "/api/v1/jobs?kind=webhook.deliver&limit=1")
        .await
        .expect(200);
    assert_eq!(listed.body["items"][0]["id"], b.as_str(), "newest first");
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let next = api
        .get(
            &tok,
            &format!("/api/v1/jobs?kind=webhook.deliver&limit=1&cursor={cursor}"),
        )
        .await
        .expect(200);
    assert_eq!(next.body["items"][0]["id"], a.as_str());
    assert!(next.body["next_cursor"].is_null());
    api.get(&tok, "/api/v1/jobs?state=exploded")
        .await
        .expect(400);

    // Cancel, cancel again, retry.
    let cancelled = api
        .post(Some(&tok), &format!("/api/v1/jobs/{a}/cancel"), json!({}))
        .await
        .expect(200);
    assert_eq!(cancelled.body["state"], "cancelled");
    assert_eq!(
        api.post(Some(&tok), &format!("/api/v1/jobs/{a}/cancel"), json!({}))
            .await
            .expect(409)
            .code(),
        "conflict"
    );
    let retried = api
        .post(Some(&tok), &format!("/api/v1/jobs/{a}/retry"), json!({}))
        .await
        .expect(200);
    assert_eq!(retried.body["state"], "pending");
    api.post(Some(&tok), &format!("/api/v1/jobs/{b}/retry"), json!({}))
        .await
        .expect(409);

    // Dead letters: listed with history, exported, replayed by kind.
    sqlx::query(
        "UPDATE jobs SET state = 'dead', attempts = 3, finished_at = now(),
                 errors = '[{\"attempt\":3,\"error\":\"smtp said no\"}]' WHERE id = $1::uuid",
    )
    .bind(&c)
    .execute(&api.db.admin_pool().await)
    .await
    .unwrap();
    let dead = api.get(&tok, "/api/v1/jobs/dead-letter").await.expect(200);
    assert_eq!(dead.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(dead.body["items"][0]["errors"][0]["error"], "smtp said no");
    let export = api.get(&tok, "/api/v1/jobs/dead-letter/export").await;
    assert_eq!(export.status, 200);
    assert_eq!(export.header("content-type"), Some("application/x-ndjson"));
    let replayed = api
        .post(
            Some(&tok),
            "/api/v1/jobs/dead-letter/replay",
            json!({"kind": "export.csv"}),
        )
        .await
        .expect(200);
    assert_eq!(replayed.body["replayed"], 1);
    let job = api
        .get(&tok, &format!("/api/v1/jobs/{c}"))
        .await
        .expect(200);
    assert_eq!(
        (job.body["state"].as_str(), job.body["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    assert_eq!(
        job.body["errors"].as_array().unwrap().len(),
        1,
        "history kept"
    );
    api.post(
        Some(&tok),
        "/api/v1/jobs/dead-letter/replay",
        json!({"ids": ["nope"]}),
    )
    .await
    .expect(400);

    // Other organizations see nothing; viewers and developers are refused.
    let other = api.org_admin("other").await;
    api.get(&other.token, &format!("/api/v1/jobs/{c}"))
        .await
        .expect(404);
    assert_eq!(
        api.get(&other.token, "/api/v1/jobs").await.expect(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    api.post(
        Some(&other.token),
        &format!("/api/v1/jobs/{c}/cancel"),
        json!({}),
    )
    .await
    .expect(404);
    for role in ["viewer", "developer"] {
        let member = api.member(&admin, role).await;
        api.get(&member.token, "/api/v1/jobs").await.expect(403);
        api.get(&member.token, "/api/v1/queue/depth")
            .await
            .expect(403);
    }
    let operator = api.member(&admin, "operator").await;
    api.post(
        Some(&operator.token),
        &format!("/api/v1/jobs/{b}/cancel"),
        json!({}),
    )
    .await
    .expect(200);
    api.get(&tok, "/api/v1/jobs/not-a-uuid").await.expect(400);
}
