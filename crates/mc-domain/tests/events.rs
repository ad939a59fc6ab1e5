//! The event backbone against real Postgres and Redis: gap-free sequence numbers under
//! concurrent writers, both bus implementations, and feeds that lose nothing when a
//! publish never happens.

use mc_domain::db::begin_org;
use mc_domain::events::{
    self, CompiledFilter, EventBus, EventFeed, EventFilter, FeedScope, MemoryEventBus, NewEvent,
    RedisEventBus, SharedFeeds, SharedListener,
};
use mc_domain::identity::Actor;
use mc_domain::ids::OrgId;
use mc_domain::redis::RedisHandle;
use mc_testkit::{TestDb, redis_config};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn org(pool: &PgPool) -> OrgId {
    let org = OrgId::generate();
    let mut tx = begin_org(pool, org).await.unwrap();
    sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, $2, 'Events')")
        .bind(org)
        .bind(format!("events-{}", &org.to_string()[..8]))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    org
}

/// Appends one event in its own transaction; publishes it only when `bus` is given.
async fn write(pool: &PgPool, org: OrgId, n: usize, bus: Option<&dyn EventBus>) -> i64 {
    let mut tx = begin_org(pool, org).await.unwrap();
    let written = events::append(
        &mut tx,
        org,
        &Actor::system("test"),
        vec![NewEvent::new("test.written").payload(serde_json::json!({ "n": n }))],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    if let Some(bus) = bus {
        bus.publish(&written).await;
    }
    written[0].seq
}

fn all() -> CompiledFilter {
    CompiledFilter::new(EventFilter::default()).unwrap()
}

async fn next_seq(feed: &mut EventFeed) -> i64 {
    tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("feed stalled")
        .expect("feed failed")
        .seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_gap_free_sequences_delivered_in_order() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(
        RedisHandle::new(&redis_config()).unwrap(),
    ));
    let mut feed = EventFeed::open(pool.clone(), bus.as_ref(), org, FeedScope::Org, all(), None)
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            let bus = bus.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..25 {
                    seqs.push(write(&pool, org, w * 100 + i, Some(bus.as_ref())).await);
                }
                seqs
            })
        })
        .collect();
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    written.sort_unstable();
    assert_eq!(
        written,
        (1..=200).collect::<Vec<i64>>(),
        "sequence has gaps or duplicates"
    );
    // Publishes from concurrent committers arrive out of order; the feed still delivers
    // 1..=200 exactly once, in order.
    let mut delivered = Vec::new();
    for _ in 0..200 {
        delivered.push(next_seq(&mut feed).await);
    }
    assert_eq!(delivered, (1..=200).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_publish_is_backfilled_from_the_log() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    for bus in [
        Arc::new(MemoryEventBus::new()) as Arc<dyn EventBus>,
        Arc::new(RedisEventBus::new(
            RedisHandle::new(&redis_config()).unwrap(),
        )),
    ] {
        let start = events::latest_seq(&pool, org).await.unwrap();
        let mut feed =
            EventFeed::open(pool.clone(), bus.as_ref(), org, FeedScope::Org, all(), None)
                .await
                .unwrap();
        // Committed but never published (the process died between commit and publish).
        let lost = write(&pool, org, 1, None).await;
        // The next publish reveals the gap; the feed fills it from Postgres first.
        let published = write(&pool, org, 2, Some(bus.as_ref())).await;
        assert_eq!(next_seq(&mut feed).await, lost);
        assert_eq!(next_seq(&mut feed).await, published);
        // A lost publish at the tail shows no gap; the periodic catch-up finds it.
        let tail = write(&pool, org, 3, None).await;
        feed.catch_up().await.unwrap();
        assert_eq!(next_seq(&mut feed).await, tail);
        assert_eq!(tail, start + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bus_also_feeds_the_stream_for_consumers() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    let handle = RedisHandle::new(&redis_config()).unwrap();
    let bus = RedisEventBus::new(handle.clone());
    for n in 0..3 {
        write(&pool, org, n, Some(&bus)).await;
    }
    let mut conn = handle.conn();
    let entries: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(bus.stream_key())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_honours_the_resume_point_and_rejects_one_from_the_future() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    let bus = MemoryEventBus::new();
    for n in 0..5 {
        write(&pool, org, n, Some(&bus)).await;
    }
    let mut feed = EventFeed::open(pool.clone(), &bus, org, FeedScope::Org, all(), Some(2))
        .await
        .unwrap();
    for expected in 3..=5 {
        assert_eq!(next_seq(&mut feed).await, expected);
    }
    let err = EventFeed::open(pool.clone(), &bus, org, FeedScope::Org, all(), Some(99))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

async fn next_shared(listener: &mut SharedListener) -> i64 {
    tokio::time::timeout(WAIT, listener.next())
        .await
        .expect("listener stalled")
        .expect("listener failed")
        .seq
}

fn shared_feeds(pool: &PgPool, bus: Arc<dyn EventBus>, capacity: usize) -> SharedFeeds {
    SharedFeeds::new(
        pool.clone(),
        bus,
        capacity,
        Duration::from_millis(200),
        CancellationToken::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_share_one_feed_and_each_gets_its_own_filter_and_start() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(
        RedisHandle::new(&redis_config()).unwrap(),
    ));
    let feeds = shared_feeds(&pool, bus.clone(), 1024);
    for n in 0..3 {
        write(&pool, org, n, Some(bus.as_ref())).await;
    }
    let mut live = feeds
        .listen(org, FeedScope::Org, all(), None)
        .await
        .unwrap();
    let mut resumed = feeds
        .listen(org, FeedScope::Org, all(), Some(1))
        .await
        .unwrap();
    let none = CompiledFilter::new(EventFilter {
        event_type: Some("other.*".into()),
        ..Default::default()
    })
    .unwrap();
    let mut filtered = feeds.listen(org, FeedScope::Org, none, None).await.unwrap();
    assert_eq!(feeds.open_feeds().await, 1, "one feed for the organization");

    // Concurrent writers publish out of order; every listener still gets each seq once,
    // in order, and the resumed one first gets 2 and 3 from the log.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (pool, bus) = (pool.clone(), bus.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    write(&pool, org, w * 100 + i, Some(bus.as_ref())).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut got_live = Vec::new();
    for _ in 0..40 {
        got_live.push(next_shared(&mut live).await);
    }
    assert_eq!(got_live, (4..=43).collect::<Vec<i64>>());
    let mut got_resumed = Vec::new();
    for _ in 0..42 {
        got_resumed.push(next_shared(&mut resumed).await);
    }
    assert_eq!(got_resumed, (2..=43).collect::<Vec<i64>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), filtered.next())
            .await
            .is_err(),
        "a filter that matches nothing delivers nothing"
    );
    assert_eq!(filtered.last_seq(), 43, "but it kept up");

    let err = feeds
        .listen(org, FeedScope::Org, all(), Some(99))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("last_event_id"), "{err}");

    // Once nobody listens, the feed closes (at its next event or tail check).
    drop((live, resumed, filtered));
    let deadline = tokio::time::Instant::now() + WAIT;
    while feeds.open_feeds().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed stayed open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_left_behind_catches_up_from_the_log_and_a_lost_publish_is_found() {
    let db = TestDb::migrated().await;
    let pool = db.pool().clone();
    let org = org(&pool).await;
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    // Room for 4 events: a listener that reads nothing while 30 arrive lags the feed.
    let feeds = shared_feeds(&pool, bus.clone(), 4);
    let mut slow = feeds
        .listen(org, FeedScope::Org, all(), None)
        .await
        .unwrap();
    let mut keeping_up = feeds
        .listen(org, FeedScope::Org, all(), None)
        .await
        .unwrap();
    let mut kept = Vec::new();
    for n in 0..30 {
        write(&pool, org, n, Some(bus.as_ref())).await;
        kept.push(next_shared(&mut keeping_up).await);
    }
    assert_eq!(kept, (1..=30).collect::<Vec<i64>>());
    let mut caught_up = Vec::new();
    for _ in 0..30 {
        caught_up.push(next_shared(&mut slow).await);
    }
    assert_eq!(caught_up, (1..=30).collect::<Vec<i64>>());

    // A write whose publish never happens reaches both through the feed's tail check.
    write(&pool, org, 99, None).await;
    assert_eq!(next_shared(&mut slow).await, 31);
    assert_eq!(next_shared(&mut keeping_up).await, 31);
}
