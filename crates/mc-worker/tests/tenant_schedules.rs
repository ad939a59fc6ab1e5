//! An organization's schedule fires in `mc-worker`: its job appends the scheduled event,
//! and the job's own state changes reach the organization's log through the forwarder.

use mc_testkit::{TestDb, common_config, eventually, redis_config, spawn_service, worker_config};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_schedule_fires_its_event_and_the_job_is_logged() {
    let db = TestDb::migrated().await;
    let admin = db.admin_pool().await;
    let org = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, 'tenant-sched', 'T')")
        .bind(org)
        .execute(&admin)
        .await
        .unwrap();
    let schedule = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO job_schedules (id, organization_id, name, kind, payload, cron, next_run_at)
         VALUES ($1, $2, 'standup', 'schedule.emit_event',
                 '{\"event_type\": \"standup\", \"payload\": {\"room\": \"a\"}}',
                 '0 9 * * *', now() - interval '1 second')",
    )
    .bind(schedule)
    .bind(org)
    .execute(&admin)
    .await
    .unwrap();
    let config = worker_config(common_config(db.config(), redis_config()));
    let _worker = spawn_service(move |l, s| mc_worker::run(config, l, s)).await;

    let types = eventually(WAIT, "the scheduled event and the job's events", || async {
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM agent_events WHERE organization_id = $1 ORDER BY seq",
        )
        .bind(org)
        .fetch_all(&admin)
        .await
        .ok()?;
        (types.len() >= 4).then_some(types)
    })
    .await;
    // Job events pass through the outbox, so the job's own event (appended directly)
    // may precede them in the log; among themselves they keep their order.
    let job_types: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("job."))
        .collect();
    assert_eq!(job_types, ["job.enqueued", "job.started", "job.completed"]);
    assert!(types.iter().any(|t| t == "schedule.standup"), "{types:?}");
    let (payload, advanced): (serde_json::Value, bool) = sqlx::query_as(
        "SELECT e.payload, s.next_run_at > now() FROM agent_events e, job_schedules s
         WHERE e.organization_id = $1 AND e.event_type = 'schedule.standup' AND s.id = $2",
    )
    .bind(org)
    .bind(schedule)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(payload["room"], "a");
    assert!(advanced, "the schedule moved to its next tick");
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(outbox, 0, "everything forwarded");
}
