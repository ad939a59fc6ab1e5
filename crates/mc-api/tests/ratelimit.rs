//! Per-caller rate limits by tier, shared by every API instance through Redis.

mod common;

use mc_domain::config::Quota;
use mc_testkit::api::send;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_follow_the_tier_and_are_shared_across_instances() {
    let api = common::start_with(|c| {
        c.rate_limits.free = Quota {
            per_minute: 60,
            burst: 4,
        };
    })
    .await;
    let admin = api.org_admin("small").await;
    // Successful responses carry the headers.
    let ok = api.get(&admin.token, "/api/v1/members").await.expect(200);
    assert_eq!(
        ok.header("x-ratelimit-limit"),
        Some("600"),
        "pro tier by default"
    );
    assert!(ok.header("x-ratelimit-remaining").is_some());
    let reset: i64 = ok.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= chrono::Utc::now().timestamp());

    sqlx::query("UPDATE organizations SET tier = 'free'")
        .execute(&api.db.admin_pool().await)
        .await
        .unwrap();
    // A second instance shares the allowance: alternate between the two.
    let second = api.spawn_instance().await;
    let http = mc_testkit::http_client();
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..6 {
        let url = if i % 2 == 0 {
            api.url("/api/v1/members")
        } else {
            second.url("/api/v1/members")
        };
        let resp = send(&http, &url, Method::GET, Some(&admin.token), None, &[]).await;
        statuses.push(resp.status);
        last = Some(resp);
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 429, 429],
        "burst of 4 across both instances"
    );
    let limited = last.unwrap();
    assert_eq!(limited.header("x-ratelimit-limit"), Some("60"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    // One request per second refills.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    api.get(&admin.token, "/api/v1/members").await.expect(200);

    // Anonymous callers are limited per IP.
    let anon = common::start_with(|c| {
        c.rate_limits.anonymous = Quota {
            per_minute: 60,
            burst: 2,
        };
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            anon.call(Method::GET, "/api/v1/openapi.json", None, None, &[])
                .await
                .status,
        );
    }
    assert_eq!(statuses, vec![200, 200, 429]);
}
