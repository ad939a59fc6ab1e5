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

    // Dead letters: listed with history, exported, replayed by kind. (Written as the
    // queue writes a dead letter: the record changes and the job leaves the queue.)
    sqlx::query(
        "WITH dead AS (
             UPDATE jobs SET state = 'dead', attempts = 3, finished_at = now(),
                 errors = '[{\"attempt\":3,\"error\":\"smtp said no\"}]'
             WHERE id = $1::uuid RETURNING id)
         DELETE FROM job_queue WHERE id IN (SELECT id FROM dead)",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_created_listed_retimed_paused_and_deleted_per_organization() {
    let api = start().await;
    let admin = api.org_admin("sched").await;
    let tok = admin.token.clone();
    let emit = |event: &str| json!({"event_type": event, "payload": {"note": "standup"}});
    let created = api
        .post(
            Some(&tok),
            "/api/v1/schedules",
            json!({"name": "daily standup", "kind": "schedule.emit_event",
                   "payload": emit("standup"), "cron": "0 9 * * 1-5", "priority": "high"}),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["cron"], "0 9 * * 1-5");
    assert_eq!(created.body["priority"], "high");
    assert_eq!(created.body["enabled"], true);
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created.body["next_run_at"].clone()).unwrap();
    assert!(next > chrono::Utc::now());

    let at = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let once = api
        .post(
            Some(&tok),
            "/api/v1/schedules",
            json!({"name": "launch", "kind": "schedule.emit_event",
                   "payload": emit("launch"), "run_at": at}),
        )
        .await
        .expect(201);
    assert!(once.body["cron"].is_null());
    assert_eq!(once.body["next_run_at"], once.body["run_at"]);

    // Bad input: precise 400s and 409s.
    for (body, field) in [
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": emit("a")}),
            "cron",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": emit("a"),
                "cron": "0 * * * *", "run_at": at}),
            "cron",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": emit("a"),
                "cron": "every day"}),
            "cron",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": emit("a"),
                "cron": "*/5 * * * * *"}),
            "cron",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": emit("a"),
                "run_at": "2001-01-01T00:00:00Z"}),
            "run_at",
        ),
        (
            json!({"name": "x", "kind": "maintenance.org_purge", "cron": "0 * * * *"}),
            "kind",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": {"event_type": "Not Valid"},
                "cron": "0 * * * *"}),
            "payload.event_type",
        ),
        (
            json!({"name": "x", "kind": "schedule.emit_event", "payload": {"oops": 1},
                "cron": "0 * * * *"}),
            "payload",
        ),
        (
            json!({"name": "", "kind": "schedule.emit_event", "payload": emit("a"),
                "cron": "0 * * * *"}),
            "name",
        ),
    ] {
        let resp = api
            .post(Some(&tok), "/api/v1/schedules", body.clone())
            .await
            .expect(400);
        assert_eq!(resp.body["error"]["details"][0]["field"], field, "{body}");
    }
    api.post(
        Some(&tok),
        "/api/v1/schedules",
        json!({"name": "launch", "kind": "schedule.emit_event", "payload": emit("x"),
               "cron": "0 * * * *"}),
    )
    .await
    .expect(409);

    // List with cursor, newest first.
    let page = api.get(&tok, "/api/v1/schedules?limit=1").await.expect(200);
    assert_eq!(page.body["items"][0]["name"], "launch");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let page = api
        .get(&tok, &format!("/api/v1/schedules?limit=1&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(page.body["items"][0]["id"], id.as_str());

    // Pause, retime, resume.
    let paused = api
        .patch(
            &tok,
            &format!("/api/v1/schedules/{id}"),
            json!({"enabled": false}),
        )
        .await
        .expect(200);
    assert_eq!(paused.body["enabled"], false);
    let retimed = api
        .patch(
            &tok,
            &format!("/api/v1/schedules/{id}"),
            json!({"cron": "30 8 * * *"}),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            retimed.body["cron"].as_str(),
            retimed.body["enabled"].as_bool()
        ),
        (Some("30 8 * * *"), Some(false)),
        "retiming a paused schedule keeps it paused"
    );
    let resumed = api
        .patch(
            &tok,
            &format!("/api/v1/schedules/{id}"),
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(resumed.body["enabled"], true);
    api.patch(
        &tok,
        &format!("/api/v1/schedules/{id}"),
        json!({"cron": "0 * * * *", "run_at": at}),
    )
    .await
    .expect(400);

    // Isolation and roles.
    let other = api.org_admin("sched-other").await;
    api.get(&other.token, &format!("/api/v1/schedules/{id}"))
        .await
        .expect(404);
    api.delete(&other.token, &format!("/api/v1/schedules/{id}"))
        .await
        .expect(404);
    assert_eq!(
        api.get(&other.token, "/api/v1/schedules")
            .await
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let viewer = api.member(&admin, "viewer").await;
    api.get(&viewer.token, "/api/v1/schedules")
        .await
        .expect(403);
    let operator = api.member(&admin, "operator").await;
    api.get(&operator.token, &format!("/api/v1/schedules/{id}"))
        .await
        .expect(200);
    api.post(
        Some(&operator.token),
        "/api/v1/schedules",
        json!({"name": "ops", "kind": "schedule.emit_event", "payload": emit("ops"),
               "cron": "0 * * * *"}),
    )
    .await
    .expect(201);

    api.delete(&tok, &format!("/api/v1/schedules/{id}"))
        .await
        .expect(204);
    api.get(&tok, &format!("/api/v1/schedules/{id}"))
        .await
        .expect(404);
    api.get(&tok, "/api/v1/schedules/nope").await.expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_records_who_did_it_in_the_event_log() {
    let api = start().await;
    let admin = api.org_admin("jobev").await;
    let id = enqueue(&api, &admin, "export.csv", JobPriority::Low).await;
    api.post(
        Some(&admin.token),
        &format!("/api/v1/jobs/{id}/cancel"),
        json!({}),
    )
    .await
    .expect(200);
    let bus = mc_domain::events::MemoryEventBus::new();
    while mc_domain::events::outbox::forward_once(api.db.pool(), &bus, 100)
        .await
        .unwrap()
        > 0
    {}
    let log = api
        .get(&admin.token, "/api/v1/events?event_type=job.*")
        .await
        .expect(200);
    let items = log.body["items"].as_array().unwrap();
    let types: Vec<&str> = items
        .iter()
        .filter(|e| e["payload"]["job_id"] == id.as_str())
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 2, "{items:?}");
    assert!(types.contains(&"job.enqueued") && types.contains(&"job.cancelled"));
    let cancelled = items
        .iter()
        .find(|e| e["event_type"] == "job.cancelled")
        .unwrap();
    assert_eq!(cancelled["actor"]["type"], "user");
    assert_eq!(cancelled["payload"]["previous_state"], "pending");
}
