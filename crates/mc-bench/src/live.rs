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
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const MARK: &str = "\"title\":\"ev-";

/// Clock shared by publisher and receivers.
struct Clock {
    start: Instant,
    sent_at_us: Vec<AtomicU64>,
    /// Each event's own timestamp (ms since the epoch; 0 = not parsed yet). Every socket
    /// gets the same text for an event, so it is parsed once, not 10,000 times: the load
    /// generator shares the two cores with the relay it measures.
    event_ms: Vec<AtomicI64>,
    mark: memchr::memmem::Finder<'static>,
}

impl Clock {
    fn new(events: usize) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            sent_at_us: (0..events).map(|_| AtomicU64::new(0)).collect(),
            event_ms: (0..events).map(|_| AtomicI64::new(0)).collect(),
            mark: memchr::memmem::Finder::new(MARK),
        })
    }

    /// Time from event `index`'s own timestamp (in `text`) to now; see [`event_timestamp_ms`].
    fn since_event(&self, index: usize, text: &str) -> Option<Duration> {
        let slot = self.event_ms.get(index)?;
        let mut stamp = slot.load(Ordering::Acquire);
        if stamp == 0 {
            stamp = event_timestamp_ms(text)?;
            slot.store(stamp, Ordering::Release);
        }
        let age_us = chrono::Utc::now().timestamp_micros() - stamp * 1000;
        Some(Duration::from_micros(age_us.max(0) as u64))
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Index and latency of event `text` (by its title index), if it is one of ours.
    fn latency(&self, text: &str) -> Option<(usize, Duration)> {
        let at = self.mark.find(text.as_bytes())? + MARK.len();
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

/// The event's own timestamp (its row's `created_at`, taken in the transaction that
/// records it, so before the commit and the publish) in ms since the epoch: publish →
/// receive is measured from it, the commit included, the REST call around it not.
/// Millisecond resolution (the frame's timestamp has milliseconds).
fn event_timestamp_ms(text: &str) -> Option<i64> {
    let at = text.find(TIMESTAMP)? + TIMESTAMP.len();
    let end = at + text[at..].find('"')?;
    let stamp = chrono::DateTime::parse_from_rfc3339(&text[at..end]).ok()?;
    Some(stamp.timestamp_millis())
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

/// Where the fan-out's events come from.
pub enum Source<'a> {
    /// Tasks created over REST on `board`; the relay's sockets are on that board.
    Rest {
        /// The API's base URL.
        api: &'a str,
        /// An admin's access token.
        token: &'a str,
        /// The board.
        board: &'a str,
    },
    /// Frames handed to `mc-bench board-echo` over one publisher socket (the ceiling).
    Echo,
}

/// `mc-bench fanout`: `sockets` board sockets on one relay (or, for the ceiling, on
/// `mc-bench board-echo` at `url`), `rate` events/s for `secs`.
pub async fn fanout(
    url: &str,
    source: Source<'_>,
    sockets: usize,
    rate: u32,
    secs: u64,
    server_pid: u32,
) -> anyhow::Result<()> {
    let token = match source {
        Source::Rest { token, .. } => token,
        Source::Echo => "ceiling",
    };
    let events = (u64::from(rate) * secs) as usize;
    let clock = Clock::new(events);
    let rss_before = rss_kib(server_pid)?;
    let url = match source {
        Source::Rest { board, .. } => format!("{url}/ws/board/{board}/sync"),
        Source::Echo => url.to_owned(),
    };
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
                            since.extend(
                                clock.since_event(index, text.as_str()).map(|d| (index, d)),
                            );
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
    let rss_idle = rss_kib(server_pid)?;
    let per_socket_kib = (rss_idle.saturating_sub(rss_before)) as f64 / sockets as f64;

    let publish_started = Instant::now();
    let server_cpu_before = cpu_time(&server_pid.to_string())?;
    let own_cpu_before = cpu_time("self")?;
    match source {
        Source::Rest { api, token, board } => {
            publish(api, token, board, events, rate, clock.clone()).await?;
        }
        Source::Echo => publish_frames(&url, events, rate, clock.clone()).await?,
    }
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
    let relay_us = per_delivery_us(cpu_time(&server_pid.to_string())? - server_cpu_before);
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
    let run = match source {
        Source::Rest { .. } => "",
        Source::Echo => "ceiling, board-echo: ",
    };
    println!(
        "| {run}{sockets} sockets, {rate} events/s for {secs} s | {delivered} of {expected} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {closed} | {relay_us:.1} | {client_us:.1} | {per_socket_kib:.1} | {connect_secs:.1} |",
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

/// A `task.created` frame shaped like the relay's (same fields, about the same length),
/// stamped now; what `board-echo` broadcasts in the ceiling run.
fn ceiling_frame(index: usize) -> String {
    let now = chrono::Utc::now();
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let id = "01a24282-65ca-75ff-9019-b29aa20e26ce";
    let user = "01a24279-5c74-74d0-89e4-e7522d0dd734";
    serde_json::json!({
        "type": "task.created", "seq": index + 1,
        "task": {
            "assignee_agent_id": null, "assignee_user_id": null, "blocked_by": [],
            "board_id": id, "completed_at": null, "created_at": stamp,
            "created_by_id": user, "created_by_type": "user", "description": null,
            "due_at": null, "estimate_hours": null, "evidence": [], "id": id,
            "position": 225_280.0, "priority": "medium", "status": "todo",
            "status_changed_at": stamp, "tag_ids": [], "title": format!("ev-{index}"),
            "updated_at": stamp, "version": 1,
        },
        "created_by": {"type": "user", "id": user, "name": "Demo Admin"},
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
    .to_string()
}

/// Publishes `events` frames at `rate` per second through one socket to `board-echo`.
async fn publish_frames(
    url: &str,
    events: usize,
    rate: u32,
    clock: Arc<Clock>,
) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..events {
        tick.tick().await;
        clock.sent_at_us[i].store(clock.now_us(), Ordering::Release);
        let publish = serde_json::json!({"type": "publish", "frame": ceiling_frame(i)});
        ws.send(Message::text(publish.to_string())).await?;
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// `mc-bench board-echo`: the fan-out ceiling. A minimal broadcaster on the relay's
/// WebSocket library with the relay's buffer sizes and design (a bounded queue per
/// socket, queued frames written together): `auth` → `board.state` and membership;
/// `publish {frame}` → `frame` to every member. No storage, no Redis, no rendering.
pub async fn board_echo(addr: &str) -> anyhow::Result<()> {
    type Members =
        Arc<std::sync::Mutex<Vec<mpsc::Sender<tokio_tungstenite::tungstenite::Utf8Bytes>>>>;
    let members: Members = Arc::default();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(8 * 1024);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let members = members.clone();
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let Some(Ok(Message::Text(first))) = ws.next().await else {
                return;
            };
            let Ok(first) = serde_json::from_str::<serde_json::Value>(first.as_str()) else {
                return;
            };
            if first["type"] == "publish" {
                let mut frame = first;
                loop {
                    if let Some(text) = frame["frame"].as_str() {
                        let text = tokio_tungstenite::tungstenite::Utf8Bytes::from(text.to_owned());
                        // A full queue drops the member, as the relay's rooms do.
                        members
                            .lock()
                            .expect("members")
                            .retain(|tx| tx.try_send(text.clone()).is_ok());
                    }
                    frame = match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            serde_json::from_str(t.as_str()).unwrap_or_default()
                        }
                        Some(Ok(_)) => serde_json::Value::Null,
                        _ => return,
                    };
                }
            }
            let (tx, mut rx) = mpsc::channel(256);
            members.lock().expect("members").push(tx);
            if ws
                .send(Message::text(r#"{"type":"board.state","seq":0}"#))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    biased;
                    frame = rx.recv() => {
                        let Some(frame) = frame else { return };
                        if ws.feed(Message::Text(frame)).await.is_err() {
                            return;
                        }
                        while let Ok(more) = rx.try_recv() {
                            if ws.feed(Message::Text(more)).await.is_err() {
                                return;
                            }
                        }
                        if ws.flush().await.is_err() {
                            return;
                        }
                    }
                    incoming = ws.next() => match incoming {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
    }
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
