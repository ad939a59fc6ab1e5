//! `mc-api`: the REST API (`/api/v1`), SSE streams, the OpenAPI document and the console.

pub mod auth;
pub mod cli;
pub mod openapi;
pub mod routes;
pub mod web;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use mc_domain::agents::AgentService;
use mc_domain::boards::BoardService;
use mc_domain::chat::{ChatHub, ChatService};
use mc_domain::config::{ApiConfig, ChatConfig, ServiceConfig};
use mc_domain::events::{EventBus, RedisEventBus, SharedFeeds};
use mc_domain::gateways::GatewayService;
use mc_domain::gateways::router::GatewayRouter;
use mc_domain::identity::IdentityService;
use mc_domain::infra::Infra;
use mc_domain::proactivity::ProactivityService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest request body the API accepts.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Shared state of every request handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Connections and probes.
    pub infra: Infra,
    /// Authentication, organizations, members, keys, H5 users.
    pub identity: IdentityService,
    /// Boards, tasks, approvals.
    pub boards: BoardService,
    /// Gateway registry.
    pub gateways: GatewayService,
    /// Agents.
    pub agents: AgentService,
    /// Calls to gateways through whichever relay holds them.
    pub gateway_router: GatewayRouter,
    /// H5 chat history and live views.
    pub chat: ChatService,
    /// Proactive rules, suggestions, agent reports.
    pub proactivity: ProactivityService,
    /// How long such a call waits (`GATEWAY_CALL_TIMEOUT_SECONDS`).
    pub gateway_call_timeout: std::time::Duration,
    /// Fires when the service shuts down (long-lived streams end).
    pub shutdown: CancellationToken,
    /// Heartbeat and re-check period of SSE streams.
    pub stream_check_interval: std::time::Duration,
    /// Browser-facing settings (relay URL for `/client-config`).
    pub web: mc_domain::config::WebConfig,
    /// SSE frames rendered once for every stream of this process.
    pub sse_frames: std::sync::Arc<routes::events::SseFrames>,
    /// One event feed per organization (or board) for every stream of this process.
    pub feeds: SharedFeeds,
}

/// Events a shared feed keeps for a listener that is behind; one further behind replays
/// from the log (slower, never lossy).
const SHARED_FEED_CAPACITY: usize = 1024;

impl AppState {
    /// Builds the state over connected infrastructure.
    pub async fn new(
        infra: Infra,
        config: &ApiConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let identity = IdentityService::new(
            infra.pool.clone(),
            infra.redis.clone(),
            config.auth.clone(),
            config.rate_limits.clone(),
        )
        .context("setting up identity")?;
        let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(infra.redis.clone()));
        let boards = BoardService::new(infra.pool.clone(), bus.clone());
        let gateways =
            GatewayService::new(infra.pool.clone(), bus.clone(), config.gateways.clone());
        let agents = AgentService::new(infra.pool.clone(), bus.clone());
        let feeds = SharedFeeds::new(
            infra.pool.clone(),
            bus.clone(),
            SHARED_FEED_CAPACITY,
            config.stream_check_interval,
            shutdown.clone(),
        );
        let proactivity = ProactivityService::new(infra.pool.clone(), bus, config.proactivity);
        let gateway_router = GatewayRouter::start(
            Some(infra.redis.clone()),
            mc_domain::infra::instance_name("api"),
        )
        .await
        .context("starting gateway routing")?;
        // The API only reads chat (history, presence); the relay sends.
        let chat = ChatService::new(
            infra.pool.clone(),
            gateway_router.clone(),
            ChatHub::new(Some(infra.redis.clone()), gateway_router.instance()),
            ChatConfig::default(),
            config.gateways.call_timeout,
        );
        Ok(Self {
            infra,
            identity,
            boards,
            gateways,
            agents,
            gateway_router,
            chat,
            proactivity,
            gateway_call_timeout: config.gateways.call_timeout,
            shutdown,
            stream_check_interval: config.stream_check_interval,
            web: config.web.clone(),
            sse_frames: std::sync::Arc::default(),
            feeds,
        })
    }
}

pub(crate) async fn not_found() -> impl IntoResponse {
    mc_web::ApiError(mc_domain::Error::NotFound { resource: "route" })
}

/// The full HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, _) = openapi::build();
    let spec: Arc<str> = Arc::from(openapi::spec_json());
    let apps = web::WebApps::new(&state.web);
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_and_limit,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .merge(mc_web::ops::routes(state.infra.probe.clone()))
        .merge(api)
        .fallback(move |request: axum::extract::Request| {
            let apps = apps.clone();
            async move { apps.serve(request).await }
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(mc_web::metrics::track_http))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Runs the API on `listener` until `shutdown` fires.
pub async fn run(
    config: ApiConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(ApiConfig::SERVICE, &config.common)
        .await
        .context("connecting to Postgres and Redis")?;
    let app = router(AppState::new(infra, &config, shutdown.clone()).await?);
    mc_web::serve::serve(listener, app, shutdown, config.common.shutdown_grace)
        .await
        .context("serving HTTP")
}
