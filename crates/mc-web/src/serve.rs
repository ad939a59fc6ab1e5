//! Serving a router until shutdown, with a bounded drain.

use axum::Router;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown` fires, then lets in-flight requests finish
/// for at most `grace` before returning. Long-lived streams (SSE, WebSockets) are expected
/// to watch the same token and end themselves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    // No Nagle: WebSocket frames and SSE events are small writes that must leave at once,
    // not wait for the peer's (delayed) acknowledgement of the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "setting TCP_NODELAY failed");
        }
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let drained = server.into_future();
    tokio::pin!(drained);
    tokio::select! {
        result = &mut drained => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the grace period; closing them");
            Ok(())
        }
    }
}
