//! `GET /api/v1/events/stream`: replay from `Last-Event-ID` then live with no gap or
//! duplicate at the seam, filters, stream tickets, revocation and expiry.

mod common;

use common::{Session, TestApi, start};
use mc_testkit::sse::SseStream;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn new_task(api: &TestApi, s: &Session, board: &str, title: &str) {
    api.post(
        Some(&s.token),
        &format!("/api/v1/boards/{board}/tasks"),
        json!({"title": title}),
    )
    .await
    .expect(201);
}

async fn new_board(api: &TestApi, s: &Session, name: &str) -> String {
    api.post(Some(&s.token), "/api/v1/boards", json!({"name": name}))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_without_gap_or_duplicate() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let board = new_board(&api, &admin, "Stream").await; // seq 1
    for i in 0..5 {
        new_task(&api, &admin, &board, &format!("before {i}")).await; // seq 2..=6
    }
    let mut stream = SseStream::open(
        &api.url("/api/v1/events/stream"),
        Some(&admin.token),
        &[("last-event-id", "3")],
    )
    .await;
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    assert_eq!(stream.headers()["cache-control"], "no-cache");
    assert_eq!(stream.headers()["x-accel-buffering"], "no");

    // Writers keep going while the stream replays, from a second API instance too.
    let other = api.spawn_instance().await;
    let writer = {
        let token = admin.token.clone();
        let url = other.url(&format!("/api/v1/boards/{board}/tasks"));
        tokio::spawn(async move {
            let http = mc_testkit::http_client();
            for i in 0..20 {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("during {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        })
    };
    let mut seqs = Vec::new();
    while seqs.len() < 23 {
        let message = stream.next(WAIT).await.expect("stream ended early");
        let seq: i64 = message.id.as_deref().unwrap().parse().unwrap();
        assert_eq!(message.event, "task.created");
        assert_eq!(message.json()["seq"], seq);
        seqs.push(seq);
    }
    writer.await.unwrap();
    let expected: Vec<i64> = (4..=26).collect();
    assert_eq!(seqs, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_board_and_type_pattern() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let watched = new_board(&api, &admin, "Watched").await;
    let ignored = new_board(&api, &admin, "Ignored").await;
    let mut stream = SseStream::open(
        &api.url(&format!(
            "/api/v1/events/stream?board_id={watched}&event_type=task.*"
        )),
        Some(&admin.token),
        &[],
    )
    .await;
    new_task(&api, &admin, &ignored, "elsewhere").await;
    api.patch(
        &admin.token,
        &format!("/api/v1/boards/{watched}"),
        json!({"objective": "not a task event"}),
    )
    .await
    .expect(200);
    new_task(&api, &admin, &watched, "here").await;
    let message = stream.next(WAIT).await.unwrap();
    assert_eq!(message.event, "task.created");
    assert_eq!(message.json()["payload"]["task"]["title"], "here");
    assert_eq!(message.json()["board_id"], watched.as_str());

    // A malformed Last-Event-ID or pattern is a 400, not a broken stream.
    let bad = api
        .call(
            reqwest::Method::GET,
            "/api/v1/events/stream",
            Some(&admin.token),
            None,
            &[("last-event-id", "abc")],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = api
        .get(&admin.token, "/api/v1/events/stream?event_type=***")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// Frames are rendered once per process for all streams, and sequence numbers are per
/// organization: two organizations' events with the same seq must still each reach only
/// their own streams, several streams each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_two_organizations_never_share_a_frame_at_the_same_seq() {
    let api = start().await;
    let acme = api.org_admin("acme").await;
    let globex = api.org_admin("globex").await;
    let acme_board = new_board(&api, &acme, "Acme board").await;
    let globex_board = new_board(&api, &globex, "Globex board").await;
    let open = |s: &Session| {
        let url = api.url("/api/v1/events/stream");
        let token = s.token.clone();
        async move { SseStream::open(&url, Some(&token), &[]).await }
    };
    let mut acme_streams = vec![open(&acme).await, open(&acme).await];
    let mut globex_streams = vec![open(&globex).await, open(&globex).await];
    for i in 0..3 {
        new_task(&api, &acme, &acme_board, &format!("acme {i}")).await;
        new_task(&api, &globex, &globex_board, &format!("globex {i}")).await;
    }
    for (streams, org) in [(&mut acme_streams, "acme"), (&mut globex_streams, "globex")] {
        for stream in streams.iter_mut() {
            for i in 0..3 {
                let message = stream.next(WAIT).await.expect("stream ended early");
                let body = message.json();
                assert_eq!(body["payload"]["task"]["title"], format!("{org} {i}"));
                assert_eq!(
                    message.id.as_deref(),
                    Some(body["seq"].to_string().as_str())
                );
            }
        }
    }
    // Both organizations really did use the same numbers.
    let acme_last = api
        .get(&acme.token, "/api/v1/events?limit=1")
        .await
        .expect(200);
    let globex_last = api
        .get(&globex.token, "/api/v1/events?limit=1")
        .await
        .expect(200);
    assert_eq!(
        acme_last.body["items"][0]["seq"],
        globex_last.body["items"][0]["seq"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_open_streams_and_logout_revokes_them() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let board = new_board(&api, &admin, "Tickets").await;
    let ticket = api
        .post(Some(&admin.token), "/api/v1/auth/stream-ticket", json!({}))
        .await
        .expect(200)
        .body["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    // Tickets only open streams.
    api.call(
        reqwest::Method::GET,
        &format!("/api/v1/boards?ticket={ticket}"),
        None,
        None,
        &[],
    )
    .await
    .expect(401);
    let mut stream = SseStream::open(
        &api.url(&format!("/api/v1/events/stream?ticket={ticket}")),
        None,
        &[],
    )
    .await;
    new_task(&api, &admin, &board, "seen through a ticket").await;
    assert_eq!(stream.next(WAIT).await.unwrap().event, "task.created");
    // An unknown ticket is refused.
    let forged = api
        .call(
            reqwest::Method::GET,
            "/api/v1/events/stream?ticket=mc_st_forged",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(forged.status, 401);

    // Logging out ends the stream with session.revoked.
    api.post(
        Some(&admin.token),
        "/api/v1/auth/logout",
        json!({"refresh_token": admin.refresh}),
    )
    .await;
    let revoked = loop {
        let message = stream.next(WAIT).await.expect("stream ended silently");
        if message.event == "session.revoked" {
            break message;
        }
    };
    assert_eq!(revoked.event, "session.revoked");
    assert!(stream.next(WAIT).await.is_none(), "stream stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_idle_streams_alive() {
    let api = start().await;
    let admin = api.org_admin("acme").await;
    let mut stream =
        SseStream::open(&api.url("/api/v1/events/stream"), Some(&admin.token), &[]).await;
    let board = new_board(&api, &admin, "Later").await;
    // The check interval is 1 s in tests; wait past a couple of heartbeats, then an event.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    new_task(&api, &admin, &board, "after the quiet").await;
    let first = stream.next(WAIT).await.unwrap();
    assert_eq!(first.event, "board.created");
    let second = stream.next(WAIT).await.unwrap();
    assert_eq!(second.event, "task.created");
    assert!(stream.comments >= 1, "no heartbeat comment seen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_ends_the_stream_as_expired_not_revoked() {
    // 1 s tokens plus the 5 s verification leeway: expired within ~7 s.
    let api = common::start_with(|c| c.auth.access_ttl = Duration::from_secs(1)).await;
    let admin = api.org_admin("acme").await;
    let mut stream =
        SseStream::open(&api.url("/api/v1/events/stream"), Some(&admin.token), &[]).await;
    let ended = loop {
        let message = stream
            .next(Duration::from_secs(15))
            .await
            .expect("stream ended silently");
        if message.event.starts_with("session.") {
            break message;
        }
    };
    assert_eq!(ended.event, "session.expired");
    assert!(stream.next(WAIT).await.is_none(), "stream stayed open");
}
