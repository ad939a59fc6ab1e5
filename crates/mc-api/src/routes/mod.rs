//! The `/api/v1` routes, one module per capability.

pub mod agent;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod boards;
pub mod client;
pub mod events;
pub mod gateways;
pub mod h5;
pub mod jobs;
pub mod members;
pub mod organizations;
pub mod schedules;
pub mod suggestions;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every `/api/v1` route with its OpenAPI description (paths relative to `/api/v1`).
pub fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(organizations::router())
        .merge(members::router())
        .merge(api_keys::router())
        .merge(h5::router())
        .merge(audit::router())
        .merge(boards::router())
        .merge(events::router())
        .merge(agent::router())
        .merge(jobs::router())
        .merge(schedules::router())
        .merge(gateways::router())
        .merge(agents::router())
        .merge(suggestions::router())
        .merge(client::router())
}
