//! The proactivity engine end to end: real events from the API go through the Redis
//! stream (or the catch-up scan) into the rule engine, whose suggestions show up on the
//! SSE stream and can be accepted or dismissed with their effects.

use mc_domain::config::RulesConfig;
use mc_domain::events::{EventBus, RedisEventBus};
use mc_domain::proactivity::consumer::{ConsumerSettings, GROUP, RuleConsumer};
use mc_domain::proactivity::cron::{CronKind, fire_tick};
use mc_domain::proactivity::{Engine, catchup};
use mc_domain::redis::RedisHandle;
use mc_testkit::api::{Session, TestApi};
use mc_testkit::service::Spawned;
use mc_testkit::sse::SseStream;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn run_api(
    config: mc_domain::config::ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(mc_api::run(config, listener, shutdown))
}

fn rules_config(api: &TestApi) -> RulesConfig {
    mc_testkit::rules_config(mc_testkit::common_config(
        api.db.config(),
        api.redis.clone(),
    ))
}

async fn start_rules(api: &TestApi) -> Spawned {
    let config = rules_config(api);
    let svc = mc_testkit::spawn_service(move |l, s| mc_rules::run(config, l, s)).await;
    svc.wait_ready().await;
    svc
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

async fn board(api: &TestApi, s: &Session, body: Value) -> String {
    id(&api
        .post(Some(&s.token), "/api/v1/boards", body)
        .await
        .expect(201)
        .body)
}

async fn task(api: &TestApi, s: &Session, board: &str, body: Value) -> String {
    id(&api
        .post(
            Some(&s.token),
            &format!("/api/v1/boards/{board}/tasks"),
            body,
        )
        .await
        .expect(201)
        .body)
}

async fn move_to(api: &TestApi, s: &Session, task: &str, status: &str) {
    api.post(
        Some(&s.token),
        &format!("/api/v1/tasks/{task}/transition"),
        json!({"status": status}),
    )
    .await
    .expect(200);
}

async fn sql(api: &TestApi, query: &str, binds: &[Uuid]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()));
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(&api.db.admin_pool().await).await.expect(query);
}

/// A pool of this test's own (the test database's pool closes on another runtime when the
/// test ends, and must not hold connections this runtime opened).
fn own_pool(api: &TestApi) -> sqlx::PgPool {
    mc_domain::db::pool(&api.db.config(), "test").expect("pool")
}

fn uuid(s: &str) -> Uuid {
    s.parse().expect("a uuid")
}

/// An agent on `board` and its API key.
async fn agent(api: &TestApi, admin: &Session, board: &str, name: &str) -> (String, String) {
    let (agent, key) = api.agent_with_key(admin, board, name).await;
    (agent.to_string(), key)
}

async fn suggestion_stream(api: &TestApi, s: &Session) -> SseStream {
    SseStream::open(&api.url("/api/v1/suggestions/stream"), Some(&s.token), &[]).await
}

/// The next `suggestion.new` of `kind` on the stream (others are skipped).
async fn next_new(stream: &mut SseStream, kind: &str) -> Value {
    loop {
        let m = stream
            .next(Duration::from_secs(20))
            .await
            .expect("stream open");
        if m.event == "suggestion.new" && m.json()["suggestion"]["suggestion_type"] == kind {
            assert_eq!(m.json()["type"], "suggestion.new");
            assert!(m.id.is_some(), "every frame carries its sequence number");
            return m.json()["suggestion"].clone();
        }
    }
}

async fn suggestions(api: &TestApi, s: &Session, query: &str) -> Vec<Value> {
    api.get(&s.token, &format!("/api/v1/suggestions?limit=100{query}"))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the engine has evaluated (receipt, or cursor past it) every event of
/// `org` of these types in the log, and there are at least `count`: then evaluation is
/// over and the absence of an effect means something.
async fn wait_evaluated(api: &TestApi, org: Uuid, types: &str, count: i64) {
    let pool = api.db.admin_pool().await;
    for _ in 0..200 {
        let (total, done): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE
                    EXISTS (SELECT 1 FROM rule_event_receipts r WHERE r.event_id = e.id)
                    OR e.seq <= coalesce((SELECT evaluated_through FROM rule_cursors c
                                          WHERE c.organization_id = $1), 0))
             FROM agent_events e
             WHERE e.organization_id = $1 AND e.event_type = ANY(string_to_array($2, ','))",
        )
        .bind(org)
        .bind(types)
        .fetch_one(&pool)
        .await
        .unwrap();
        if total >= count && done == total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the engine did not evaluate {count} {types} events");
}

