//! `/audit-log`: security-relevant actions in the organization.

use crate::AppState;
use crate::auth::Ctx;
use axum::Json;
use axum::extract::State;
use mc_domain::identity::audit::{self, AuditFilter, AuditRecord};
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::ApiQuery;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/audit-log", tag = "audit", params(AuditFilter, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<AuditRecord>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<AuditFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<AuditRecord>>, ApiError> {
    Ok(Json(
        audit::list(state.identity.pool(), &ctx, &filter, &page).await?,
    ))
}
