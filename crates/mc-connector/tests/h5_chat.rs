//! `WS /ws/h5/chat` end to end: H5 user → relay → `mc-connector --simulate` → relay → H5
//! user, against real Postgres, Redis and WebSockets, across two relay instances.
//! Streaming, persistence with per-session seqs, resume without loss or duplicates,
//! idempotent retries, history over REST, admin views, events, presence, limits and
//! every kind of bad input.

mod common;

use common::{connector_config, run_api};
use mc_connector::backend::Backend;
use mc_connector::backend::simulated::{Simulated, reply_for};
use mc_testkit::api::{Session, TestApi};
use mc_testkit::ws::WsClient;
use mc_testkit::{Spawned, eventually, spawn_service};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

/// An organization with a simulated gateway (two agents), a board and an H5 user
/// assigned to the first agent.
struct Office {
    api: TestApi,
    admin: Session,
    relay: Spawned,
    gateway: String,
    agents: Vec<(String, String)>,
    board: String,
    connector: Option<(CancellationToken, mc_connector::Running)>,
    /// The connectors' state directories, removed with the office.
    state_dirs: Vec<mc_testkit::ScratchDir>,
}

struct H5User {
    id: String,
    token: String,
}

async fn relay_for(
    api: &TestApi,
    adjust: impl FnOnce(&mut mc_domain::config::RelayConfig),
) -> Spawned {
    let mut config = api.relay_config();
    adjust(&mut config);
    let relay = spawn_service(move |l, s| mc_relay::run(config, l, s)).await;
    relay.wait_ready().await;
    relay
}

impl Office {
    async fn open(slug: &str) -> Self {
        // Warnings from the services are shown with a failure (RUST_LOG widens them).
        mc_testkit::init_tracing();
        let api = TestApi::start(run_api).await;
        let admin = api.org_admin(slug).await;
        let relay = relay_for(&api, |_| {}).await;
        let mut office = Self {
            api,
            admin,
            relay,
            gateway: String::new(),
            agents: Vec::new(),
            board: String::new(),
            connector: None,
            state_dirs: Vec::new(),
        };
        office.start_gateway().await;
        office.board = office
            .api
            .create(
                &office.admin.token,
                "/api/v1/boards",
                json!({"name": "Support"}),
                "id",
            )
            .await;
        office
    }