#[tokio::test]
async fn builtin_rules_exist_per_org_can_be_toggled_but_not_deleted() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let rules = api
        .get(&admin.token, "/api/v1/proactive-rules")
        .await
        .expect(200);
    assert_eq!(rules.body["total"], 6);
    let items = rules.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for expected in [
        "Overdue Task Alert",
        "Stale Review Detection",
        "WIP Limit Warning",
        "Unblocking Opportunity",
        "Idle Agent Detection",
        "Auto-create Follow-up",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        items
            .iter()
            .all(|r| r["is_builtin"] == true && r["is_enabled"] == true)
    );
    let wip = items
        .iter()
        .find(|r| r["name"] == "WIP Limit Warning")
        .unwrap();
    let path = format!("/api/v1/proactive-rules/{}", id(wip));
    assert_eq!(
        api.delete(&admin.token, &path).await.expect(409).code(),
        "conflict"
    );
    api.patch(&admin.token, &path, json!({"conditions": {}}))
        .await
        .expect(409);
    let patched = api
        .patch(&admin.token, &path, json!({"cooldown_seconds": 60}))
        .await
        .expect(200);
    assert_eq!(patched.body["cooldown_seconds"], 60);
    let toggled = api
        .post(Some(&admin.token), &format!("{path}/toggle"), json!({}))
        .await
        .expect(200);
    assert_eq!(toggled.body, json!({"is_enabled": false}));
    let disabled = api
        .get(&admin.token, "/api/v1/proactive-rules?is_enabled=false")
        .await
        .expect(200);
    assert_eq!(disabled.body["total"], 1);
    // Even the database refuses to lose a builtin rule.
    let refused = sqlx::query("DELETE FROM proactive_rules WHERE id = $1")
        .bind(uuid(&id(wip)))
        .execute(&api.db.admin_pool().await)
        .await;
    assert!(refused.is_err());
    // A viewer reads rules but cannot change them.
    let viewer = api.member(&admin, "viewer").await;
    api.get(&viewer.token, "/api/v1/proactive-rules")
        .await
        .expect(200);
    api.post(Some(&viewer.token), &format!("{path}/toggle"), json!({}))
        .await
        .expect(403);
}

