//! Boards, tasks, dependencies, approvals, tags, the event log and the agent-facing
//! subset, over real HTTP against a real database.

mod common;

use common::{Session, TestApi, start};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn board(api: &TestApi, s: &Session, body: Value) -> Value {
    api.post(Some(&s.token), "/api/v1/boards", body)
        .await
        .expect(201)
        .body
}

async fn task(api: &TestApi, s: &Session, board_id: &str, body: Value) -> Value {
    api.post(
        Some(&s.token),
        &format!("/api/v1/boards/{board_id}/tasks"),
        body,
    )
    .await
    .expect(201)
    .body
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn events(api: &TestApi, s: &Session, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/events?limit=100&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&s.token, &path).await.expect(200).body;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    all
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_and_tasks_crud_with_filters_and_pagination() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let group = api
        .post(
            Some(&admin.token),
            "/api/v1/board-groups",
            json!({"name": "Product"}),
        )
        .await
        .expect(201)
        .body;
    let b = board(
        &api,
        &admin,
        json!({"name": "Launch Plan", "objective": "ship", "board_group_id": id(&group), "max_agents": 3}),
    )
    .await;
    assert_eq!(b["slug"], "launch-plan");
    assert_eq!(b["max_agents"], 3);
    let bid = id(&b);
    // Same slug twice is a conflict, a bad slug a field error.
    let dup = api
        .post(
            Some(&admin.token),
            "/api/v1/boards",
            json!({"name": "Launch Plan"}),
        )
        .await
        .expect(409);
    assert_eq!(dup.code(), "conflict");
    let bad = api
        .post(
            Some(&admin.token),
            "/api/v1/boards",
            json!({"name": "x", "slug": "Not A Slug"}),
        )
        .await
        .expect(400);
    assert_eq!(bad.body["error"]["details"][0]["field"], "slug");

    let listed = api
        .get(
            &admin.token,
            &format!("/api/v1/boards?board_group_id={}", id(&group)),
        )
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    for (i, (status, priority)) in [
        ("todo", "high"),
        ("todo", "low"),
        ("in_progress", "critical"),
        ("review", "medium"),
        ("todo", "medium"),
    ]
    .iter()
    .enumerate()
    {
        let t = task(
            &api,
            &admin,
            &bid,
            json!({"title": format!("task {i} alpha"), "status": status, "priority": priority}),
        )
        .await;
        assert_eq!(t["status"], *status);
        assert_eq!(t["version"], 1);
    }
    let tasks_path = format!("/api/v1/boards/{bid}/tasks");
    let todo = api
        .get(&admin.token, &format!("{tasks_path}?status=todo"))
        .await
        .expect(200);
    assert_eq!(todo.body["items"].as_array().unwrap().len(), 3);
    let critical = api
        .get(&admin.token, &format!("{tasks_path}?priority=critical"))
        .await
        .expect(200);
    assert_eq!(critical.body["items"][0]["title"], "task 2 alpha");
    let searched = api
        .get(&admin.token, &format!("{tasks_path}?q=task%204"))
        .await
        .expect(200);
    assert_eq!(searched.body["items"].as_array().unwrap().len(), 1);

    // Cursor pagination visits every task exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .get(&admin.token, &format!("{tasks_path}?limit=2{cursor}"))
            .await
            .expect(200)
            .body;
        for t in page["items"].as_array().unwrap() {
            seen.push(id(t));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5));

    // Invalid filters and bodies are field errors, unknown ids 404.
    let bad = api
        .get(&admin.token, &format!("{tasks_path}?status=finished"))
        .await
        .expect(400);
    assert_eq!(bad.body["error"]["details"][0]["field"], "status");
    let bad = api
        .post(
            Some(&admin.token),
            &tasks_path,
            json!({"title": "", "priority": "urgent"}),
        )
        .await
        .expect(400);
    assert_eq!(bad.code(), "invalid_request");
    api.get(&admin.token, &format!("/api/v1/tasks/{}", Uuid::now_v7()))
        .await
        .expect(404);
    api.post(
        Some(&admin.token),
        &format!("/api/v1/boards/{}/tasks", Uuid::now_v7()),
        json!({"title": "orphan"}),
    )
    .await
    .expect(404);
    api.get(&admin.token, "/api/v1/tasks/not-a-uuid")
        .await
        .expect(400);

    // Patch, then delete.
    let first = seen[0].clone();
    let patched = api
        .patch(
            &admin.token,
            &format!("/api/v1/tasks/{first}"),
            json!({"title": "renamed", "estimate_hours": 2.5, "description": null}),
        )
        .await
        .expect(200);
    assert_eq!(patched.body["title"], "renamed");
    assert_eq!(patched.body["version"], 2);
    api.delete(&admin.token, &format!("/api/v1/tasks/{first}"))
        .await
        .expect(204);
    api.get(&admin.token, &format!("/api/v1/tasks/{first}"))
        .await
        .expect(404);
    let state = api
        .get(&admin.token, &format!("/api/v1/boards/{bid}/state"))
        .await
        .expect(200);
    assert_eq!(state.body["tasks"].as_array().unwrap().len(), 4);
    assert!(state.body["seq"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_rejects_a_stale_version() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let bid = id(&board(&api, &admin, json!({"name": "Ops"})).await);
    let t = task(&api, &admin, &bid, json!({"title": "one"})).await;
    let path = format!("/api/v1/tasks/{}", id(&t));
    let got = api.get(&admin.token, &path).await.expect(200);
    assert_eq!(got.header("etag"), Some("\"1\""));
    api.call(
        Method::PATCH,
        &path,
        Some(&admin.token),
        Some(json!({"title": "first writer"})),
        &[("if-match", "\"1\"")],
    )
    .await
    .expect(200);
    let stale = api
        .call(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({"title": "second writer"})),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(412);
    assert_eq!(stale.code(), "precondition_failed");
    assert_eq!(
        api.get(&admin.token, &path).await.body["title"],
        "first writer"
    );
    api.call(
        Method::PATCH,
        &path,
        Some(&admin.token),
        Some(json!({"title": "x"})),
        &[("if-match", "yesterday")],
    )
    .await
    .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_reject_cycles_and_block_completion() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let bid = id(&board(&api, &admin, json!({"name": "Deps"})).await);
    let a = id(&task(&api, &admin, &bid, json!({"title": "a"})).await);
    let b = id(&task(&api, &admin, &bid, json!({"title": "b"})).await);
    let c = id(&task(&api, &admin, &bid, json!({"title": "c"})).await);
    let dep = |from: &str| format!("/api/v1/tasks/{from}/dependencies");
    // a waits for b, b waits for c.
    api.post(
        Some(&admin.token),
        &dep(&a),
        json!({"depends_on_task_id": b}),
    )
    .await
    .expect(200);
    api.post(
        Some(&admin.token),
        &dep(&b),
        json!({"depends_on_task_id": c}),
    )
    .await
    .expect(200);
    // c waiting for a closes a cycle; a task cannot wait for itself.
    let cycle = api
        .post(
            Some(&admin.token),
            &dep(&c),
            json!({"depends_on_task_id": a}),
        )
        .await
        .expect(409);
    assert_eq!(cycle.code(), "conflict");
    api.post(
        Some(&admin.token),
        &dep(&a),
        json!({"depends_on_task_id": a}),
    )
    .await
    .expect(409);
    api.post(
        Some(&admin.token),
        &dep(&a),
        json!({"depends_on_task_id": Uuid::now_v7()}),
    )
    .await
    .expect_4xx();

    let got = api
        .get(&admin.token, &format!("/api/v1/tasks/{a}"))
        .await
        .expect(200);
    assert_eq!(got.body["blocked_by"], json!([b]));

    let done = |t: &str| {
        let path = format!("/api/v1/tasks/{t}/transition");
        let api = &api;
        let token = admin.token.clone();
        async move {
            api.post(Some(&token), &path, json!({"status": "done"}))
                .await
        }
    };
    let blocked = done(&a).await.expect(409);
    assert!(
        blocked.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&b)
    );
    done(&c).await.expect(200);
    done(&b).await.expect(200);
    done(&a).await.expect(200);

    // Completing b announced that a was unblocked.
    let completed = events(
        &api,
        &admin,
        &format!("event_type=task.completed&task_id={b}"),
    )
    .await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["payload"]["unblocked_task_ids"], json!([a]));

    // Removing a dependency works and is recorded.
    api.delete(&admin.token, &format!("/api/v1/tasks/{a}/dependencies/{b}"))
        .await
        .expect(200);
    assert_eq!(
        types(
            &events(
                &api,
                &admin,
                &format!("task_id={a}&event_type=task.dependency_*")
            )
            .await
        ),
        vec!["task.dependency_removed", "task.dependency_added"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_and_approval_rules_gate_done() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let bid = id(&board(
        &api,
        &admin,
        json!({"name": "Strict", "require_evidence_for_done": true, "require_approval_for_done": true}),
    )
    .await);
    let t = id(&task(&api, &admin, &bid, json!({"title": "release"})).await);
    let transition = format!("/api/v1/tasks/{t}/transition");
    let no_evidence = api
        .post(Some(&admin.token), &transition, json!({"status": "done"}))
        .await
        .expect(400);
    assert_eq!(no_evidence.body["error"]["details"][0]["field"], "evidence");
    let evidence = json!([{"kind": "link", "value": "https://ci.example.test/build/1"}]);
    let no_approval = api
        .post(
            Some(&admin.token),
            &transition,
            json!({"status": "done", "evidence": evidence}),
        )
        .await
        .expect(409);
    assert!(
        no_approval.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approval")
    );
    // Bad evidence is a field error.
    api.post(
        Some(&admin.token),
        &transition,
        json!({"status": "review", "evidence": [{"kind": "video", "value": "x"}]}),
    )
    .await
    .expect(400);

    let approval = api
        .post(
            Some(&admin.token),
            "/api/v1/approvals",
            json!({"board_id": bid, "title": "Ship it?", "task_ids": [t]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(approval["status"], "pending");
    let aid = id(&approval);
    // Reject needs a reason.
    api.post(
        Some(&admin.token),
        &format!("/api/v1/approvals/{aid}/reject"),
        json!({}),
    )
    .await
    .expect(400);
    let approved = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/approvals/{aid}/approve"),
            json!({"reason": "looks good"}),
        )
        .await
        .expect(200);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(
        approved.body["resolved_by"]["id"],
        admin.user_id.to_string()
    );
    let twice = api
        .post(
            Some(&admin.token),
            &format!("/api/v1/approvals/{aid}/reject"),
            json!({"reason": "changed my mind"}),
        )
        .await
        .expect(409);
    assert_eq!(twice.code(), "conflict");
    let done = api
        .post(
            Some(&admin.token),
            &transition,
            json!({"status": "done", "evidence": evidence, "comment": "shipped"}),
        )
        .await
        .expect(200);
    assert_eq!(done.body["status"], "done");
    assert!(done.body["completed_at"].is_string());

    let pending = api
        .get(&admin.token, "/api/v1/approvals?status=pending")
        .await
        .expect(200);
    assert_eq!(pending.body["items"].as_array().unwrap().len(), 0);
    let comments = api
        .get(&admin.token, &format!("/api/v1/tasks/{t}/comments"))
        .await
        .expect(200);
    assert_eq!(comments.body["items"][0]["body"], "shipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_emits_an_attributed_event_with_gap_free_seq() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let tok = admin.token.clone();
    let group = id(&api
        .post(Some(&tok), "/api/v1/board-groups", json!({"name": "G"}))
        .await
        .expect(201)
        .body);
    api.patch(
        &tok,
        &format!("/api/v1/board-groups/{group}"),
        json!({"name": "G2"}),
    )
    .await
    .expect(200);
    let bid = id(&board(&api, &admin, json!({"name": "Events"})).await);
    api.patch(
        &tok,
        &format!("/api/v1/boards/{bid}"),
        json!({"objective": "observe"}),
    )
    .await
    .expect(200);
    let tag = id(&api
        .post(
            Some(&tok),
            "/api/v1/tags",
            json!({"name": "infra", "color": "#336699"}),
        )
        .await
        .expect(201)
        .body);
    api.patch(
        &tok,
        &format!("/api/v1/tags/{tag}"),
        json!({"name": "platform"}),
    )
    .await
    .expect(200);
    let a = id(&task(&api, &admin, &bid, json!({"title": "a", "tag_ids": [tag]})).await);
    let b = id(&task(&api, &admin, &bid, json!({"title": "b"})).await);
    api.patch(
        &tok,
        &format!("/api/v1/tasks/{a}"),
        json!({"priority": "high"}),
    )
    .await
    .expect(200);
    api.patch(
        &tok,
        &format!("/api/v1/tasks/{a}"),
        json!({"assignee_user_id": admin.user_id}),
    )
    .await
    .expect(200);
    api.post(
        Some(&tok),
        &format!("/api/v1/tasks/{a}/dependencies"),
        json!({"depends_on_task_id": b}),
    )
    .await
    .expect(200);
    api.post(
        Some(&tok),
        &format!("/api/v1/tasks/{b}/comments"),
        json!({"body": "hi"}),
    )
    .await
    .expect(201);
    api.post(
        Some(&tok),
        &format!("/api/v1/tasks/{b}/transition"),
        json!({"status": "done"}),
    )
    .await
    .expect(200);
    let appr = id(&api
        .post(
            Some(&tok),
            "/api/v1/approvals",
            json!({"board_id": bid, "title": "ok?"}),
        )
        .await
        .expect(201)
        .body);
    api.post(
        Some(&tok),
        &format!("/api/v1/approvals/{appr}/reject"),
        json!({"reason": "no"}),
    )
    .await
    .expect(200);
    api.delete(&tok, &format!("/api/v1/tasks/{a}"))
        .await
        .expect(204);
    api.delete(&tok, &format!("/api/v1/tags/{tag}"))
        .await
        .expect(204);
    api.delete(&tok, &format!("/api/v1/boards/{bid}"))
        .await
        .expect(204);
    api.delete(&tok, &format!("/api/v1/board-groups/{group}"))
        .await
        .expect(204);

    let mut log = events(&api, &admin, "").await;
    log.reverse(); // the list is newest first
    let expected = [
        "board_group.created",
        "board_group.updated",
        "board.created",
        "board.updated",
        "tag.created",
        "tag.updated",
        "task.created",
        "task.created",
        "task.updated",
        "task.assigned",
        "task.dependency_added",
        "task.commented",
        "task.status_changed",
        "task.completed",
        "approval.requested",
        "approval.resolved",
        "task.deleted",
        "tag.deleted",
        "board.deleted",
        "board_group.deleted",
    ];
    let got = types(&log);
    for want in expected {
        assert!(got.contains(&want.to_owned()), "missing {want} in {got:?}");
    }
    // Gap-free, strictly increasing per organization, every event attributed.
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e["seq"].as_i64().unwrap(), i as i64 + 1, "{got:?}");
        assert_eq!(e["actor"]["type"], "user");
        assert_eq!(e["actor"]["id"], admin.user_id.to_string());
        assert!(!e["actor"]["name"].as_str().unwrap().is_empty());
    }
    // Filters: pattern, board, task, actor, time range.
    let task_events = events(&api, &admin, "event_type=task.*").await;
    assert!(
        task_events
            .iter()
            .all(|e| e["event_type"].as_str().unwrap().starts_with("task."))
    );
    assert_eq!(
        events(&api, &admin, &format!("task_id={b}")).await.len() as u64,
        log.iter().filter(|e| e["task_id"] == b.as_str()).count() as u64
    );
    assert_eq!(
        events(&api, &admin, &format!("actor_id={}", Uuid::now_v7()))
            .await
            .len(),
        0
    );
    assert_eq!(
        events(&api, &admin, "since=2099-01-01T00:00:00Z")
            .await
            .len(),
        0
    );
    assert_eq!(
        events(&api, &admin, &format!("board_id={bid}&event_type=board.*"))
            .await
            .len(),
        3
    );
    api.get(&tok, "/api/v1/events?event_type=Task..x")
        .await
        .expect(400);
    api.get(&tok, "/api/v1/events?since=yesterday")
        .await
        .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_is_append_only() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    board(&api, &admin, json!({"name": "Immutable"})).await;
    let org = admin.org_id.unwrap();
    // Even the application's own role inside its own tenant cannot rewrite history.
    for sql in [
        "UPDATE agent_events SET event_type = 'forged'",
        "DELETE FROM agent_events",
        "TRUNCATE agent_events",
    ] {
        let mut tx = mc_domain::db::begin_org(api.db.pool(), org).await.unwrap();
        let err = sqlx::query(sql).execute(&mut *tx).await;
        assert!(err.is_err(), "{sql} succeeded");
    }
    let log = events(&api, &admin, "").await;
    assert_eq!(types(&log), vec!["board.created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_organizations_see_nothing() {
    let api = start().await;
    let a = api.org_admin("alpha").await;
    let b = api.org_admin("beta").await;
    let board_a = id(&board(&api, &a, json!({"name": "Secret"})).await);
    let task_a = id(&task(&api, &a, &board_a, json!({"title": "hidden"})).await);
    let board_b = id(&board(&api, &b, json!({"name": "Mine"})).await);
    let task_b = id(&task(&api, &b, &board_b, json!({"title": "mine"})).await);

    for path in [
        format!("/api/v1/boards/{board_a}"),
        format!("/api/v1/boards/{board_a}/tasks"),
        format!("/api/v1/boards/{board_a}/state"),
        format!("/api/v1/tasks/{task_a}"),
        format!("/api/v1/tasks/{task_a}/comments"),
    ] {
        api.get(&b.token, &path).await.expect(404);
    }
    api.patch(
        &b.token,
        &format!("/api/v1/tasks/{task_a}"),
        json!({"title": "pwned"}),
    )
    .await
    .expect(404);
    api.delete(&b.token, &format!("/api/v1/boards/{board_a}"))
        .await
        .expect(404);
    api.post(
        Some(&b.token),
        &format!("/api/v1/boards/{board_a}/tasks"),
        json!({"title": "x"}),
    )
    .await
    .expect(404);
    // Linking to another org's task is refused without revealing it.
    api.post(
        Some(&b.token),
        &format!("/api/v1/tasks/{task_b}/dependencies"),
        json!({"depends_on_task_id": task_a}),
    )
    .await
    .expect_4xx();
    api.post(
        Some(&b.token),
        "/api/v1/approvals",
        json!({"board_id": board_a, "title": "x"}),
    )
    .await
    .expect_4xx();
    assert!(
        events(&api, &b, "")
            .await
            .iter()
            .all(|e| e["organization_id"] == b.org_id.unwrap().to_string())
    );
    let listed = api.get(&b.token, "/api/v1/tasks").await.expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // The task in org A is untouched.
    assert_eq!(
        api.get(&a.token, &format!("/api/v1/tasks/{task_a}"))
            .await
            .body["title"],
        "hidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_work_their_boards_with_their_api_key() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let mine = id(&board(&api, &admin, json!({"name": "Agent Board"})).await);
    let other = id(&board(&api, &admin, json!({"name": "Elsewhere"})).await);
    let (agent, key) = api.agent_with_key(&admin, &mine, "Builder").await;
    let t = id(&task(
        &api,
        &admin,
        &mine,
        json!({"title": "build it", "assignee_agent_id": agent}),
    )
    .await);
    let elsewhere = id(&task(&api, &admin, &other, json!({"title": "not yours"})).await);

    let boards = api.get(&key, "/api/v1/agent/boards").await.expect(200);
    let names: Vec<&str> = boards.body.as_array().map_or_else(
        || {
            boards.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap())
                .collect()
        },
        |a| a.iter().map(|b| b["name"].as_str().unwrap()).collect(),
    );
    assert_eq!(names, vec!["Agent Board"]);
    let my_tasks = api.get(&key, "/api/v1/agent/tasks").await.expect(200);
    assert!(my_tasks.body.to_string().contains(&t));
    api.get(&key, &format!("/api/v1/agent/tasks/{elsewhere}"))
        .await
        .expect(404);
    api.get(&key, &format!("/api/v1/agent/boards/{other}/tasks"))
        .await
        .expect(404);

    api.post(
        Some(&key),
        &format!("/api/v1/agent/tasks/{t}/transition"),
        json!({"status": "in_progress"}),
    )
    .await
    .expect(200);
    api.post(
        Some(&key),
        &format!("/api/v1/agent/tasks/{t}/comments"),
        json!({"body": "on it"}),
    )
    .await
    .expect(201);
    let created = api
        .post(
            Some(&key),
            &format!("/api/v1/agent/boards/{mine}/tasks"),
            json!({"title": "follow-up"}),
        )
        .await
        .expect(201);
    assert_eq!(created.body["created_by_type"], "agent");
    let approval = api
        .post(
            Some(&key),
            "/api/v1/agent/approvals",
            json!({"board_id": mine, "title": "deploy?", "task_ids": [t]}),
        )
        .await
        .expect(201);
    assert_eq!(approval.body["requested_by"]["type"], "agent");
    assert_eq!(approval.body["requested_by"]["id"], agent.to_string());
    api.post(
        Some(&key),
        &format!("/api/v1/agent/tasks/{elsewhere}/transition"),
        json!({"status": "done"}),
    )
    .await
    .expect(404);
    api.post(
        Some(&key),
        "/api/v1/agent/approvals",
        json!({"board_id": other, "title": "sneaky"}),
    )
    .await
    .expect(404);

    // The events say the agent acted, by name.
    let by_agent = events(&api, &admin, &format!("actor_id={agent}")).await;
    let kinds = types(&by_agent);
    for want in [
        "task.status_changed",
        "task.commented",
        "task.created",
        "approval.requested",
    ] {
        assert!(kinds.contains(&want.to_owned()), "{kinds:?}");
    }
    assert!(
        by_agent
            .iter()
            .all(|e| e["actor"]["type"] == "agent" && e["actor"]["name"] == "Builder")
    );

    // A console token is not an agent.
    api.get(&admin.token, "/api/v1/agent/boards")
        .await
        .expect(403);
}

trait Expect4xx {
    fn expect_4xx(self) -> Self;
}

impl Expect4xx for common::Resp {
    #[track_caller]
    fn expect_4xx(self) -> Self {
        assert!(
            (400..500).contains(&self.status),
            "expected a 4xx, got {}: {}",
            self.status,
            self.body
        );
        self
    }
}
