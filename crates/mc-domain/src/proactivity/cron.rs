//! Cron ticks (`cron.minutely`, `cron.hourly`, `cron.daily`), fired exactly once per period
//! across any number of engines: whoever inserts the period's row in `rule_cron_ticks`
//! records a `cron.*` event, in the same transaction, for every active organization with an
//! enabled rule on that tick. The events then travel like any other (stream, catch-up).

use crate::db::begin_system;
use crate::error::Result;
use crate::events::{self, EventBus, NewEvent};
use crate::identity::context::Actor;
use crate::ids::OrgId;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

text_enum! {
    /// A tick period.
    CronKind {
        /// Every minute (tests and short-cycle rules).
        Minutely => "minutely",
        /// Every hour.
        Hourly => "hourly",
        /// Every day, at midnight UTC.
        Daily => "daily",
    }
}

impl CronKind {
    /// The event type of its ticks.
    pub fn event_type(self) -> String {
        format!("cron.{}", self.as_str())
    }

    /// Start of the period `now` is in.
    pub fn period_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let unit = match self {
            CronKind::Minutely => TimeDelta::minutes(1),
            CronKind::Hourly => TimeDelta::hours(1),
            CronKind::Daily => TimeDelta::days(1),
        };
        now.duration_trunc(unit).unwrap_or(now)
    }
}

/// Fires the tick of `kind` for the period starting at `period_start`, unless someone
/// already has. Returns the number of organizations it reached, or `None` if it had fired.
pub async fn fire_tick(
    pool: &sqlx::PgPool,
    bus: &dyn EventBus,
    kind: CronKind,
    period_start: DateTime<Utc>,
) -> Result<Option<usize>> {
    let mut tx = begin_system(pool).await?;
    let event_type = kind.event_type();
    let orgs: Vec<OrgId> = sqlx::query_scalar(
        "SELECT DISTINCT r.organization_id FROM proactive_rules r
         JOIN organizations o ON o.id = r.organization_id
         WHERE r.is_enabled AND r.trigger_event = $1 AND o.status = 'active'
         ORDER BY 1",
    )
    .bind(&event_type)
    .fetch_all(&mut *tx)
    .await?;
    let won: Option<i32> = sqlx::query_scalar(
        "INSERT INTO rule_cron_ticks (kind, period_start, organizations) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(kind)
    .bind(period_start)
    .bind(i32::try_from(orgs.len()).unwrap_or(i32::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    if won.is_none() {
        tx.rollback().await?;
        return Ok(None);
    }
    let actor = Actor::system("cron");
    let mut recorded = Vec::with_capacity(orgs.len());
    for org in &orgs {
        let event = NewEvent::new(event_type.clone())
            .payload(json!({ "kind": kind, "period_start": period_start }));
        recorded.extend(events::append(&mut tx, *org, &actor, vec![event]).await?);
    }
    tx.commit().await?;
    bus.publish(&recorded).await;
    metrics::counter!("mc_rules_cron_ticks_total", "kind" => kind.as_str()).increment(1);
    Ok(Some(orgs.len()))
}

/// Fires each enabled kind once per period until `shutdown`.
pub async fn run_ticker(
    pool: sqlx::PgPool,
    bus: std::sync::Arc<dyn EventBus>,
    minutely: bool,
    shutdown: CancellationToken,
) {
    let kinds: Vec<CronKind> = CronKind::ALL
        .iter()
        .copied()
        .filter(|k| minutely || *k != CronKind::Minutely)
        .collect();
    let mut done: std::collections::HashMap<CronKind, DateTime<Utc>> = Default::default();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = check.tick() => {}
        }
        let now = Utc::now();
        for kind in &kinds {
            let period = kind.period_start(now);
            if done.get(kind) == Some(&period) {
                continue;
            }
            match fire_tick(&pool, bus.as_ref(), *kind, period).await {
                Ok(reached) => {
                    if let Some(n) = reached {
                        tracing::info!(kind = kind.as_str(), organizations = n, "cron tick fired");
                    }
                    done.insert(*kind, period);
                }
                Err(err) => tracing::warn!(error = %err, kind = kind.as_str(), "cron tick failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_the_boundary() {
        let t: DateTime<Utc> = "2026-11-23T13:47:12.5Z".parse().unwrap();
        assert_eq!(
            CronKind::Minutely.period_start(t).to_rfc3339(),
            "2026-11-23T13:47:00+00:00"
        );
        assert_eq!(
            CronKind::Hourly.period_start(t).to_rfc3339(),
            "2026-11-23T13:00:00+00:00"
        );
        assert_eq!(
            CronKind::Daily.period_start(t).to_rfc3339(),
            "2026-11-23T00:00:00+00:00"
        );
        assert_eq!(CronKind::Hourly.event_type(), "cron.hourly");
    }
}