#[tokio::test]
async fn bad_rules_get_precise_errors() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let other = api.org_admin("other").await;
    let foreign_board = board(&api, &other, json!({"name": "Theirs"})).await;
    let ok_action = json!({"suggestion_type": "blocked_task", "title": "Blocked: {task.title}"});
    let cases = [
        (
            json!({"name": "r", "trigger_event": "task.exploded", "action_type": "create_suggestion", "action_config": ok_action}),
            "trigger_event",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": ok_action,
                "conditions": {"all": [{"field": "task.status", "op": "equals", "value": "todo"}]}}),
            "conditions.all[0].op",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": ok_action,
                "conditions": {"any": [{"field": "task.mood", "op": "eq", "value": "sad"}]}}),
            "conditions.any[0].field",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": ok_action,
                "conditions": {"all": "nope"}}),
            "conditions",
        ),
        (
            json!({"name": "r", "trigger_event": "cron.hourly", "action_type": "create_suggestion", "action_config": ok_action}),
            "conditions.for_each",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": {"title": "x"}}),
            "action_config.suggestion_type",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "send_notification", "action_config": {}}),
            "action_config.title",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": ok_action,
                "board_id": foreign_board}),
            "board_id",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "auto_assign", "action_config": {"agent_id": Uuid::now_v7()}}),
            "action_config.agent_id",
        ),
        (
            json!({"name": "r", "trigger_event": "task.created", "action_type": "create_suggestion", "action_config": ok_action,
                "cooldown_seconds": -1}),
            "cooldown_seconds",
        ),
    ];
    for (body, field) in cases {
        let r = api
            .post(Some(&admin.token), "/api/v1/proactive-rules", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.code(), "invalid_request");
        assert_eq!(r.body["error"]["details"][0]["field"], field, "{}", r.body);
    }
    let unknown = api
        .post(
            Some(&admin.token),
            "/api/v1/proactive-rules",
            json!({"name": "r", "trigger_event": "task.created", "action_type": "explode"}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    let created = api
        .post(Some(&admin.token), "/api/v1/proactive-rules",
              json!({"name": "Blocked", "trigger_event": "task.status_changed", "action_type": "create_suggestion",
                     "action_config": ok_action,
                     "conditions": {"field": "event.payload.to", "op": "eq", "value": "blocked"}}))
        .await
        .expect(201);
    assert_eq!(
        created.body["cooldown_seconds"], 3600,
        "the configured default"
    );
    let path = format!("/api/v1/proactive-rules/{}", id(&created.body));
    api.patch(&admin.token, &path, json!({"conditions": {"not": 1}}))
        .await
        .expect(400);
    api.get(&other.token, &path).await.expect(404);
    api.delete(&other.token, &path).await.expect(404);
    api.delete(&admin.token, &path).await.expect(204);
    api.get(&admin.token, &path).await.expect(404);
}

#[tokio::test]
async fn task_rules_fire_on_status_changes_and_accepting_runs_their_actions() {
    let api = TestApi::start(run_api).await;
    let rules = start_rules(&api).await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap().0;
    let mut stream = suggestion_stream(&api, &admin).await;
    let b = board(&api, &admin, json!({"name": "Launch", "max_agents": 1})).await;
    let (builder, _) = agent(&api, &admin, &b, "Builder").await;

    // WIP limit: more than max_agents * 3 tasks in progress.
    let mut wip = Vec::new();
    for i in 0..4 {
        wip.push(task(&api, &admin, &b, json!({"title": format!("wip {i}")})).await);
    }
    for t in &wip {
        move_to(&api, &admin, t, "in_progress").await;
    }
    let rebalance = next_new(&mut stream, "workload_rebalance").await;
    assert_eq!(rebalance["board_id"], b.as_str());
    assert_eq!(rebalance["subject"], format!("board:{b}"));
    assert!(rebalance["title"].as_str().unwrap().contains("Launch"));

    // Unblocking and follow-up: a done task with a dependent and a follow-up note.
    let blocker = task(
        &api,
        &admin,
        &b,
        json!({"title": "Write the spec; follow up with legal",
                                                "assignee_agent_id": builder}),
    )
    .await;
    let waiting = task(&api, &admin, &b, json!({"title": "Build it"})).await;
    api.post(
        Some(&admin.token),
        &format!("/api/v1/tasks/{waiting}/dependencies"),
        json!({"depends_on_task_id": blocker}),
    )
    .await
    .expect(200);
    move_to(&api, &admin, &blocker, "done").await;
    // Both rules fire on the same event, in either order.
    let mut fired = std::collections::HashMap::new();
    while fired.len() < 2 {
        let m = stream.next(Duration::from_secs(20)).await.unwrap();
        if m.event == "suggestion.new" {
            let s = m.json()["suggestion"].clone();
            fired.insert(s["suggestion_type"].as_str().unwrap().to_owned(), s);
        }
    }
    let unblock = fired["task_reassign"].clone();
    assert_eq!(unblock["payload"]["action"], "assign_tasks");
    assert_eq!(unblock["payload"]["task_ids"], json!([waiting]));
    assert_eq!(unblock["payload"]["agent_id"], builder.as_str());
    let follow = fired["task_create"].clone();
    assert_eq!(
        follow["payload"]["title"],
        "Follow up: Write the spec; follow up with legal"
    );

    // Accepting runs the action in the same transaction and records the result.
    let accepted = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/suggestions/{}/accept", id(&unblock)),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(accepted.body["ok"], true);
    assert_eq!(accepted.body["suggestion"]["status"], "executed");
    assert_eq!(
        accepted.body["action_result"]["assigned_task_ids"],
        json!([waiting])
    );
    let built = api
        .get(&admin.token, &format!("/api/v1/tasks/{waiting}"))
        .await
        .expect(200);
    assert_eq!(built.body["assignee_agent_id"], builder.as_str());
    let updated = loop {
        let m = stream.next(Duration::from_secs(20)).await.unwrap();
        if m.event == "suggestion.updated" {
            break m.json();
        }
    };
    assert_eq!(updated["suggestion"]["id"], unblock["id"]);
    assert_eq!(updated["suggestion"]["status"], "executed");
    // A resolved suggestion cannot be resolved again.
    api.post(
        Some(&admin.token),
        &format!("/api/v1/suggestions/{}/accept", id(&unblock)),
        json!({}),
    )
    .await
    .expect(409);
    api.post(
        Some(&admin.token),
        &format!("/api/v1/suggestions/{}/dismiss", id(&unblock)),
        json!({}),
    )
    .await
    .expect(409);

    let created = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/suggestions/{}/accept", id(&follow)),
            json!({}),
        )
        .await
        .expect(200);
    let new_task = created.body["action_result"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = api
        .get(&admin.token, &format!("/api/v1/tasks/{new_task}"))
        .await
        .expect(200);
    assert_eq!(
        t.body["title"],
        "Follow up: Write the spec; follow up with legal"
    );
    assert_eq!(t.body["board_id"], b.as_str());

    // Dismissing keeps the reason; an operator may act, a viewer may not.
    let viewer = api.member(&admin, "viewer").await;
    api.post(
        Some(&viewer.token),
        &format!("/api/v1/suggestions/{}/dismiss", id(&rebalance)),
        json!({}),
    )
    .await
    .expect(403);
    let operator = api.member(&admin, "operator").await;
    let dismissed = api
        .post(
            Some(&operator.token),
            &format!("/api/v1/suggestions/{}/dismiss", id(&rebalance)),
            json!({"reason": "expected crunch"}),
        )
        .await
        .expect(200);
    assert_eq!(dismissed.body["suggestion"]["status"], "dismissed");
    assert_eq!(
        dismissed.body["suggestion"]["resolution_reason"],
        "expected crunch"
    );

    // Cooldown: the WIP rule does not fire again for the same board within the hour,
    // although nothing is pending for it any more.
    let extra = task(&api, &admin, &b, json!({"title": "one more"})).await;
    move_to(&api, &admin, &extra, "in_progress").await;
    wait_evaluated(&api, org, "task.status_changed", 6).await;
    let again = suggestions(&api, &admin, "&suggestion_type=workload_rebalance").await;
    assert_eq!(again.len(), 1, "{again:?}");

    // When a rule last fired is derived from its firings, and firing does not count as
    // changing the rule.
    let wip_rule = api
        .get(
            &admin.token,
            "/api/v1/proactive-rules?trigger_event=task.status_changed",
        )
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "WIP Limit Warning")
        .cloned()
        .unwrap();
    assert!(wip_rule["last_fired_at"].is_string(), "{wip_rule}");
    assert_eq!(wip_rule["updated_at"], wip_rule["created_at"]);

    // The event log records where suggestions came from; filters work.
    let pending = suggestions(&api, &admin, "&status=pending").await;
    assert!(pending.is_empty(), "{pending:?}");
    let by_board = api
        .get(&admin.token, &format!("/api/v1/suggestions?board_id={b}"))
        .await
        .expect(200);
    assert_eq!(by_board.body["total"], 3);
    rules.stop().await.unwrap();
}

