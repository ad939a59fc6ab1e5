//! Schedules: cron expressions (UTC, 5 or 6 fields) and one-shot times that enqueue jobs,
//! firing exactly once per tick across any number of workers.

use super::model::{JobPriority, NewJob};
use super::repo;
use crate::db::begin_org;
use crate::error::{Error, Result};
use crate::identity::{OrgContext, Permission};
use crate::ids::{JobId, OrgId, ScheduleId};
use crate::pagination::{Page, PageParams};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
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

// ------------------------------------------------------------ tenant schedules API

/// Shortest period between two ticks of a tenant's cron schedule.
pub const MIN_TENANT_PERIOD_SECS: i64 = 60;
/// Schedules one organization may have.
pub const MAX_SCHEDULES_PER_ORG: i64 = 1000;

/// A schedule (`/api/v1/schedules`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Id.
    pub id: ScheduleId,
    /// Unique name within the organization.
    pub name: String,
    /// Job kind it enqueues.
    pub kind: String,
    /// Job payload.
    pub payload: serde_json::Value,
    /// Tier of the jobs it enqueues.
    pub priority: JobPriority,
    /// Cron expression (UTC), for recurring schedules.
    pub cron: Option<String>,
    /// The one time it fires, for one-shot schedules.
    pub run_at: Option<DateTime<Utc>>,
    /// Whether it fires (a one-shot schedule disables itself after firing).
    pub enabled: bool,
    /// Next tick (none once a one-shot fired).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Last time it fired.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Job enqueued by the last tick.
    pub last_job_id: Option<JobId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: ScheduleId,
    name: String,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    cron: Option<String>,
    run_once_at: Option<DateTime<Utc>>,
    enabled: bool,
    next_run_at: Option<DateTime<Utc>>,
    last_run_at: Option<DateTime<Utc>>,
    last_job_id: Option<JobId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ScheduleRow> for Schedule {
    fn from(r: ScheduleRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            kind: r.kind,
            payload: r.payload,
            priority: JobPriority::from_rank(r.priority),
            cron: r.cron,
            run_at: r.run_once_at,
            enabled: r.enabled,
            next_run_at: r.next_run_at,
            last_run_at: r.last_run_at,
            last_job_id: r.last_job_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SCHEDULE_COLUMNS: &str = "id, name, kind, payload, priority, cron, run_once_at, enabled, \
     next_run_at, last_run_at, last_job_id, created_at, updated_at";

/// `POST /api/v1/schedules`: exactly one of `cron` and `run_at`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Unique name within the organization (1-200 characters).
    pub name: String,
    /// Job kind (see `jobs::tenant::SCHEDULABLE_KINDS`).
    pub kind: String,
    /// Job payload, checked against the kind.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Tier (default medium).
    pub priority: Option<JobPriority>,
    /// Cron expression, UTC (`min hour dom month dow`); at most one tick a minute.
    pub cron: Option<String>,
    /// One-shot time (ISO 8601, in the future).
    pub run_at: Option<DateTime<Utc>>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/schedules/{id}`: absent fields stay; `cron` and `run_at` switch the
/// timing (not both).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    /// New name.
    pub name: Option<String>,
    /// New payload.
    pub payload: Option<serde_json::Value>,
    /// New tier.
    pub priority: Option<JobPriority>,
    /// Make it recurring on this expression.
    pub cron: Option<String>,
    /// Make it one-shot at this time.
    pub run_at: Option<DateTime<Utc>>,
    /// Pause or resume.
    pub enabled: Option<bool>,
}

fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid_field("name", "must be 1-200 characters"));
    }
    Ok(name.to_owned())
}

/// Validates a tenant timing and returns its first tick.
fn tenant_timing(cron: Option<&str>, run_at: Option<DateTime<Utc>>) -> Result<Timing> {
    match (cron, run_at) {
        (Some(_), Some(_)) => Err(Error::invalid_field(
            "cron",
            "give either cron or run_at, not both",
        )),
        (None, None) => Err(Error::invalid_field("cron", "give cron or run_at")),
        (Some(expr), None) => {
            let now = Utc::now();
            let first = next_tick(expr, now)?;
            let second = next_tick(expr, first)?;
            if (second - first).num_seconds() < MIN_TENANT_PERIOD_SECS {
                return Err(Error::invalid_field(
                    "cron",
                    format!("fires more often than once every {MIN_TENANT_PERIOD_SECS} s"),
                ));
            }
            Ok(Timing::Cron(expr.to_owned()))
        }
        (None, Some(at)) => {
            if at <= Utc::now() {
                return Err(Error::invalid_field("run_at", "must be in the future"));
            }
            Ok(Timing::Once(at))
        }
    }
}

fn first_tick(timing: &Timing) -> Result<DateTime<Utc>> {
    match timing {
        Timing::Cron(expr) => next_tick(expr, Utc::now()),
        Timing::Once(at) => Ok(*at),
    }
}

fn name_taken(err: sqlx::Error) -> Error {
    if crate::db::is_unique_violation(&err, Some("job_schedules_org_name")) {
        Error::Conflict("a schedule with this name exists".into())
    } else {
        err.into()
    }
}

async fn fetch(conn: &mut PgConnection, id: ScheduleId, lock: bool) -> Result<Schedule> {
    let sql = format!(
        "SELECT {SCHEDULE_COLUMNS} FROM job_schedules WHERE id = $1 AND organization_id IS NOT NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<ScheduleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Into::into).ok_or(Error::NotFound {
        resource: "schedule",
    })
}

/// Creates an organization's schedule.
pub async fn create(pool: &PgPool, ctx: &OrgContext, body: CreateSchedule) -> Result<Schedule> {
    ctx.authorize(Permission::JobsManage)?;
    let name = validate_name(&body.name)?;
    let payload = match body.payload {
        serde_json::Value::Null => serde_json::json!({}),
        other => other,
    };
    super::tenant::validate(&body.kind, &payload)?;
    let timing = tenant_timing(body.cron.as_deref(), body.run_at)?;
    let next = first_tick(&timing)?;
    let (cron, once) = match timing {
        Timing::Cron(expr) => (Some(expr), None),
        Timing::Once(at) => (None, Some(at)),
    };
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM job_schedules")
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_SCHEDULES_PER_ORG {
        return Err(Error::Conflict(
            format!("an organization may have at most {MAX_SCHEDULES_PER_ORG} schedules").into(),
        ));
    }
    let sql = format!(
        "INSERT INTO job_schedules (id, organization_id, name, kind, payload, priority, cron,
                                    run_once_at, next_run_at, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING {SCHEDULE_COLUMNS}"
    );
    let row: ScheduleRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ScheduleId::generate())
        .bind(ctx.org_id)
        .bind(&name)
        .bind(&body.kind)
        .bind(&payload)
        .bind(body.priority.unwrap_or(JobPriority::Medium).rank())
        .bind(cron)
        .bind(once)
        .bind(next)
        .bind(body.enabled.unwrap_or(true))
        .fetch_one(&mut *tx)
        .await
        .map_err(name_taken)?;
    tx.commit().await?;
    Ok(row.into())
}

/// An organization's schedules, newest first.
pub async fn list(pool: &PgPool, ctx: &OrgContext, page: &PageParams) -> Result<Page<Schedule>> {
    ctx.authorize(Permission::JobsRead)?;
    let page = page.parse::<(DateTime<Utc>, Uuid)>()?;
    let (after_at, after_id) = page.after.unzip();
    let sql = format!(
        "SELECT {SCHEDULE_COLUMNS} FROM job_schedules
         WHERE organization_id IS NOT NULL
           AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let rows: Vec<ScheduleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after_at)
        .bind(after_id)
        .bind(page.fetch_limit())
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let rows: Vec<Schedule> = rows.into_iter().map(Into::into).collect();
    Ok(Page::from_rows(rows, page.limit, |s| {
        (s.created_at, s.id.0)
    }))
}

/// One schedule.
pub async fn get(pool: &PgPool, ctx: &OrgContext, id: ScheduleId) -> Result<Schedule> {
    ctx.authorize(Permission::JobsRead)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let schedule = fetch(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(schedule)
}

/// Changes a schedule; a new timing restarts it from its next tick.
pub async fn update(
    pool: &PgPool,
    ctx: &OrgContext,
    id: ScheduleId,
    body: UpdateSchedule,
) -> Result<Schedule> {
    ctx.authorize(Permission::JobsManage)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let current = fetch(&mut tx, id, true).await?;
    let name = match &body.name {
        Some(n) => validate_name(n)?,
        None => current.name.clone(),
    };
    let payload = body.payload.clone().unwrap_or(current.payload.clone());
    super::tenant::validate(&current.kind, &payload)?;
    let retimed = body.cron.is_some() || body.run_at.is_some();
    let (cron, once, mut next) = if retimed {
        let timing = tenant_timing(body.cron.as_deref(), body.run_at)?;
        let next = first_tick(&timing)?;
        match timing {
            Timing::Cron(expr) => (Some(expr), None, Some(next)),
            Timing::Once(at) => (None, Some(at), Some(next)),
        }
    } else {
        (current.cron.clone(), current.run_at, current.next_run_at)
    };
    let enabled = body
        .enabled
        .unwrap_or(current.enabled || (retimed && current.next_run_at.is_none()));
    if enabled && next.is_none() {
        // A one-shot that already fired: resuming it needs a new time; a cron schedule
        // resumes at its next tick.
        match &cron {
            Some(expr) => next = Some(next_tick(expr, Utc::now())?),
            None => {
                return Err(Error::invalid_field(
                    "run_at",
                    "this one-shot schedule has fired; give a new run_at to enable it",
                ));
            }
        }
    }
    if enabled
        && !current.enabled
        && !retimed
        && let Some(expr) = &cron
    {
        // Resuming a paused cron schedule does not fire the ticks it missed.
        next = Some(next_tick(expr, Utc::now())?);
    }
    let sql = format!(
        "UPDATE job_schedules
         SET name = $2, payload = $3, priority = $4, cron = $5, run_once_at = $6,
             next_run_at = $7, enabled = $8
         WHERE id = $1
         RETURNING {SCHEDULE_COLUMNS}"
    );
    let row: ScheduleRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&name)
        .bind(&payload)
        .bind(body.priority.unwrap_or(current.priority).rank())
        .bind(cron)
        .bind(once)
        .bind(next)
        .bind(enabled)
        .fetch_one(&mut *tx)
        .await
        .map_err(name_taken)?;
    tx.commit().await?;
    Ok(row.into())
}

/// Deletes a schedule (jobs it already enqueued stay).
pub async fn delete(pool: &PgPool, ctx: &OrgContext, id: ScheduleId) -> Result<()> {
    ctx.authorize(Permission::JobsManage)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let done =
        sqlx::query("DELETE FROM job_schedules WHERE id = $1 AND organization_id IS NOT NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound {
            resource: "schedule",
        });
    }
    tx.commit().await?;
    Ok(())
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
        // Six fields: the first is seconds.
        assert_eq!(
            next_tick("*/15 * * * * *", at).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 7, 45).unwrap()
        );
        for bad in ["", "every hour", "61 * * * *", "* * * * * * * *"] {
            let err = next_tick(bad, at).unwrap_err();
            assert_eq!(err.details()[0].field, "cron", "{bad}");
        }
    }
}
