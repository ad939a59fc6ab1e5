//! Catch-up from the event log: the stream is best effort (publishing happens after
//! commit and Redis can lose data), so the engine also scans each organization's log past
//! its cursor for events without a receipt and evaluates them. Events older than the
//! maximum age are recorded as stale instead (acting on them now would mislead). The cursor
//! then moves to the last event before the first one still missing, and receipts at or
//! below it are pruned.

use super::engine::Engine;
use super::repo::Outcome;
use crate::db::begin_system;
use crate::error::Result;
use crate::events::{EVENT_COLUMNS, Event, EventRow};
use crate::ids::OrgId;
use chrono::Utc;
use std::time::Duration;
use uuid::Uuid;

/// Events read per page.
const PAGE: i64 = 500;

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CatchUpReport {
    /// Organizations looked at.
    pub organizations: usize,
    /// Events evaluated by the scan.
    pub evaluated: usize,
    /// Events too old to evaluate.
    pub stale: usize,
}

/// How the scan treats events by age.
#[derive(Debug, Clone, Copy)]
pub struct CatchUpAges {
    /// Newer events are left to the stream, which normally delivers them first.
    pub grace: Duration,
    /// An event that fails and is older than this is given up on (poison): by then the
    /// stream has had all its deliveries, or never had the event.
    pub give_up_after: Duration,
    /// Older events are recorded as stale, not evaluated.
    pub max_age: Duration,
}

/// Scans every organization whose log is ahead of its cursor.
pub async fn catch_up(engine: &Engine, ages: CatchUpAges) -> Result<CatchUpReport> {
    let mut report = CatchUpReport::default();
    let behind: Vec<(OrgId, i64, i64)> = {
        let mut tx = begin_system(engine.pool()).await?;
        let rows = sqlx::query_as(
            "SELECT s.organization_id, s.last_seq, coalesce(c.evaluated_through, 0)
             FROM org_event_seq s LEFT JOIN rule_cursors c USING (organization_id)
             WHERE s.last_seq > coalesce(c.evaluated_through, 0)
             ORDER BY s.organization_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows
    };
    let ago =
        |d: Duration| Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let (oldest, newest, hopeless) = (ago(ages.max_age), ago(ages.grace), ago(ages.give_up_after));
    for (org, last_seq, through) in behind {
        report.organizations += 1;
        let mut after = through;
        loop {
            let page: Vec<Event> = {
                let mut tx = begin_system(engine.pool()).await?;
                let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM agent_events e
                     WHERE e.organization_id = $1 AND e.seq > $2 AND e.seq <= $3 AND e.created_at <= $4
                       AND NOT EXISTS (SELECT 1 FROM rule_event_receipts r WHERE r.event_id = e.id)
                     ORDER BY e.seq LIMIT $5"
                )))
                .bind(org)
                .bind(after)
                .bind(last_seq)
                .bind(newest)
                .bind(PAGE)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter().map(Into::into).collect()
            };
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            let (stale, fresh): (Vec<Event>, Vec<Event>) =
                page.into_iter().partition(|e| e.created_at < oldest);
            if !stale.is_empty() {
                engine.record(&keys(&stale), Outcome::Stale).await?;
                report.stale += stale.len();
            }
            let outcome = engine.evaluate(&fresh).await?;
            report.evaluated += outcome.evaluated;
            let (hopeless, retry): (Vec<&Event>, Vec<&Event>) = fresh
                .iter()
                .filter(|e| outcome.failed.contains(&e.id))
                .partition(|e| e.created_at < hopeless);
            if !hopeless.is_empty() {
                metrics::counter!("mc_rules_poison_total", "reason" => "failing")
                    .increment(hopeless.len() as u64);
                tracing::warn!(
                    count = hopeless.len(),
                    "catch-up gives up on events that keep failing"
                );
                engine
                    .give_up(
                        &hopeless
                            .iter()
                            .map(|e| (e.id, e.organization_id, e.seq))
                            .collect::<Vec<_>>(),
                    )
                    .await?;
            }
            // Events still worth retrying are left for the next scan; the cursor must not
            // pass them.
            after = last;
            if !retry.is_empty() {
                break;
            }
        }
        advance(engine, org, through, last_seq).await?;
    }
    if report.evaluated > 0 {
        metrics::counter!("mc_rules_caught_up_total").increment(report.evaluated as u64);
        tracing::info!(
            evaluated = report.evaluated,
            stale = report.stale,
            "rule engine caught up on events the stream did not deliver"
        );
    }
    Ok(report)
}

fn keys(events: &[Event]) -> Vec<(Uuid, OrgId, i64)> {
    events
        .iter()
        .map(|e| (e.id, e.organization_id, e.seq))
        .collect()
}

/// Moves the cursor to just before the first event without a receipt (at most to
/// `last_seq`) and prunes receipts it passed.
async fn advance(engine: &Engine, org: OrgId, through: i64, last_seq: i64) -> Result<()> {
    let mut tx = begin_system(engine.pool()).await?;
    let first_missing: Option<i64> = sqlx::query_scalar(
        "SELECT min(e.seq) FROM agent_events e
         WHERE e.organization_id = $1 AND e.seq > $2 AND e.seq <= $3
           AND NOT EXISTS (SELECT 1 FROM rule_event_receipts r WHERE r.event_id = e.id)",
    )
    .bind(org)
    .bind(through)
    .bind(last_seq)
    .fetch_one(&mut *tx)
    .await?;
    let new_through = first_missing.map_or(last_seq, |s| s - 1);
    if new_through > through {
        sqlx::query(
            "INSERT INTO rule_cursors (organization_id, evaluated_through) VALUES ($1, $2)
             ON CONFLICT (organization_id) DO UPDATE
             SET evaluated_through = greatest(rule_cursors.evaluated_through, $2), updated_at = now()",
        )
        .bind(org)
        .bind(new_through)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rule_event_receipts WHERE organization_id = $1 AND seq <= $2")
            .bind(org)
            .bind(new_through)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
