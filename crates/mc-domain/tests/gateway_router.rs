//! Answers to gateway calls over a real Redis: a call made in the process that holds the
//! gateway is answered without a Redis copy on its reply channel; a call from another
//! process gets its answer through Redis, as before.

use futures::StreamExt;
use mc_domain::fanout::Delivery;
use mc_domain::gateways::router::{Attachment, CallOutcome, Envelope, GatewayRouter};
use mc_domain::ids::{GatewayConnectionId, GatewayId};
use mc_domain::redis::RedisHandle;
use mc_testkit::redis_config;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// The next request on the holder's feed, answered with `{"from": id}` through the
/// holder's socket publisher.
async fn answer_next(holder: &GatewayRouter, gateway: GatewayId, feed: &mut Attachment) {
    let publisher = holder.socket_publisher(gateway);
    loop {
        let delivery = tokio::time::timeout(WAIT, feed.rx.rx.recv())
            .await
            .expect("a request in time")
            .expect("the feed is open");
        let Delivery::Item(envelope) = delivery else {
            continue;
        };
        if let Envelope::Req { id, reply_to, .. } = envelope.as_ref() {
            let outcome = CallOutcome::Ok {
                payload: json!({"from": id}),
            };
            publisher
                .respond(reply_to, id.clone(), outcome)
                .await
                .unwrap();
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_the_holding_process_is_answered_without_a_redis_copy() {
    let handle = RedisHandle::new(&redis_config()).unwrap();
    let instance = |name: &str| format!("{name}-{}", uuid::Uuid::new_v4().simple());
    let (here_name, there_name) = (instance("here"), instance("there"));
    let here = GatewayRouter::start(Some(handle.clone()), here_name.clone())
        .await
        .unwrap();
    let there = GatewayRouter::start(Some(handle.clone()), there_name.clone())
        .await
        .unwrap();

    // Watches both reply channels the way another process would.
    let mut watcher = handle.client().get_async_pubsub().await.unwrap();
    for name in [&here_name, &there_name] {
        watcher
            .subscribe(handle.key(format!("route:relay:{name}")))
            .await
            .unwrap();
    }
    let mut seen = watcher.on_message();

    let gateway = GatewayId::generate();
    let mut feed = here
        .attach(gateway, GatewayConnectionId::generate())
        .await
        .unwrap();

    // A call made where the gateway is held: answered, with nothing on Redis.
    let call = {
        let here = here.clone();
        tokio::spawn(async move { here.call(gateway, "health", json!({}), WAIT).await })
    };
    answer_next(&here, gateway, &mut feed).await;
    let outcome = call.await.unwrap().unwrap();
    let CallOutcome::Ok { payload } = outcome else {
        panic!("the call failed: {outcome:?}");
    };
    assert!(payload["from"].as_str().unwrap().starts_with("mc-"));

    // A call from another process: its answer goes through Redis to that process.
    let call = {
        let there = there.clone();
        tokio::spawn(async move { there.call(gateway, "health", json!({}), WAIT).await })
    };
    answer_next(&here, gateway, &mut feed).await;
    let outcome = call.await.unwrap().unwrap();
    assert!(matches!(outcome, CallOutcome::Ok { .. }), "{outcome:?}");

    // The watcher saw exactly one answer, on the other process's channel: had the first
    // one been published, it would have arrived before this one.
    let message = tokio::time::timeout(WAIT, seen.next())
        .await
        .expect("the second answer on Redis")
        .expect("the watcher is connected");
    assert_eq!(
        message.get_channel_name(),
        handle.key(format!("route:relay:{there_name}"))
    );
    let body: String = message.get_payload().unwrap();
    assert!(body.contains("\"res\""), "{body}");
}
