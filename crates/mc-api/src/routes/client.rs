//! `/client-config`: what the browser apps need to know before anyone signs in.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(client_config))
}

/// Settings the console and the H5 app read at start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientConfig {
    /// Base `ws://`/`wss://` URL of the relay (board sync, H5 chat); empty means the
    /// console's own origin.
    pub relay_url: String,
}

/// Where browsers reach the relay's WebSockets. Public: the login page needs it too.
#[utoipa::path(get, path = "/client-config", tag = "web",
    responses((status = 200, body = ClientConfig)))]
async fn client_config(State(s): State<AppState>) -> Json<ClientConfig> {
    Json(ClientConfig {
        relay_url: s.web.relay_browser_url,
    })
}
