//! `/suggestions` (list, get, accept, dismiss, SSE stream) and `/proactive-rules`.

use crate::AppState;
use crate::auth::{Ctx, Presented};
use crate::routes::events::{StreamParams, open_feed, sse_response};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use mc_domain::events::EventFilter;
use mc_domain::identity::Permission;
use mc_domain::ids::{BoardId, RuleId, SuggestionId};
use mc_domain::pagination::{Page, PageParams};
use mc_domain::proactivity::*;
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream))
        .routes(routes!(get))
        .routes(routes!(accept))
        .routes(routes!(dismiss))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(toggle_rule))
}

/// Suggestions, newest first, filtered; `total` counts every match.
#[utoipa::path(get, path = "/suggestions", tag = "suggestions", params(SuggestionFilter, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Suggestion>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<SuggestionFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Suggestion>>, ApiError> {
    Ok(Json(
        s.proactivity.list_suggestions(&ctx, &filter, &page).await?,
    ))
}

/// Which suggestions the stream carries.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestionStreamFilter {
    /// Only suggestions of this board.
    pub board_id: Option<BoardId>,
}

/// New and changed suggestions as Server-Sent Events: `event: suggestion.new` or
/// `suggestion.updated`, `data: {"type", "suggestion"}`, `id:` the event-log sequence
/// number; `Last-Event-ID` replays what was missed.
#[utoipa::path(get, path = "/suggestions/stream", tag = "suggestions",
    params(SuggestionStreamFilter, StreamParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "suggestion stream"),
              (status = "4XX", body = ErrorBody)))]
async fn stream(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    presented: Presented,
    headers: HeaderMap,
    ApiQuery(only): ApiQuery<SuggestionStreamFilter>,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    ctx.authorize(Permission::SuggestionsRead)?;
    let filter = EventFilter {
        board_id: only.board_id,
        event_type: Some("suggestion.created,suggestion.updated".into()),
        ..Default::default()
    };
    let feed = open_feed(&s, &ctx, &headers, &params, filter).await?;
    Ok(sse_response(
        s,
        ctx,
        presented,
        feed,
        "suggestion",
        |event| {
            let kind = if event.event_type == "suggestion.created" {
                "suggestion.new"
            } else {
                "suggestion.updated"
            };
            SseEvent::default()
                .id(event.seq.to_string())
                .event(kind)
                .json_data(json!({ "type": kind, "suggestion": event.payload["suggestion"] }))
                .ok()
        },
    ))
}

/// One suggestion.
#[utoipa::path(get, path = "/suggestions/{id}", tag = "suggestions", security(("bearer" = [])),
    params(("id" = SuggestionId, Path, description = "suggestion id")),
    responses((status = 200, body = Suggestion), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<SuggestionId>,
) -> Result<Json<Suggestion>, ApiError> {
    Ok(Json(s.proactivity.get_suggestion(&ctx, id).await?))
}

/// Accepts a pending suggestion and runs its action in the same transaction (operator);
/// an already resolved or expired one is a 409.
#[utoipa::path(post, path = "/suggestions/{id}/accept", tag = "suggestions", security(("bearer" = [])),
    params(("id" = SuggestionId, Path, description = "suggestion id")),
    responses((status = 200, body = SuggestionOutcome), (status = "4XX", body = ErrorBody)))]
async fn accept(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<SuggestionId>,
) -> Result<Json<SuggestionOutcome>, ApiError> {
    Ok(Json(s.proactivity.accept(&ctx, id).await?))
}

/// Dismisses a pending suggestion, optionally saying why (operator).
#[utoipa::path(post, path = "/suggestions/{id}/dismiss", tag = "suggestions", security(("bearer" = [])),
    params(("id" = SuggestionId, Path, description = "suggestion id")), request_body = DismissSuggestion,
    responses((status = 200, body = SuggestionOutcome), (status = "4XX", body = ErrorBody)))]
async fn dismiss(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<SuggestionId>,
    body: axum::body::Bytes,
) -> Result<Json<SuggestionOutcome>, ApiError> {
    // The body is optional: no body dismisses without a reason.
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        DismissSuggestion::default()
    } else {
        mc_web::extract::parse_json(&body)?
    };
    Ok(Json(s.proactivity.dismiss(&ctx, id, input).await?))
}

/// Proactive rules (the six builtin ones and custom ones), oldest first.
#[utoipa::path(get, path = "/proactive-rules", tag = "proactive-rules", params(RuleFilter, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Rule>), (status = "4XX", body = ErrorBody)))]
async fn list_rules(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<RuleFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Rule>>, ApiError> {
    Ok(Json(s.proactivity.list_rules(&ctx, &filter, &page).await?))
}

/// Creates a rule (admin). Conditions and action config are checked; a problem names
/// its path (`conditions.all[1].op`).
#[utoipa::path(post, path = "/proactive-rules", tag = "proactive-rules", request_body = CreateRule,
    security(("bearer" = [])),
    responses((status = 201, body = Rule), (status = "4XX", body = ErrorBody)))]
async fn create_rule(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateRule>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.proactivity.create_rule(&ctx, body).await?),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/proactive-rules/{id}", tag = "proactive-rules", security(("bearer" = [])),
    params(("id" = RuleId, Path, description = "rule id")),
    responses((status = 200, body = Rule), (status = "4XX", body = ErrorBody)))]
async fn get_rule(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<RuleId>,
) -> Result<Json<Rule>, ApiError> {
    Ok(Json(s.proactivity.get_rule(&ctx, id).await?))
}

/// Changes a rule (admin); builtin rules take only `is_enabled` and `cooldown_seconds`.
#[utoipa::path(patch, path = "/proactive-rules/{id}", tag = "proactive-rules", request_body = UpdateRule,
    params(("id" = RuleId, Path, description = "rule id")), security(("bearer" = [])),
    responses((status = 200, body = Rule), (status = "4XX", body = ErrorBody)))]
async fn update_rule(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<RuleId>,
    ApiJson(body): ApiJson<UpdateRule>,
) -> Result<Json<Rule>, ApiError> {
    Ok(Json(s.proactivity.update_rule(&ctx, id, body).await?))
}

/// Deletes a custom rule (admin); builtin rules are a 409.
#[utoipa::path(delete, path = "/proactive-rules/{id}", tag = "proactive-rules", security(("bearer" = [])),
    params(("id" = RuleId, Path, description = "rule id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_rule(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<RuleId>,
) -> Result<StatusCode, ApiError> {
    s.proactivity.delete_rule(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Switches a rule on or off (admin).
#[utoipa::path(post, path = "/proactive-rules/{id}/toggle", tag = "proactive-rules", security(("bearer" = [])),
    params(("id" = RuleId, Path, description = "rule id")),
    responses((status = 200, body = ToggleResult), (status = "4XX", body = ErrorBody)))]
async fn toggle_rule(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<RuleId>,
) -> Result<Json<ToggleResult>, ApiError> {
    Ok(Json(s.proactivity.toggle_rule(&ctx, id).await?))
}
