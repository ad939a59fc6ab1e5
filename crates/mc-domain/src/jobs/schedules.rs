//! Schedules: cron expressions (UTC, 5 or 6 fields) and one-shot times that enqueue jobs,
//! firing exactly once per tick across any number of workers.

use super::model::{JobPriority, NewJob};
use super::repo;
use crate::error::{Error, Result};
use crate::ids::OrgId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::str::FromStr;
use uuid::Uuid;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// A cron expression (`min hour dom month dow`, optional leading seconds), UTC.
    Cron(String),
    /// Once, at this time.
    Once(DateTime<Utc>),
}

impl Timing {
    /// Validates the timing; a cron expression must parse and have a future occurrence.
    pub fn validate(&self) -> Result<()> {
        match self {
            Timing::Cron(expr) => next_tick(expr, Utc::now()).map(|_| ()),
            Timing::Once(_) => Ok(()),
        }
    }
}

/// The first tick of `expr` strictly after `after`.
pub fn next_tick(expr: &str, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let cron = croner::Cron::from_str(expr).map_err(|e| {
        Error::invalid_field("cron", format!("{expr:?} is not a cron expression: {e}"))
    })?;
    cron.find_next_occurrence(&after, false)
        .map_err(|e| Error::invalid_field("cron", format!("{expr:?} never fires: {e}")))
}

/// A schedule to create or update (system schedules are matched by name).
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// Unique name (per organization; globally for system schedules).
    pub name: String,
    /// Job kind it enqueues.
    pub kind: String,
    /// Job payload.
    pub payload: serde_json::Value,
    /// Job tier.
    pub priority: JobPriority,
    /// When.
    pub timing: Timing,
    /// Tenant (None for system schedules).
    pub organization_id: Option<OrgId>,
}

/// Creates or updates a system schedule by name, keeping its next tick when the timing
/// did not change. Run inside a `begin_system` transaction.
pub async fn upsert_system(conn: &mut PgConnection, spec: &ScheduleSpec) -> Result<()> {
    spec.timing.validate()?;
    let (cron, once, next) = match &spec.timing {
        Timing::Cron(expr) => (Some(expr.clone()), None, next_tick(expr, Utc::now())?),
        Timing::Once(at) => (None, Some(*at), *at),
    };
    sqlx::query(
        "INSERT INTO job_schedules (id, organization_id, name, kind, payload, priority, cron, run_once_at, next_run_at)
         VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (name) WHERE organization_id IS NULL DO UPDATE
         SET kind = EXCLUDED.kind, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
             next_run_at = CASE
                 WHEN job_schedules.cron IS NOT DISTINCT FROM EXCLUDED.cron
                  AND job_schedules.run_once_at IS NOT DISTINCT FROM EXCLUDED.run_once_at
                 THEN job_schedules.next_run_at ELSE EXCLUDED.next_run_at END,
             cron = EXCLUDED.cron, run_once_at = EXCLUDED.run_once_at",
    )
    .bind(Uuid::now_v7())
    .bind(&spec.name)
    .bind(&spec.kind)
    .bind(&spec.payload)
    .bind(spec.priority.rank())
    .bind(cron)
    .bind(once)
    .bind(next)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    organization_id: Option<OrgId>,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    queue: String,
    cron: Option<String>,
    next_run_at: DateTime<Utc>,
}

/// Enqueues the job of every due schedule and advances it. Run inside a `begin_system`
/// transaction; returns how many fired. A cron schedule that missed several ticks
/// (no worker was running) fires once and resumes at its next future tick.
pub async fn fire_due(conn: &mut PgConnection, limit: i64) -> Result<usize> {
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, organization_id, kind, payload, priority, queue, cron, next_run_at
         FROM job_schedules
         WHERE enabled AND next_run_at <= now()
         ORDER BY next_run_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let now = Utc::now();
    for s in &due {
        let mut job = NewJob::new(s.kind.clone(), s.payload.clone())
            .priority(JobPriority::from_rank(s.priority))
            .queue(s.queue.clone())
            .idempotency_key(format!(
                "schedule:{}:{}",
                s.id,
                s.next_run_at.timestamp_millis()
            ));
        job.organization_id = s.organization_id;
        let (enqueued, _) = repo::insert(conn, &job).await?;
        let next = match &s.cron {
            Some(expr) => next_tick(expr, now.max(s.next_run_at)).ok(),
            None => None,
        };
        sqlx::query(
            "UPDATE job_schedules
             SET last_run_at = now(), last_job_id = $2, next_run_at = $3,
                 enabled = enabled AND $3 IS NOT NULL
             WHERE id = $1",
        )
        .bind(s.id)
        .bind(enqueued.id)
        .bind(next)
        .execute(&mut *conn)
        .await?;
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cron_ticks_and_bad_expressions() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 7, 30).unwrap();
        assert_eq!(
            next_tick("0 * * * *", at).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap()
        );
        assert_eq!(
            next_tick("*/5 * * * *", at).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 10, 0).unwrap()
        );
        for bad in ["", "every hour", "61 * * * *", "* * * * * * * *"] {
            let err = next_tick(bad, at).unwrap_err();
            assert_eq!(err.details()[0].field, "cron", "{bad}");
        }
    }
}
