//! `/gateway-registry/*` (gateways register and heartbeat with their tokens) and
//! `/gateways` (the admin view of the fleet), seed 000 M2 and M6.

use crate::AppState;
use crate::auth::{ClientIp, Ctx};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mc_domain::chat::GatewayLive;
use mc_domain::gateways::*;
use mc_domain::ids::{GatewayId, GatewayTokenId};
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(register))
        .routes(routes!(heartbeat))
        .routes(routes!(deregister))
        .routes(routes!(list))
        .routes(routes!(get, remove))
        .routes(routes!(metrics))
        .routes(routes!(connections))
        .routes(routes!(rotate))
}

/// Creates a registration token (admin); the `gw_reg_…` secret is shown once.
#[utoipa::path(post, path = "/gateway-registry/tokens", tag = "gateways", request_body = CreateRegistrationToken, security(("bearer" = [])),
    responses((status = 201, body = CreatedRegistrationToken), (status = "4XX", body = ErrorBody)))]
async fn create_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateRegistrationToken>,
) -> Result<(StatusCode, Json<CreatedRegistrationToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.gateways.create_token(&ctx, body).await?),
    ))
}

/// Registration tokens, newest first (admin; never the secrets).
#[utoipa::path(get, path = "/gateway-registry/tokens", tag = "gateways", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<RegistrationToken>), (status = "4XX", body = ErrorBody)))]
async fn list_tokens(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<RegistrationToken>>, ApiError> {
    Ok(Json(s.gateways.list_tokens(&ctx, &page).await?))
}

/// Revokes a registration token at once (admin).
#[utoipa::path(delete, path = "/gateway-registry/tokens/{id}", tag = "gateways", security(("bearer" = [])),
    params(("id" = GatewayTokenId, Path, description = "token id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayTokenId>,
) -> Result<StatusCode, ApiError> {
    s.gateways.revoke_token(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A gateway registers itself with its organization's registration token.
#[utoipa::path(post, path = "/gateway-registry/register", tag = "gateways", request_body = RegisterGateway,
    responses((status = 200, body = Registered), (status = "4XX", body = ErrorBody)))]
async fn register(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RegisterGateway>,
) -> Result<Json<Registered>, ApiError> {
    Ok(Json(
        s.gateways.register(body, Some(&ip.to_string())).await?,
    ))
}

/// A gateway reports it is alive, with metrics (at most once a second).
#[utoipa::path(post, path = "/gateway-registry/heartbeat", tag = "gateways", request_body = Heartbeat,
    responses((status = 200, body = HeartbeatAck), (status = "4XX", body = ErrorBody)))]
async fn heartbeat(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Heartbeat>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    Ok(Json(
        s.gateways.heartbeat(body, Some(&ip.to_string())).await?,
    ))
}

/// A gateway leaves the registry.
#[utoipa::path(delete, path = "/gateway-registry/deregister", tag = "gateways", request_body = Deregister,
    responses((status = 200, body = OkResponse), (status = "4XX", body = ErrorBody)))]
async fn deregister(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<Deregister>,
) -> Result<Json<OkResponse>, ApiError> {
    Ok(Json(s.gateways.deregister(body).await?))
}

/// Gateways with status and latest metrics (`connection_info.metrics`).
#[utoipa::path(get, path = "/gateways", tag = "gateways", params(GatewayFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Gateway>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<GatewayFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Gateway>>, ApiError> {
    Ok(Json(s.gateways.list(&ctx, &filter, &page).await?))
}

/// One gateway.
#[utoipa::path(get, path = "/gateways/{id}", tag = "gateways", security(("bearer" = [])),
    params(("id" = GatewayId, Path, description = "gateway id")),
    responses((status = 200, body = Gateway), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
) -> Result<Json<Gateway>, ApiError> {
    Ok(Json(s.gateways.get(&ctx, id).await?))
}

/// Removes a gateway (admin); its agents stay, unbound and offline.
#[utoipa::path(delete, path = "/gateways/{id}", tag = "gateways", security(("bearer" = [])),
    params(("id" = GatewayId, Path, description = "gateway id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
) -> Result<StatusCode, ApiError> {
    s.gateways.remove(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Window of the metrics history.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Only samples at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (1-1000, default 100), newest first.
    pub limit: Option<u32>,
}

/// Metrics history from heartbeats, newest first.
#[utoipa::path(get, path = "/gateways/{id}/metrics", tag = "gateways", params(("id" = GatewayId, Path, description = "gateway id"), MetricsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<MetricsSample>), (status = "4XX", body = ErrorBody)))]
async fn metrics(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<Vec<MetricsSample>>, ApiError> {
    Ok(Json(s.gateways.metrics(&ctx, id, q.since, q.limit).await?))
}

/// Live view: relay sockets (open ones, then recently closed ones) and the active H5 chat
/// sessions on the gateway with their users' open sockets.
#[utoipa::path(get, path = "/gateways/{id}/connections", tag = "gateways", security(("bearer" = [])),
    params(("id" = GatewayId, Path, description = "gateway id")),
    responses((status = 200, body = GatewayLive), (status = "4XX", body = ErrorBody)))]
async fn connections(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
) -> Result<Json<GatewayLive>, ApiError> {
    Ok(Json(s.chat.gateway_live(&s.gateways, &ctx, id).await?))
}

/// Issues a new relay token (admin); the old one works for `grace_seconds` more.
#[utoipa::path(post, path = "/gateways/{id}/rotate-relay-token", tag = "gateways", request_body = RotateRelayToken, security(("bearer" = [])),
    params(("id" = GatewayId, Path, description = "gateway id")),
    responses((status = 200, body = RotatedRelayToken), (status = "4XX", body = ErrorBody)))]
async fn rotate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<GatewayId>,
    ApiJson(body): ApiJson<RotateRelayToken>,
) -> Result<Json<RotatedRelayToken>, ApiError> {
    Ok(Json(s.gateways.rotate_relay_token(&ctx, id, body).await?))
}
