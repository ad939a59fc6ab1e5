//! `WS /ws/board/{id}/sync` against real Postgres and Redis, with REST changes made
//! through a real `mc-api`, across two relay instances.

mod common;

use common::run_api;
use mc_domain::config::RelayConfig;
use mc_testkit::api::{Session, TestApi};
use mc_testkit::ws::{WsClient, WsEvent};
use mc_testkit::{Spawned, spawn_service};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Stack {
    api: TestApi,
    admin: Session,
    board: String,
}

impl Stack {
    async fn start() -> Self {
        // Bulk writers in these tests outrun the default per-caller REST limits.
        let api = TestApi::start_with(run_api, |c| {
            let lots = mc_domain::config::Quota {
                per_minute: 1_000_000,
                burst: 100_000,
            };
            c.rate_limits.free = lots;
            c.rate_limits.pro = lots;
        })
        .await;
        let admin = api.org_admin("acme").await;
        let board = api
            .post(
                Some(&admin.token),
                "/api/v1/boards",
                json!({"name": "Live"}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self { api, admin, board }
    }

    async fn relay(&self) -> Spawned {
        self.relay_with(|_| {}).await
    }

    async fn relay_with(&self, adjust: impl FnOnce(&mut RelayConfig)) -> Spawned {
        let mut config = self.api.relay_config();
        adjust(&mut config);
        let relay = spawn_service(move |l, s| mc_relay::run(config, l, s)).await;
        relay.wait_ready().await;
        relay
    }

    fn path(&self) -> String {
        format!("/ws/board/{}/sync", self.board)
    }

    /// Connects and authenticates; returns the socket and its `board.state`.
    async fn open(&self, relay: &Spawned, token: &str) -> (WsClient, Value) {
        let mut ws = WsClient::connect(&relay.ws_url(&self.path())).await;
        ws.send_json(&json!({"type": "auth", "token": token})).await;
        let ok = ws.next_json(WAIT).await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        let state = ws.next_json(WAIT).await;
        assert_eq!(state["type"], "board.state", "{state}");
        (ws, state)
    }

    async fn rest_task(&self, title: &str) -> Value {
        self.api
            .post(
                Some(&self.admin.token),
                &format!("/api/v1/boards/{}/tasks", self.board),
                json!({"title": title}),
            )
            .await
            .expect(201)
            .body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_then_every_rest_change_with_its_seq_and_actor() {
    let stack = Stack::start().await;
    let first = stack.rest_task("existing").await;
    let relay = stack.relay().await;
    let (mut ws, state) = stack.open(&relay, &stack.admin.token).await;
    assert_eq!(state["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(state["tasks"][0]["id"], first["id"]);
    assert_eq!(state["board"]["name"], "Live");
    let state_seq = state["seq"].as_i64().unwrap();

    let created = stack.rest_task("new one").await;
    let frame = ws.next_json(WAIT).await;
    assert_eq!(frame["type"], "task.created");
    assert_eq!(frame["task"]["id"], created["id"]);
    assert_eq!(frame["seq"].as_i64().unwrap(), state_seq + 1);
    assert_eq!(frame["created_by"]["type"], "user");
    assert_eq!(frame["created_by"]["id"], stack.admin.user_id.to_string());

    let tid = first["id"].as_str().unwrap();
    stack
        .api
        .patch(
            &stack.admin.token,
            &format!("/api/v1/tasks/{tid}"),
            json!({"priority": "critical"}),
        )
        .await
        .expect(200);
    let frame = ws.next_json(WAIT).await;
    assert_eq!(frame["type"], "task.updated");
    assert_eq!(frame["task_id"], tid);
    assert_eq!(frame["changes"]["priority"], "critical");
    assert!(frame["updated_by"]["name"].as_str().is_some());
    assert_eq!(frame["seq"].as_i64().unwrap(), state_seq + 2);

    stack
        .api
        .delete(&stack.admin.token, &format!("/api/v1/tasks/{tid}"))
        .await
        .expect(204);
    let frame = ws.next_json(WAIT).await;
    assert_eq!(frame["type"], "task.deleted");
    assert_eq!(frame["task_id"], tid);

    // Changes on other boards do not reach this socket; board deletion closes it.
    let other = stack
        .api
        .post(
            Some(&stack.admin.token),
            "/api/v1/boards",
            json!({"name": "Other"}),
        )
        .await
        .expect(201);
    stack
        .api
        .post(
            Some(&stack.admin.token),
            &format!(
                "/api/v1/boards/{}/tasks",
                other.body["id"].as_str().unwrap()
            ),
            json!({"title": "elsewhere"}),
        )
        .await
        .expect(201);
    stack
        .api
        .delete(
            &stack.admin.token,
            &format!("/api/v1/boards/{}", stack.board),
        )
        .await
        .expect(204);
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(
        frames
            .iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["board.deleted"]
    );
    assert_eq!(code, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_on_two_relays_share_moves_and_creates() {
    let stack = Stack::start().await;
    let task = stack.rest_task("movable").await;
    let relay_a = stack.relay().await;
    let relay_b = stack.relay().await;
    let (mut tab_a, _) = stack.open(&relay_a, &stack.admin.token).await;
    let (mut tab_b, _) = stack.open(&relay_b, &stack.admin.token).await;

    tab_a
        .send_json(&json!({"type": "task.move", "id": "m1", "task_id": task["id"], "status": "in_progress"}))
        .await;
    // The sender gets its ack and, like everyone, the broadcast.
    let mut got_ack = false;
    let mut from_a = None;
    while !(got_ack && from_a.is_some()) {
        let frame = tab_a.next_json(WAIT).await;
        match frame["type"].as_str().unwrap() {
            "ack" => {
                assert_eq!(frame["id"], "m1");
                assert_eq!(frame["task"]["status"], "in_progress");
                got_ack = true;
            }
            "task.updated" => from_a = Some(frame),
            other => panic!("unexpected {other}"),
        }
    }
    let from_b = tab_b.next_json(WAIT).await;
    assert_eq!(from_b, from_a.unwrap());
    assert_eq!(from_b["changes"]["status"], "in_progress");

    tab_b
        .send_json(
            &json!({"type": "task.create", "id": "c1", "title": "from tab b", "status": "review"}),
        )
        .await;
    let created_a = tab_a.next_of_type("task.created", WAIT).await;
    let created_b = tab_b.next_of_type("task.created", WAIT).await;
    assert_eq!(created_a, created_b);
    assert_eq!(created_a["task"]["title"], "from tab b");
    assert_eq!(created_a["task"]["status"], "review");

    // Persisted through the same domain code as REST: visible there, with its event.
    let listed = stack
        .api
        .get(
            &stack.admin.token,
            &format!("/api/v1/boards/{}/tasks?status=review", stack.board),
        )
        .await
        .expect(200);
    assert_eq!(listed.body["items"][0]["title"], "from tab b");
    let events = stack
        .api
        .get(
            &stack.admin.token,
            "/api/v1/events?event_type=task.status_changed",
        )
        .await
        .expect(200);
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_what_was_missed() {
    let stack = Stack::start().await;
    let relay = stack.relay().await;
    let (ws, state) = stack.open(&relay, &stack.admin.token).await;
    let seen = state["seq"].as_i64().unwrap();
    ws.close().await;

    // Missed while away: three changes here, one on another board.
    let mut titles = Vec::new();
    for i in 0..3 {
        titles.push(stack.rest_task(&format!("missed {i}")).await["title"].clone());
    }
    let other = stack
        .api
        .post(
            Some(&stack.admin.token),
            "/api/v1/boards",
            json!({"name": "Elsewhere"}),
        )
        .await
        .expect(201);
    let _ = other;

    let mut ws = WsClient::connect(&relay.ws_url(&stack.path())).await;
    ws.send_json(&json!({"type": "auth", "token": stack.admin.token, "last_seq": seen}))
        .await;
    assert_eq!(ws.next_json(WAIT).await["type"], "auth_ok");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let frame = ws.next_json(WAIT).await;
        assert_eq!(
            frame["type"], "task.created",
            "no board.state on resume: {frame}"
        );
        replayed.push(frame);
    }
    assert_eq!(
        replayed
            .iter()
            .map(|f| f["task"]["title"].clone())
            .collect::<Vec<_>>(),
        titles
    );
    let seqs: Vec<i64> = replayed
        .iter()
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seen);

    // Then live, with nothing repeated.
    let live = stack.rest_task("live").await;
    let frame = ws.next_json(WAIT).await;
    assert_eq!(frame["task"]["id"], live["id"]);
    assert!(frame["seq"].as_i64().unwrap() > seqs[2]);

    // `resume` mid-session replays from the given point again.
    ws.send_json(&json!({"type": "resume", "last_seq": seqs[1]}))
        .await;
    let again = ws.next_json(WAIT).await;
    assert_eq!(again["seq"].as_i64().unwrap(), seqs[2]);
    let again = ws.next_json(WAIT).await;
    assert_eq!(again["task"]["id"], live["id"]);
    // A resume point from the future is an error frame, not a broken socket.
    ws.send_json(&json!({"type": "resume", "last_seq": 1_000_000}))
        .await;
    let err = ws.next_json(WAIT).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["details"][0]["field"], "last_seq");
    ws.send_json(&json!({"type": "heartbeat"})).await;
    assert_eq!(ws.next_json(WAIT).await["type"], "heartbeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_error_frames_and_close_codes() {
    let stack = Stack::start().await;
    let relay = stack.relay_with(|c| c.ws.messages_per_second = 5).await;
    let url = relay.ws_url(&stack.path());
    let (mut bystander, _) = stack.open(&relay, &stack.admin.token).await;

    // Not a board id: refused before the upgrade.
    assert_eq!(
        WsClient::try_connect(&relay.ws_url("/ws/board/not-a-uuid/sync"))
            .await
            .err(),
        Some(400)
    );
    // A frame before auth.
    let mut ws = WsClient::connect(&url).await;
    ws.send_json(&json!({"type": "heartbeat"})).await;
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(
        (code, frames[0]["type"].as_str()),
        (4001, Some("auth_error"))
    );
    // A bad token.
    let mut ws = WsClient::connect(&url).await;
    ws.send_json(&json!({"type": "auth", "token": "nope"}))
        .await;
    assert_eq!(ws.expect_close(WAIT).await.0, 4001);
    // Non-JSON first frame.
    let mut ws = WsClient::connect(&url).await;
    ws.send_text("hello?").await;
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4001);
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["code"], "INVALID_MESSAGE");
    // Another organization's board.
    let stranger = stack.api.org_admin("stranger").await;
    let mut ws = WsClient::connect(&url).await;
    ws.send_json(&json!({"type": "auth", "token": stranger.token}))
        .await;
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4003);
    assert_eq!(frames[0]["type"], "auth_error");

    // After auth: error frames, and the socket stays usable.
    let blocker = stack.rest_task("blocker").await;
    let blocked = stack.rest_task("blocked").await;
    stack
        .api
        .post(
            Some(&stack.admin.token),
            &format!(
                "/api/v1/tasks/{}/dependencies",
                blocked["id"].as_str().unwrap()
            ),
            json!({"depends_on_task_id": blocker["id"]}),
        )
        .await
        .expect(200);
    let (mut ws, _) = stack.open(&relay, &stack.admin.token).await;
    let cases = [
        (
            json!({"type": "task.move", "id": "1", "task_id": blocked["id"], "status": "finished"}),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type": "task.move", "id": "2", "task_id": uuid::Uuid::now_v7(), "status": "done"}),
            "NOT_FOUND",
        ),
        (
            json!({"type": "task.move", "id": "3", "task_id": blocked["id"], "status": "done"}),
            "CONFLICT",
        ),
        (
            json!({"type": "task.create", "id": "4", "title": ""}),
            "INVALID_MESSAGE",
        ),
    ];
    for (frame, code) in cases {
        ws.send_json(&frame).await;
        let reply = ws.next_of_type("error", WAIT).await;
        assert_eq!(reply["code"], code, "{frame} -> {reply}");
        tokio::time::sleep(Duration::from_millis(250)).await; // stay under the rate limit
    }
    ws.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        ws.next_of_type("error", WAIT).await["code"],
        "INVALID_MESSAGE"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Oversized.
    ws.send_text(&format!(
        "{{\"type\":\"heartbeat\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    ))
    .await;
    assert_eq!(ws.expect_close(WAIT).await.0, 4008);
    // A flood.
    let (mut flood, _) = stack.open(&relay, &stack.admin.token).await;
    for _ in 0..50 {
        flood.send_json(&json!({"type": "heartbeat"})).await;
    }
    let (code, frames) = flood.expect_close(WAIT).await;
    assert_eq!(code, 4008);
    assert!(frames.iter().any(|f| f["code"] == "RATE_LIMITED"));

    // The bystander saw none of that, only the board's real changes, in order.
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let frame = bystander.next_json(WAIT).await;
        seqs.push(frame["seq"].as_i64().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[1] > w[0]));
    bystander.send_json(&json!({"type": "heartbeat"})).await;
    assert_eq!(bystander.next_json(WAIT).await["type"], "heartbeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_with_4009_and_nobody_else_waits() {
    let stack = Stack::start().await;
    let relay = stack.relay_with(|c| c.ws.outbound_queue = 4).await;
    let (mut stalled, state) = stack.open(&relay, &stack.admin.token).await;
    let (mut fast, _) = stack.open(&relay, &stack.admin.token).await;
    let start = state["seq"].as_i64().unwrap();

    // Big frames fill the stalled client's TCP buffers quickly; it reads nothing.
    let padding = "p".repeat(40_000);
    let count = 300;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < count {
            let frame = fast.next_json(Duration::from_secs(60)).await;
            if frame["type"] == "task.created" {
                seqs.push(frame["seq"].as_i64().unwrap());
            }
        }
        seqs
    });
    let writer = {
        let api_url = stack
            .api
            .url(&format!("/api/v1/boards/{}/tasks", stack.board));
        let token = stack.admin.token.clone();
        tokio::spawn(async move {
            let http = mc_testkit::http_client();
            for i in 0..count {
                let r = http
                    .post(&api_url)
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("bulk {i}"), "description": padding}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        })
    };
    // Wait until the relay gives up on the stalled socket, then read what it was sent.
    let metrics_url = relay.url("/metrics");
    mc_testkit::eventually(Duration::from_secs(60), "a slow consumer dropped", || {
        let url = metrics_url.clone();
        async move {
            let text = mc_testkit::http_client()
                .get(&url)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .any(|l| l.starts_with("mc_ws_slow_consumers_total") && !l.ends_with(" 0"))
                .then_some(())
        }
    })
    .await;
    let mut last = start;
    let code = loop {
        match stalled.next_event(WAIT).await {
            WsEvent::Json(frame) => {
                let seq = frame["seq"].as_i64().unwrap();
                assert_eq!(seq, last + 1, "gap in what the slow socket did get");
                last = seq;
            }
            WsEvent::Closed(code, _) => break code,
            WsEvent::Ended => break 1006,
        }
    };
    assert_eq!(code, 4009);
    assert!(
        last < start + count as i64,
        "the stalled socket was never dropped"
    );

    // Meanwhile the fast socket got every frame, in order, without gaps.
    writer.await.unwrap();
    let seqs = reader.await.unwrap();
    let expected: Vec<i64> = (start + 1..=start + count as i64).collect();
    assert_eq!(seqs, expected);

    // It resumes from what it had, and gets exactly the rest.
    let mut again = WsClient::connect(&relay.ws_url(&stack.path())).await;
    again
        .send_json(&json!({"type": "auth", "token": stack.admin.token, "last_seq": last}))
        .await;
    assert_eq!(again.next_json(WAIT).await["type"], "auth_ok");
    for seq in last + 1..=start + count as i64 {
        assert_eq!(again.next_json(WAIT).await["seq"].as_i64().unwrap(), seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_socket_with_4001() {
    let stack = Stack::start().await;
    let relay = stack.relay().await;
    let (mut ws, _) = stack.open(&relay, &stack.admin.token).await;
    stack
        .api
        .post(
            Some(&stack.admin.token),
            "/api/v1/auth/logout",
            json!({"refresh_token": stack.admin.refresh}),
        )
        .await
        .expect(204);
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4001);
    assert_eq!(frames.last().unwrap()["reason"], "session revoked");
}

/// One timer drives the server's ping and the access re-check (every second in tests): a
/// socket whose client reads, and so answers the pings, outlives several of both and still
/// gets changes; one that never answers is closed with 4008 once the heartbeat timeout
/// has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_a_reading_socket_open_and_a_silent_one_is_closed_with_4008() {
    let stack = Stack::start().await;
    let relay = stack
        .relay_with(|c| {
            c.ws.heartbeat_interval = Duration::from_secs(1);
            c.ws.heartbeat_timeout = Duration::from_secs(2);
        })
        .await;
    let (mut reading, _) = stack.open(&relay, &stack.admin.token).await;
    let (mut silent, _) = stack.open(&relay, &stack.admin.token).await;
    // The silent socket must not read (reading answers pings) until the relay has given up
    // on it, 2-3 s in, and must read before the relay drops it, 5 s after the close frame:
    // reading at 5 s leaves 2 s either way on a loaded machine.
    let quiet = tokio::time::timeout(Duration::from_secs(5), reading.next_event(WAIT)).await;
    assert!(quiet.is_err(), "the reading socket got {quiet:?}");

    let (code, _) = silent.expect_close(WAIT).await;
    assert_eq!(code, 4008);

    let task = stack.rest_task("after the pings").await;
    let frame = reading.next_of_type("task.created", WAIT).await;
    assert_eq!(frame["task"]["id"], task["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_suggestion_for_the_board_arrives_as_suggestion_new() {
    let stack = Stack::start().await;
    let relay = stack.relay().await;
    let (mut ws, state) = stack.open(&relay, &stack.admin.token).await;
    let (_, key) = stack
        .api
        .agent_with_key(&stack.admin, &stack.board, "Advisor")
        .await;
    let suggestion = stack
        .api
        .post(
            Some(&key),
            "/api/v1/agent/suggestions",
            json!({"suggestion_type": "workload_rebalance", "title": "Split the work", "board_id": stack.board}),
        )
        .await
        .expect(201)
        .body;
    let frame = ws.next_json(WAIT).await;
    assert_eq!(frame["type"], "suggestion.new", "{frame}");
    assert_eq!(frame["suggestion"]["id"], suggestion["id"]);
    assert_eq!(frame["suggestion"]["title"], "Split the work");
    assert!(frame["seq"].as_i64().unwrap() > state["seq"].as_i64().unwrap());
}
