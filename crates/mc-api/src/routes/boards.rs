//! `/board-groups`, `/boards`, `/boards/{id}/tasks`, `/tasks`, `/tags`, `/approvals`.

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use mc_domain::Error;
use mc_domain::boards::*;
use mc_domain::identity::Permission;
use mc_domain::ids::{ApprovalId, BoardGroupId, BoardId, TagId, TaskId};
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::{ApiJson, ApiPath, ApiQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const ROLE_READ: Access = Access::Role(Permission::TasksRead);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_boards, create_board))
        .routes(routes!(get_board, update_board, delete_board))
        .routes(routes!(board_state))
        .routes(routes!(list_board_tasks, create_task))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(transition_task))
        .routes(routes!(add_dependency))
        .routes(routes!(remove_dependency))
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(update_tag, delete_tag))
        .routes(routes!(list_approvals, request_approval))
        .routes(routes!(get_approval))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

// ------------------------------------------------------------------ groups

/// Board groups.
#[utoipa::path(get, path = "/board-groups", tag = "boards", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<BoardGroup>), (status = "4XX", body = ErrorBody)))]
async fn list_groups(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<BoardGroup>>, ApiError> {
    Ok(Json(s.boards.list_groups(&ctx, &page).await?))
}

/// Creates a board group (admin).
#[utoipa::path(post, path = "/board-groups", tag = "boards", request_body = CreateBoardGroup, security(("bearer" = [])),
    responses((status = 201, body = BoardGroup), (status = "4XX", body = ErrorBody)))]
async fn create_group(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateBoardGroup>,
) -> Result<(StatusCode, Json<BoardGroup>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.boards.create_group(&ctx, body).await?),
    ))
}

/// One board group.
#[utoipa::path(get, path = "/board-groups/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = BoardGroupId, Path, description = "board group id")),
    responses((status = 200, body = BoardGroup), (status = "4XX", body = ErrorBody)))]
async fn get_group(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardGroupId>,
) -> Result<Json<BoardGroup>, ApiError> {
    Ok(Json(s.boards.get_group(&ctx, id).await?))
}

/// Changes a board group (admin).
#[utoipa::path(patch, path = "/board-groups/{id}", tag = "boards", request_body = UpdateBoardGroup, security(("bearer" = [])),
    params(("id" = BoardGroupId, Path, description = "board group id")),
    responses((status = 200, body = BoardGroup), (status = "4XX", body = ErrorBody)))]
async fn update_group(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardGroupId>,
    ApiJson(body): ApiJson<UpdateBoardGroup>,
) -> Result<Json<BoardGroup>, ApiError> {
    Ok(Json(s.boards.update_group(&ctx, id, body).await?))
}

/// Deletes a board group; its boards stay, ungrouped (admin).
#[utoipa::path(delete, path = "/board-groups/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = BoardGroupId, Path, description = "board group id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_group(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardGroupId>,
) -> Result<StatusCode, ApiError> {
    s.boards.delete_group(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ boards

/// Boards of the organization.
#[utoipa::path(get, path = "/boards", tag = "boards", params(BoardFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Board>), (status = "4XX", body = ErrorBody)))]
async fn list_boards(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<BoardFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Board>>, ApiError> {
    Ok(Json(s.boards.list_boards(&ctx, &filter, &page).await?))
}

/// Creates a board (admin).
#[utoipa::path(post, path = "/boards", tag = "boards", request_body = CreateBoard, security(("bearer" = [])),
    responses((status = 201, body = Board), (status = "4XX", body = ErrorBody)))]
async fn create_board(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateBoard>,
) -> Result<(StatusCode, Json<Board>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.boards.create_board(&ctx, body).await?),
    ))
}

/// One board.
#[utoipa::path(get, path = "/boards/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = BoardId, Path, description = "board id")),
    responses((status = 200, body = Board), (status = "4XX", body = ErrorBody)))]
async fn get_board(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
) -> Result<Json<Board>, ApiError> {
    Ok(Json(s.boards.get_board(&ctx, id).await?))
}

/// Changes a board (admin).
#[utoipa::path(patch, path = "/boards/{id}", tag = "boards", request_body = UpdateBoard, security(("bearer" = [])),
    params(("id" = BoardId, Path, description = "board id")),
    responses((status = 200, body = Board), (status = "4XX", body = ErrorBody)))]
