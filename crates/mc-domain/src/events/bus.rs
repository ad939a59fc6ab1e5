//! The event bus: committed events fan out to every process (pub/sub, per organization
//! and per board) and go onto a Redis Stream for consumers that must see every event
//! (the rule engine). Publishing is best effort by design: the event is already in
//! Postgres, and subscribers that miss one backfill by sequence number.

use super::Event;
use crate::error::Result;
use crate::fanout::{Fanout, Subscription};
use crate::ids::{BoardId, OrgId};
use crate::redis::RedisHandle;
use futures::future::BoxFuture;

/// Messages a process keeps per channel before a slow listener lags.
const FANOUT_CAPACITY: usize = 1024;
/// Approximate length the event stream is trimmed to.
const STREAM_MAX_LEN: usize = 1_000_000;

/// Publishes committed events and delivers them to subscribers.
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes events after their transaction committed. Never fails the caller.
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()>;
    /// Live events of one organization.
    fn subscribe_org(&self, org: OrgId) -> BoxFuture<'_, Result<Subscription<Event>>>;
    /// Live events of one board.
    fn subscribe_board(&self, board: BoardId) -> BoxFuture<'_, Result<Subscription<Event>>>;
}

fn org_channel(prefix: &str, org: OrgId) -> String {
    format!("{prefix}org:{org}:events")
}

fn board_channel(prefix: &str, board: BoardId) -> String {
    format!("{prefix}board:{board}")
}

fn messages(prefix: &str, events: &[Event]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(events.len() * 2);
    for event in events {
        let Ok(json) = serde_json::to_string(event) else {
            continue;
        };
        if let Some(board) = event.board_id {
            out.push((board_channel(prefix, board), json.clone()));
        }
        out.push((org_channel(prefix, event.organization_id), json));
    }
    out
}

/// Everything in this process (tests, single-process use).
#[derive(Debug, Clone)]
pub struct MemoryEventBus {
    fanout: Fanout<Event>,
}

impl MemoryEventBus {
    /// A bus local to this process.
    pub fn new() -> Self {
        Self {
            fanout: Fanout::local(FANOUT_CAPACITY),
        }
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus for MemoryEventBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.fanout.publish(&messages("", events)).await;
        })
    }

    fn subscribe_org(&self, org: OrgId) -> BoxFuture<'_, Result<Subscription<Event>>> {
        Box::pin(async move { self.fanout.subscribe(&org_channel("", org)).await })
    }

    fn subscribe_board(&self, board: BoardId) -> BoxFuture<'_, Result<Subscription<Event>>> {
        Box::pin(async move { self.fanout.subscribe(&board_channel("", board)).await })
    }
}

/// Across processes, through Redis: pub/sub channels `{prefix}org:{id}:events` and
/// `{prefix}board:{id}`, and the stream `{prefix}events`.
#[derive(Debug, Clone)]
pub struct RedisEventBus {
    redis: RedisHandle,
    fanout: Fanout<Event>,
}

impl RedisEventBus {
    /// A bus over `redis`; spawns this process's pub/sub listener.
    pub fn new(redis: RedisHandle) -> Self {
        Self {
            fanout: Fanout::redis(redis.clone(), FANOUT_CAPACITY),
            redis,
        }
    }

    /// Name of the stream consumers read.
    pub fn stream_key(&self) -> String {
        self.redis.key("events")
    }

    async fn try_publish(&self, events: &[Event]) -> Result<()> {
        let prefix = self.redis.prefix();
        let mut pipe = redis::pipe();
        for (channel, payload) in messages(prefix, events) {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        let stream = self.stream_key();
        for event in events {
            let json = serde_json::to_string(event)
                .map_err(|e| crate::Error::internal("encoding an event", e))?;
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("org")
                .arg(event.organization_id.to_string())
                .arg("seq")
                .arg(event.seq)
                .arg("event")
                .arg(json)
                .ignore();
        }
        let mut conn = self.redis.conn();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }
}

impl EventBus for RedisEventBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if events.is_empty() {
                return;
            }
            if let Err(err) = self.try_publish(events).await {
                metrics::counter!("mc_event_publish_failures_total").increment(1);
                tracing::warn!(error = %err, count = events.len(),
                    "publishing events failed; subscribers will backfill from the log");
            } else {
                metrics::counter!("mc_events_published_total").increment(events.len() as u64);
            }
        })
    }

    fn subscribe_org(&self, org: OrgId) -> BoxFuture<'_, Result<Subscription<Event>>> {
        Box::pin(async move {
            self.fanout
                .subscribe(&org_channel(self.redis.prefix(), org))
                .await
        })
    }

    fn subscribe_board(&self, board: BoardId) -> BoxFuture<'_, Result<Subscription<Event>>> {
        Box::pin(async move {
            self.fanout
                .subscribe(&board_channel(self.redis.prefix(), board))
                .await
        })
    }
}