#[tokio::test]
async fn cron_rules_find_overdue_and_stale_tasks_and_ticks_fire_once() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let b = board(&api, &admin, json!({"name": "Ops"})).await;
    let late = task(
        &api,
        &admin,
        &b,
        json!({"title": "File taxes", "due_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    task(
        &api,
        &admin,
        &b,
        json!({"title": "Future", "due_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    let review = task(&api, &admin, &b, json!({"title": "Review the PR"})).await;
    move_to(&api, &admin, &review, "review").await;
    sql(
        &api,
        "UPDATE tasks SET status_changed_at = now() - interval '25 hours' WHERE id = $1",
        &[uuid(&review)],
    )
    .await;
    let fresh_review = task(&api, &admin, &b, json!({"title": "Fresh review"})).await;
    move_to(&api, &admin, &fresh_review, "review").await;

    let mut stream = suggestion_stream(&api, &admin).await;
    let rules = start_rules(&api).await;
    let bus: Arc<dyn EventBus> =
        Arc::new(RedisEventBus::new(RedisHandle::new(&api.redis).unwrap()));
    let pool = own_pool(&api);
    let period = CronKind::Daily.period_start(chrono::Utc::now()) + chrono::Duration::days(365);
    // Two engines race for the same tick: exactly one fires it.
    let (a, b2) = tokio::join!(
        fire_tick(&pool, bus.as_ref(), CronKind::Daily, period),
        fire_tick(&pool, bus.as_ref(), CronKind::Daily, period)
    );
    let fired: Vec<usize> = [a.unwrap(), b2.unwrap()].into_iter().flatten().collect();
    assert_eq!(fired, vec![1], "one tick, reaching the one organization");
    fire_tick(&pool, bus.as_ref(), CronKind::Hourly, period)
        .await
        .unwrap()
        .unwrap();
    // The engine's own ticker also fires the current periods when it starts: whichever
    // comes first, each suggestion appears once.
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let m = stream.next(Duration::from_secs(20)).await.unwrap();
        if m.event == "suggestion.new" {
            let s = m.json()["suggestion"].clone();
            seen.insert(s["suggestion_type"].as_str().unwrap().to_owned(), s);
        }
    }
    let overdue = seen["deadline_alert"].clone();
    let stale = seen["quality_concern"].clone();
    assert_eq!(overdue["task_id"], late.as_str());
    assert_eq!(overdue["priority"], "high");
    assert!(overdue["title"].as_str().unwrap().contains("File taxes"));
    assert_eq!(stale["task_id"], review.as_str());
    let org = admin.org_id.unwrap().0;
    wait_evaluated(&api, org, "cron.hourly,cron.daily", 2).await;
    let concerns = suggestions(&api, &admin, "&suggestion_type=quality_concern").await;
    assert_eq!(
        concerns.len(),
        1,
        "the fresh review is not stale: {concerns:?}"
    );
    let alerts = suggestions(&api, &admin, "&suggestion_type=deadline_alert").await;
    assert_eq!(alerts.len(), 1, "the future task is not overdue");

    // Accepting the deadline alert raises the task's priority.
    api.post(
        Some(&admin.token),
        &format!("/api/v1/suggestions/{}/accept", id(&overdue)),
        json!({}),
    )
    .await
    .expect(200);
    let t = api
        .get(&admin.token, &format!("/api/v1/tasks/{late}"))
        .await
        .expect(200);
    assert_eq!(t.body["priority"], "critical");

    // The next day's tick does not duplicate the pending concern, and cooldowns hold.
    fire_tick(
        &pool,
        bus.as_ref(),
        CronKind::Hourly,
        period + chrono::Duration::hours(1),
    )
    .await
    .unwrap()
    .unwrap();
    wait_evaluated(&api, org, "cron.hourly,cron.daily", 3).await;
    assert_eq!(
        suggestions(&api, &admin, "&suggestion_type=quality_concern")
            .await
            .len(),
        1
    );

    // Expiry: a suggestion past its time becomes expired, and the stream says so.
    sql(
        &api,
        "UPDATE agent_suggestions SET expires_at = now() - interval '1 minute' WHERE id = $1",
        &[uuid(&id(&stale))],
    )
    .await;
    let expired = mc_domain::proactivity::expire_suggestions(&pool, bus.as_ref(), 100)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let update = loop {
        let m = stream.next(Duration::from_secs(20)).await.unwrap();
        if m.event == "suggestion.updated" && m.json()["suggestion"]["id"] == stale["id"] {
            break m.json();
        }
    };
    assert_eq!(update["suggestion"]["status"], "expired");
    rules.stop().await.unwrap();
}

#[tokio::test]
async fn agents_report_events_and_make_suggestions() {
    let api = TestApi::start(run_api).await;
    let rules = start_rules(&api).await;
    let admin = api.org_admin("acme").await;
    let mut stream = suggestion_stream(&api, &admin).await;
    let b = board(&api, &admin, json!({"name": "Support"})).await;
    let (idle, key) = agent(&api, &admin, &b, "Idler").await;
    let waiting = task(
        &api,
        &admin,
        &b,
        json!({"title": "Answer the ticket", "priority": "high"}),
    )
    .await;
    task(
        &api,
        &admin,
        &b,
        json!({"title": "Less urgent", "priority": "low"}),
    )
    .await;
    sql(
        &api,
        "UPDATE agents SET created_at = now() - interval '2 hours' WHERE id = $1",
        &[uuid(&idle)],
    )
    .await;

    let hb = api
        .post(
            Some(&key),
            "/api/v1/agent/events",
            json!({"event_type": "agent.heartbeat", "payload": {"load": 0}}),
        )
        .await
        .expect(201);
    assert_eq!(hb.body["agent_id"], idle.as_str());
    let suggestion = next_new(&mut stream, "task_reassign").await;
    assert_eq!(suggestion["subject"], format!("agent:{idle}"));
    assert_eq!(suggestion["payload"]["task_ids"], json!([waiting]));
    api.post(
        Some(&admin.token),
        &format!("/api/v1/suggestions/{}/accept", id(&suggestion)),
        json!({}),
    )
    .await
    .expect(200);
    let t = api
        .get(&admin.token, &format!("/api/v1/tasks/{waiting}"))
        .await
        .expect(200);
    assert_eq!(t.body["assignee_agent_id"], idle.as_str());

    // Bad reports are 4xx with the reason.
    let unknown = api
        .post(
            Some(&key),
            "/api/v1/agent/events",
            json!({"event_type": "agent.exploded"}),
        )
        .await
        .expect(400);
    assert!(
        unknown.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("agent.heartbeat")
    );
    api.post(
        Some(&key),
        "/api/v1/agent/events",
        json!({"event_type": "agent.heartbeat", "payload": [1]}),
    )
    .await
    .expect(400);
    api.post(
        Some(&key),
        "/api/v1/agent/events",
        json!({"event_type": "agent.heartbeat", "task_id": Uuid::now_v7()}),
    )
    .await
    .expect(400);
    api.post(
        Some(&admin.token),
        "/api/v1/agent/events",
        json!({"event_type": "agent.heartbeat"}),
    )
    .await
    .expect(403);

    // An agent's own suggestion; the same one again comes back instead of a duplicate.
    let body = json!({"suggestion_type": "blocked_task", "title": "I am stuck on the ticket",
                      "confidence": 0.9, "priority": "high", "task_id": waiting,
                      "payload": {"action": "set_priority", "task_id": waiting, "priority": "critical"}});
    let made = api
        .post(Some(&key), "/api/v1/agent/suggestions", body.clone())
        .await
        .expect(201);
    assert_eq!(made.body["board_id"], b.as_str());
    assert_eq!(made.body["created_by_type"], "agent");
    let again = api
        .post(Some(&key), "/api/v1/agent/suggestions", body)
        .await
        .expect(200);
    assert_eq!(again.body["id"], made.body["id"]);
    let seen = next_new(&mut stream, "blocked_task").await;
    assert_eq!(seen["id"], made.body["id"]);
    for bad in [
        json!({"suggestion_type": "nope", "title": "x"}),
        json!({"suggestion_type": "blocked_task", "title": "x", "confidence": 3}),
        json!({"suggestion_type": "blocked_task", "title": "x", "payload": {"action": "launch"}}),
        json!({"suggestion_type": "blocked_task", "title": "x", "payload": {"action": "create_task", "board_id": Uuid::now_v7(), "title": "t"}}),
        json!({"suggestion_type": "blocked_task", "title": ""}),
    ] {
        let r = api
            .post(Some(&key), "/api/v1/agent/suggestions", bad.clone())
            .await;
        assert_eq!(r.status, 400, "{bad} -> {}", r.body);
    }
    rules.stop().await.unwrap();
}

#[tokio::test]
async fn organizations_cannot_see_or_act_on_each_others_suggestions() {
    let api = TestApi::start(run_api).await;
    let rules = start_rules(&api).await;
    let admin = api.org_admin("acme").await;
    let other = api.org_admin("other").await;
    let mut stream = suggestion_stream(&api, &admin).await;
    let mut other_stream = suggestion_stream(&api, &other).await;
    let b = board(&api, &admin, json!({"name": "Secret"})).await;
    let (_, key) = agent(&api, &admin, &b, "Spy").await;
    let s = api
        .post(
            Some(&key),
            "/api/v1/agent/suggestions",
            json!({"suggestion_type": "idle_agent", "title": "Mine", "board_id": b}),
        )
        .await
        .expect(201);
    next_new(&mut stream, "idle_agent").await;
    let path = format!("/api/v1/suggestions/{}", id(&s.body));
    api.get(&other.token, &path).await.expect(404);
    api.post(Some(&other.token), &format!("{path}/accept"), json!({}))
        .await
        .expect(404);
    api.post(Some(&other.token), &format!("{path}/dismiss"), json!({}))
        .await
        .expect(404);
    assert!(suggestions(&api, &other, "").await.is_empty());
    // The other organization's stream stays quiet (its own event comes first).
    let theirs = board(&api, &other, json!({"name": "Theirs"})).await;
    let (_, other_key) = agent(&api, &other, &theirs, "Other").await;
    api.post(
        Some(&other_key),
        "/api/v1/agent/suggestions",
        json!({"suggestion_type": "idle_agent", "title": "Theirs", "board_id": theirs}),
    )
    .await
    .expect(201);
    let first = next_new(&mut other_stream, "idle_agent").await;
    assert_eq!(first["title"], "Theirs");
    // An agent cannot point at another organization's board or task.
    api.post(
        Some(&other_key),
        "/api/v1/agent/suggestions",
        json!({"suggestion_type": "idle_agent", "title": "x", "board_id": b}),
    )
    .await
    .expect(400);
    api.post(
        Some(&other_key),
        "/api/v1/agent/events",
        json!({"event_type": "agent.heartbeat", "board_id": b}),
    )
    .await
    .expect(400);
    rules.stop().await.unwrap();
}

/// A custom rule that records one notification per created task and never cools down:
/// counting notifications counts evaluations.
async fn counting_rule(api: &TestApi, admin: &Session) {
    api.post(
        Some(&admin.token),
        "/api/v1/proactive-rules",
        json!({"name": "Count", "trigger_event": "task.created", "action_type": "send_notification",
                    "action_config": {"title": "New task {task.title}", "subject": "task"},
                    "cooldown_seconds": 0}),
    )
    .await
    .expect(201);
}

async fn notifications(api: &TestApi, org: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT subject) FROM notifications WHERE organization_id = $1",
    )
    .bind(org)
    .fetch_one(&api.db.admin_pool().await)
    .await
    .unwrap()
}

fn consumer(api: &TestApi, infra_pool: sqlx::PgPool, name: &str) -> RuleConsumer {
    let redis = RedisHandle::new(&api.redis).unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(redis.clone()));
    RuleConsumer::new(
        Engine::new(infra_pool, bus, Duration::from_secs(3600)),
        redis,
        name.to_owned(),
        ConsumerSettings {
            batch_size: 7,
            reclaim_idle: Duration::from_millis(300),
            max_deliveries: 3,
        },
    )
}