async fn update_board(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
    ApiJson(body): ApiJson<UpdateBoard>,
) -> Result<Json<Board>, ApiError> {
    Ok(Json(s.boards.update_board(&ctx, id, body).await?))
}

/// Deletes a board and its tasks (admin).
#[utoipa::path(delete, path = "/boards/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = BoardId, Path, description = "board id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_board(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
) -> Result<StatusCode, ApiError> {
    s.boards.delete_board(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The board with every task and the event sequence the snapshot includes.
#[utoipa::path(get, path = "/boards/{id}/state", tag = "boards", security(("bearer" = [])),
    params(("id" = BoardId, Path, description = "board id")),
    responses((status = 200, body = BoardState), (status = "4XX", body = ErrorBody)))]
async fn board_state(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
) -> Result<Json<BoardState>, ApiError> {
    Ok(Json(s.boards.board_state(&ctx, id).await?))
}

// ------------------------------------------------------------------- tasks

/// Tasks of a board, filtered, newest first.
#[utoipa::path(get, path = "/boards/{id}/tasks", tag = "tasks", params(("id" = BoardId, Path, description = "board id"), TaskFilter, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Task>), (status = "4XX", body = ErrorBody)))]
async fn list_board_tasks(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<BoardId>,
    ApiQuery(filter): ApiQuery<TaskFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Task>>, ApiError> {
    Ok(Json(
        s.boards.list_tasks(&ctx, Some(id), &filter, &page).await?,
    ))
}

/// Creates a task on a board (developer and above).
#[utoipa::path(post, path = "/boards/{id}/tasks", tag = "tasks", request_body = CreateTask, security(("bearer" = [])),
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
                .create_task(&ctx, id, body, Access::Role(Permission::TasksCreate))
                .await?,
        ),
    ))
}

/// Tasks across every board, filtered, newest first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(TaskFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Task>), (status = "4XX", body = ErrorBody)))]
async fn list_tasks(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<TaskFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Task>>, ApiError> {
    Ok(Json(s.boards.list_tasks(&ctx, None, &filter, &page).await?))
}

/// One task; the `ETag` is its version, for `If-Match` on PATCH.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn get_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
) -> Result<impl IntoResponse, ApiError> {
    let task = s.boards.get_task(&ctx, id, ROLE_READ).await?;
    Ok((
        [(header::ETAG, format!("\"{}\"", task.version))],
        Json(task),
    ))
}

fn if_match(headers: &HeaderMap) -> Result<Option<i32>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|s| s.parse::<i32>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError(Error::invalid_field(
                    "If-Match",
                    "must be the task's ETag (its version)",
                ))
            }),
    }
}

/// Changes a task (operator and above). Send `If-Match` to fail with 412 instead of
/// overwriting a concurrent change.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", request_body = UpdateTask, security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id"), ("If-Match" = Option<String>, Header, description = "expected version")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn update_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<impl IntoResponse, ApiError> {
    let expected = if_match(&headers)?;
    let task = s.boards.update_task(&ctx, id, body, expected).await?;
    Ok((
        [(header::ETAG, format!("\"{}\"", task.version))],
        Json(task),
    ))
}

/// Deletes a task (admin).
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
) -> Result<StatusCode, ApiError> {
    s.boards.delete_task(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a task to a status (operator and above). `done` requires every blocker done
/// (409), and evidence or an approval where the board says so.
#[utoipa::path(post, path = "/tasks/{id}/transition", tag = "tasks", request_body = TransitionTask, security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn transition_task(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<TransitionTask>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(
        s.boards
            .transition_task(&ctx, id, body, Access::Role(Permission::TasksExecute))
            .await?,
    ))
}

/// Adds a dependency: the task cannot be done before `depends_on_task_id`. A cycle is a 409.
#[utoipa::path(post, path = "/tasks/{id}/dependencies", tag = "tasks", request_body = AddDependency, security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn add_dependency(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<AddDependency>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(s.boards.add_dependency(&ctx, id, body).await?))
}

/// Removes a dependency.
#[utoipa::path(delete, path = "/tasks/{id}/dependencies/{depends_on}", tag = "tasks", security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id"), ("depends_on" = TaskId, Path, description = "blocker id")),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn remove_dependency(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath((id, dep)): ApiPath<(TaskId, TaskId)>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(s.boards.remove_dependency(&ctx, id, dep).await?))
}