    async fn start_gateway(&mut self) {
        let token = self.api.registration_token(&self.admin).await;
        let dir = mc_testkit::ScratchDir::new("mc-h5");
        let relay = self.relay.ws_url("");
        let config = connector_config(&self.api, &self.admin, &token, &relay, dir.path());
        self.state_dirs.push(dir);
        let shutdown = CancellationToken::new();
        let backend = Backend::Simulated(Arc::new(Simulated::new(2)));
        let mut running = mc_connector::start(config, backend, shutdown.clone())
            .await
            .unwrap();
        tokio::time::timeout(WAIT, running.connected.wait_for(|c| *c))
            .await
            .expect("the connector connects")
            .unwrap();
        self.gateway = running.gateway_id.clone();
        let (api, admin, gateway) = (&self.api, &self.admin, self.gateway.clone());
        self.agents = eventually(WAIT, "the simulated agents are linked", || async {
            let agents = api
                .get(
                    &admin.token,
                    &format!("/api/v1/agents?gateway_id={gateway}"),
                )
                .await
                .expect(200);
            let mut found: Vec<(String, String)> = agents.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["status"] == "online")
                .map(|a| {
                    (
                        a["id"].as_str().unwrap().to_owned(),
                        a["openclaw_agent_id"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            found.sort_by(|a, b| a.1.cmp(&b.1));
            (found.len() == 2).then_some(found)
        })
        .await;
        self.connector = Some((shutdown, running));
    }

    async fn stop_gateway(&mut self) {
        if let Some((shutdown, running)) = self.connector.take() {
            shutdown.cancel();
            let _ = running.done.await;
        }
    }

    /// A new H5 user, assigned to the first simulated agent, logged in.
    async fn user(&self, name: &str) -> H5User {
        let id = self
            .api
            .create(
                &self.admin.token,
                "/api/v1/h5/users",
                json!({"username": name, "password": "h5-password-1"}),
                "id",
            )
            .await;
        self.api
            .post(
                Some(&self.admin.token),
                &format!("/api/v1/h5/users/{id}/assign"),
                json!({"agent_id": self.agents[0].0, "board_id": self.board}),
            )
            .await
            .expect(200);
        let login = self
            .api
            .post(
                None,
                "/api/v1/h5/auth/login",
                json!({"organization_id": self.admin.org_id.unwrap(), "username": name,
                       "password": "h5-password-1"}),
            )
            .await
            .expect(200);
        H5User {
            id,
            token: login.body["access_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// An authenticated chat socket on `relay`; returns it with its `auth_ok` payload.
async fn chat_socket(relay: &Spawned, user: &H5User) -> (WsClient, Value) {
    let mut ws = WsClient::connect(&relay.ws_url("/ws/h5/chat")).await;
    ws.send_json(&json!({"type": "auth", "payload": {"token": user.token}}))
        .await;
    let ok = ws.next_json(WAIT).await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    (ws, ok["payload"].clone())
}

fn chat_frame(id: &str, agent: &str, content: &str) -> Value {
    json!({"type": "chat", "id": id, "payload": {"agent_id": agent, "content": content}})
}

/// Reads frames until a stored `chat` frame of `role`, collecting `chat.delta` texts.
async fn next_message(ws: &mut WsClient, role: &str) -> (Value, Vec<String>) {
    let mut deltas = Vec::new();
    loop {
        let frame = ws.next_json(WAIT).await;
        match frame["type"].as_str() {
            Some("chat") if frame["payload"]["role"] == role => return (frame, deltas),
            Some("chat.delta") => {
                deltas.push(frame["payload"]["delta"].as_str().unwrap().to_owned())
            }
            Some("chat" | "system") => {}
            _ => panic!("unexpected frame while waiting for a {role} message: {frame}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_chat_with_agents_across_relays_and_resume_without_loss() {
    let office = Office::open("h5-chat").await;
    let user = office.user("alice").await;
    let agent = office.agents[0].0.clone();
    let (mut phone, welcome) = chat_socket(&office.relay, &user).await;
    let assignment = &welcome["assignments"][0];
    assert_eq!(assignment["agent_id"], agent.as_str());
    assert_eq!(assignment["agent_name"], "Simulated agent 1");
    assert_eq!(assignment["board_name"], "Support");
    assert_eq!(assignment["online"], true);
    assert_eq!(welcome["user_id"], user.id.as_str());

    // A second device on another relay instance sees the whole conversation too.
    let relay_b = relay_for(&office.api, |_| {}).await;
    let (mut tablet, _) = chat_socket(&relay_b, &user).await;

    phone.send_json(&chat_frame("m-1", &agent, "hello")).await;
    let (mine, _) = next_message(&mut phone, "user").await;
    assert_eq!(mine["id"], "m-1");
    assert_eq!(mine["seq"], 1);
    assert_eq!(mine["payload"]["content"], "hello");
    let session = mine["payload"]["session_id"].as_str().unwrap().to_owned();
    let (reply, deltas) = next_message(&mut phone, "agent").await;
    let expected = reply_for("Simulated agent 1", "hello");
    assert_eq!(reply["payload"]["content"], expected.as_str());
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["payload"]["session_id"], session.as_str());
    assert!(!deltas.is_empty(), "the reply streams in");
    assert_eq!(deltas.concat(), expected, "the deltas add up to the reply");
    for seq in [1, 2] {
        let (frame, _) = next_message(&mut tablet, if seq == 1 { "user" } else { "agent" }).await;
        assert_eq!(frame["seq"], seq, "{frame}");
    }

    // A retry of the same client message is stored once and confirmed with its seq.
    phone.send_json(&chat_frame("m-1", &agent, "hello")).await;
    let (again, _) = next_message(&mut phone, "user").await;
    assert_eq!(again["seq"], 1);
    assert_eq!(
        again["payload"]["message_id"],
        mine["payload"]["message_id"]
    );

    // The phone drops; meanwhile the tablet chats twice.
    phone.close().await;
    for (i, text) in ["second", "third"].iter().enumerate() {
        tablet
            .send_json(&chat_frame(&format!("t-{i}"), &agent, text))
            .await;
        next_message(&mut tablet, "user").await;
        next_message(&mut tablet, "agent").await;
    }
    // The phone comes back on the other relay and resumes from what it had.
    let (mut phone, welcome) = chat_socket(&relay_b, &user).await;
    assert_eq!(welcome["sessions"][0]["last_seq"], 6);
    phone
        .send_json(&json!({"type": "resume", "payload": {"session_id": session, "last_seq": 2}}))
        .await;
    let mut seqs = Vec::new();
    loop {
        let frame = phone.next_json(WAIT).await;
        match frame["type"].as_str() {
            Some("chat") => seqs.push(frame["seq"].as_i64().unwrap()),
            Some("resumed") => {
                assert_eq!(frame["payload"]["last_seq"], 6);
                break;
            }
            _ => panic!("unexpected frame during resume: {frame}"),
        }
    }
    assert_eq!(
        seqs,
        vec![3, 4, 5, 6],
        "exactly the missed messages, in order"
    );
    // Then live ones, still without duplicates.
    phone.send_json(&chat_frame("m-2", &agent, "fourth")).await;
    assert_eq!(next_message(&mut phone, "user").await.0["seq"], 7);
    assert_eq!(next_message(&mut phone, "agent").await.0["seq"], 8);

    // History over REST, as the app loads it on open.
    let api = &office.api;
    let sessions = api
        .get(&user.token, "/api/v1/h5/chat/sessions")
        .await
        .expect(200);
    assert_eq!(sessions.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(sessions.body["items"][0]["last_seq"], 8);
    let newest = api
        .get(
            &user.token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages?limit=3"),
        )
        .await
        .expect(200);
    let seqs: Vec<i64> = newest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![8, 7, 6]);
    let cursor = newest.body["next_cursor"].as_str().unwrap();
    let older = api
        .get(
            &user.token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages?limit=3&cursor={cursor}"),
        )
        .await
        .expect(200);
    assert_eq!(older.body["items"][0]["seq"], 5);
    let after = api
        .get(
            &user.token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages?after_seq=6"),
        )
        .await
        .expect(200);
    let seqs: Vec<i64> = after.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![7, 8]);
    assert_eq!(after.body["items"][1]["status"], "completed");
    // `sent` is recorded in batches beside the reply's path, so it may land a moment later.
    let deadline = std::time::Instant::now() + WAIT;
    let mut status = after.body["items"][0]["status"].clone();
    while status != "sent" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = api
            .get(
                &user.token,
                &format!("/api/v1/h5/chat/sessions/{session}/messages?after_seq=6"),
            )
            .await
            .expect(200);
        status = again.body["items"][0]["status"].clone();
    }
    assert_eq!(status, "sent", "the gateway accepted it");
    // Admin tokens are not H5 tokens, and H5 users see only their own sessions.
    api.get(&office.admin.token, "/api/v1/h5/chat/sessions")
        .await
        .expect(401);
    let bob = office.user("bob").await;
    api.get(
        &bob.token,
        &format!("/api/v1/h5/chat/sessions/{session}/messages"),
    )
    .await
    .expect(404);

    // Admin views: live sockets per instance and the sessions on the gateway.
    let detail = api
        .get(
            &office.admin.token,
            &format!("/api/v1/h5/users/{}", user.id),
        )
        .await
        .expect(200);
    assert_eq!(detail.body["live"]["connections"], 2, "{}", detail.body);
    assert_eq!(
        detail.body["live"]["instances"].as_object().unwrap().len(),
        1
    );
    assert_eq!(detail.body["sessions"][0]["id"], session.as_str());
    assert_eq!(detail.body["user"]["username"], "alice");
    let live = api
        .get(
            &office.admin.token,
            &format!("/api/v1/gateways/{}/connections", office.gateway),
        )
        .await
        .expect(200);
    let chats = live.body["chat_sessions"].as_array().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["h5_user_id"], user.id.as_str());
    assert_eq!(chats[0]["user_connections"], 2);
    assert!(live.body["relay_connections"][0]["disconnected_at"].is_null());

    // Events record the chat without its content. They travel through the event outbox,
    // which mc-worker forwards; here the test forwards it.
    let bus = mc_domain::events::MemoryEventBus::new();
    while mc_domain::events::outbox::forward_once(api.db.pool(), &bus, 100)
        .await
        .unwrap()
        > 0
    {}
    let events = api
        .get(
            &office.admin.token,
            "/api/v1/events?event_type=chat.*&limit=100",
        )
        .await
        .expect(200);
    let items = events.body["items"].as_array().unwrap();
    let sent = items
        .iter()
        .filter(|e| e["event_type"] == "chat.message_sent")
        .count();
    let replies = items
        .iter()
        .filter(|e| e["event_type"] == "chat.reply_completed")
        .count();
    assert_eq!((sent, replies), (4, 4), "{}", events.body);
    assert!(items.iter().all(|e| e["payload"].get("content").is_none()));
    assert!(
        items
            .iter()
            .all(|e| e["payload"]["content_length"].as_u64().is_some()),
        "{items:?}"
    );

    // Closing sockets clears presence.
    phone.close().await;
    tablet.close().await;
    eventually(WAIT, "presence drops to zero", || async {
        let d = api
            .get(
                &office.admin.token,
                &format!("/api/v1/h5/users/{}", user.id),
            )
            .await;
        (d.body["live"]["connections"] == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_agents_are_reported_and_messages_marked_failed() {
    let mut office = Office::open("h5-offline").await;
    let user = office.user("carol").await;
    let agent = office.agents[0].0.clone();
    let (mut ws, _) = chat_socket(&office.relay, &user).await;
    office.stop_gateway().await;
    let offline = ws.next_of_type("system", WAIT).await;
    assert_eq!(offline["payload"]["event"], "agent_offline");
    assert_eq!(offline["payload"]["agent_id"], agent.as_str());

    ws.send_json(&chat_frame("lost-1", &agent, "anyone there?"))
        .await;
    let (stored, _) = next_message(&mut ws, "user").await;
    assert_eq!(
        stored["seq"], 1,
        "the message is stored before it is relayed"
    );
    let error = ws.next_of_type("error", WAIT).await;
    assert_eq!(error["payload"]["code"], "AGENT_UNAVAILABLE", "{error}");
    assert_eq!(error["id"], "lost-1");
    assert_eq!(error["seq"], 1);
    let session = stored["payload"]["session_id"].as_str().unwrap();
    let history = office
        .api
        .get(
            &user.token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages"),
        )
        .await
        .expect(200);
    assert_eq!(history.body["items"][0]["status"], "failed");

    // The gateway comes back: the user hears of it and the retry goes through.
    office.start_gateway().await;
    let online = ws.next_of_type("system", WAIT).await;
    assert_eq!(online["payload"]["event"], "agent_online");
    ws.send_json(&chat_frame("lost-1", &agent, "anyone there?"))
        .await;
    let (again, _) = next_message(&mut ws, "user").await;
    assert_eq!(again["seq"], 1, "a retry keeps its place");
    let (reply, _) = next_message(&mut ws, "agent").await;
    assert_eq!(reply["seq"], 2);
    assert_eq!(
        reply["payload"]["content"],
        reply_for("Simulated agent 1", "anyone there?").as_str()
    );
}

/// The relay keeps a user's route and session once read, but the database checks them
/// with each message: an unassigned user is refused at once (not after a cache expires)
/// and nothing is stored; assigned again, the user goes on in the same session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unassigned_user_is_refused_at_once_and_served_again_when_reassigned() {
    let office = Office::open("h5-unassign").await;
    let user = office.user("gina").await;
    let agent = office.agents[0].0.clone();
    let (mut ws, _) = chat_socket(&office.relay, &user).await;
    ws.send_json(&chat_frame("u-1", &agent, "first")).await;
    let (first, _) = next_message(&mut ws, "user").await;
    next_message(&mut ws, "agent").await;
    let session = first["payload"]["session_id"].as_str().unwrap().to_owned();

    office
        .api
        .delete(
            &office.admin.token,
            &format!("/api/v1/h5/users/{}/assign/{agent}", user.id),
        )
        .await
        .expect(204);
    ws.send_json(&chat_frame("u-2", &agent, "still there?"))
        .await;
    let refused = ws.next_of_type("error", WAIT).await;
    assert_eq!(refused["payload"]["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["id"], "u-2");

    office
        .api
        .post(
            Some(&office.admin.token),
            &format!("/api/v1/h5/users/{}/assign", user.id),
            json!({"agent_id": agent, "board_id": office.board}),
        )
        .await
        .expect(200);
    ws.send_json(&chat_frame("u-3", &agent, "back again")).await;
    let (again, _) = next_message(&mut ws, "user").await;
    assert_eq!(again["payload"]["session_id"], session.as_str());
    assert_eq!(again["seq"], 3, "the refused message took no seq");
    let (reply, _) = next_message(&mut ws, "agent").await;
    assert_eq!(reply["seq"], 4);
    let history = office
        .api
        .get(
            &user.token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages?after_seq=0"),
        )
        .await
        .expect(200);
    let ids: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_message_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"u-2"), "{ids:?}");
    assert_eq!(ids.len(), 4, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_error_frames_or_close_codes_and_others_are_unaffected() {
    let office = Office::open("h5-bad").await;
    let user = office.user("dave").await;
    let bystander = office.user("erin").await;
    let agent = office.agents[0].0.clone();
    let unassigned = office.agents[1].0.clone();
    let url = office.relay.ws_url("/ws/h5/chat");

    // A bystander chats throughout and must not notice anything.
    let (mut calm, _) = chat_socket(&office.relay, &bystander).await;

    // Frames before auth, admin tokens, garbage tokens: auth_error and 4001.
    for first in [
        chat_frame("x", &agent, "hi"),
        json!({"type": "auth", "payload": {"token": office.admin.token}}),
        json!({"type": "auth", "payload": {"token": "not-a-jwt"}}),
        json!({"type": "auth", "payload": {}}),
    ] {
        let mut ws = WsClient::connect(&url).await;
        ws.send_json(&first).await;
        let (code, frames) = ws.expect_close(WAIT).await;
        assert_eq!(code, 4001, "{first} → {frames:?}");
        assert!(
            frames.iter().any(|f| f["type"] == "auth_error"),
            "{frames:?}"
        );
    }

    let (mut ws, _) = chat_socket(&office.relay, &user).await;
    // Invalid JSON, unknown types, missing fields, empty and oversized content.
    let cases: Vec<(String, &str)> = vec![
        ("{not json".to_owned(), "INVALID_MESSAGE"),
        (
            json!({"type": "dance", "payload": {}}).to_string(),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type": "chat", "id": "a", "payload": {"content": "no agent"}}).to_string(),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type": "chat", "id": "b", "payload": {"agent_id": "nope", "content": "x"}})
                .to_string(),
            "INVALID_MESSAGE",
        ),
        (
            chat_frame("c", &agent, "   ").to_string(),
            "INVALID_MESSAGE",
        ),
        (
            chat_frame("d", &agent, &"x".repeat(8001)).to_string(),
            "MESSAGE_TOO_LARGE",
        ),
        (
            chat_frame("e", &unassigned, "not mine").to_string(),
            "FORBIDDEN",
        ),
        (
            chat_frame(&"i".repeat(129), &agent, "long id").to_string(),
            "INVALID_MESSAGE",
        ),
    ];
    for (text, code) in &cases {
        ws.send_text(text).await;
        let error = ws.next_of_type("error", WAIT).await;
        assert_eq!(error["payload"]["code"], *code, "{text:.80} → {error}");
    }

    // Another organization's agent is not assignable and not reachable.
    let other_admin = office.api.org_admin("h5-bad-other").await;
    let foreign_agent = office
        .api
        .create(
            &other_admin.token,
            "/api/v1/agents",
            json!({"name": "Elsewhere"}),
            "id",
        )
        .await;
    ws.send_json(&chat_frame("f", &foreign_agent, "hello?"))
        .await;
    assert_eq!(
        ws.next_of_type("error", WAIT).await["payload"]["code"],
        "FORBIDDEN"
    );

    // Resume with a session that is not yours, or a seq out of range.
    calm.send_json(&chat_frame("calm-1", &agent, "hi")).await;
    let (calm_msg, _) = next_message(&mut calm, "user").await;
    let foreign = calm_msg["payload"]["session_id"].as_str().unwrap();
    ws.send_json(&json!({"type": "resume", "payload": {"session_id": foreign, "last_seq": 0}}))
        .await;
    assert_eq!(
        ws.next_of_type("error", WAIT).await["payload"]["code"],
        "FORBIDDEN"
    );
    ws.send_json(&chat_frame("g", &agent, "real")).await;
    let (mine, _) = next_message(&mut ws, "user").await;
    let session = mine["payload"]["session_id"].as_str().unwrap();
    ws.send_json(&json!({"type": "resume", "payload": {"session_id": session, "last_seq": 99}}))
        .await;
    // The agent's reply to "g" is on its way too and may come first (on a busy machine
    // it does): kept, not skipped, so the wait for it below cannot miss it.
    let mut reply = None;
    let refusal = loop {
        let frame = ws.next_json(WAIT).await;
        match frame["type"].as_str() {
            Some("error") => break frame,
            Some("chat") if frame["payload"]["role"] == "agent" => reply = Some(frame),
            _ => {}
        }
    };
    assert_eq!(refusal["payload"]["code"], "INVALID_MESSAGE", "{refusal}");

    // Still usable after all that.
    let reply = match reply {
        Some(reply) => reply,
        None => next_message(&mut ws, "agent").await.0,
    };
    assert_eq!(reply["seq"], 2, "{reply}");
    ws.send_json(&json!({"type": "heartbeat", "id": "hb"}))
        .await;
    let beat = ws.next_of_type("heartbeat", WAIT).await;
    assert_eq!(beat["id"], "hb");

    // A flood: frames over the allowance are refused with RATE_LIMITED, then the socket
    // is closed with 4008.
    for i in 0..400 {
        ws.send_text(&json!({"type": "heartbeat", "id": i.to_string()}).to_string())
            .await;
    }
    let (code, frames) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4008);
    assert!(
        frames
            .iter()
            .any(|f| f["payload"]["code"] == "RATE_LIMITED")
    );

    // An oversized frame closes with 4008.
    let (mut ws, _) = chat_socket(&office.relay, &user).await;
    ws.send_text(&"x".repeat(70_000)).await;
    let (code, _) = ws.expect_close(WAIT).await;
    assert_eq!(code, 4008);

    // A suspended account is refused with 4003.
    office
        .api
        .post(
            Some(&office.admin.token),
            &format!("/api/v1/h5/users/{}/suspend", user.id),
            json!({}),
        )
        .await
        .expect(200);
    let mut ws = WsClient::connect(&url).await;
    ws.send_json(&json!({"type": "auth", "payload": {"token": user.token}}))
        .await;
    let (code, _) = ws.expect_close(WAIT).await;
    assert!(code == 4003 || code == 4001, "suspension ends chat: {code}");

    // The bystander got the reply to their message and can go on.
    let (reply, _) = next_message(&mut calm, "agent").await;
    assert_eq!(reply["seq"], 2);
    calm.send_json(&chat_frame("calm-2", &agent, "still fine"))
        .await;
    assert_eq!(next_message(&mut calm, "user").await.0["seq"], 3);
    assert_eq!(next_message(&mut calm, "agent").await.0["seq"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_heartbeat_timeout_are_enforced() {
    let office = Office::open("h5-limits").await;
    let user = office.user("frank").await;
    let relay = relay_for(&office.api, |c| {
        c.ws.max_connections = 2;
        c.ws.heartbeat_interval = Duration::from_secs(1);
        c.ws.heartbeat_timeout = Duration::from_secs(2);
    })
    .await;
    let url = relay.ws_url("/ws/h5/chat");
    let (mut first, _) = chat_socket(&relay, &user).await;
    let (_second, _) = chat_socket(&relay, &user).await;
    assert_eq!(
        WsClient::try_connect(&url).await.err(),
        Some(503),
        "a clear refusal at the limit"
    );

    // A socket that answers nothing (no pongs, no heartbeats) is closed within the timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, _) = first.expect_close(WAIT).await;
    assert_eq!(code, 4008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_by_a_relay_that_died_before_sending_it_is_sent_by_the_sweep() {
    use mc_domain::chat::{ChatHub, ChatService, SendChat};
    use mc_domain::gateways::router::GatewayRouter;
    use mc_domain::redis::RedisHandle;

    let office = Office::open("h5-sweep").await;
    let user = office.user("gina").await;
    let (mut ws, _) = chat_socket(&office.relay, &user).await;
    // A relay's chat service that stores the message and then "dies" before dispatching.
    let redis = RedisHandle::new(&office.api.redis).unwrap();
    let pool = mc_domain::db::pool(&office.api.db.config(), "sweep-test").unwrap();
    let router = GatewayRouter::start(Some(redis.clone()), "sweep-test".to_owned())
        .await
        .unwrap();
    let chat = ChatService::new(
        pool,
        router,
        ChatHub::new(Some(redis), "sweep-test"),
        Default::default(),
        Duration::from_secs(5),
    );
    let ctx = mc_domain::identity::H5Context {
        user_id: user.id.parse().unwrap(),
        org_id: office.admin.org_id.unwrap(),
        jti: uuid::Uuid::nil(),
    };
    let input = SendChat {
        agent_id: office.agents[0].0.parse().unwrap(),
        content: "left behind".to_owned(),
        session_id: None,
        client_message_id: Some("orphan".to_owned()),
    };
    chat.send(&ctx, input).await.unwrap();
    let (stored, _) = next_message(&mut ws, "user").await;
    assert_eq!(stored["seq"], 1);
    assert_eq!(stored["payload"]["status"], "received");

    // Too young to count as left behind: nothing is sent.
    let (hour, two_hours) = (Duration::from_secs(3600), Duration::from_secs(7200));
    assert_eq!(chat.resend_unsent(hour, two_hours).await.unwrap(), 0);
    // Old enough: the sweep sends it, and the agent's reply reaches the user.
    assert_eq!(chat.resend_unsent(Duration::ZERO, hour).await.unwrap(), 1);
    let (reply, _) = next_message(&mut ws, "agent").await;
    assert_eq!(reply["seq"], 2);
    assert_eq!(
        reply["payload"]["content"],
        reply_for("Simulated agent 1", "left behind").as_str()
    );
    // Accepted now (recorded as sent within a moment): the next sweep has nothing to do.
    let session = stored["payload"]["session_id"].as_str().unwrap();
    let path = format!("/api/v1/h5/chat/sessions/{session}/messages?after_seq=0");
    let api = &office.api;
    eventually(WAIT, "the message is recorded as sent", || async {
        let history = api.get(&user.token, &path).await.expect(200);
        (history.body["items"][0]["status"] == "sent").then_some(())
    })
    .await;
    assert_eq!(chat.resend_unsent(Duration::ZERO, hour).await.unwrap(), 0);
}