#[tokio::test]
async fn a_dead_consumers_events_are_taken_over_without_loss_or_repeats() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap().0;
    counting_rule(&api, &admin).await;
    let pool = own_pool(&api);
    let alive = consumer(&api, pool.clone(), "alive");
    alive.ensure_group().await.unwrap();
    let b = board(&api, &admin, json!({"name": "Busy"})).await;
    let n = 40;
    for i in 0..n {
        task(&api, &admin, &b, json!({"title": format!("t{i}")})).await;
    }
    // The doomed consumer takes 14 entries and dies without acknowledging; for half of
    // them it had even committed the evaluation (it died between commit and XACK).
    let redis = RedisHandle::new(&api.redis).unwrap();
    let mut conn = redis.conn();
    let taken: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("doomed")
        .arg("COUNT")
        .arg(14)
        .arg("STREAMS")
        .arg(redis.key("events"))
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entries: Vec<_> = taken.keys.into_iter().flat_map(|k| k.ids).collect();
    assert_eq!(entries.len(), 14);
    let half: Vec<mc_domain::events::Event> = entries[..7]
        .iter()
        .map(|e| serde_json::from_str(&e.get::<String>("event").unwrap()).unwrap())
        .collect();
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(redis.clone()));
    Engine::new(pool.clone(), bus, Duration::from_secs(3600))
        .evaluate(&half)
        .await
        .unwrap();

    // The survivor drains what is left, then takes over the dead one's entries.
    loop {
        let pass = alive.poll_once().await.unwrap();
        if pass.acked == 0 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    while alive.reclaim().await.unwrap().acked > 0 {}
    let (total, distinct) = notifications(&api, org).await;
    assert_eq!(
        (total, distinct),
        (n, n),
        "every task evaluated exactly once"
    );
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(redis.key("events"))
        .arg(GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.count(), 0, "nothing left unacknowledged");
    // The dead consumer, holding nothing now, is removed from the group once idle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        alive
            .forget_departed(Duration::from_millis(10))
            .await
            .unwrap(),
        1
    );
    let names: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(redis.key("events"))
        .arg(GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(names.len(), 1, "only the live consumer remains");
}

