//! `/agents` (the admin's view and management of agents, seed 000 M6) and
//! `/gateways/{id}/sync-agents` (link what a gateway reports in `agents.list`).

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::agents::*;
use mc_domain::ids::{AgentId, GatewayId};
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
        .routes(routes!(sync))
}

/// Agents with their status, newest first.
#[utoipa::path(get, path = "/agents", tag = "agents", params(AgentFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Agent>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<AgentFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Agent>>, ApiError> {
    Ok(Json(s.agents.list(&ctx, &filter, &page).await?))
}

/// Creates an agent (admin). Give it a REST identity with `POST /api-keys {agent_id}`.
#[utoipa::path(post, path = "/agents", tag = "agents", request_body = CreateAgent, security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.agents.create(&ctx, body).await?),
    ))
}

/// One agent.
#[utoipa::path(get, path = "/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = AgentId, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.agents.get(&ctx, id).await?))
}

/// Changes an agent (admin).
#[utoipa::path(patch, path = "/agents/{id}", tag = "agents", request_body = UpdateAgent, security(("bearer" = [])),
    params(("id" = AgentId, Path, description = "agent id")),
    responses((status = 200, body = Agent), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.agents.update(&ctx, id, body).await?))
}

/// Deletes an agent and its API keys (admin).
#[utoipa::path(delete, path = "/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = AgentId, Path, description = "agent id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<StatusCode, ApiError> {
    s.agents.delete(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the gateway for its agents (`agents.list`) and links them (admin): new ones are
/// created, reported ones go online, the gateway's others offline. 503 when the gateway is
/// not connected, 504 when it does not answer in `GATEWAY_CALL_TIMEOUT_SECONDS`.
#[utoipa::path(post, path = "/gateways/{id}/sync-agents", tag = "agents", security(("bearer" = [])),
    params(("id" = GatewayId, Path, description = "gateway id")),
    responses((status = 200, body = LinkSummary), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)))]
async fn sync(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
) -> Result<Json<LinkSummary>, ApiError> {
    Ok(Json(
        s.agents
            .sync_from_gateway(&ctx, &s.gateway_router, id, s.gateway_call_timeout)
            .await?,
    ))
}
