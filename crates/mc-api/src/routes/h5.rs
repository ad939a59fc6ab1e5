//! `/h5/auth/*` for H5 end users and `/h5/users` for admins (seed 000 M3).

use crate::AppState;
use crate::auth::{ClientIp, Ctx, H5Authed};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::chat::{ChatMessage, ChatSession, H5UserLive, MessageQuery};
use mc_domain::identity::h5::{
    H5Assign, H5CreateUser, H5Login, H5Register, H5TokenResponse, H5UpdateMe, H5UserDetail,
    H5UserFilter,
};
use mc_domain::identity::model::{H5User, H5UserStatus};
use mc_domain::ids::{AgentId, ChatSessionId, H5UserId};
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user))
        .routes(routes!(suspend_user))
        .routes(routes!(activate_user))
        .routes(routes!(assign))
        .routes(routes!(unassign))
        .routes(routes!(chat_sessions))
        .routes(routes!(chat_messages))
}

/// The H5 user's chat sessions, most recent activity first (the app's list on open).
#[utoipa::path(get, path = "/h5/chat/sessions", tag = "h5", params(PageParams),
    security(("h5_bearer" = [])),
    responses((status = 200, body = Page<ChatSession>), (status = "4XX", body = ErrorBody)))]
async fn chat_sessions(
    State(state): State<AppState>,
    H5Authed(ctx): H5Authed,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ChatSession>>, ApiError> {
    Ok(Json(state.chat.list_sessions(&ctx, &page).await?))
}

/// Messages of one of the user's sessions: newest first with a cursor, or oldest first
/// after `after_seq` (catching up to what a socket will then stream).
#[utoipa::path(get, path = "/h5/chat/sessions/{id}/messages", tag = "h5",
    params(("id" = ChatSessionId, Path, description = "chat session id"), MessageQuery, PageParams),
    security(("h5_bearer" = [])),
    responses((status = 200, body = Page<ChatMessage>), (status = "4XX", body = ErrorBody)))]
async fn chat_messages(
    State(state): State<AppState>,
    H5Authed(ctx): H5Authed,
    ApiPath(id): ApiPath<ChatSessionId>,
    ApiQuery(query): ApiQuery<MessageQuery>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ChatMessage>>, ApiError> {
    Ok(Json(
        state.chat.list_messages(&ctx, id, &query, &page).await?,
    ))
}

/// Registers an H5 user in an organization named by id or slug.
#[utoipa::path(post, path = "/h5/auth/register", tag = "h5", request_body = H5Register,
    responses((status = 201, body = H5TokenResponse), (status = "4XX", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<H5Register>,
) -> Result<(StatusCode, Json<H5TokenResponse>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.identity.h5_register(ip, body).await?),
    ))
}

