//! `Fanout` over a real Redis, two fan-outs standing for two processes: a publisher's own
//! listeners get its message at once and exactly once (its Redis copy, tagged with its
//! origin, is dropped), the other process gets it from Redis without the tag, and a
//! channel with one holder counts who got a message.

use mc_domain::fanout::{Delivery, Fanout, Subscription};
use mc_domain::redis::RedisHandle;
use mc_testkit::redis_config;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
/// Long enough for a Redis copy on loopback to have arrived if it were delivered.
const QUIET: Duration = Duration::from_millis(300);

async fn next(listener: &mut Subscription<Value>) -> Value {
    match tokio::time::timeout(WAIT, listener.rx.recv()).await {
        Ok(Ok(Delivery::Item(item))) => (*item).clone(),
        other => panic!("no message: {other:?}"),
    }
}

async fn nothing_more(listener: &mut Subscription<Value>) {
    if let Ok(got) = tokio::time::timeout(QUIET, listener.rx.recv()).await {
        panic!("unexpected delivery: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_listeners_get_a_message_once_and_other_processes_get_it_from_redis() {
    let handle = RedisHandle::new(&redis_config()).unwrap();
    let (here, there): (Fanout<Value>, Fanout<Value>) = (
        Fanout::redis(handle.clone(), 16),
        Fanout::redis(handle.clone(), 16),
    );
    let channel = handle.key("fanout-test");
    let mut mine = here.subscribe(&channel).await.unwrap();
    let mut also_mine = here.subscribe(&channel).await.unwrap();
    let mut theirs = there.subscribe(&channel).await.unwrap();

    here.publish(&[(channel.clone(), json!({"n": 1}).to_string())])
        .await
        .unwrap();
    there
        .publish(&[(channel.clone(), json!({"n": 2}).to_string())])
        .await
        .unwrap();
    for listener in [&mut mine, &mut also_mine, &mut theirs] {
        let mut got = vec![
            next(listener).await["n"].clone(),
            next(listener).await["n"].clone(),
        ];
        got.sort_by_key(|n| n.as_i64());
        assert_eq!(got, vec![json!(1), json!(2)]);
        nothing_more(listener).await;
    }

    // A process without listeners publishes untagged; every listener gets it once.
    let silent: Fanout<Value> = Fanout::redis(handle.clone(), 16);
    silent
        .publish(&[(channel.clone(), json!({"n": 3}).to_string())])
        .await
        .unwrap();
    for listener in [&mut mine, &mut theirs] {
        assert_eq!(next(listener).await["n"], 3);
        nothing_more(listener).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counted_publish_says_who_holds_the_channel() {
    let handle = RedisHandle::new(&redis_config()).unwrap();
    let (caller, holder): (Fanout<Value>, Fanout<Value>) = (
        Fanout::redis(handle.clone(), 16),
        Fanout::redis(handle.clone(), 16),
    );
    let channel = handle.key("route-test");
    assert_eq!(caller.publish_counted(&channel, "{}").await.unwrap(), 0);

    // Held by another process: through Redis, which counts it.
    let mut held = holder.subscribe(&channel).await.unwrap();
    let sent = json!({"call": 1}).to_string();
    assert_eq!(caller.publish_counted(&channel, &sent).await.unwrap(), 1);
    assert_eq!(next(&mut held).await["call"], 1);

    // Held here: delivered in-process only.
    let mut local = caller.subscribe(&channel).await.unwrap();
    let sent = json!({"call": 2}).to_string();
    assert_eq!(caller.publish_counted(&channel, &sent).await.unwrap(), 1);
    assert_eq!(next(&mut local).await["call"], 2);
    nothing_more(&mut local).await;
    nothing_more(&mut held).await;
}
