//! `/queue/depth`, `/jobs`, `/jobs/{id}/retry|cancel`, `/jobs/dead-letter[/replay|/export]`
//! (operators and admins; an organization's own jobs).

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use mc_domain::ids::JobId;
use mc_domain::jobs::JobRecord;
use mc_domain::jobs::JobState;
use mc_domain::jobs::admin::{self, DepthRow, ReplayRequest, Replayed};
use mc_domain::jobs::repo::JobFilter;
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(depth))
        .routes(routes!(list))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
        .routes(routes!(export))
        .routes(routes!(get))
        .routes(routes!(retry))
        .routes(routes!(cancel))
}

/// Queue depth by priority and state.
#[utoipa::path(get, path = "/queue/depth", tag = "jobs", security(("bearer" = [])),
    responses((status = 200, body = Vec<DepthRow>), (status = "4XX", body = ErrorBody)))]
async fn depth(State(s): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Vec<DepthRow>>, ApiError> {
    Ok(Json(admin::depth(&s.infra.pool, &ctx).await?))
}

/// Jobs, newest first, filtered by state, kind and priority.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<JobRecord>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<JobFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<JobRecord>>, ApiError> {
    Ok(Json(
        admin::list(&s.infra.pool, &ctx, &filter, &page).await?,
    ))
}

/// Filters of the dead-letter list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadFilter {
    /// Only dead jobs of this kind.
    pub kind: Option<String>,
}

fn dead(filter: DeadFilter) -> JobFilter {
    JobFilter {
        state: Some(JobState::Dead),
        kind: filter.kind,
        priority: None,
    }
}

/// Dead letters, newest first, each with its attempt history (`errors`).
#[utoipa::path(get, path = "/jobs/dead-letter", tag = "jobs", params(DeadFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<JobRecord>), (status = "4XX", body = ErrorBody)))]
async fn dead_letters(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<DeadFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<JobRecord>>, ApiError> {
    Ok(Json(
        admin::list(&s.infra.pool, &ctx, &dead(filter), &page).await?,
    ))
}

/// Replays dead letters by id, or all of a kind (or all).
#[utoipa::path(post, path = "/jobs/dead-letter/replay", tag = "jobs", request_body = ReplayRequest, security(("bearer" = [])),
    responses((status = 200, body = Replayed), (status = "4XX", body = ErrorBody)))]
async fn replay(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(admin::replay(&s.infra.pool, &ctx, &body).await?))
}

/// Exports dead letters (up to 10,000, newest first) as NDJSON for analysis.
#[utoipa::path(get, path = "/jobs/dead-letter/export", tag = "jobs", params(DeadFilter), security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-ndjson", description = "one job per line"), (status = "4XX", body = ErrorBody)))]
async fn export(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<DeadFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let filter = dead(filter);
    let mut out = String::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = PageParams {
            limit: Some(100),
            cursor: cursor.take(),
        };
        let page = admin::list(&s.infra.pool, &ctx, &filter, &page).await?;
        for job in &page.items {
            out.push_str(&serde_json::to_string(job).unwrap_or_default());
            out.push('\n');
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"dead-letters.ndjson\"",
            ),
        ],
        out,
    ))
}

/// One job with its attempt history.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = JobId, Path, description = "job id")),
    responses((status = 200, body = JobRecord), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(admin::get(&s.infra.pool, &ctx, id).await?))
}

/// Retries a dead or cancelled job with fresh attempts.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", security(("bearer" = [])),
    params(("id" = JobId, Path, description = "job id")),
    responses((status = 200, body = JobRecord), (status = "4XX", body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(admin::retry(&s.infra.pool, &ctx, id).await?))
}

/// Cancels a pending or running job.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("id" = JobId, Path, description = "job id")),
    responses((status = 200, body = JobRecord), (status = "4XX", body = ErrorBody)))]
async fn cancel(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(admin::cancel(&s.infra.pool, &ctx, id).await?))
}
