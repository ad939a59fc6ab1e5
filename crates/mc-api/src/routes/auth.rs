//! `/auth`: console login, token refresh, logout, profile, organization switch, invitations.

use crate::AppState;
use crate::auth::{Authed, ClientIp, Presented};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mc_domain::identity::auth::{
    AcceptInviteRequest, LoginRequest, LoginResponse, Me, StreamTicket,
};
use mc_domain::ids::OrgId;
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::ApiJson;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(switch_org))
        .routes(routes!(accept_invite))
        .routes(routes!(stream_ticket))
}

/// Exchanges email and password for tokens. Rate-limited per IP and per account.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(state.identity.login(ip, body).await?))
}

/// Body of `/auth/refresh`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Rotates a refresh token. Reusing a rotated token revokes the whole login (401).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(state.identity.refresh(&body.refresh_token).await?))
}

/// Body of `/auth/logout`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Also revoke this refresh token's login.
    pub refresh_token: Option<String>,
}

/// Revokes the current access token (and the given refresh token's login).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = LogoutRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiJson(body): ApiJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .logout(&principal, body.refresh_token.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current user, their organizations and the current one.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = "4XX", body = ErrorBody)))]
async fn me(
    State(state): State<AppState>,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let requested = headers
        .get(crate::auth::ORG_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<OrgId>().ok());
    Ok(Json(state.identity.me(&principal, requested).await?))
}

/// Body of `/auth/switch-org`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOrgRequest {
    /// Organization to act in.
    pub organization_id: OrgId,
}

/// Issues tokens acting in another organization the user belongs to.
#[utoipa::path(post, path = "/auth/switch-org", tag = "auth", request_body = SwitchOrgRequest,
    security(("bearer" = [])),
    responses((status = 200, body = LoginResponse), (status = "4XX", body = ErrorBody)))]
async fn switch_org(
    State(state): State<AppState>,
    Authed(principal): Authed,
    ApiJson(body): ApiJson<SwitchOrgRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(
        state
            .identity
            .switch_org(&principal, body.organization_id)
            .await?,
    ))
}

/// Sets the password of an invited user and logs them in.
#[utoipa::path(post, path = "/auth/accept-invite", tag = "auth", request_body = AcceptInviteRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = ErrorBody)))]
async fn accept_invite(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AcceptInviteRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(state.identity.accept_invite(body).await?))
}

/// A 60-second ticket to open a stream from a client that cannot send headers
/// (`EventSource`): pass it as `?ticket=`.
#[utoipa::path(post, path = "/auth/stream-ticket", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = StreamTicket), (status = "4XX", body = ErrorBody)))]
async fn stream_ticket(
    State(state): State<AppState>,
    Authed(_): Authed,
    presented: Presented,
) -> Result<Json<StreamTicket>, ApiError> {
    Ok(Json(
        state
            .identity
            .issue_stream_ticket(&presented.credential, presented.org)
            .await?,
    ))
}
