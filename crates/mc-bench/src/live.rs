//! Live delivery benchmarks: board sync fan-out over WebSockets and SSE streams.
//!
//! Events are produced by creating tasks over REST at a steady rate; each task's title
//! carries its index, so a receiver can compute REST-request-start → frame-received
//! latency without parsing the whole frame; board frames are also timed from the event's
//! own timestamp (publish → receive).

use crate::stats::summarize;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const MARK: &str = "\"title\":\"ev-";

/// Clock shared by publisher and receivers.
struct Clock {
    start: Instant,
    sent_at_us: Vec<AtomicU64>,
}

impl Clock {
    fn new(events: usize) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            sent_at_us: (0..events).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Index and latency of event `text` (by its title index), if it is one of ours.
    fn latency(&self, text: &str) -> Option<(usize, Duration)> {
        let at = text.find(MARK)? + MARK.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let index: usize = digits.parse().ok()?;
        let sent = self.sent_at_us.get(index)?.load(Ordering::Acquire);
        Some((
            index,
            Duration::from_micros(self.now_us().saturating_sub(sent)),
        ))
    }
}

const TIMESTAMP: &str = "\"timestamp\":\"";

/// Time from the event's own timestamp (its row's `created_at`, taken in the transaction
/// that records it, so before the commit and the publish) to now: the publish → receive
/// latency of the spec, with the commit included, without the REST call around it.
/// Millisecond resolution (the frame's timestamp has milliseconds).
fn since_event(text: &str) -> Option<Duration> {
    let at = text.find(TIMESTAMP)? + TIMESTAMP.len();
    let end = at + text[at..].find('"')?;
    let stamp = chrono::DateTime::parse_from_rfc3339(&text[at..end]).ok()?;
    let age = chrono::Utc::now().signed_duration_since(stamp);
    Some(age.to_std().unwrap_or(Duration::ZERO))
}

/// Creates `events` tasks at `rate` per second; returns when done.
async fn publish(
    api: &str,
    token: &str,
    board: &str,
    events: usize,
    rate: u32,
    clock: Arc<Clock>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{api}/api/v1/boards/{board}/tasks");
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = Vec::with_capacity(events);
    for i in 0..events {
        tick.tick().await;
        let request = http
            .post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({"title": format!("ev-{i}")}));
        let clock = clock.clone();
        // Spawned, so each request starts now rather than when someone polls it.
        inflight.push(tokio::spawn(async move {
            clock.sent_at_us[i].store(clock.now_us(), Ordering::Release);
            let r = request.send().await?;
            if !r.status().is_success() {
                bail!("POST task: {}", r.status());
            }
            anyhow::Ok(())
        }));
    }
    for handle in inflight {
        handle.await??;
    }
    Ok(())
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")
}

struct Received {
    latencies: Vec<Duration>,
    /// Event index and event timestamp → received, for the frames `latencies` timed.
    since_event: Vec<(usize, Duration)>,
    closed_early: bool,
}

