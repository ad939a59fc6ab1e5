//! `/members`: people in the current organization.

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::identity::members::{AddMember, AddedMember, UpdateMember};
use mc_domain::identity::model::Member;
use mc_domain::ids::UserId;
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(get, update, remove))
}

/// Members of the organization.
#[utoipa::path(get, path = "/members", tag = "members", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Member>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Member>>, ApiError> {
    Ok(Json(state.identity.list_members(&ctx, &page).await?))
}

/// Adds a person: an existing account joins; otherwise an invitation is created and its
/// token returned once (admin).
#[utoipa::path(post, path = "/members", tag = "members", request_body = AddMember, security(("bearer" = [])),
    responses((status = 201, body = AddedMember), (status = "4XX", body = ErrorBody)))]
async fn add(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<(StatusCode, Json<AddedMember>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.identity.add_member(&ctx, body).await?),
    ))
}

/// One member.
#[utoipa::path(get, path = "/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "user id")),
    responses((status = 200, body = Member), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(state.identity.get_member(&ctx, user_id).await?))
}

/// Changes a member's role; takes effect on their next request (admin).
#[utoipa::path(patch, path = "/members/{user_id}", tag = "members", request_body = UpdateMember,
    security(("bearer" = [])), params(("user_id" = UserId, Path, description = "user id")),
    responses((status = 200, body = Member), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(
        state.identity.update_member(&ctx, user_id, body).await?,
    ))
}

/// Removes a member; they lose access at once (admin).
#[utoipa::path(delete, path = "/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "user id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    state.identity.remove_member(&ctx, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
