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
    pool: PgPool,
    org: OrgId,
    filter: CompiledFilter,
    sub: Subscription<Event>,
    last_seq: i64,
    pending: VecDeque<Arc<Event>>,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("org", &self.org)
            .field("last_seq", &self.last_seq)
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
            pool,
            org,
            filter,
            sub,
            last_seq: after.unwrap_or(latest).max(0),
            pending: VecDeque::new(),
        };
        if after.is_some() {
            feed.catch_up().await?;
        }
        Ok(feed)
    }

    /// The sequence number everything up to which has been seen.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Loads from the log every matching event after `last_seq`, up to the current end.
    pub async fn catch_up(&mut self) -> Result<()> {
        let end = latest_seq(&self.pool, self.org).await?;
        self.catch_up_to(end).await
    }

    /// Loads every matching event with `last_seq < seq <= end`.
    async fn catch_up_to(&mut self, end: i64) -> Result<()> {
        self.last_seq = backfill(
            &self.pool,
            self.org,
            &self.filter,
            self.last_seq,
            end,
            &mut self.pending,
        )
        .await?;
        Ok(())
    }

    /// The next matching event, waiting for one if needed. Shared, not copied: every
    /// listener of this process gets the same decoded event.
    pub async fn next(&mut self) -> Result<Arc<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            match self.sub.rx.recv().await {
                Ok(Delivery::Item(event)) => {
                    if event.organization_id != self.org || event.seq <= self.last_seq {
                        continue;
                    }
                    if event.seq > self.last_seq + 1 {
                        // Either something was lost or (on a board channel) the numbers
                        // in between belong to other boards: the log decides, up to and
                        // including this event.
                        self.catch_up_to(event.seq).await?;
                        continue;
                    }
                    self.last_seq = event.seq;
                    if self.filter.matches(&event) {
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

/// Appends to `pending` every event matching `filter` with `after < seq <= end`, oldest
/// first, and returns `end` (the new position).
pub(super) async fn backfill(
    pool: &PgPool,
    org: OrgId,
    filter: &CompiledFilter,
    mut after: i64,
    end: i64,
    pending: &mut VecDeque<Arc<Event>>,
) -> Result<i64> {
    if after < end {
        metrics::counter!("mc_event_backfills_total").increment(1);
    }
    while after < end {
        let rows = replay(pool, org, filter, after, Some(end), BACKFILL_PAGE).await?;
        let full = rows.len() as i64 == BACKFILL_PAGE;
        let reached = rows.last().map(|e| e.seq);
        pending.extend(rows.into_iter().map(Arc::new));
        match reached {
            Some(seq) if full => after = seq,
            _ => after = end,
        }
    }
    Ok(after.max(end))
}