#[tokio::test]
async fn the_engine_catches_up_from_the_log_after_downtime_and_skips_poison() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap().0;
    counting_rule(&api, &admin).await;
    let b = board(&api, &admin, json!({"name": "Quiet"})).await;
    // The engine is down and Redis loses the stream: only the log has these events.
    for i in 0..12 {
        task(&api, &admin, &b, json!({"title": format!("t{i}")})).await;
    }
    let redis = RedisHandle::new(&api.redis).unwrap();
    let mut conn = redis.conn();
    let _: () = redis::cmd("DEL")
        .arg(redis.key("events"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let rules = start_rules(&api).await;
    wait_evaluated(&api, org, "task.created", 12).await;
    assert_eq!(notifications(&api, org).await, (12, 12));

    // A late redelivery of events the scan already handled (whose receipts it pruned as
    // the cursor passed them) evaluates nothing again.
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(redis.clone()));
    let engine = Engine::new(own_pool(&api), bus, Duration::from_secs(3600));
    let logged: Vec<mc_domain::events::Event> = serde_json::from_value(
        api.get(
            &admin.token,
            "/api/v1/events?event_type=task.created&limit=100",
        )
        .await
        .expect(200)
        .body["items"]
            .clone(),
    )
    .unwrap();
    assert_eq!(logged.len(), 12);
    let pool = api.db.admin_pool().await;
    let mut receipts: i64 = -1;
    for _ in 0..100 {
        receipts = sqlx::query_scalar("SELECT count(*) FROM rule_event_receipts WHERE organization_id = $1 AND outcome = 'evaluated' AND seq <= (SELECT max(seq) FROM agent_events WHERE organization_id = $1 AND event_type = 'task.created')")
            .bind(org)
            .fetch_one(&pool)
            .await
            .unwrap();
        if receipts == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        receipts, 0,
        "the cursor passed the events and their receipts were pruned"
    );
    let again = engine.evaluate(&logged).await.unwrap();
    assert_eq!((again.evaluated, again.duplicates), (0, 12));
    assert_eq!(notifications(&api, org).await, (12, 12));

    // An auto_assign whose agent is gone assigns nothing and is not a failure.
    let gone = api.agent_with_key(&admin, &b, "Gone").await.0;
    api.post(Some(&admin.token), "/api/v1/proactive-rules",
             json!({"name": "Assign to a ghost", "trigger_event": "task.created", "action_type": "auto_assign",
                    "conditions": {"field": "task.title", "op": "eq", "value": "haunted"},
                    "action_config": {"agent_id": gone}, "cooldown_seconds": 0}))
        .await
        .expect(201);
    sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(gone)
        .execute(&pool)
        .await
        .unwrap();
    let haunted = task(&api, &admin, &b, json!({"title": "haunted"})).await;
    wait_evaluated(&api, org, "task.created", 13).await;
    assert_eq!(notifications(&api, org).await.0, 13);
    let t = api
        .get(&admin.token, &format!("/api/v1/tasks/{haunted}"))
        .await
        .expect(200);
    assert!(t.body["assignee_agent_id"].is_null());

    // An unreadable entry and an event whose evaluation keeps failing do not block the
    // stream: the first is skipped, the second given up on after its deliveries. The
    // failing one is a suggestion about a board deleted before the engine saw the event.
    rules.stop().await.unwrap();
    let _: () = redis::cmd("XADD")
        .arg(redis.key("events"))
        .arg("*")
        .arg("event")
        .arg("{garbage")
        .query_async(&mut conn)
        .await
        .unwrap();
    api.post(Some(&admin.token), "/api/v1/proactive-rules",
             json!({"name": "Cursed", "trigger_event": "task.created", "action_type": "create_suggestion",
                    "conditions": {"field": "event.payload.task.title", "op": "eq", "value": "cursed"},
                    "action_config": {"suggestion_type": "blocked_task", "title": "cursed"}, "cooldown_seconds": 0}))
        .await
        .expect(201);
    let doomed = board(&api, &admin, json!({"name": "Doomed"})).await;
    let poisoned = task(&api, &admin, &doomed, json!({"title": "cursed"})).await;
    api.delete(&admin.token, &format!("/api/v1/boards/{doomed}"))
        .await
        .expect(204);
    let after = task(&api, &admin, &b, json!({"title": "after"})).await;
    let rules = start_rules(&api).await;
    // The cursor passes both (their receipts are pruned with it), the metrics count them,
    // and the failing one left nothing behind.
    wait_evaluated(&api, org, "task.created", 15).await;
    let metrics = reqwest::get(rules.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let poison = |reason: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("mc_rules_poison_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(poison("unreadable"), 1.0, "{metrics}");
    assert_eq!(poison("failing"), 1.0, "{metrics}");
    let cursed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM agent_suggestions WHERE title = 'cursed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(cursed, 0, "the cursed event ({poisoned}) recorded nothing");
    let (total, _) = notifications(&api, org).await;
    assert_eq!(
        total, 14,
        "the task after the poison one was evaluated ({after})"
    );
    rules.stop().await.unwrap();

    // Catch-up with nothing missing is a no-op.
    let ages = catchup::CatchUpAges {
        grace: Duration::ZERO,
        give_up_after: Duration::from_secs(3600),
        max_age: Duration::from_secs(3600),
    };
    let report = catchup::catch_up(&engine, ages).await.unwrap();
    assert_eq!(report.evaluated, 0);
}

#[tokio::test]
async fn auto_assign_gives_a_new_task_to_the_least_loaded_agent() {
    let api = TestApi::start(run_api).await;
    let rules = start_rules(&api).await;
    let admin = api.org_admin("acme").await;
    let b = board(&api, &admin, json!({"name": "Intake"})).await;
    let (busy, _) = agent(&api, &admin, &b, "Busy").await;
    let (free, _) = agent(&api, &admin, &b, "Free").await;
    task(
        &api,
        &admin,
        &b,
        json!({"title": "already busy", "assignee_agent_id": busy}),
    )
    .await;
    api.post(Some(&admin.token), "/api/v1/proactive-rules",
             json!({"name": "Route intake", "trigger_event": "task.created", "action_type": "auto_assign",
                    "conditions": {"not": {"field": "task.assignee_agent_id", "op": "exists"}},
                    "board_id": b, "cooldown_seconds": 0}))
        .await
        .expect(201);
    let fresh = task(&api, &admin, &b, json!({"title": "route me"})).await;
    let org = admin.org_id.unwrap().0;
    wait_evaluated(&api, org, "task.created", 2).await;
    let t = api
        .get(&admin.token, &format!("/api/v1/tasks/{fresh}"))
        .await
        .expect(200);
    assert_eq!(
        t.body["assignee_agent_id"],
        free.as_str(),
        "the agent with fewer open tasks"
    );
    let assigned = api
        .get(
            &admin.token,
            &format!("/api/v1/events?event_type=task.assigned&task_id={fresh}"),
        )
        .await
        .expect(200);
    let item = &assigned.body["items"][0];
    assert_eq!(item["actor"]["type"], "system");
    assert_eq!(item["actor"]["name"], "rule: Route intake");
    rules.stop().await.unwrap();
}

#[tokio::test]
async fn the_suggestion_stream_replays_from_last_event_id() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let b = board(&api, &admin, json!({"name": "Replay"})).await;
    let (_, key) = agent(&api, &admin, &b, "Advisor").await;
    let mut live = suggestion_stream(&api, &admin).await;
    let mut made = Vec::new();
    for i in 0..3 {
        let t = task(&api, &admin, &b, json!({"title": format!("t{i}")})).await;
        made.push(id(&api
            .post(
                Some(&key),
                "/api/v1/agent/suggestions",
                json!({"suggestion_type": "blocked_task", "title": format!("s{i}"), "task_id": t}),
            )
            .await
            .expect(201)
            .body));
    }
    let mut ids = Vec::new();
    for expected in &made {
        let m = live.next(Duration::from_secs(10)).await.unwrap();
        assert_eq!(m.event, "suggestion.new");
        assert_eq!(&m.json()["suggestion"]["id"], expected);
        ids.push(m.id.unwrap());
    }
    api.post(
        Some(&admin.token),
        &format!("/api/v1/suggestions/{}/dismiss", made[2]),
        json!({}),
    )
    .await
    .expect(200);
    // A client that saw only the first reconnects: it gets the rest, in order, then live.
    let mut resumed = SseStream::open(
        &api.url("/api/v1/suggestions/stream"),
        Some(&admin.token),
        &[("last-event-id", ids[0].as_str())],
    )
    .await;
    let second = resumed.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (second.event.as_str(), second.id.as_deref()),
        ("suggestion.new", Some(ids[1].as_str()))
    );
    let third = resumed.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(third.json()["suggestion"]["id"], made[2]);
    let dismissed = resumed.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(dismissed.event, "suggestion.updated");
    assert_eq!(dismissed.json()["suggestion"]["status"], "dismissed");
    // Paging through the list.
    let page = api
        .get(&admin.token, "/api/v1/suggestions?limit=2")
        .await
        .expect(200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["total"], 3);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = api
        .get(
            &admin.token,
            &format!("/api/v1/suggestions?limit=2&cursor={cursor}"),
        )
        .await
        .expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["items"][0]["id"], made[0], "newest first");
}