/// Comments on a task, oldest first.
#[utoipa::path(get, path = "/tasks/{id}/comments", tag = "tasks", params(("id" = TaskId, Path, description = "task id"), PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Comment>), (status = "4XX", body = ErrorBody)))]
async fn list_comments(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Comment>>, ApiError> {
    Ok(Json(
        s.boards.list_comments(&ctx, id, &page, ROLE_READ).await?,
    ))
}

/// Comments on a task (developer and above).
#[utoipa::path(post, path = "/tasks/{id}/comments", tag = "tasks", request_body = CreateComment, security(("bearer" = [])),
    params(("id" = TaskId, Path, description = "task id")),
    responses((status = 201, body = Comment), (status = "4XX", body = ErrorBody)))]
async fn add_comment(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<CreateComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.boards
                .add_comment(&ctx, id, body, Access::Role(Permission::TasksCreate))
                .await?,
        ),
    ))
}

// -------------------------------------------------------------------- tags

/// Tags of the organization, by name.
#[utoipa::path(get, path = "/tags", tag = "tags", security(("bearer" = [])),
    responses((status = 200, body = Page<Tag>), (status = "4XX", body = ErrorBody)))]
async fn list_tags(State(s): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Page<Tag>>, ApiError> {
    Ok(Json(s.boards.list_tags(&ctx).await?))
}

/// Creates a tag (operator and above).
#[utoipa::path(post, path = "/tags", tag = "tags", request_body = CreateTag, security(("bearer" = [])),
    responses((status = 201, body = Tag), (status = "4XX", body = ErrorBody)))]
async fn create_tag(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateTag>,
) -> Result<(StatusCode, Json<Tag>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.boards.create_tag(&ctx, body).await?),
    ))
}

/// Renames or recolors a tag (operator and above).
#[utoipa::path(patch, path = "/tags/{id}", tag = "tags", request_body = UpdateTag, security(("bearer" = [])),
    params(("id" = TagId, Path, description = "tag id")),
    responses((status = 200, body = Tag), (status = "4XX", body = ErrorBody)))]
async fn update_tag(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TagId>,
    ApiJson(body): ApiJson<UpdateTag>,
) -> Result<Json<Tag>, ApiError> {
    Ok(Json(s.boards.update_tag(&ctx, id, body).await?))
}

/// Deletes a tag (operator and above).
#[utoipa::path(delete, path = "/tags/{id}", tag = "tags", security(("bearer" = [])),
    params(("id" = TagId, Path, description = "tag id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_tag(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<TagId>,
) -> Result<StatusCode, ApiError> {
    s.boards.delete_tag(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --------------------------------------------------------------- approvals

/// Approval requests, newest first.
#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ApprovalFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Approval>), (status = "4XX", body = ErrorBody)))]
async fn list_approvals(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<ApprovalFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Approval>>, ApiError> {
    Ok(Json(s.boards.list_approvals(&ctx, &filter, &page).await?))
}

/// Requests an approval (developer and above).
#[utoipa::path(post, path = "/approvals", tag = "approvals", request_body = CreateApproval, security(("bearer" = [])),
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
                .request_approval(&ctx, body, Access::Role(Permission::ApprovalsRequest))
                .await?,
        ),
    ))
}

/// One approval.
#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals", security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id")),
    responses((status = 200, body = Approval), (status = "4XX", body = ErrorBody)))]
async fn get_approval(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(s.boards.get_approval(&ctx, id).await?))
}

/// Approves (operator and above); a resolved approval cannot be resolved again (409).
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals", request_body = ResolveApproval, security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id")),
    responses((status = 200, body = Approval), (status = "4XX", body = ErrorBody)))]
async fn approve(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ApprovalId>,
    ApiJson(body): ApiJson<ResolveApproval>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(
        s.boards
            .resolve_approval(&ctx, id, ApprovalStatus::Approved, body)
            .await?,
    ))
}

/// Rejects with a reason (operator and above).
#[utoipa::path(post, path = "/approvals/{id}/reject", tag = "approvals", request_body = ResolveApproval, security(("bearer" = [])),
    params(("id" = ApprovalId, Path, description = "approval id")),
    responses((status = 200, body = Approval), (status = "4XX", body = ErrorBody)))]
async fn reject(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ApprovalId>,
    ApiJson(body): ApiJson<ResolveApproval>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(
        s.boards
            .resolve_approval(&ctx, id, ApprovalStatus::Rejected, body)
            .await?,
    ))
}
