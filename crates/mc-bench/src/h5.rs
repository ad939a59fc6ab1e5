//! H5 chat benchmarks (issue 7): round trips user → relay → simulated gateway → relay →
//! user at a fixed offered rate, the same load against a minimal echo server on the same
//! WebSocket library (the ceiling), and idle authenticated sockets held by one relay with
//! the relay's RSS per socket.

use crate::live::rss_kib;
use crate::stats::summarize;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Small client buffers: tens of thousands of client sockets share this machine.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// `mc-bench h5-users`: creates `n` H5 users in the admin's organization, assigns each
/// to one of the simulated agents (round robin) on a "Bench chat" board, logs each in and
/// writes `<token> <agent_id>` lines to `out`.
pub async fn users(
    api: &str,
    email: &str,
    password: &str,
    n: usize,
    out: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut req = http.request(method, format!("{api}/api/v1{path}"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let resp = req.send().await?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!("{status}: {body}");
            }
            Ok(body)
        }
    };
    let login = call(
        reqwest::Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await?;
    let admin = login["access_token"]
        .as_str()
        .context("admin token")?
        .to_owned();
    let org = login["user"]["default_org_id"]
        .as_str()
        .context("org")?
        .to_owned();
    let agents = call(
        reqwest::Method::GET,
        "/agents?limit=100",
        Some(&admin),
        None,
    )
    .await?;
    let agents: Vec<String> = agents["items"]
        .as_array()
        .context("agents")?
        .iter()
        .filter(|a| {
            a["openclaw_agent_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("sim-"))
        })
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    if agents.is_empty() {
        bail!("no simulated agents are linked yet");
    }
    // The board of an earlier run on the same stack is reused.
    let boards = call(
        reqwest::Method::GET,
        "/boards?limit=100",
        Some(&admin),
        None,
    )
    .await?;
    let existing = boards["items"]
        .as_array()
        .and_then(|items| items.iter().find(|b| b["name"] == "Bench chat"))
        .cloned();
    let board = match existing {
        Some(board) => board,
        None => {
            call(
                reqwest::Method::POST,
                "/boards",
                Some(&admin),
                Some(json!({"name": "Bench chat"})),
            )
            .await?
        }
    };
    let board = board["id"].as_str().context("board")?.to_owned();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let next = AtomicUsize::new(0);
    let lines = Mutex::new(Vec::with_capacity(n));
    // Password hashing dominates: two at a time keeps both cores busy.
    futures::future::try_join_all((0..2).map(|_| async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return anyhow::Ok(());
            }
            let name = format!("bench-{}-{i}", &run[..8]);
            let user = call(reqwest::Method::POST, "/h5/users", Some(&admin),
                Some(json!({"username": name, "password": "bench-h5-password"}))).await?;
            let id = user["id"].as_str().context("user id")?;
            let agent = &agents[i % agents.len()];
            call(reqwest::Method::POST, &format!("/h5/users/{id}/assign"), Some(&admin),
                Some(json!({"agent_id": agent, "board_id": board}))).await?;
            let session = call(reqwest::Method::POST, "/h5/auth/login", None,
                Some(json!({"organization_id": org, "username": name, "password": "bench-h5-password"}))).await?;
            let token = session["access_token"].as_str().context("h5 token")?;
            lines.lock().expect("lines").push(format!("{token} {agent}"));
        }
    }))
    .await?;
    std::fs::write(out, lines.into_inner().expect("lines").join("\n") + "\n")?;
    Ok(())
}

fn read_users(file: &str) -> anyhow::Result<Vec<(String, String)>> {
    std::fs::read_to_string(file)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (token, agent) = l.split_once(' ').context("a line is `<token> <agent>`")?;
            Ok((token.to_owned(), agent.to_owned()))
        })
        .collect()
}

/// [`open`], retried like a client would when the relay answers `unavailable` (its
/// database still busy with the previous run's backlog): up to 10 tries, 1 s apart.
async fn open_retrying(url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut tries = 0;
    loop {
        match open(url, None, token).await {
            Err(err) if tries < 9 && err.to_string().contains("unavailable") => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

/// Connects from `source` (any port) to `url`, authenticates and waits for `auth_ok`.
async fn open(url: &str, source: Option<IpAddr>, token: &str) -> anyhow::Result<Socket> {
    let target: SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .context("host:port")?
        .parse()?;
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())).await?;
    ws.send(Message::text(
        json!({"type": "auth", "payload": {"token": token}}).to_string(),
    ))
    .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(text.as_str())?;
                match frame["type"].as_str() {
                    Some("auth_ok") => return Ok(ws),
                    Some("auth_error") => bail!("auth_error: {frame}"),
                    _ => {}
                }
            }
            Ok(Some(Ok(_))) => {}
            other => bail!("no auth_ok: {other:?}"),
        }
    }
}