#[tokio::test]
async fn facts_read_after_a_rule_changed_a_task_in_the_same_batch_are_current() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap().0;
    let b = board(&api, &admin, json!({"name": "Batch"})).await;
    let (worker, _) = agent(&api, &admin, &b, "Worker").await;
    api.post(
        Some(&admin.token),
        "/api/v1/proactive-rules",
        json!({"name": "Route", "trigger_event": "task.created", "action_type": "auto_assign",
                    "action_config": {"agent_id": worker}, "cooldown_seconds": 0}),
    )
    .await
    .expect(201);
    api.post(
        Some(&admin.token),
        "/api/v1/proactive-rules",
        json!({"name": "Still unassigned", "trigger_event": "task.updated",
                    "action_type": "send_notification",
                    "conditions": {"not": {"field": "task.assignee_agent_id", "op": "exists"}},
                    "action_config": {"title": "unassigned {task.title}", "subject": "task"},
                    "cooldown_seconds": 0}),
    )
    .await
    .expect(201);
    let pool = own_pool(&api);
    let engine = consumer(&api, pool, "batch");
    engine.ensure_group().await.unwrap();
    // Created, then edited before the engine looks: both events arrive in one batch, and
    // the batch's facts (the task unassigned) were read before the first event's rule
    // assigned it.
    let t = task(&api, &admin, &b, json!({"title": "route me"})).await;
    api.patch(
        &admin.token,
        &format!("/api/v1/tasks/{t}"),
        json!({"title": "route me, edited"}),
    )
    .await
    .expect(200);
    let pass = engine.poll_once().await.unwrap();
    assert!(pass.acked >= 2, "both events in one pass: {pass:?}");
    let assigned = api
        .get(&admin.token, &format!("/api/v1/tasks/{t}"))
        .await
        .expect(200);
    assert_eq!(assigned.body["assignee_agent_id"], worker.as_str());
    assert_eq!(
        notifications(&api, org).await,
        (0, 0),
        "the edit was judged on the task as the first rule left it"
    );
}

#[tokio::test]
async fn a_backlog_is_drained_in_full_batches_read_ahead_exactly_once() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("acme").await;
    let org = admin.org_id.unwrap().0;
    counting_rule(&api, &admin).await;
    let pool = own_pool(&api);
    // Batches of 7 against a backlog of 40: every batch but the last comes back full, so
    // each is evaluated while the next is read.
    let engine = consumer(&api, pool, "reader");
    engine.ensure_group().await.unwrap();
    let b = board(&api, &admin, json!({"name": "Backlog"})).await;
    let n = 40;
    for i in 0..n {
        task(&api, &admin, &b, json!({"title": format!("t{i}")})).await;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(engine.run(shutdown.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while notifications(&api, org).await.0 < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the backlog was not drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(notifications(&api, org).await, (n, n), "each task once");
    let redis = RedisHandle::new(&api.redis).unwrap();
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(redis.key("events"))
        .arg(GROUP)
        .query_async(&mut redis.conn())
        .await
        .unwrap();
    assert_eq!(
        pending.count(),
        0,
        "nothing read ahead was left unacknowledged"
    );
}
