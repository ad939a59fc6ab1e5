//! `mc-relay`: WebSocket relay (/ws/h5/chat, /ws/gateway/{id}/relay, /ws/board/{id}/sync).

pub mod board_protocol;
pub mod board_sync;
pub mod gateway_relay;
pub mod h5_chat;
pub mod rooms;
pub mod socket;
pub mod tunnel;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use mc_domain::agents::AgentService;
use mc_domain::boards::BoardService;
use mc_domain::chat::{ChatHub, ChatService};
use mc_domain::config::{RateLimitConfig, RelayConfig, ServiceConfig};
use mc_domain::events::{EventBus, RedisEventBus};
use mc_domain::gateways::GatewayService;
use mc_domain::gateways::router::GatewayRouter;
use mc_domain::identity::IdentityService;
use mc_domain::infra::Infra;
use rooms::BoardRooms;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tunnel::ApiTunnel;

/// Caps the sockets one relay holds (`WS_MAX_CONNECTIONS_PER_INSTANCE`).
#[derive(Clone)]
pub struct ConnectionSlots(Arc<Semaphore>);

impl ConnectionSlots {
    /// A slot, or `None` at the limit. The slot is released when dropped.
    pub fn try_acquire(&self) -> Option<ConnectionSlot> {
        let permit = self.0.clone().try_acquire_owned().ok()?;
        metrics::gauge!("mc_ws_connections").increment(1.0);
        Some(ConnectionSlot(permit))
    }

    /// The answer to an upgrade at the limit: 503, try another instance.
    pub fn refusal() -> axum::response::Response {
        use axum::response::IntoResponse;
        mc_web::ApiError(mc_domain::Error::unavailable(
            "this relay is at its connection limit (WS_MAX_CONNECTIONS_PER_INSTANCE); try another instance",
        ))
        .into_response()
    }
}

/// One held connection slot.
pub struct ConnectionSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        metrics::gauge!("mc_ws_connections").decrement(1.0);
    }
}

/// Everything a socket handler needs: a cheap handle (every socket keeps one, so it is a
/// pointer, not the services' 1.9 KB of handles copied per socket).
#[derive(Clone)]
pub struct RelayState(Arc<RelayServices>);

impl std::ops::Deref for RelayState {
    type Target = RelayServices;

    fn deref(&self) -> &RelayServices {
        &self.0
    }
}

/// The services behind [`RelayState`].
pub struct RelayServices {
    /// Connections and probes.
    pub infra: Infra,
    /// Authentication.
    pub identity: IdentityService,
    /// Boards and tasks (the same domain code as REST).
    pub boards: BoardService,
    /// Open board rooms.
    pub rooms: BoardRooms,
    /// Configuration.
    pub config: Arc<RelayConfig>,
    /// Connection limit.
    pub connections: ConnectionSlots,
    /// Frames written to board sockets (for benchmarks and metrics).
    pub frames_sent: Arc<AtomicU64>,
    /// The gateway registry (relay authentication, connection records).
    pub gateways: GatewayService,
    /// Calls to gateways across relay instances.
    pub gateway_router: GatewayRouter,
    /// Agents (linking reports, tunnel authorization).
    pub agents: AgentService,
    /// Agents' REST calls tunnelled to the API.
    pub tunnel: ApiTunnel,
    /// H5 chat (storage, routing to gateways and users).
    pub chat: ChatService,
    /// Fires when the relay shuts down.
    pub shutdown: CancellationToken,
    /// Board sockets' periodic access re-checks, shared per session.
    pub session_checks: board_sync::SessionChecks,
}

