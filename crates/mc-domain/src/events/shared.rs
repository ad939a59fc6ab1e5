//! One [`EventFeed`] per organization (or board) per process, shared by every listener.
//!
//! Concurrent writers commit out of order, so a feed often sees seq N+1 before N and asks
//! the log what lies between. With one feed per SSE stream, 1,000 streams asked the same
//! question 1,000 times (PostgreSQL took about half the CPU in `scripts/bench boards`).
//! Shared, the question is asked once and the ordered result fanned out. Each listener
//! still applies its own filter, starts from its own `Last-Event-ID` (replayed from the
//! log up to where the shared feed stands) and recovers from the log if it falls behind.

use super::feed::LogCursor;
use super::{CompiledFilter, Event, EventBus, EventFeed, EventFilter, FeedScope, latest_seq};
use crate::error::{Error, Result};
use crate::ids::OrgId;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

type Key = (OrgId, FeedScope);

/// The shared feeds of this process.
#[derive(Clone)]
pub struct SharedFeeds {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedFeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFeeds").finish_non_exhaustive()
    }
}

struct Inner {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    feeds: tokio::sync::Mutex<HashMap<Key, Arc<Shared>>>,
    capacity: usize,
    check_interval: Duration,
    shutdown: CancellationToken,
}

struct Shared {
    key: Key,
    /// Sending happens under this lock, so a new listener's subscription and the position
    /// it reads are consistent: every event after `last_seq` reaches its receiver.
    state: Mutex<SharedState>,
    stop: CancellationToken,
}

struct SharedState {
    last_seq: i64,
    /// Taken when the feed ends, which ends every listener's receiver.
    tx: Option<broadcast::Sender<Arc<Event>>>,
}

impl SharedFeeds {
    /// Shared feeds over `bus`. A listener more than `capacity` events behind the shared
    /// feed replays from the log; every `check_interval` each feed looks at the log's tail
    /// for a publish that never arrived.
    pub fn new(
        pool: PgPool,
        bus: Arc<dyn EventBus>,
        capacity: usize,
        check_interval: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                bus,
                feeds: tokio::sync::Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                check_interval,
                shutdown,
            }),
        }
    }

    /// Feeds currently open.
    pub async fn open_feeds(&self) -> usize {
        self.inner.feeds.lock().await.len()
    }

    /// Listens to `scope` of `org` with `filter`, after `after` (replayed from the log)
    /// or from now. Same contract as [`EventFeed::open`]: no gap and no duplicate at the
    /// seam, and an `after` beyond the log's end is a field error.
    pub async fn listen(
        &self,
        org: OrgId,
        scope: FeedScope,
        filter: CompiledFilter,
        after: Option<i64>,
    ) -> Result<SharedListener> {
        let key = (org, scope);
        let (shared, rx, position) = {
            let mut feeds = self.inner.feeds.lock().await;
            let shared = match feeds.get(&key) {
                Some(shared) if !shared.stop.is_cancelled() => shared.clone(),
                _ => {
                    let shared = self.open(key).await?;
                    feeds.insert(key, shared.clone());
                    shared
                }
            };
            let (rx, position) = shared.subscribe()?;
            (shared, rx, position)
        };
        let mut listener = SharedListener {
            cursor: LogCursor::new(self.inner.pool.clone(), org, filter, position),
            shared,
            rx,
        };
        if let Some(after) = after {
            if after > position {
                // The shared feed may trail the log by a moment; only the log can say
                // whether `after` is really ahead.
                let latest = latest_seq(&self.inner.pool, org).await?;
                if after > latest {
                    return Err(Error::invalid_field(
                        "last_event_id",
                        format!("is ahead of this organization's log (latest is {latest})"),
                    ));
                }
                listener.cursor.last_seq = after;
            } else {
                listener.cursor.last_seq = after.max(0);
                listener.cursor.load_to(position).await?;
            }
        }
        Ok(listener)
    }

    async fn open(&self, key: Key) -> Result<Arc<Shared>> {
        let (org, scope) = key;
        let filter = CompiledFilter::new(EventFilter {
            board_id: match scope {
                FeedScope::Board(board) => Some(board),
                FeedScope::Org => None,
            },
            ..Default::default()
        })?;
        let feed = EventFeed::open(
            self.inner.pool.clone(),
            self.inner.bus.as_ref(),
            org,
            scope,
            filter,
            None,
        )
        .await?;
        let (tx, _) = broadcast::channel(self.inner.capacity);
        let shared = Arc::new(Shared {
            key,
            state: Mutex::new(SharedState {
                last_seq: feed.last_seq(),
                tx: Some(tx),
            }),
            stop: self.inner.shutdown.child_token(),
        });
        tokio::spawn(pump(
            shared.clone(),
            Arc::downgrade(&self.inner),
            feed,
            self.inner.check_interval,
        ));
        metrics::gauge!("mc_event_shared_feeds").increment(1.0);
        Ok(shared)
    }
}

