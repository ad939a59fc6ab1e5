//! What the connector's integration tests share: the API as a spawnable service.

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