impl RelayState {
    /// Builds the state over connected infrastructure.
    pub async fn new(
        infra: Infra,
        config: &RelayConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let identity = IdentityService::new(
            infra.pool.clone(),
            infra.redis.clone(),
            config.auth.clone(),
            RateLimitConfig::default(),
        )
        .context("setting up identity")?;
        let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::new(infra.redis.clone()));
        let boards = BoardService::new(infra.pool.clone(), bus.clone());
        let gateways =
            GatewayService::new(infra.pool.clone(), bus.clone(), config.gateways.clone());
        let agents = AgentService::new(infra.pool.clone(), bus.clone());
        let tunnel = ApiTunnel::new(&config.api_url, config.gateways.call_timeout)
            .context("setting up the API tunnel")?;
        let gateway_router = GatewayRouter::start(
            Some(infra.redis.clone()),
            mc_domain::infra::instance_name("relay"),
        )
        .await
        .context("starting gateway routing")?;
        let hub = ChatHub::new(Some(infra.redis.clone()), gateway_router.instance());
        hub.spawn_refresher(shutdown.clone());
        let chat = ChatService::new(
            infra.pool.clone(),
            gateway_router.clone(),
            hub,
            config.chat.clone(),
            // chat.send is acknowledged at once; the reply streams afterwards.
            config
                .gateways
                .call_timeout
                .min(std::time::Duration::from_secs(10)),
        );
        let rooms = BoardRooms::new(
            infra.pool.clone(),
            bus,
            config.ws.outbound_queue,
            config.ws.check_interval,
            shutdown.clone(),
        );
        Ok(Self(Arc::new(RelayServices {
            infra,
            identity,
            boards,
            rooms,
            config: Arc::new(config.clone()),
            connections: ConnectionSlots(Arc::new(Semaphore::new(config.ws.max_connections))),
            frames_sent: Arc::new(AtomicU64::new(0)),
            gateways,
            gateway_router,
            agents,
            tunnel,
            chat,
            shutdown,
            session_checks: board_sync::SessionChecks::new(config.ws.check_interval / 2),
        })))
    }
}

/// How long a stored user message may wait for its gateway hand-off before a sweep sends
/// it again, how often the sweep runs, and after how long it stops trying.
const CHAT_RESEND_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
const CHAT_RESEND_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const CHAT_RESEND_UNTIL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Re-sends chat messages a crashed relay stored but never handed to their gateway.
fn spawn_chat_resender(chat: ChatService, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHAT_RESEND_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match chat
                .resend_unsent(CHAT_RESEND_AFTER, CHAT_RESEND_UNTIL)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "re-sent chat messages a relay left behind"),
                Err(err) => tracing::warn!(error = %err, "sweeping unsent chat messages failed"),
            }
        }
    });
}

/// The HTTP application of this service.
pub fn router(state: RelayState) -> Router {
    let probe = state.infra.probe.clone();
    Router::new()
        .route("/ws/h5/chat", get(h5_chat::upgrade))
        .route("/ws/board/{board_id}/sync", get(board_sync::upgrade))
        .route(
            "/ws/gateway/{gateway_id}/relay",
            get(gateway_relay::upgrade),
        )
        .with_state(state)
        .merge(mc_web::ops::routes(probe))
        .layer(axum::middleware::from_fn(mc_web::metrics::track_http))
}

/// Runs the service on `listener` until `shutdown` fires.
pub async fn run(
    config: RelayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(RelayConfig::SERVICE, &config.common)
        .await
        .context("connecting to Postgres and Redis")?;
    let state = RelayState::new(infra, &config, shutdown.clone()).await?;
    let gateways = state.gateways.clone();
    let instance = state.gateway_router.instance().to_owned();
    spawn_chat_resender(state.chat.clone(), shutdown.clone());
    let served = mc_web::serve::serve(
        listener,
        router(state),
        shutdown,
        config.common.shutdown_grace,
    )
    .await
    .context("serving HTTP");
    // Sockets closed with the process may not have recorded their end.
    if let Err(err) = gateways.relay_instance_stopped(&instance).await {
        tracing::warn!(error = %err, "closing this instance's gateway connection records failed");
    }
    served
}
