//! An ordered, gap-free, duplicate-free feed of one organization's (or board's) events:
//! live from the bus, backfilled from the log whenever the bus may have dropped something
//! (a gap in `seq`, a lagging listener, a Redis reconnect, or a periodic tail check).
//! SSE streams and board sockets are built on it.

use super::{CompiledFilter, Event, EventBus, latest_seq, replay};
use crate::error::{Error, Result};
use crate::fanout::{Delivery, Subscription};
use crate::ids::{BoardId, OrgId};
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// What the feed listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedScope {
    /// Every event of the organization.
    Org,
    /// Events of one board (the filter should also name the board).
    Board(BoardId),
}

/// Rows fetched per backfill query.
const BACKFILL_PAGE: i64 = 1000;

/// See the module documentation.
pub struct EventFeed {
    cursor: LogCursor,
    sub: Subscription<Event>,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl EventFeed {
    /// Subscribes first, then (with `after`) replays what was missed, so the seam between
    /// replay and live has neither gap nor duplicate. Without `after`, starts at the
    /// latest event.
    pub async fn open(
        pool: PgPool,
        bus: &dyn EventBus,
        org: OrgId,
        scope: FeedScope,
        filter: CompiledFilter,
        after: Option<i64>,
    ) -> Result<Self> {
        let sub = match scope {
            FeedScope::Org => bus.subscribe_org(org).await?,
            FeedScope::Board(board) => bus.subscribe_board(board).await?,
        };
        let latest = latest_seq(&pool, org).await?;
        if let Some(after) = after
            && after > latest
        {
            return Err(Error::invalid_field(
                "last_event_id",
                format!("is ahead of this organization's log (latest is {latest})"),
            ));
        }
        let mut feed = Self {
            cursor: LogCursor::new(pool, org, filter, after.unwrap_or(latest).max(0)),
            sub,
        };
        if after.is_some() {
            feed.catch_up().await?;
        }
        Ok(feed)
    }

    /// The sequence number everything up to which has been seen.
    pub fn last_seq(&self) -> i64 {
        self.cursor.last_seq
    }

    /// Loads from the log every matching event after `last_seq`, up to the current end.
    pub async fn catch_up(&mut self) -> Result<()> {
        let end = latest_seq(&self.cursor.pool, self.cursor.org).await?;
        self.cursor.load_to(end).await
    }

    /// The next matching event, waiting for one if needed. Shared, not copied: every
    /// listener of this process gets the same decoded event.
    pub async fn next(&mut self) -> Result<Arc<Event>> {
        loop {
            if let Some(event) = self.cursor.pending.pop_front() {
                return Ok(event);
            }
            match self.sub.rx.recv().await {
                Ok(Delivery::Item(event)) => {
                    if event.organization_id != self.cursor.org {
                        continue;
                    }
                    if event.seq > self.cursor.last_seq + 1 {
                        // Either something was lost or (on a board channel) the numbers
                        // in between belong to other boards: the log decides, up to and
                        // including this event.
                        self.cursor.load_to(event.seq).await?;
                        continue;
                    }
                    if self.cursor.take_live(&event) {
                        return Ok(event);
                    }
                }
                Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => self.catch_up().await?,
                Err(RecvError::Closed) => {
                    return Err(Error::unavailable("event subscription closed"));
                }
            }
        }
    }
}

/// A reader's place in one organization's log: the filter it reads with, how far it has
/// seen, and what it loaded from the log but has not handed out yet. [`EventFeed`] and
/// the shared feeds' listeners each keep one.
pub(super) struct LogCursor {
    pub(super) pool: PgPool,
    pub(super) org: OrgId,
    pub(super) filter: CompiledFilter,
    /// Every event up to here has been seen (handed out or filtered away).
    pub(super) last_seq: i64,
    /// Loaded from the log, in seq order, to be handed out before anything live.
    pub(super) pending: VecDeque<Arc<Event>>,
}

impl std::fmt::Debug for LogCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCursor")
            .field("org", &self.org)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl LogCursor {
    pub(super) fn new(pool: PgPool, org: OrgId, filter: CompiledFilter, last_seq: i64) -> Self {
        Self {
            pool,
            org,
            filter,
            last_seq,
            pending: VecDeque::new(),
        }
    }

    /// A live event in seq order: moves past it and says whether it matches. One already
    /// seen (a duplicate, or replayed from the log) is skipped.
    pub(super) fn take_live(&mut self, event: &Event) -> bool {
        if event.seq <= self.last_seq {
            return false;
        }
        self.last_seq = event.seq;
        self.filter.matches(event)
    }

    /// Loads every matching event with `last_seq < seq <= end` into `pending`, oldest
    /// first, and moves to `end`.
    pub(super) async fn load_to(&mut self, end: i64) -> Result<()> {
        if self.last_seq >= end {
            return Ok(());
        }
        metrics::counter!("mc_event_backfills_total").increment(1);
        while self.last_seq < end {
            let rows = replay(
                &self.pool,
                self.org,
                &self.filter,
                self.last_seq,
                Some(end),
                BACKFILL_PAGE,
            )
            .await?;
            let full = rows.len() as i64 == BACKFILL_PAGE;
            let reached = rows.last().map(|e| e.seq);
            self.pending.extend(rows.into_iter().map(Arc::new));
            match reached {
                Some(seq) if full => self.last_seq = seq,
                _ => self.last_seq = end,
            }
        }
        Ok(())
    }
}
