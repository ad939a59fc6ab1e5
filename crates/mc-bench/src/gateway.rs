//! `chat.send` round trips: a caller (this process, routing through Redis as the API or
//! another relay would) sends `chat.send` to a gateway held by a relay; the connector's
//! simulated gateway acknowledges and streams the reply as `chat` events, which come back
//! through the relay and Redis. A round trip ends when the `final` event arrives.

use crate::stats::summarize;
use anyhow::bail;
use mc_domain::config::RedisConfig;
use mc_domain::fanout::Delivery;
use mc_domain::gateways::router::{CallOutcome, Envelope, GatewayRouter};
use mc_domain::ids::GatewayId;
use mc_domain::redis::RedisHandle;
use mc_domain::secret::Secret;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

enum Finish {
    Waiting(oneshot::Sender<Instant>),
    Done(Instant),
}

type Finishes = Arc<Mutex<HashMap<String, Finish>>>;

/// Records `final` events of every gateway by run id.
async fn listen(
    router: &GatewayRouter,
    gateway: GatewayId,
    finishes: Finishes,
) -> anyhow::Result<()> {
    let mut events = router.subscribe_events(gateway).await?;
    tokio::spawn(async move {
        while let Ok(delivery) = events.rx.recv().await {
            let Delivery::Item(envelope) = delivery else {
                continue;
            };
            let Envelope::Event { frame, .. } = envelope.as_ref() else {
                continue;
            };
            if frame["payload"]["state"] != "final" {
                continue;
            }
            let Some(run) = frame["payload"]["runId"].as_str() else {
                continue;
            };
            let now = Instant::now();
            let mut map = finishes.lock().expect("finishes lock");
            match map.remove(run) {
                Some(Finish::Waiting(tx)) => {
                    let _ = tx.send(now);
                }
                _ => {
                    map.insert(run.to_owned(), Finish::Done(now));
                }
            }
        }
    });
    Ok(())
}

/// Runs `n` calls of `method` (`chat.send` or `health`) with `concurrency` in flight,
/// spread over `gateways`; prints one Markdown row labelled `label`.
pub async fn run(
    redis_url: &str,
    gateways: &str,
    method: &str,
    n: usize,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<()> {
    let redis = RedisHandle::new(&RedisConfig {
        url: Secret::new(redis_url),
        key_prefix: "mc:".to_owned(),
    })?;
    let router =
        GatewayRouter::start(Some(redis), format!("bench-{}", uuid::Uuid::new_v4())).await?;
    let gateways: Vec<GatewayId> = gateways
        .split(',')
        .map(|g| g.parse().map_err(|_| anyhow::anyhow!("bad gateway id {g}")))
        .collect::<anyhow::Result<_>>()?;
    let finishes: Finishes = Arc::default();
    for gw in &gateways {
        listen(&router, *gw, finishes.clone()).await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (router, gateways, finishes, next, failures, method) = (
            router.clone(),
            gateways.clone(),
            finishes.clone(),
            next.clone(),
            failures.clone(),
            method.to_owned(),
        );
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return samples;
                }
                let gateway = gateways[i % gateways.len()];
                let params = if method == "chat.send" {
                    json!({"sessionKey": format!("agent:sim-{}:bench-{w}", w % 4 + 1),
                           "message": format!("round trip {i}"), "idempotencyKey": format!("bench-{i}-{}", uuid::Uuid::new_v4())})
                } else {
                    json!({})
                };
                let t0 = Instant::now();
                let outcome = router.call(gateway, &method, params, Duration::from_secs(30)).await;
                let ack = match outcome {
                    Ok(CallOutcome::Ok { payload }) => payload,
                    _ => {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                };
                if method != "chat.send" {
                    samples.push(t0.elapsed());
                    continue;
                }
                let Some(run) = ack["runId"].as_str().map(str::to_owned) else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                let waiting = {
                    let mut map = finishes.lock().expect("finishes lock");
                    match map.remove(&run) {
                        Some(Finish::Done(at)) => Err(at),
                        _ => {
                            let (tx, rx) = oneshot::channel();
                            map.insert(run.clone(), Finish::Waiting(tx));
                            Ok(rx)
                        }
                    }
                };
                let finished = match waiting {
                    Err(at) => Some(at),
                    Ok(rx) => tokio::time::timeout(Duration::from_secs(30), rx).await.ok().and_then(Result::ok),
                };
                match finished {
                    Some(at) => samples.push(at.duration_since(t0)),
                    None => {
                        finishes.lock().expect("finishes lock").remove(&run);
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut samples = Vec::with_capacity(n);
    for w in workers {
        samples.extend(w.await?);
    }
    let elapsed = started.elapsed();
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    if samples.is_empty() {
        bail!("no call succeeded ({failed} failed)");
    }
    let s = summarize(samples);
    println!(
        "| {label} | {} | {concurrency} | {:.0} | {:.1} | {:.1} | {:.1} | {failed} |",
        s.n,
        s.n as f64 / elapsed.as_secs_f64(),
        s.p50,
        s.p99,
        s.max
    );
    Ok(())
}
