//! The connector between a relay and a gateway that both misbehave: malformed frames from
//! either side are skipped, the connector keeps serving, and calls still go through. Both
//! peers here are scripted WebSocket servers speaking the real protocols (the relay's
//! auth frames, OpenClaw's challenge / connect / hello-ok with a verified device
//! signature); no database is needed because the connector reuses a saved identity.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use futures::{SinkExt, StreamExt};
use mc_connector::backend::Backend;
use mc_connector::backend::openclaw::{DeviceIdentity, OpenClawClient};
use mc_connector::config::ConnectorConfig;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        if let Some(Ok(Message::Text(text))) = frame {
            return serde_json::from_str(&text).expect("JSON from the connector");
        }
        assert!(frame.is_some(), "the connector closed the socket");
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// A scripted OpenClaw gateway: checks the handshake, then mixes garbage into its answers.
async fn fake_gateway(listener: TcpListener, token: &'static str) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
    send(
        &mut ws,
        r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"n-42","ts":1}}"#,
    )
    .await;
    let connect = next_json(&mut ws).await;
    assert_eq!(connect["method"], "connect");
    let p = &connect["params"];
    assert_eq!(
        (p["minProtocol"].as_u64(), p["maxProtocol"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(
        (p["client"]["id"].as_str(), p["client"]["mode"].as_str()),
        (Some("gateway-client"), Some("backend"))
    );
    assert_eq!(p["auth"]["token"], token);
    // The device signature verifies over the v2 string, as the real gateway checks it.
    let d = &p["device"];
    let public: [u8; 32] = URL_SAFE_NO_PAD
        .decode(d["publicKey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signed = format!(
        "v2|{}|gateway-client|backend|operator|{}|{}|{token}|n-42",
        d["id"].as_str().unwrap(),
        p["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(","),
        d["signedAt"],
    );
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(d["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(signed.as_bytes(), &Signature::from_bytes(&sig))
        .unwrap();
    send(
        &mut ws,
        &json!({"type": "res", "id": connect["id"], "ok": true,
                          "payload": {"type": "hello-ok", "protocol": 4}})
        .to_string(),
    )
    .await;
    loop {
        let req = next_json(&mut ws).await;
        // Garbage before every answer.
        send(&mut ws, "{not json").await;
        send(&mut ws, r#"{"type":"res","id":"nobody-asked","ok":true}"#).await;
        send(&mut ws, r#"{"type":"event"}"#).await;
        ws.send(Message::binary(vec![0u8, 159, 146, 150]))
            .await
            .unwrap();
        let payload = match req["method"].as_str() {
            Some("agents.list") => json!({"defaultId": "main", "agents": [{"id": "main"}]}),
            Some("sessions.list") => json!({"sessions": []}),
            _ => json!({"ok": true, "from": "fake gateway"}),
        };
        send(
            &mut ws,
            &json!({"type": "res", "id": req["id"], "ok": true, "payload": payload}).to_string(),
        )
        .await;
        if req["method"] == "health" {
            send(&mut ws, r#"{"type":"event","event":"chat","seq":3,"payload":{"state":"final","runId":"r"}}"#).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_from_relay_and_gateway_are_skipped() {
    let scratch = mc_testkit::ScratchDir::new("mc-robust");
    let dir = scratch.path();
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_listener.local_addr().unwrap();
    let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = gateway_listener.local_addr().unwrap();
    // A saved identity: the connector starts without registering.
    let org = uuid::Uuid::new_v4().to_string();
    let api_server = "http://127.0.0.1:9".to_owned();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("identity.json"),
        json!({"api_server": api_server, "organization_id": org, "gateway_id": "gw-1",
               "relay_token": "gw_relay_test", "relay_ws_url": format!("ws://{relay_addr}/ws/gateway/gw-1/relay"),
               "heartbeat_interval_seconds": 30})
        .to_string(),
    )
    .unwrap();
    tokio::spawn(fake_gateway(gateway_listener, "gateway-secret"));

    let shutdown = CancellationToken::new();
    let device = DeviceIdentity::load_or_create(dir).unwrap();
    let backend = Backend::OpenClaw(OpenClawClient::start(
        format!("ws://{gateway_addr}"),
        "gateway-secret".to_owned(),
        device,
        shutdown.clone(),
    ));
    let config = ConnectorConfig {
        api_server,
        organization_id: org,
        registration_token: None,
        relay_url: None,
        name: "robust".to_owned(),
        workspace_root: None,
        reconnect_max_retries: None,
        reconnect_base: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
        heartbeat_interval: Duration::from_secs(30),
        openclaw_url: format!("ws://{gateway_addr}"),
        openclaw_token: Some("gateway-secret".to_owned()),
        state_dir: dir.to_path_buf(),
        proxy_addr: "127.0.0.1:0".parse().unwrap(),
    };
    let running = mc_connector::start(config, backend, shutdown.clone())
        .await
        .unwrap();

    // The scripted relay.
    let (stream, _) = relay_listener.accept().await.unwrap();
    let mut relay = tokio_tungstenite::accept_async(stream).await.unwrap();
    let auth = next_json(&mut relay).await;
    assert_eq!(auth["payload"]["relay_token"], "gw_relay_test");
    send(
        &mut relay,
        r#"{"type":"auth_ok","payload":{"gateway_id":"gw-1","config":{}}}"#,
    )
    .await;
    for garbage in [
        "{not json",
        r#"{"type":"req"}"#,
        r#"{"type":"res","id":"nobody"}"#,
        r#"{"type":"mystery"}"#,
        "[]",
        r#"{"type":"error","payload":{"code":"X"}}"#,
    ] {
        send(&mut relay, garbage).await;
    }
    relay.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    send(
        &mut relay,
        r#"{"type":"req","id":"r1","method":"health","params":{}}"#,
    )
    .await;

    // Through all that: the agent report, the answer to r1 and the gateway's event arrive.
    let (mut answered, mut synced, mut evented) = (false, false, false);
    while !(answered && synced && evented) {
        let frame = next_json(&mut relay).await;
        match (frame["type"].as_str(), frame["method"].as_str()) {
            (Some("req"), Some("agents.sync")) => {
                assert_eq!(frame["params"]["agents"][0]["id"], "main");
                send(
                    &mut relay,
                    &json!({"type": "res", "id": frame["id"], "ok": true,
                                         "payload": {"created": 1, "online": 0, "offline": 0}})
                    .to_string(),
                )
                .await;
                synced = true;
            }
            (Some("res"), _) if frame["id"] == "r1" => {
                assert_eq!(frame["ok"], true, "{frame}");
                assert_eq!(frame["payload"]["from"], "fake gateway");
                answered = true;
            }
            (Some("event"), _) => {
                assert_eq!(frame["event"], "chat");
                evented = true;
            }
            _ => {}
        }
    }
    assert!(
        !running.done.is_finished(),
        "the connector is still running"
    );
    shutdown.cancel();
    running.done.await.unwrap().unwrap();
}
