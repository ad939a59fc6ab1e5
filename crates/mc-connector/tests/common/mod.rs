//! What the connector's integration tests share: the API as a spawnable service, connector
//! settings, reading a streamed reply.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use tokio_util::sync::CancellationToken;

/// `mc_api::run` in the shape `TestApi::start` takes.
pub fn run_api(
    config: mc_domain::config::ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(mc_api::run(config, listener, shutdown))
}

/// A streamed chat reply as the control plane received it.
pub struct Reply {
    /// `deltaText` of each `delta`, in order.
    pub deltas: Vec<String>,
    /// The `final` message's text.
    pub text: String,
}

/// Reads `chat` events of `run` in `session` from `events` until the `final` one, checking
/// that their frame `seq` increases; an `error` or `aborted` run fails the test.
pub async fn reply_of(
    events: &mut mc_domain::fanout::Subscription<mc_domain::gateways::router::Envelope>,
    run: &str,
    session: &str,
    wait: std::time::Duration,
) -> Reply {
    use mc_domain::fanout::Delivery;
    use mc_domain::gateways::router::Envelope;
    let (mut deltas, mut last_seq) = (Vec::new(), 0u64);
    loop {
        let delivery = tokio::time::timeout(wait, events.rx.recv())
            .await
            .expect("chat events in time")
            .expect("the event feed stays open");
        let Delivery::Item(envelope) = delivery else {
            continue;
        };
        let Envelope::Event { frame, .. } = envelope.as_ref() else {
            continue;
        };
        let p = &frame["payload"];
        if frame["event"] != "chat" || p["runId"] != run {
            continue;
        }
        assert_eq!(p["sessionKey"], session);
        let seq = frame["seq"].as_u64().unwrap_or(0);
        assert!(seq > last_seq, "seq increases: {frame}");
        last_seq = seq;
        match p["state"].as_str() {
            Some("delta") => deltas.push(p["deltaText"].as_str().unwrap_or_default().to_owned()),
            Some("final") => {
                let text = p["message"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default();
                return Reply {
                    deltas,
                    text: text.to_owned(),
                };
            }
            Some("error" | "aborted") => panic!("the run failed: {frame}"),
            _ => {}
        }
    }
}

/// Settings of a connector registering with `api` in `admin`'s organization and holding
/// its relay socket at `relay` (a `ws://` base URL), with its state in `dir`.
pub fn connector_config(
    api: &mc_testkit::api::TestApi,
    admin: &mc_testkit::api::Session,
    token: &str,
    relay: &str,
    dir: &std::path::Path,
) -> mc_connector::config::ConnectorConfig {
    mc_connector::config::ConnectorConfig {
        api_server: api.url(""),
        organization_id: admin.org_id.unwrap().to_string(),
        registration_token: Some(token.to_owned()),
        relay_url: Some(relay.to_owned()),
        name: "office-sim".to_owned(),
        workspace_root: Some("/opt/openclaw/workspace".to_owned()),
        reconnect_max_retries: None,
        reconnect_base: std::time::Duration::from_millis(50),
        reconnect_max: std::time::Duration::from_millis(400),
        heartbeat_interval: std::time::Duration::from_secs(1),
        openclaw_url: "ws://127.0.0.1:18789".to_owned(),
        openclaw_token: None,
        state_dir: dir.to_owned(),
        proxy_addr: "127.0.0.1:0".parse().unwrap(),
    }
}
