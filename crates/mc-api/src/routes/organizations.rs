//! `/organizations`: the caller's organizations, creation, settings and lifecycle.

use crate::AppState;
use crate::auth::Authed;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::identity::OrgContext;
use mc_domain::identity::model::{MyOrganization, Organization};
use mc_domain::identity::orgs::{CreateOrganization, UpdateOrganization};
use mc_domain::ids::OrgId;
use mc_domain::pagination::Page;
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(restore))
}

/// The organization named in the path, as the caller (404 when not a member).
async fn in_org(
    state: &AppState,
    principal: &mc_domain::identity::Principal,
    id: OrgId,
) -> Result<OrgContext, ApiError> {
    Ok(state.identity.org_context(principal, Some(id)).await?)
}

/// Organizations the caller belongs to, with their role.
#[utoipa::path(get, path = "/organizations", tag = "organizations", security(("bearer" = [])),
    responses((status = 200, body = Page<MyOrganization>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Authed(principal): Authed,
) -> Result<Json<Page<MyOrganization>>, ApiError> {
    let items = state.identity.list_my_organizations(&principal).await?;
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    Ok(Json(Page {
        items,
        next_cursor: None,
        total: Some(total),
    }))
}

/// Creates an organization; the caller becomes its admin.
#[utoipa::path(post, path = "/organizations", tag = "organizations", request_body = CreateOrganization,
    security(("bearer" = [])),
    responses((status = 201, body = MyOrganization), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> Result<(StatusCode, Json<MyOrganization>), ApiError> {
    let org = state.identity.create_organization(&principal, body).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// One organization.
#[utoipa::path(get, path = "/organizations/{id}", tag = "organizations", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 200, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Organization>, ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok(Json(state.identity.get_organization(&ctx).await?))
}

/// Changes the name or settings (admin).
#[utoipa::path(patch, path = "/organizations/{id}", tag = "organizations", request_body = UpdateOrganization,
    security(("bearer" = [])), params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 200, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
    ApiJson(body): ApiJson<UpdateOrganization>,
) -> Result<Json<Organization>, ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok(Json(state.identity.update_organization(&ctx, body).await?))
}

/// Requests deletion: the organization becomes read-only for its grace period, then is
/// purged (admin).
#[utoipa::path(delete, path = "/organizations/{id}", tag = "organizations", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 202, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(state.identity.delete_organization(&ctx).await?),
    ))
}

/// Suspends the organization: read-only until reactivated (admin).
#[utoipa::path(post, path = "/organizations/{id}/suspend", tag = "organizations", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 200, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn suspend(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Organization>, ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok(Json(state.identity.suspend_organization(&ctx).await?))
}

/// Ends a suspension (admin).
#[utoipa::path(post, path = "/organizations/{id}/reactivate", tag = "organizations", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 200, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn reactivate(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Organization>, ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok(Json(state.identity.reactivate_organization(&ctx).await?))
}

/// Cancels a pending deletion during the grace period (admin).
#[utoipa::path(post, path = "/organizations/{id}/restore", tag = "organizations", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "organization id")),
    responses((status = 200, body = Organization), (status = "4XX", body = ErrorBody)))]
async fn restore(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Organization>, ApiError> {
    let ctx = in_org(&state, &principal, id).await?;
    Ok(Json(state.identity.restore_organization(&ctx).await?))
}