/// Logs an H5 user in.
#[utoipa::path(post, path = "/h5/auth/login", tag = "h5", request_body = H5Login,
    responses((status = 200, body = H5TokenResponse), (status = "4XX", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<H5Login>,
) -> Result<Json<H5TokenResponse>, ApiError> {
    Ok(Json(state.identity.h5_login(ip, body).await?))
}

/// Body of `/h5/auth/refresh`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// Rotates an H5 refresh token (reuse revokes the login).
#[utoipa::path(post, path = "/h5/auth/refresh", tag = "h5", request_body = H5RefreshRequest,
    responses((status = 200, body = H5TokenResponse), (status = "4XX", body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<H5RefreshRequest>,
) -> Result<Json<H5TokenResponse>, ApiError> {
    Ok(Json(state.identity.h5_refresh(&body.refresh_token).await?))
}

/// Ends the H5 login: revokes this access token and, when given, the refresh token's
/// login (every device that shares it must sign in again).
#[utoipa::path(post, path = "/h5/auth/logout", tag = "h5", request_body = crate::routes::auth::LogoutRequest,
    security(("h5_bearer" = [])),
    responses((status = 204, description = "logged out"), (status = "4XX", body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    H5Authed(ctx): H5Authed,
    ApiJson(body): ApiJson<crate::routes::auth::LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .h5_logout(&ctx, body.refresh_token.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The H5 user and the agents they may chat with.
#[utoipa::path(get, path = "/h5/auth/me", tag = "h5", security(("h5_bearer" = [])),
    responses((status = 200, body = H5UserDetail), (status = "4XX", body = ErrorBody)))]
async fn me(
    State(state): State<AppState>,
    H5Authed(ctx): H5Authed,
) -> Result<Json<H5UserDetail>, ApiError> {
    Ok(Json(state.identity.h5_me(&ctx).await?))
}

/// Changes the H5 user's display name or avatar.
#[utoipa::path(patch, path = "/h5/auth/me", tag = "h5", request_body = H5UpdateMe,
    security(("h5_bearer" = [])),
    responses((status = 200, body = H5UserDetail), (status = "4XX", body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    H5Authed(ctx): H5Authed,
    ApiJson(body): ApiJson<H5UpdateMe>,
) -> Result<Json<H5UserDetail>, ApiError> {
    Ok(Json(state.identity.h5_update_me(&ctx, body).await?))
}

/// H5 users of the organization, searchable (operator and above).
#[utoipa::path(get, path = "/h5/users", tag = "h5-users", params(H5UserFilter, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<H5User>), (status = "4XX", body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<H5UserFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<H5User>>, ApiError> {
    Ok(Json(
        state.identity.list_h5_users(&ctx, &filter, &page).await?,
    ))
}

/// Creates an H5 user (admin).
#[utoipa::path(post, path = "/h5/users", tag = "h5-users", request_body = H5CreateUser,
    security(("bearer" = [])),
    responses((status = 201, body = H5User), (status = "4XX", body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<H5CreateUser>,
) -> Result<(StatusCode, Json<H5User>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.identity.create_h5_user(&ctx, body).await?),
    ))
}

/// One H5 user with assignments, open sockets per relay instance and chat sessions.
#[utoipa::path(get, path = "/h5/users/{id}", tag = "h5-users", security(("bearer" = [])),
    params(("id" = H5UserId, Path, description = "H5 user id")),
    responses((status = 200, body = H5UserLive), (status = "4XX", body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<H5UserId>,
) -> Result<Json<H5UserLive>, ApiError> {
    Ok(Json(
        state.chat.h5_user_live(&state.identity, &ctx, id).await?,
    ))
}

/// Suspends an H5 user and ends their sessions (admin).
#[utoipa::path(post, path = "/h5/users/{id}/suspend", tag = "h5-users", security(("bearer" = [])),
    params(("id" = H5UserId, Path, description = "H5 user id")),
    responses((status = 200, body = H5User), (status = "4XX", body = ErrorBody)))]
async fn suspend_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<H5UserId>,
) -> Result<Json<H5User>, ApiError> {
    Ok(Json(
        state
            .identity
            .set_h5_user_status(&ctx, id, H5UserStatus::Suspended)
            .await?,
    ))
}

/// Re-activates a suspended H5 user (admin).
#[utoipa::path(post, path = "/h5/users/{id}/activate", tag = "h5-users", security(("bearer" = [])),
    params(("id" = H5UserId, Path, description = "H5 user id")),
    responses((status = 200, body = H5User), (status = "4XX", body = ErrorBody)))]
async fn activate_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<H5UserId>,
) -> Result<Json<H5User>, ApiError> {
    Ok(Json(
        state
            .identity
            .set_h5_user_status(&ctx, id, H5UserStatus::Active)
            .await?,
    ))
}

/// Assigns an H5 user to an agent on a board (admin).
#[utoipa::path(post, path = "/h5/users/{id}/assign", tag = "h5-users", request_body = H5Assign,
    security(("bearer" = [])), params(("id" = H5UserId, Path, description = "H5 user id")),
    responses((status = 200, body = H5UserDetail), (status = "4XX", body = ErrorBody)))]
async fn assign(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<H5UserId>,
    ApiJson(body): ApiJson<H5Assign>,
) -> Result<Json<H5UserDetail>, ApiError> {
    Ok(Json(state.identity.assign_h5_user(&ctx, id, body).await?))
}

/// Removes an H5 user's assignment to an agent (admin).
#[utoipa::path(delete, path = "/h5/users/{id}/assign/{agent_id}", tag = "h5-users",
    security(("bearer" = [])),
    params(("id" = H5UserId, Path, description = "H5 user id"),
           ("agent_id" = AgentId, Path, description = "agent id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn unassign(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath((id, agent_id)): ApiPath<(H5UserId, AgentId)>,
) -> Result<StatusCode, ApiError> {
    state.identity.unassign_h5_user(&ctx, id, agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
