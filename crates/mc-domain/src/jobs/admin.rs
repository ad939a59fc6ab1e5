//! The operator's view of the queue (`/api/v1/queue`, `/api/v1/jobs`): an organization's
//! jobs only (row-level security), for roles holding the jobs permissions.

use super::model::{Job, JobPriority, JobState};
use super::repo::{self, JobFilter};
use crate::db::begin_org;
use crate::error::{Error, Result};
use crate::identity::{OrgContext, Permission};
use crate::ids::JobId;
use crate::pagination::{Page, PageParams};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Jobs of one tier in one state.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepthRow {
    /// Tier.
    pub priority: JobPriority,
    /// State.
    pub state: JobState,
    /// How many.
    pub count: i64,
}

/// `POST /jobs/dead-letter/replay`: by ids, or every dead job (optionally of one kind).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Jobs to replay (at most 1000); empty or absent: all matching `kind`.
    #[serde(default)]
    pub ids: Vec<JobId>,
    /// Only dead jobs of this kind.
    pub kind: Option<String>,
}

/// How many jobs were replayed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Jobs put back in the queue.
    pub replayed: u64,
}

/// Queue depth by tier and state.
pub async fn depth(pool: &PgPool, ctx: &OrgContext) -> Result<Vec<DepthRow>> {
    ctx.authorize(Permission::JobsRead)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let rows = repo::depth(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(priority, state, count)| DepthRow {
            priority,
            state,
            count,
        })
        .collect())
}

/// Jobs, newest first.
pub async fn list(
    pool: &PgPool,
    ctx: &OrgContext,
    filter: &JobFilter,
    page: &PageParams,
) -> Result<Page<Job>> {
    ctx.authorize(Permission::JobsRead)?;
    let page = page.parse::<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>()?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let rows = repo::list(&mut *tx, filter, page.after, page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, page.limit, |j| {
        (j.enqueued_at, j.id.0)
    }))
}

/// One job with its attempt history.
pub async fn get(pool: &PgPool, ctx: &OrgContext, id: JobId) -> Result<Job> {
    ctx.authorize(Permission::JobsRead)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    let job = repo::get(&mut *tx, id).await?;
    tx.commit().await?;
    job.ok_or(Error::NotFound { resource: "job" })
}

/// Retries a dead or cancelled job (409 in any other state).
pub async fn retry(pool: &PgPool, ctx: &OrgContext, id: JobId) -> Result<Job> {
    ctx.authorize(Permission::JobsManage)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    super::events::set_actor(&mut tx, &ctx.actor).await?;
    let existing = repo::get(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound { resource: "job" })?;
    let job = repo::retry(&mut *tx, id).await?.ok_or_else(|| {
        Error::Conflict(format!("a {} job cannot be retried", existing.state).into())
    })?;
    tx.commit().await?;
    Ok(job)
}

/// Cancels a pending or running job (409 once it finished).
pub async fn cancel(pool: &PgPool, ctx: &OrgContext, id: JobId) -> Result<Job> {
    ctx.authorize(Permission::JobsManage)?;
    let mut tx = begin_org(pool, ctx.org_id).await?;
    super::events::set_actor(&mut tx, &ctx.actor).await?;
    let existing = repo::get(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound { resource: "job" })?;
    if !repo::cancel(&mut *tx, id).await? {
        return Err(Error::Conflict(
            format!("a {} job cannot be cancelled", existing.state).into(),
        ));
    }
    let job = repo::get(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound { resource: "job" })?;
    tx.commit().await?;
    Ok(job)
}

/// Replays dead letters by id or by kind.
pub async fn replay(pool: &PgPool, ctx: &OrgContext, request: &ReplayRequest) -> Result<Replayed> {
    ctx.authorize(Permission::JobsManage)?;
    if request.ids.len() > 1000 {
        return Err(Error::invalid_field("ids", "at most 1000 per request"));
    }
    let mut tx = begin_org(pool, ctx.org_id).await?;
    super::events::set_actor(&mut tx, &ctx.actor).await?;
    let replayed = repo::replay(&mut *tx, &request.ids, request.kind.as_deref()).await?;
    tx.commit().await?;
    Ok(Replayed { replayed })
}
