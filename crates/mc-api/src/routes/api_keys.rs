//! `/api-keys`: keys for agents and service accounts.

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::identity::api_keys::{CreateApiKey, RotateApiKey};
use mc_domain::identity::model::{ApiKey, IssuedApiKey};
use mc_domain::ids::ApiKeyId;
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(rotate))
}

/// Keys of the organization (never their secrets).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<ApiKey>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    Ok(Json(state.identity.list_api_keys(&ctx, &page).await?))
}

/// Creates a key; the secret is in this response only (admin).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKey, security(("bearer" = [])),
    responses((status = 201, body = IssuedApiKey), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<IssuedApiKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.identity.create_api_key(&ctx, body).await?),
    ))
}

/// Replaces a key; the old one keeps working for the grace period (admin).
#[utoipa::path(post, path = "/api-keys/{id}/rotate", tag = "api-keys", request_body = RotateApiKey,
    security(("bearer" = [])), params(("id" = ApiKeyId, Path, description = "key id")),
    responses((status = 201, body = IssuedApiKey), (status = "4XX", body = ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ApiKeyId>,
    ApiJson(body): ApiJson<RotateApiKey>,
) -> Result<(StatusCode, Json<IssuedApiKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.identity.rotate_api_key(&ctx, id, body).await?),
    ))
}

/// Revokes a key immediately (admin).
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = ApiKeyId, Path, description = "key id")),
    responses((status = 200, body = ApiKey), (status = "4XX", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(state.identity.revoke_api_key(&ctx, id).await?))
}