impl Shared {
    fn subscribe(&self) -> Result<(broadcast::Receiver<Arc<Event>>, i64)> {
        let state = self.state.lock().expect("shared feed lock");
        let tx = state
            .tx
            .as_ref()
            .ok_or_else(|| Error::unavailable("event feed closed"))?;
        Ok((tx.subscribe(), state.last_seq))
    }

    fn listeners(&self) -> usize {
        let state = self.state.lock().expect("shared feed lock");
        state
            .tx
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }
}

/// Moves the feed's events to every listener until the feed fails, the process stops or
/// nobody listens any more.
async fn pump(
    shared: Arc<Shared>,
    feeds: std::sync::Weak<Inner>,
    mut feed: EventFeed,
    check: Duration,
) {
    let mut tick = tokio::time::interval(check);
    tick.tick().await;
    let failure: Option<Error> = loop {
        let idle = tokio::select! {
            () = shared.stop.cancelled() => break None,
            next = feed.next() => match next {
                Ok(event) => {
                    let mut state = shared.state.lock().expect("shared feed lock");
                    state.last_seq = event.seq;
                    state.tx.as_ref().is_none_or(|tx| tx.send(event).is_err())
                }
                Err(err) => break Some(err),
            },
            _ = tick.tick() => {
                // A publish lost at the tail shows no gap until the next one; look now.
                if let Err(err) = feed.catch_up().await {
                    break Some(err);
                }
                shared.listeners() == 0
            }
        };
        if idle && close_if_unheard(&shared, &feeds).await {
            break None;
        }
    };
    if let Some(err) = failure {
        tracing::warn!(error = %err, org = %shared.key.0, "shared event feed failed; its listeners end");
    }
    shared.stop.cancel();
    if let Some(inner) = feeds.upgrade() {
        let mut map = inner.feeds.lock().await;
        if map
            .get(&shared.key)
            .is_some_and(|s| Arc::ptr_eq(s, &shared))
        {
            map.remove(&shared.key);
        }
    }
    shared.state.lock().expect("shared feed lock").tx = None;
    metrics::gauge!("mc_event_shared_feeds").decrement(1.0);
}

/// Takes the feed out of the map if nobody listens (checked under the map lock, which
/// every new listener holds while it subscribes).
async fn close_if_unheard(shared: &Arc<Shared>, feeds: &std::sync::Weak<Inner>) -> bool {
    let Some(inner) = feeds.upgrade() else {
        return true;
    };
    let mut map = inner.feeds.lock().await;
    let unheard = shared.listeners() == 0;
    if unheard && map.get(&shared.key).is_some_and(|s| Arc::ptr_eq(s, shared)) {
        map.remove(&shared.key);
    }
    unheard
}

/// One listener of a shared feed: its own filter and position.
pub struct SharedListener {
    cursor: LogCursor,
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Arc<Event>>,
}

impl std::fmt::Debug for SharedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedListener")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl SharedListener {
    /// The sequence number everything up to which has been seen.
    pub fn last_seq(&self) -> i64 {
        self.cursor.last_seq
    }

    /// The next matching event, in seq order, waiting for one if needed.
    pub async fn next(&mut self) -> Result<Arc<Event>> {
        loop {
            if let Some(event) = self.cursor.pending.pop_front() {
                return Ok(event);
            }
            match self.rx.recv().await {
                Ok(event) => {
                    if self.cursor.take_live(&event) {
                        return Ok(event);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Too far behind to be kept for: subscribe again and take what was
                    // skipped from the log.
                    metrics::counter!("mc_event_listener_lagged_total").increment(1);
                    let (rx, position) = self.shared.subscribe()?;
                    self.rx = rx;
                    self.cursor.load_to(position).await?;
                }
                Err(RecvError::Closed) => {
                    return Err(Error::unavailable("event feed closed"));
                }
            }
        }
    }
}
