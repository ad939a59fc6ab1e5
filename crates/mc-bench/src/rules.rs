//! The rule engine: events evaluated per second by one `mc-rules` with 100 enabled rules,
//! and the latency from a committed event to its suggestion arriving on the SSE stream.

use crate::stats::summarize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http.post(url).bearer_auth(token).json(&body).send().await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(body)
}

/// Creates `rules.0` enabled rules on `task.status_changed` whose conditions read only the
/// event (so the engine works in memory), then XADDs `events` such events for the
/// organization straight onto the stream and times one engine draining them. Gated rules
/// (`rules.1`) compare `event.payload.to` with `eq`, which the engine indexes; ungated ones
/// use `in`, so every event is compared with every rule.
pub async fn throughput(
    api: &str,
    token: &str,
    redis_url: &str,
    events: usize,
    (rules, gated): (usize, bool),
    label: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let me: Value = http
        .get(format!("{api}/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let mut org = me["current_organization_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for i in 0..rules {
        let rule = post(
            &http,
            &format!("{api}/api/v1/proactive-rules"),
            token,
            json!({
                "name": format!("bench rule {i}"),
                "trigger_event": "task.status_changed",
                "conditions": if gated {
                    json!({"all": [
                        {"field": "event.payload.to", "op": "eq", "value": "review"},
                        {"field": "event.payload.marker", "op": "eq", "value": format!("rule-{i}")},
                    ]})
                } else {
                    json!({"all": [
                        {"field": "event.payload.to", "op": "in", "value": ["review"]},
                        {"field": "event.payload.marker", "op": "in", "value": [format!("rule-{i}")]},
                    ]})
                },
                "action_type": "create_suggestion",
                "action_config": {"suggestion_type": "quality_concern", "title": "bench {event.seq}"},
                "cooldown_seconds": 0,
            }),
        )
        .await?;
        org = rule["organization_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let stream = "mc:events";
    // A real board, so rules that read board facts (the builtin WIP limit) count its tasks.
    let board = post(
        &http,
        &format!("{api}/api/v1/boards"),
        token,
        json!({"name": format!("Rules throughput {}", uuid::Uuid::now_v7())}),
    )
    .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    let mut seq = 1_000_000_000i64;
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for _ in chunk {
            seq += 1;
            let event = json!({
                "id": uuid::Uuid::now_v7(), "organization_id": org, "seq": seq,
                "event_type": "task.status_changed", "board_id": board, "agent_id": null,
                "task_id": uuid::Uuid::now_v7(),
                "actor": {"type": "system", "id": uuid::Uuid::nil(), "name": "bench"},
                "payload": {"from": "todo", "to": "in_progress"},
                "created_at": chrono::Utc::now(),
            });
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("org")
                .arg(&org)
                .arg("seq")
                .arg(seq)
                .arg("event")
                .arg(event.to_string())
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
    }
    let produced = started.elapsed();
    loop {
        let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut conn)
            .await?;
        let number = |g: &HashMap<String, redis::Value>, key: &str| match g.get(key) {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        };
        let done = groups
            .iter()
            .find(
                |g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == b"mc-rules"),
            )
            .is_some_and(|g| number(g, "lag") == 0 && number(g, "pending") == 0);
        if done {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the engine did not drain the stream in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = started.elapsed();
    anyhow::ensure!(!org.is_empty(), "no organization id");
    println!(
        "| {label} | {events} | {:.2} | {:.2} | {:.0} |",
        produced.as_secs_f64(),
        drained.as_secs_f64(),
        events as f64 / drained.as_secs_f64()
    );
    Ok(())
}

/// Creates tasks at `rate`/s; a rule on `task.created` (reading the task's facts) makes a
/// suggestion for each. Times each from the REST answer (the event is committed and
/// published by then) to its `suggestion.new` frame on the SSE stream.
pub async fn latency(api: &str, token: &str, n: usize, rate: u32) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let board = post(
        &http,
        &format!("{api}/api/v1/boards"),
        token,
        json!({"name": "Rules latency"}),
    )
    .await?;
    let board = board["id"].as_str().unwrap_or_default().to_owned();
    post(
        &http,
        &format!("{api}/api/v1/proactive-rules"),
        token,
        json!({
            "name": "bench latency", "trigger_event": "task.created", "board_id": board,
            "conditions": {"field": "task.title", "op": "matches", "value": "^lat-"},
            "action_type": "create_suggestion",
            "action_config": {"suggestion_type": "task_create", "title": "{task.title}", "subject": "task"},
            "cooldown_seconds": 0,
        }),
    )
    .await?;
    let response = http
        .get(format!("{api}/api/v1/suggestions/stream?board_id={board}"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    tokio::spawn(async move {
        let mut response = response;
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let now = Instant::now();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                    && v["type"] == "suggestion.new"
                    && let Some(title) = v["suggestion"]["title"].as_str()
                {
                    let _ = tx.send((title.to_owned(), now));
                }
            }
        }
    });
    let mut answered_at: HashMap<String, Instant> = HashMap::new();
    let mut samples = Vec::with_capacity(n);
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut sent: Vec<(String, Instant)> = Vec::with_capacity(n);
    for i in 0..n {
        interval.tick().await;
        let title = format!("lat-{i}");
        post(
            &http,
            &format!("{api}/api/v1/boards/{board}/tasks"),
            token,
            json!({"title": title}),
        )
        .await?;
        sent.push((title, Instant::now()));
        while let Ok((t, at)) = rx.try_recv() {
            answered_at.insert(t, at);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered_at.len() < n && Instant::now() < deadline {
        if let Ok(Some((t, at))) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
        {
            answered_at.insert(t, at);
        }
    }
    let mut missing = 0;
    for (title, committed) in &sent {
        match answered_at.get(title) {
            Some(at) => samples.push(at.saturating_duration_since(*committed)),
            None => missing += 1,
        }
    }
    let s = summarize(samples);
    println!(
        "| task.created → rule (task facts, regex) → suggestion on SSE, {rate}/s | {} | {:.1} | {:.1} | {:.1} | {:.1} | {missing} |",
        s.n, s.p50, s.p90, s.p99, s.max
    );
    Ok(())
}