/// Error frames by code for a report cell: `0`, or `12 AGENT_UNAVAILABLE, 3 RATE_LIMITED`.
fn error_counts(errors: &std::collections::BTreeMap<String, usize>) -> String {
    if errors.is_empty() {
        return "0".to_owned();
    }
    errors
        .iter()
        .map(|(code, n)| format!("{n} {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report row of a run that got no answers: all `total` messages unanswered.
fn print_failed_row(label: &str, rate: u32, users: usize, total: usize, errors: &str) {
    println!("| {label} | {rate} | - | {users} | 0 | - | - | - | - | {total} | {errors} |");
}

/// `mc-bench h5-load`: one socket per user (spread over `urls`), a warm-up message per user,
/// then `rate` chat messages per second in total for `secs`, each user's messages answered
/// in order; a round trip ends at the agent's final `chat` frame. Prints one Markdown row.
pub async fn load(
    urls: &str,
    users_file: &str,
    rate: u32,
    secs: u64,
    label: &str,
) -> anyhow::Result<()> {
    let urls: Vec<&str> = urls.split(',').collect();
    let users = read_users(users_file)?;
    // (when sent, round trip): the timeline on stderr shows when a tail happens.
    let samples = Arc::new(Mutex::new(Vec::<(Instant, Duration)>::new()));
    // Error frames by code: a run that fails says how.
    let errors: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
    // (when sent, until the user's own message came back stored).
    let to_stored: Arc<Mutex<Vec<(Instant, Duration)>>> = Arc::default();
    let mut senders = Vec::with_capacity(users.len());
    let mut outstanding = Vec::with_capacity(users.len());
    for (i, (token, agent)) in users.iter().enumerate() {
        let ws = open_retrying(urls[i % urls.len()], token).await?;
        let (mut write, mut read) = ws.split();
        let pending: Arc<Mutex<Sent>> = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if write.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
        });
        let (reader_pending, samples, errors) = (pending.clone(), samples.clone(), errors.clone());
        let to_stored = to_stored.clone();
        tokio::spawn(async move {
            // The k-th stored user message and the k-th final reply are the k-th message
            // sent: a session keeps its order.
            let mut stored = 0usize;
            while let Some(Ok(message)) = read.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if text.as_str().contains("\"type\":\"error\"") {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let code = frame["payload"]["code"].as_str().unwrap_or("?").to_owned();
                    if code == "RATE_LIMITED" {
                        // Refused unstored (a full gateway backlog or the socket's allowance):
                        // it gets no stored copy and no reply. A socket's frames are handled
                        // in order, so it is the next message not yet seen stored.
                        reader_pending.lock().expect("pending").refuse(stored);
                    }
                    *errors.lock().expect("errors").entry(code).or_default() += 1;
                    continue;
                }
                let text = text.as_str();
                let Ok(frame) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                let payload = &frame["payload"];
                if frame["type"] == "chat" && payload["role"] == "user" {
                    stored += 1;
                    let sent = reader_pending.lock().expect("pending").sent_at(stored - 1);
                    if let Some(sent) = sent {
                        to_stored
                            .lock()
                            .expect("stored")
                            .push((sent, sent.elapsed()));
                    }
                    continue;
                }
                // Only the agent's stored reply ends a round trip (not the user's own
                // message coming back, nor deltas).
                if frame["type"] != "chat" || payload["role"] != "agent" {
                    continue;
                }
                let sent = reader_pending.lock().expect("pending").finish();
                if let Some(sent) = sent {
                    samples
                        .lock()
                        .expect("samples")
                        .push((sent, sent.elapsed()));
                }
            }
        });
        senders.push((tx, agent.clone()));
        outstanding.push(pending);
    }
    // Message ids are unique per run: the same users chat again in the next run, and a
    // repeated id is (rightly) taken as a retry of the stored message, not a new one.
    let run = uuid::Uuid::new_v4().simple().to_string();
    // `send(i, tag)`: message i of the run, from user i mod users (round robin).
    let send = |i: usize, tag: &str| {
        let user = i % senders.len();
        let (tx, agent) = &senders[user];
        outstanding[user]
            .lock()
            .expect("pending")
            .times
            .push(Instant::now());
        let frame = json!({"type": "chat", "id": format!("{}-{tag}{i}", &run[..8]), "payload": {"agent_id": agent, "content": format!("message {i}")}});
        let _ = tx.send(frame.to_string());
    };
    // Warm-up, not counted: one message per user, at the offered rate (at most 1,000/s),
    // answered before the timed run starts. A relay reads a user's route and session on
    // the user's first message there and keeps them; with two relays, half the users
    // meet the second relay for the first time in this run.
    let warm_interval = Duration::from_secs_f64(1.0 / f64::from(rate.clamp(1, 1000)));
    let warm_started = Instant::now();
    for i in 0..senders.len() {
        tokio::time::sleep_until((warm_started + warm_interval.mul_f64(i as f64)).into()).await;
        send(i, "w");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples.lock().expect("samples").len() < senders.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warm = std::mem::take(&mut *samples.lock().expect("samples"));
    to_stored.lock().expect("stored").clear();
    let total = (u64::from(rate) * secs) as usize;
    if warm.len() < senders.len() {
        // A failed run is a result too, and the runs after it may still tell something:
        // a row, not an abort.
        let reason = format!(
            "warm-up: {} of {} answered in 30 s",
            warm.len(),
            senders.len()
        );
        eprintln!("{label}: {reason}; the timed run was not started");
        let errors = error_counts(&errors.lock().expect("errors"));
        print_failed_row(
            &format!("{label} ({reason}; not run)"),
            rate,
            users.len(),
            total,
            &errors,
        );
        return Ok(());
    }
    let warm = summarize(warm.into_iter().map(|(_, took)| took).collect());
    eprintln!(
        "{label}: warm-up, one message per user: p50 {:.2} ms, p99 {:.2} ms",
        warm.p50, warm.p99
    );

    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    for i in 0..total {
        // Open loop: each message leaves at its scheduled time, whatever came back.
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        send(i, "");
    }
    let sending = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples.lock().expect("samples").len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    let answered = samples.len();
    let errors = error_counts(&errors.lock().expect("errors"));
    if answered == 0 {
        // A total failure is a result too.
        print_failed_row(label, rate, users.len(), total, &errors);
        return Ok(());
    }
    print_timeline(label, started, &samples, &to_stored.lock().expect("stored"));
    // Sustained throughput: replies per second from the first send to the last reply.
    let last_reply = samples
        .iter()
        .map(|(sent, took)| sent.saturating_duration_since(started) + *took)
        .max()
        .unwrap_or_default();
    let s = summarize(samples.into_iter().map(|(_, took)| took).collect());
    println!(
        "| {label} | {rate} | {:.0} | {} | {answered} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {errors} |",
        total as f64 / sending.as_secs_f64(),
        users.len(),
        answered as f64 / last_reply.as_secs_f64().max(f64::EPSILON),
        s.p50,
        s.p99,
        s.max,
        total - answered,
    );
    Ok(())
}

/// A user's messages in the order sent, and how many of them were answered.
#[derive(Default)]
struct Sent {
    times: Vec<Instant>,
    answered: usize,
}

impl Sent {
    fn sent_at(&self, k: usize) -> Option<Instant> {
        self.times.get(k).copied()
    }

    /// The k-th message still expected was refused: later ones move up.
    fn refuse(&mut self, k: usize) {
        if k < self.times.len() {
            self.times.remove(k);
        }
    }

    fn finish(&mut self) -> Option<Instant> {
        let sent = self.sent_at(self.answered)?;
        self.answered += 1;
        Some(sent)
    }
}

/// Per second of sending, on stderr: p99 until the user's message came back stored, then
/// answered, p50, p99 and max until the agent's final reply (where a tail comes from: a
/// steady queue or one stall, before the gateway or after).
fn print_timeline(
    label: &str,
    started: Instant,
    finals: &[(Instant, Duration)],
    stored: &[(Instant, Duration)],
) {
    type Seconds = std::collections::BTreeMap<u64, Vec<Duration>>;
    let by_second = |samples: &[(Instant, Duration)]| {
        let mut by = Seconds::new();
        for (sent, took) in samples {
            let second = sent.saturating_duration_since(started).as_secs();
            by.entry(second).or_default().push(*took);
        }
        by
    };
    let mut stored = by_second(stored);
    eprintln!("{label}: second, stored p99, answered, p50, p99, max (ms)");
    for (s, took) in by_second(finals) {
        let to_stored = stored.remove(&s).map_or(f64::NAN, |t| summarize(t).p99);
        let f = summarize(took);
        eprintln!(
            "  {s:>3} {to_stored:>9.2} {:>6} {:>9.2} {:>9.2} {:>9.2}",
            f.n, f.p50, f.p99, f.max
        );
    }
}

/// `mc-bench h5-echo`: the ceiling. Speaks just enough of the protocol on the same
/// WebSocket library: `auth` → `auth_ok`, each `chat` → one agent `chat` frame.
pub async fn echo(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        // Like the relay (mc_web::serve): no Nagle.
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let mut seq = 0u64;
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let reply = match frame["type"].as_str() {
                    Some("auth") => json!({"type": "auth_ok", "payload": {"user_id": "echo"}}),
                    Some("chat") => {
                        seq += 1;
                        json!({"type": "chat", "id": frame["id"], "seq": seq, "payload": {
                            "agent_id": frame["payload"]["agent_id"], "role": "agent",
                            "content": frame["payload"]["content"]}})
                    }
                    _ => continue,
                };
                if ws.send(Message::text(reply.to_string())).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// `mc-bench h5-idle`: opens `sockets` authenticated chat sockets to `url` (users reused
/// round robin), bound to the source addresses `127.0.0.2 … 127.0.0.<1+sources>` to get
/// past the ephemeral-port limit, holds them, and reports the relay's RSS per socket.
pub async fn idle(
    url: &str,
    users_file: &str,
    sockets: usize,
    relay_pid: u32,
    sources: u8,
) -> anyhow::Result<()> {
    let users = Arc::new(read_users(users_file)?);
    let rss_before = rss_kib(relay_pid)?;
    let held = Arc::new(Mutex::new(Vec::with_capacity(sockets)));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Two halves: the second half's RSS growth is the cost of one more socket, without
    // what the first connections warm up once (pools, caches, allocator arenas).
    let half = sockets / 2;
    connect_range(url, &users, 0..half, sources, &held, &failed).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_half = rss_kib(relay_pid)?;
    let open_half = held.lock().expect("held").len();
    connect_range(url, &users, half..sockets, sources, &held, &failed).await?;
    let connect_secs = started.elapsed().as_secs_f64() - 3.0;
    // Let allocator and presence writes settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after = rss_kib(relay_pid)?;
    let open_count = held.lock().expect("held").len();
    let per_socket = (rss_after.saturating_sub(rss_before)) as f64 / open_count.max(1) as f64;
    let marginal = (rss_after.saturating_sub(rss_half)) as f64
        / (open_count.saturating_sub(open_half)).max(1) as f64;
    println!(
        "| {sockets} | {open_count} | {} | {:.0} | {:.0} | {per_socket:.2} | {marginal:.2} | {:.0} |",
        failed.load(Ordering::Relaxed),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        open_count as f64 / connect_secs,
    );
    Ok(())
}

/// Opens sockets `range` (256 at a time), each authenticated as a user from the file,
/// from source addresses 127.0.0.2.. so the ephemeral ports of one address do not limit.
async fn connect_range(
    url: &str,
    users: &Arc<Vec<(String, String)>>,
    range: std::ops::Range<usize>,
    sources: u8,
    held: &Arc<Mutex<Vec<Socket>>>,
    failed: &Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    let workers: Vec<_> = (0..256)
        .map(|_| {
            let (held, failed, next, users, url) = (
                held.clone(),
                failed.clone(),
                next.clone(),
                users.clone(),
                url.to_owned(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    let source =
                        IpAddr::from([127, 0, 0, 2 + (i % usize::from(sources.max(1))) as u8]);
                    match open(&url, Some(source), &users[i % users.len()].0).await {
                        Ok(ws) => held.lock().expect("held").push(ws),
                        Err(err) => {
                            if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("mc-bench h5-idle: socket {i}: {err:#}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Sent;
    use std::time::{Duration, Instant};

    /// A refused message drops out of its user's order: the stored copies and replies
    /// after it pair with their own send times, not the refused one's.
    #[test]
    fn a_refused_message_leaves_the_pairing_of_the_others_intact() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut sent = Sent {
            times: vec![at(0), at(10), at(20), at(30)],
            answered: 0,
        };
        // Message 0 came back stored (stored = 1); message 1 was refused.
        assert_eq!(sent.sent_at(0), Some(at(0)));
        sent.refuse(1);
        // The next stored copy is message 2's.
        assert_eq!(sent.sent_at(1), Some(at(20)));
        assert_eq!(sent.finish(), Some(at(0)));
        assert_eq!(sent.finish(), Some(at(20)));
        assert_eq!(sent.finish(), Some(at(30)));
        assert_eq!(sent.finish(), None, "no reply is owed for the refused one");
        // A refusal past what was sent changes nothing.
        sent.refuse(10);
        assert_eq!(sent.times.len(), 3);
    }
}
