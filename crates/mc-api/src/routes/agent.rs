//! `/agent/*`: what an agent does with its own API key: read its boards and tasks,
//! create tasks on its boards, move and comment on its tasks, request approvals.

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_domain::boards::*;
use mc_domain::events::Event;
use mc_domain::ids::{BoardId, TaskId};
use mc_domain::pagination::{Page, PageParams};
use mc_domain::proactivity::{AgentEventInput, AgentSuggestionInput, Suggestion};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(boards))
        .routes(routes!(board_tasks, create_task))
        .routes(routes!(my_tasks))
        .routes(routes!(get_task))
        .routes(routes!(transition))
        .routes(routes!(comments, comment))
        .routes(routes!(request_approval))
        .routes(routes!(suggest))
        .routes(routes!(report_event))
}

/// An agent suggests something to the people running the board. A pending suggestion of
/// the same type about the same subject comes back (200) instead of a second one (201).
#[utoipa::path(post, path = "/agent/suggestions", tag = "agent", request_body = AgentSuggestionInput,
    security(("api_key" = [])),
    responses((status = 201, body = Suggestion), (status = 200, body = Suggestion), (status = "4XX", body = ErrorBody)))]
async fn suggest(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<AgentSuggestionInput>,
) -> Result<(StatusCode, Json<Suggestion>), ApiError> {
    let (suggestion, created) = s.proactivity.agent_suggestion(&ctx, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(suggestion)))
}

/// An agent reports an event (`agent.heartbeat`, `agent.task_started`, ...); rules may
/// fire on it. Unknown types are a 400 that lists the known ones.
#[utoipa::path(post, path = "/agent/events", tag = "agent", request_body = AgentEventInput,
    security(("api_key" = [])),
    responses((status = 201, body = Event), (status = "4XX", body = ErrorBody)))]
async fn report_event(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<AgentEventInput>,
) -> Result<(StatusCode, Json<Event>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.proactivity.agent_event(&ctx, body).await?),
    ))
}

/// Boards the agent works on.
#[utoipa::path(get, path = "/agent/boards", tag = "agent", security(("api_key" = [])),
    responses((status = 200, body = Vec<Board>), (status = "4XX", body = ErrorBody)))]
async fn boards(State(s): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Vec<Board>>, ApiError> {
    Ok(Json(s.boards.agent_boards(&ctx).await?))
}

/// Tasks on one of the agent's boards.
#[utoipa::path(get, path = "/agent/boards/{id}/tasks", tag = "agent", params(("id" = BoardId, Path, description = "board id"), TaskFilter, PageParams),
    security(("api_key" = [])),
    responses((status = 200, body = Page<Task>), (status = "4XX", body = ErrorBody)))]
async fn board_tasks(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
    ApiQuery(filter): ApiQuery<TaskFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Task>>, ApiError> {
    Ok(Json(
        s.boards.agent_tasks(&ctx, Some(id), &filter, &page).await?,
    ))
}

/// Creates a task on one of the agent's boards.
#[utoipa::path(post, path = "/agent/boards/{id}/tasks", tag = "agent", request_body = CreateTask, security(("api_key" = [])),
    params(("id" = BoardId, Path, description = "board id")),
    responses((status = 201, body = Task), (status = "4XX", body = ErrorBody)))]
async fn create_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.boards
                .create_task(&ctx, id, body, Access::AgentScope)
                .await?,
        ),
    ))
}

/// Tasks assigned to the agent.
#[utoipa::path(get, path = "/agent/tasks", tag = "agent", params(TaskFilter, PageParams), security(("api_key" = [])),
    responses((status = 200, body = Page<Task>), (status = "4XX", body = ErrorBody)))]
async fn my_tasks(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<TaskFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Task>>, ApiError> {
    Ok(Json(
        s.boards.agent_tasks(&ctx, None, &filter, &page).await?,
    ))
}

/// One of the agent's tasks.
#[utoipa::path(get, path = "/agent/tasks/{id}", tag = "agent", security(("api_key" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn get_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(s.boards.get_task(&ctx, id, Access::AgentScope).await?))
}

/// Moves one of the agent's tasks (same rules as for people).
#[utoipa::path(post, path = "/agent/tasks/{id}/transition", tag = "agent", request_body = TransitionTask, security(("api_key" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn transition(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<TransitionTask>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(
        s.boards
            .transition_task(&ctx, id, body, Access::AgentScope)
            .await?,
    ))
}

/// Comments on one of the agent's tasks.
#[utoipa::path(get, path = "/agent/tasks/{id}/comments", tag = "agent", params(("id" = TaskId, Path, description = "task id"), PageParams),
    security(("api_key" = [])),
    responses((status = 200, body = Page<Comment>), (status = "4XX", body = ErrorBody)))]
async fn comments(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Comment>>, ApiError> {
    Ok(Json(
        s.boards
            .list_comments(&ctx, id, &page, Access::AgentScope)
            .await?,
    ))
}

/// Comments as the agent.
#[utoipa::path(post, path = "/agent/tasks/{id}/comments", tag = "agent", request_body = CreateComment, security(("api_key" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 201, body = Comment), (status = "4XX", body = ErrorBody)))]
async fn comment(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<CreateComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.boards
                .add_comment(&ctx, id, body, Access::AgentScope)
                .await?,
        ),
    ))
}

/// Requests an approval on one of the agent's boards.
#[utoipa::path(post, path = "/agent/approvals", tag = "agent", request_body = CreateApproval, security(("api_key" = [])),
    responses((status = 201, body = Approval), (status = "4XX", body = ErrorBody)))]
async fn request_approval(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateApproval>,
) -> Result<(StatusCode, Json<Approval>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.boards
                .request_approval(&ctx, body, Access::AgentScope)
                .await?,
        ),
    ))
}
