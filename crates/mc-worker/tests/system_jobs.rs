//! `mc-worker` installs its schedules and runs the housekeeping jobs: token cleanup,
//! organization purge, event-log partitions and retention; two workers fire each tick once.

use mc_testkit::{
    Spawned, TestDb, common_config, eventually, redis_config, spawn_service, worker_config,
};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

async fn worker(db: &TestDb) -> Spawned {
    let config = worker_config(common_config(db.config(), redis_config()));
    spawn_service(move |l, s| mc_worker::run(config, l, s)).await
}

/// Makes a system schedule due now.
async fn make_due(admin: &PgPool, name: &str) {
    let n = sqlx::query(
        "UPDATE job_schedules SET next_run_at = now() - interval '1 second' WHERE name = $1",
    )
    .bind(name)
    .execute(admin)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1, "schedule {name} is installed");
}

async fn completed(admin: &PgPool, kind: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar(
        "SELECT coalesce(result, 'null'::jsonb) FROM jobs WHERE kind = $1 AND state = 'completed'",
    )
    .bind(kind)
    .fetch_all(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_runs_on_schedule_once_per_tick() {
    let db = TestDb::migrated().await;
    let admin = db.admin_pool().await;
    let first = worker(&db).await;
    let second = worker(&db).await;
    eventually(WAIT, "schedules installed", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM job_schedules WHERE organization_id IS NULL")
                .fetch_one(&admin)
                .await
                .ok()?;
        (n == 5).then_some(())
    })
    .await;

    // Token cleanup: an expired refresh token goes, a live one stays.
    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email) VALUES ($1, 'tokens@example.test')")
        .bind(user)
        .execute(&admin)
        .await
        .unwrap();
    for (hash, age_days) in [("old", 3), ("live", -3)] {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
             VALUES ($1, $1, $2, $3, now() - make_interval(days => $4))",
        )
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(hash)
        .bind(age_days)
        .execute(&admin)
        .await
        .unwrap();
    }
    make_due(&admin, "system.token_cleanup").await;
    let results = eventually(WAIT, "token cleanup ran", || async {
        let r = completed(&admin, "maintenance.token_cleanup").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(results[0]["refresh_tokens"], 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(left, vec!["live"]);

    // Organization purge: past its grace period, with tenant rows in append-only tables.
    let org = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO organizations (id, slug, name, status, deletion_scheduled_at)
         VALUES ($1, 'doomed', 'Doomed', 'pending_deletion', now() - interval '1 hour')",
    )
    .bind(org)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("INSERT INTO audit_log (id, organization_id, actor_type, action) VALUES ($1, $2, 'system', 'seed')")
        .bind(Uuid::now_v7())
        .bind(org)
        .execute(&admin)
        .await
        .unwrap();
    make_due(&admin, "system.org_purge").await;
    eventually(WAIT, "organization purged", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations WHERE id = $1")
            .bind(org)
            .fetch_one(&admin)
            .await
            .ok()?;
        (n == 0).then_some(())
    })
    .await;
    let trail: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'organization.purged' AND target_id = $1",
    )
    .bind(org)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(trail, 1);

    // Event partitions: months ahead exist, a partition past retention is dropped.
    sqlx::query("SELECT ensure_agent_event_partitions('2020-01-15', 1)")
        .execute(&admin)
        .await
        .unwrap();
    make_due(&admin, "system.event_partitions").await;
    let results = eventually(WAIT, "partition maintenance ran", || async {
        let r = completed(&admin, "maintenance.event_partitions").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(
        results[0]["dropped"],
        serde_json::json!(["agent_events_202001"])
    );
    let ahead: Option<String> = sqlx::query_scalar(
        "SELECT to_regclass(format('agent_events_%s', to_char(now() + interval '2 months', 'YYYYMM')))::text",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(ahead.is_some(), "partitions are kept ahead");

    // Suggestion expiry: a pending suggestion past its time expires; a live one stays.
    let org = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, 'expiry', 'Expiry')")
        .bind(org)
        .execute(&admin)
        .await
        .unwrap();
    for (title, minutes) in [("stale", -1), ("fresh", 60)] {
        sqlx::query(
            "INSERT INTO agent_suggestions (id, organization_id, suggestion_type, title, subject,
                 created_by_type, created_by_id, expires_at)
             VALUES ($1, $2, 'idle_agent', $3, $3, 'system', $2, now() + make_interval(mins => $4))",
        )
        .bind(Uuid::now_v7())
        .bind(org)
        .bind(title)
        .bind(minutes)
        .execute(&admin)
        .await
        .unwrap();
    }
    make_due(&admin, "system.expire_suggestions").await;
    let results = eventually(WAIT, "suggestion expiry ran", || async {
        let r = completed(&admin, "proactivity.expire_suggestions").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(results[0]["expired"], 1);
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT title, status FROM agent_suggestions ORDER BY title")
            .fetch_all(&admin)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![
            ("fresh".into(), "pending".into()),
            ("stale".into(), "expired".into())
        ]
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agent_events WHERE organization_id = $1 AND event_type = 'suggestion.updated'",
    )
    .bind(org)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(recorded, 1, "the expiry is in the event log");

    // Two workers, each tick fired once: one job per schedule run above.
    for kind in [
        "proactivity.expire_suggestions",
        "maintenance.token_cleanup",
        "maintenance.org_purge",
        "maintenance.event_partitions",
    ] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = $1")
            .bind(kind)
            .fetch_one(&admin)
            .await
            .unwrap();
        assert_eq!(n, 1, "{kind} fired more than once");
    }
    let next: Vec<bool> = sqlx::query_scalar("SELECT next_run_at > now() FROM job_schedules")
        .fetch_all(&admin)
        .await
        .unwrap();
    assert!(
        next.iter().all(|n| *n),
        "every schedule advanced to a future tick"
    );
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}