/// `mc-bench fanout`: `sockets` board sockets on one relay, `rate` events/s for `secs`.
#[allow(clippy::too_many_arguments)]
pub async fn fanout(
    relay: &str,
    api: &str,
    token: &str,
    board: &str,
    sockets: usize,
    rate: u32,
    secs: u64,
    relay_pid: u32,
) -> anyhow::Result<()> {
    let events = (u64::from(rate) * secs) as usize;
    let clock = Clock::new(events);
    let rss_before = rss_kib(relay_pid)?;
    let url = format!("{relay}/ws/board/{board}/sync");
    let ready = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Received>();
    let connect_started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..sockets {
        let url = url.clone();
        let token = token.to_owned();
        let clock = clock.clone();
        let ready = ready.clone();
        let done = done_tx.clone();
        let gate = gate.clone();
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let Some(mut ws) = board_handshake(&url, &token).await else {
                let _ = done.send(Received {
                    latencies: Vec::new(),
                    since_event: Vec::new(),
                    closed_early: true,
                });
                return;
            };
            drop(permit);
            ready.fetch_add(1, Ordering::AcqRel);
            let mut latencies = Vec::with_capacity(events);
            let mut since = Vec::with_capacity(events);
            let mut closed_early = false;
            // One deadline for the run rather than a timer per frame: the client side of
            // 10,000 sockets shares the machine with the relay it measures.
            let deadline = tokio::time::sleep(Duration::from_secs(secs + 60));
            tokio::pin!(deadline);
            while latencies.len() < events {
                let next = tokio::select! {
                    next = ws.next() => next,
                    () = &mut deadline => None,
                };
                match next {
                    Some(Ok(Message::Text(text))) => {
                        if let Some((index, l)) = clock.latency(text.as_str()) {
                            latencies.push(l);
                            since.extend(since_event(text.as_str()).map(|d| (index, d)));
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => {
                        closed_early = true;
                        break;
                    }
                }
            }
            let _ = done.send(Received {
                latencies,
                since_event: since,
                closed_early,
            });
            let _ = ws.close(None).await;
        });
    }
    drop(done_tx);
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready.load(Ordering::Acquire) < sockets {
        if Instant::now() > deadline {
            bail!(
                "only {} of {sockets} sockets connected",
                ready.load(Ordering::Acquire)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss_kib(relay_pid)?;
    let per_socket_kib = (rss_idle.saturating_sub(rss_before)) as f64 / sockets as f64;

    let publish_started = Instant::now();
    let relay_cpu_before = cpu_time(&relay_pid.to_string())?;
    let own_cpu_before = cpu_time("self")?;
    publish(api, token, board, events, rate, clock.clone()).await?;
    let mut all = Vec::with_capacity(events * sockets);
    let mut all_since = Vec::with_capacity(events * sockets);
    let mut closed = 0usize;
    while let Some(r) = done_rx.recv().await {
        closed += usize::from(r.closed_early);
        all.extend(r.latencies);
        all_since.extend(r.since_event);
    }
    let elapsed = publish_started.elapsed().as_secs_f64();
    let expected = events * sockets;
    let delivered = all.len();
    let per_delivery_us = |spent: Duration| spent.as_secs_f64() * 1e6 / delivered.max(1) as f64;
    let relay_us = per_delivery_us(cpu_time(&relay_pid.to_string())? - relay_cpu_before);
    let client_us = per_delivery_us(cpu_time("self")? - own_cpu_before);
    let s = summarize(all);
    // Where the tail comes from: per event, when its first and its last socket got it.
    let mut first = vec![Duration::MAX; events];
    let mut last = vec![Duration::ZERO; events];
    for &(index, d) in &all_since {
        first[index] = first[index].min(d);
        last[index] = last[index].max(d);
    }
    let seen = |v: Vec<Duration>| v.into_iter().filter(|d| *d != Duration::MAX).collect();
    let (f, l) = (summarize(seen(first)), summarize(seen(last)));
    let e = summarize(all_since.into_iter().map(|(_, d)| d).collect());
    println!(
        "| {sockets} sockets, {rate} events/s for {secs} s | {delivered} of {expected} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {closed} | {relay_us:.1} | {client_us:.1} | {per_socket_kib:.1} | {connect_secs:.1} |",
        delivered as f64 / elapsed,
        e.p50,
        e.p99,
        f.p50,
        l.p50,
        s.p50,
        s.p99,
        s.max,
    );
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, authenticates and waits for `board.state`.
async fn board_handshake(url: &str, token: &str) -> Option<Socket> {
    // Small buffers: the client side of 10,000 sockets shares this machine, and each read
    // zero-fills the read buffer first (a task frame is well under 2 KiB).
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .ok()?;
    let auth = serde_json::json!({"type": "auth", "token": token}).to_string();
    ws.send(Message::text(auth)).await.ok()?;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().contains("\"board.state\"") => {
                return Some(ws);
            }
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

/// `mc-bench sse`: `streams` SSE streams, `rate` events/s for `secs`, then the time a new
/// stream takes to replay everything it missed.
pub async fn sse(
    api: &str,
    token: &str,
    board: &str,
    streams: usize,
    rate: u32,
    secs: u64,
) -> anyhow::Result<()> {
    let events = (u64::from(rate) * secs) as usize;
    let clock = Clock::new(events);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{api}/api/v1/events/stream?board_id={board}&event_type=task.created");
    let latest: i64 = {
        let page: serde_json::Value = http
            .get(format!("{api}/api/v1/events?limit=1"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        page["items"][0]["seq"].as_i64().unwrap_or(0)
    };
    let ready = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Received>();
    for _ in 0..streams {
        let http = http.clone();
        let url = url.clone();
        let token = token.to_owned();
        let clock = clock.clone();
        let ready = ready.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            let response = http.get(&url).bearer_auth(&token).send().await;
            let Ok(mut response) = response else {
                let _ = done.send(Received {
                    latencies,
                    since_event: Vec::new(),
                    closed_early: true,
                });
                return;
            };
            ready.fetch_add(1, Ordering::AcqRel);
            let mut buffer = String::new();
            let mut closed_early = false;
            while latencies.len() < events {
                match tokio::time::timeout(Duration::from_secs(secs + 60), response.chunk()).await {
                    Ok(Ok(Some(bytes))) => {
                        buffer.push_str(&String::from_utf8_lossy(&bytes));
                        while let Some(end) = buffer.find("\n\n") {
                            let block: String = buffer.drain(..end + 2).collect();
                            if let Some((_, l)) = clock.latency(&block) {
                                latencies.push(l);
                            }
                        }
                    }
                    _ => {
                        closed_early = true;
                        break;
                    }
                }
            }
            let _ = done.send(Received {
                latencies,
                since_event: Vec::new(),
                closed_early,
            });
        });
    }
    drop(done_tx);
    while ready.load(Ordering::Acquire) < streams {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    publish(api, token, board, events, rate, clock.clone()).await?;
    let mut all = Vec::new();
    let mut closed = 0;
    while let Some(r) = done_rx.recv().await {
        closed += usize::from(r.closed_early);
        all.extend(r.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = all.len();
    let s = summarize(all);
    println!(
        "| {streams} streams, {rate} events/s for {secs} s | {delivered} of {} | {:.0} | {:.1} | {:.1} | {:.1} | {closed} |",
        events * streams,
        delivered as f64 / elapsed,
        s.p50,
        s.p99,
        s.max,
    );

    // Replay: a stream that was away for all of the above catches up.
    let replay_started = Instant::now();
    let mut response = http
        .get(&url)
        .bearer_auth(token)
        .header("last-event-id", latest.to_string())
        .send()
        .await?
        .error_for_status()?;
    let mut seen = 0usize;
    let mut buffer = String::new();
    while seen < events {
        let Some(bytes) = tokio::time::timeout(Duration::from_secs(60), response.chunk()).await??
        else {
            bail!("replay stream ended after {seen} events");
        };
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.contains(MARK) {
                seen += 1;
            }
        }
    }
    println!(
        "\nReplay of {events} missed events after reconnect (`Last-Event-ID`): caught up in {:.0} ms.",
        replay_started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
