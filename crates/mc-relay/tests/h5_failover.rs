//! Reliability: users chat through two relay instances (one a real `mc-relay` process),
//! the process is killed with SIGKILL mid-conversation, every client reconnects to the
//! survivor, resumes from its last seq and re-sends what was not acknowledged; in the end
//! each user has exactly one reply per message sent, and no client saw a message twice or
//! missed one. And the hold of a message that arrives ahead of a gap.
//!
//! Small by default (part of `scripts/test`); `scripts/bench failover` runs it at full
//! scale with `MC_FAILOVER_USERS` and `MC_FAILOVER_MESSAGES`.

// The tally line is the full-scale command's report; a duplicate is printed to be seen.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::run_api;
use mc_domain::chat::repo::{self, NewMessage};
use mc_domain::chat::{ChatDelivery, ChatHub, ChatMessage, ChatRole, MessageStatus};
use mc_domain::ids::{AgentId, ChatSessionId, H5UserId};
use mc_domain::redis::RedisHandle;
use mc_testkit::api::{Session, TestApi};
use mc_testkit::contract::KillOnDrop;
use mc_testkit::ws::{WsClient, WsEvent};
use mc_testkit::{TEST_H5_JWT_SECRET, TEST_JWT_SECRET, eventually, spawn_service};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A gateway played by the test: acks `chat.send` (once per idempotency key, as OpenClaw
/// does) and streams a delta and a final reply.
async fn scripted_gateway(mut ws: WsClient) {
    let mut runs = HashSet::new();
    loop {
        let frame = match ws.next_event(Duration::from_secs(3600)).await {
            WsEvent::Json(frame) => frame,
            _ => return,
        };
        if frame["type"] != "req" {
            continue;
        }
        let id = frame["id"].clone();
        let params = &frame["params"];
        if frame["method"] != "chat.send" {
            ws.send_json(&json!({"type": "res", "id": id, "ok": true, "payload": {}}))
                .await;
            continue;
        }
        let key = params["idempotencyKey"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let session = params["sessionKey"].clone();
        let text = format!("re: {}", params["message"].as_str().unwrap_or_default());
        if !runs.insert(key.clone()) {
            ws.send_json(&json!({"type": "res", "id": id, "ok": true,
                "payload": {"runId": key, "status": "in_flight"}}))
                .await;
            continue;
        }
        ws.send_json(&json!({"type": "res", "id": id, "ok": true,
            "payload": {"runId": key, "status": "started"}}))
            .await;
        for (state, part) in [("delta", &text[..3]), ("final", text.as_str())] {
            ws.send_json(&json!({"type": "event", "event": "chat", "payload": {
                "runId": key, "sessionKey": session, "state": state, "deltaText": part,
                "message": {"role": "assistant", "content": [{"type": "text", "text": part}]},
            }}))
            .await;
        }
    }
}

/// A relay as a separate process, so it can be killed with SIGKILL.
fn relay_process(api: &TestApi, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mc-relay"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .env("MC_RELAY_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", api.db.app_url())
        .env("REDIS_URL", api.redis.url.expose())
        .env("REDIS_KEY_PREFIX", &api.redis.key_prefix)
        .env("JWT_SECRET", TEST_JWT_SECRET)
        .env("H5_JWT_SECRET", TEST_H5_JWT_SECRET)
        .env("MC_RELAY_API_URL", api.url(""))
        .env("WS_MESSAGES_PER_SECOND", "1000")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn mc-relay")
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    replies: HashSet<String>,
    duplicates: usize,
    gaps: usize,
    /// Ids re-sent after a reconnect: the relay confirms them again with their seq.
    resent: HashSet<String>,
    reconnects: usize,
}

/// A client that survives its relay: reconnects to the next URL, resumes from its last
/// seq, and re-sends the message it has no acknowledgement for (same id).
struct Client {
    urls: Vec<String>,
    token: String,
    agent: String,
    ws: Option<WsClient>,
    session: Option<String>,
    last_seq: i64,
    tally: Tally,
}

impl Client {
    async fn connect(&mut self) {
        for attempt in 0.. {
            let url = &self.urls[attempt % self.urls.len()];
            // Resume as part of authenticating, so live frames cannot overtake it.
            let resume: Vec<Value> = self
                .session
                .iter()
                .map(|s| json!({"session_id": s, "last_seq": self.last_seq}))
                .collect();
            let auth = json!({"type": "auth", "payload": {"token": self.token, "resume": resume}});
            if let Some(mut ws) = WsClient::connect_or_none(url).await
                && ws.try_send_json(&auth).await
                && let Ok(WsEvent::Json(ok)) =
                    tokio::time::timeout(Duration::from_secs(5), ws.next_event(WAIT)).await
                && ok["type"] == "auth_ok"
            {
                self.ws = Some(ws);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(attempt < 300, "no relay accepts the client");
        }
    }

    /// Handles one frame; returns the client id of a stored user message.
    fn take(&mut self, frame: &Value) -> Option<String> {
        if frame["type"] != "chat" {
            return None;
        }
        let seq = frame["seq"].as_i64().unwrap();
        let role = frame["payload"]["role"].as_str().unwrap_or_default();
        let id = frame["id"].as_str().unwrap_or_default().to_owned();
        self.session = frame["payload"]["session_id"].as_str().map(str::to_owned);
        if seq <= self.last_seq {
            // Only a re-sent message's confirmation may repeat a seq.
            if !(role == "user" && self.tally.resent.contains(&id)) {
                eprintln!("duplicate after seq {}: {frame}", self.last_seq);
                self.tally.duplicates += 1;
            }
            return (role == "user").then_some(id);
        }
        if seq != self.last_seq + 1 {
            self.tally.gaps += 1;
        }
        self.last_seq = seq;
        if role == "agent" && !self.tally.replies.insert(id.clone()) {
            self.tally.duplicates += 1;
        }
        (role == "user").then_some(id)
    }

    /// The next frame, or `None` when the socket died (then reconnected).
    async fn next(&mut self) -> Option<Value> {
        let ws = self.ws.as_mut().expect("connected");
        match tokio::time::timeout(Duration::from_secs(20), ws.next_event(WAIT)).await {
            Ok(WsEvent::Json(frame)) => Some(frame),
            _ => {
                self.tally.reconnects += 1;
                self.ws = None;
                self.connect().await;
                None
            }
        }
    }

    async fn chat(
        mut self,
        user: usize,
        messages: usize,
        pace: Duration,
        started: Arc<AtomicUsize>,
    ) -> Tally {
        self.connect().await;
        for i in 0..messages {
            let id = format!("u{user}-m{i}");
            let frame = json!({"type": "chat", "id": id, "payload": {"agent_id": self.agent, "content": format!("message {i}")}});
            'send: loop {
                if !self.ws.as_mut().unwrap().try_send_json(&frame).await {
                    self.ws = None;
                    self.tally.reconnects += 1;
                    self.connect().await;
                    self.tally.resent.insert(id.clone());
                    continue;
                }
                loop {
                    let Some(reply) = self.next().await else {
                        self.tally.resent.insert(id.clone());
                        continue 'send;
                    };
                    if self.take(&reply).as_deref() == Some(id.as_str()) {
                        break 'send;
                    }
                }
            }
            self.tally.sent += 1;
            if i == 0 {
                started.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(pace).await;
        }
        let deadline = Instant::now() + WAIT;
        while self.tally.replies.len() < messages {
            assert!(
                Instant::now() < deadline,
                "replies missing: {:?}",
                self.tally
            );
            if let Some(frame) = self.next().await {
                self.take(&frame);
            }
        }
        self.tally
    }
}

async fn assigned_user(
    api: &TestApi,
    admin: &Session,
    agent: &str,
    board: &str,
    n: usize,
) -> String {
    let name = format!("user-{n}");
    let id = api
        .create(
            &admin.token,
            "/api/v1/h5/users",
            json!({"username": name, "password": "h5-password-1"}),
            "id",
        )
        .await;
    api.post(
        Some(&admin.token),
        &format!("/api/v1/h5/users/{id}/assign"),
        json!({"agent_id": agent, "board_id": board}),
    )
    .await
    .expect(200);
    let login = api
        .post(None, "/api/v1/h5/auth/login", json!({"organization_id": admin.org_id.unwrap(), "username": name, "password": "h5-password-1"}))
        .await
        .expect(200);
    login.body["access_token"].as_str().unwrap().to_owned()
}

/// A registered gateway with one agent, and a board to assign users on.
struct Office {
    gateway: String,
    relay_token: String,
    agent: String,
    board: String,
}

async fn office(api: &TestApi, admin: &Session) -> Office {
    let token = api.registration_token(admin).await;
    let registered = api
        .post(None, "/api/v1/gateway-registry/register",
            json!({"organization_id": admin.org_id.unwrap(), "registration_token": token, "name": "office"}))
        .await
        .expect(200);
    let gateway = registered.body["gateway_id"].as_str().unwrap().to_owned();
    let relay_token = registered.body["relay_token"].as_str().unwrap().to_owned();
    let agent = api
        .create(
            &admin.token,
            "/api/v1/agents",
            json!({"name": "Main", "gateway_id": gateway, "openclaw_agent_id": "main"}),
            "id",
        )
        .await;
    let board = api
        .create(
            &admin.token,
            "/api/v1/boards",
            json!({"name": "Chat"}),
            "id",
        )
        .await;
    Office {
        gateway,
        relay_token,
        agent,
        board,
    }
}

/// An in-process relay for `api`, its settings adjusted, ready.
async fn relay_for(
    api: &TestApi,
    adjust: impl FnOnce(&mut mc_domain::config::RelayConfig),
) -> mc_testkit::Spawned {
    let mut config = api.relay_config();
    adjust(&mut config);
    let relay = spawn_service(move |l, s| mc_relay::run(config, l, s)).await;
    relay.wait_ready().await;
    relay
}

/// The office's gateway socket on `relay`, authenticated.
async fn gateway_socket(relay: &mc_testkit::Spawned, office: &Office) -> WsClient {
    let gateway = &office.gateway;
    let mut gw = WsClient::connect(&relay.ws_url(&format!("/ws/gateway/{gateway}/relay"))).await;
    gw.send_json(&json!({"type": "auth", "payload": {"relay_token": office.relay_token}}))
        .await;
    assert_eq!(gw.next_json(WAIT).await["type"], "auth_ok");
    gw
}

/// Connects the scripted gateway to `relay`.
async fn connect_gateway(relay: &mc_testkit::Spawned, office: &Office) {
    tokio::spawn(scripted_gateway(gateway_socket(relay, office).await));
}

/// An H5 socket on `relay`, authenticated with `token`.
async fn h5_socket(relay: &mc_testkit::Spawned, token: &str) -> WsClient {
    let mut ws = WsClient::connect(&relay.ws_url("/ws/h5/chat")).await;
    ws.send_json(&json!({"type": "auth", "payload": {"token": token}}))
        .await;
    ws.next_of_type("auth_ok", WAIT).await;
    ws
}

/// The `chat` frames `ws` receives until none comes for `quiet`: (seq, content).
async fn chats_until_quiet(ws: &mut WsClient, quiet: Duration) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    while let Ok(event) = tokio::time::timeout(quiet, ws.next_event(WAIT)).await {
        let WsEvent::Json(frame) = event else {
            panic!("socket ended: {event:?}");
        };
        if frame["type"] == "chat" {
            let content = frame["payload"]["content"].as_str().unwrap_or_default();
            seen.push((frame["seq"].as_i64().unwrap(), content.to_owned()));
        }
    }
    seen
}

/// Live deliveries can reach a socket out of order (replies commit concurrently and are
/// published as they commit). A message ahead of a gap is held: when the missing one comes
/// live within the wait, both go out in order; when it never comes, it is read from the
/// log once the wait is over. Either way: in order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_ahead_of_a_gap_waits_for_it_or_reads_it_from_the_log() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("ordering").await;
    let office = office(&api, &admin).await;
    let relay = relay_for(&api, |_| {}).await;
    connect_gateway(&relay, &office).await;
    let token = assigned_user(&api, &admin, &office.agent, &office.board, 0).await;
    let mut ws = WsClient::connect(&relay.ws_url("/ws/h5/chat")).await;
    ws.send_json(&json!({"type": "auth", "payload": {"token": token}}))
        .await;
    let ok = ws.next_of_type("auth_ok", WAIT).await;
    let user = H5UserId(ok["payload"]["user_id"].as_str().unwrap().parse().unwrap());
    ws.send_json(&json!({"type": "chat", "id": "m0", "payload": {"agent_id": office.agent, "content": "hello"}}))
        .await;
    let reply = loop {
        let frame = ws.next_of_type("chat", WAIT).await;
        if frame["payload"]["role"] == "agent" {
            break frame;
        }
    };
    assert_eq!(reply["seq"], 2);
    let session = ChatSessionId(
        reply["payload"]["session_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );

    // Replies 3..=6 stored behind the relay's back, then announced by the test.
    let org = admin.org_id.unwrap();
    let contents = ["late 3", "late 4", "late 5", "late 6"];
    let new: Vec<NewMessage<'_>> = contents
        .iter()
        .map(|content| NewMessage {
            org,
            session,
            role: ChatRole::Agent,
            content,
            client_message_id: content,
            run_id: None,
            status: MessageStatus::Completed,
            gateway: None,
        })
        .collect();
    let stored = repo::append_many(api.db.pool(), &new, false).await.unwrap();
    let stored: Vec<ChatMessage> = stored.into_iter().map(|(_, m, _)| m).collect();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    let hub = ChatHub::new(Some(RedisHandle::new(&api.redis).unwrap()), "test");
    let agent = AgentId(office.agent.parse().unwrap());
    let announce = |message: &ChatMessage| ChatDelivery::Message {
        agent_id: agent,
        message: message.clone(),
    };

    // 4 overtakes 3; 3 comes 50 ms later, inside the wait.
    hub.publish_user(user, &announce(&stored[1])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    hub.publish_user(user, &announce(&stored[0])).await.unwrap();
    let seen = chats_until_quiet(&mut ws, Duration::from_millis(600)).await;
    assert_eq!(seen, [(3, "late 3".to_owned()), (4, "late 4".to_owned())]);

    // 6 is announced and 5 never is: after the wait, 5 comes from the log, then 6.
    hub.publish_user(user, &announce(&stored[3])).await.unwrap();
    let seen = chats_until_quiet(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(seen, [(5, "late 5".to_owned()), (6, "late 6".to_owned())]);

    // 5's announcement arriving after all is not delivered again.
    hub.publish_user(user, &announce(&stored[2])).await.unwrap();
    assert_eq!(
        chats_until_quiet(&mut ws, Duration::from_millis(500)).await,
        []
    );
}

/// A gateway that takes nothing (stalled, or far behind) is owed at most
/// `CHAT_MAX_BACKLOG_PER_GATEWAY` messages by a relay; the next is refused with
/// `RATE_LIMITED` before it is stored, and goes through once the gateway takes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_gateway_is_owed_a_bounded_backlog_and_more_is_refused_unstored() {
    let api = TestApi::start(run_api).await;
    let admin = api.org_admin("backlog").await;
    let office = office(&api, &admin).await;
    let relay = relay_for(&api, |c| c.chat.max_backlog_per_gateway = 2).await;
    // Reads the requests and answers none until the test does.
    let mut gateway = gateway_socket(&relay, &office).await;
    let token = assigned_user(&api, &admin, &office.agent, &office.board, 0).await;
    let mut ws = h5_socket(&relay, &token).await;
    let chat = |id: &str| json!({"type": "chat", "id": id, "payload": {"agent_id": office.agent, "content": id}});

    let mut session = String::new();
    for (seq, id) in [(1, "b1"), (2, "b2")] {
        ws.send_json(&chat(id)).await;
        let stored = ws.next_of_type("chat", WAIT).await;
        assert_eq!(
            (stored["id"].as_str(), stored["seq"].as_i64()),
            (Some(id), Some(seq))
        );
        session = stored["payload"]["session_id"].as_str().unwrap().to_owned();
    }
    let first = gateway.next_of_type("req", WAIT).await;
    assert_eq!(first["params"]["message"], "b1");
    assert_eq!(
        gateway.next_of_type("req", WAIT).await["params"]["message"],
        "b2"
    );

    ws.send_json(&chat("b3")).await;
    let refused = ws.next_json(WAIT).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "b3");
    assert_eq!(refused["payload"]["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(refused["payload"]["retry_after_ms"], 1000);
    assert_eq!(refused["payload"]["reason"], "gateway_busy");
    let history = api
        .get(
            &token,
            &format!("/api/v1/h5/chat/sessions/{session}/messages"),
        )
        .await
        .expect(200);
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        2,
        "nothing stored: {}",
        history.body
    );

    // The gateway takes b1: there is room again, and b3 gets the next seq.
    gateway
        .send_json(&json!({"type": "res", "id": first["id"], "ok": true,
                           "payload": {"runId": "run-b1", "status": "started"}}))
        .await;
    let deadline = Instant::now() + WAIT;
    let stored = loop {
        ws.send_json(&chat("b3")).await;
        let frame = ws.next_json(WAIT).await;
        match frame["type"].as_str() {
            Some("chat") => break frame,
            Some("error") if frame["payload"]["code"] == "RATE_LIMITED" => {
                assert!(
                    Instant::now() < deadline,
                    "b3 still refused after b1 was taken"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("unexpected frame: {frame}"),
        }
    };
    assert_eq!(
        (stored["id"].as_str(), stored["seq"].as_i64()),
        (Some("b3"), Some(3))
    );
    assert_eq!(
        gateway.next_of_type("req", WAIT).await["params"]["message"],
        "b3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_relay_loses_and_duplicates_nothing() {
    let users = env_usize("MC_FAILOVER_USERS", 6);
    let messages = env_usize("MC_FAILOVER_MESSAGES", 12);
    // Many users log in from this one address.
    let api = TestApi::start_with(run_api, |c| {
        let many = mc_domain::config::Quota {
            per_minute: 100_000,
            burst: 100_000,
        };
        c.rate_limits.login_per_ip = many;
        c.rate_limits.anonymous = many;
        c.rate_limits.enterprise = many;
        c.rate_limits.pro = many;
        c.rate_limits.free = many;
    })
    .await;
    let admin = api.org_admin("failover").await;
    let office = office(&api, &admin).await;

    // Relay B (survivor) in-process, holding the gateway; relay A a process to kill.
    let relay_b = relay_for(&api, |c| c.ws.messages_per_second = 1000).await;
    let port_a = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut relay_a = KillOnDrop(Some(relay_process(&api, port_a)));
    let client = mc_testkit::http_client();
    eventually(Duration::from_secs(30), "relay A ready", || async {
        let ok = client
            .get(format!("http://127.0.0.1:{port_a}/readyz"))
            .send()
            .await;
        ok.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await;
    connect_gateway(&relay_b, &office).await;

    let url_a = format!("ws://127.0.0.1:{port_a}/ws/h5/chat");
    let url_b = relay_b.ws_url("/ws/h5/chat");
    let mut clients = Vec::new();
    let mut tokens = Vec::with_capacity(users);
    for n in 0..users {
        tokens.push(assigned_user(&api, &admin, &office.agent, &office.board, n).await);
    }
    let started = Arc::new(AtomicUsize::new(0));
    // Everyone chats at once.
    for (n, token) in tokens.into_iter().enumerate() {
        // Half start on A (then move to B), half on B.
        let urls = if n % 2 == 0 {
            vec![url_a.clone(), url_b.clone()]
        } else {
            vec![url_b.clone(), url_a.clone()]
        };
        let client = Client {
            urls,
            token,
            agent: office.agent.clone(),
            ws: None,
            session: None,
            last_seq: 0,
            tally: Tally::default(),
        };
        clients.push(tokio::spawn(client.chat(
            n,
            messages,
            Duration::from_millis(20),
            started.clone(),
        )));
    }
    // Kill A with SIGKILL once every conversation is under way.
    eventually(WAIT, "every client has sent a message", || async {
        (started.load(Ordering::Relaxed) == users).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay_a.kill().expect("SIGKILL relay A");
    relay_a.wait().expect("reap relay A");

    let (mut sent, mut received, mut duplicates, mut gaps, mut reconnects) = (0, 0, 0, 0, 0);
    for client in clients {
        let tally = client.await.expect("client finished");
        assert_eq!(tally.sent, messages, "{tally:?}");
        assert_eq!(
            tally.replies.len(),
            messages,
            "one reply per message: {tally:?}"
        );
        sent += tally.sent;
        received += tally.replies.len();
        duplicates += tally.duplicates;
        gaps += tally.gaps;
        reconnects += tally.reconnects;
    }
    println!(
        "failover: users {users}, sent {sent}, replies received {received}, duplicates {duplicates}, gaps {gaps}, reconnects {reconnects}"
    );
    assert_eq!(sent, received);
    assert_eq!(duplicates, 0, "no client saw a message twice");
    assert_eq!(gaps, 0, "no client missed a message");
    assert!(
        reconnects >= users / 2,
        "the clients on A moved: {reconnects}"
    );

    // The database agrees: every session holds each message and reply exactly once.
    let mut tx = mc_domain::db::begin_org(api.db.pool(), admin.org_id.unwrap())
        .await
        .unwrap();
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT role, count(*) FROM h5_chat_messages GROUP BY role ORDER BY role")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        counts,
        vec![
            ("agent".to_owned(), sent as i64),
            ("user".to_owned(), sent as i64)
        ]
    );
}
