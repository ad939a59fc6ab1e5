//! `/schedules`: an organization's cron and one-shot schedules (seed 004 §4).

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::ids::ScheduleId;
use mc_domain::jobs::schedules::{self, CreateSchedule, Schedule, UpdateSchedule};
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
}

/// Schedules, newest first.
#[utoipa::path(get, path = "/schedules", tag = "jobs", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Schedule>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Schedule>>, ApiError> {
    Ok(Json(schedules::list(&s.infra.pool, &ctx, &page).await?))
}

/// Creates a schedule: `cron` (UTC, at most once a minute) or a one-shot `run_at`.
#[utoipa::path(post, path = "/schedules", tag = "jobs", request_body = CreateSchedule, security(("bearer" = [])),
    responses((status = 201, body = Schedule), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(schedules::create(&s.infra.pool, &ctx, body).await?),
    ))
}

/// One schedule.
#[utoipa::path(get, path = "/schedules/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "schedule id")),
    responses((status = 200, body = Schedule), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ScheduleId>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(schedules::get(&s.infra.pool, &ctx, id).await?))
}

/// Renames, retimes, pauses or resumes a schedule.
#[utoipa::path(patch, path = "/schedules/{id}", tag = "jobs", request_body = UpdateSchedule, security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "schedule id")),
    responses((status = 200, body = Schedule), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ScheduleId>,
    ApiJson(body): ApiJson<UpdateSchedule>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        schedules::update(&s.infra.pool, &ctx, id, body).await?,
    ))
}

/// Deletes a schedule.
#[utoipa::path(delete, path = "/schedules/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "schedule id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ScheduleId>,
) -> Result<StatusCode, ApiError> {
    schedules::delete(&s.infra.pool, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
