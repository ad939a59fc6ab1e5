//! Services started in-process on an ephemeral port.

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running service.
pub struct Spawned {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Cancelling this is the in-process equivalent of SIGTERM.
    pub shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Spawned {
    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://<addr><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits for the service to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await?
    }

    /// Whether the service has already returned (it failed to start, or stopped).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits (up to 10 s) until `/readyz` answers 200; panics otherwise.
    pub async fn wait_ready(&self) {
        let url = self.url("/readyz");
        crate::eventually(
            std::time::Duration::from_secs(10),
            &format!("{url} ready"),
            || async {
                crate::http_client()
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 200)
                    .then_some(())
            },
        )
        .await;
    }

    /// Waits for the service to return on its own.
    pub async fn join(self) -> anyhow::Result<()> {
        self.handle.await?
    }
}

/// Binds `127.0.0.1:0` and runs `run(listener, shutdown)` on a task.
pub async fn spawn_service<F, Fut>(run: F) -> Spawned
where
    F: FnOnce(TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    spawn_service_on("127.0.0.1:0".parse().expect("address"), run).await
}

/// Starts a service on `addr` (a restarted service takes its predecessor's port).
pub async fn spawn_service_on<F, Fut>(addr: SocketAddr, run: F) -> Spawned
where
    F: FnOnce(TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .expect("bind the service port");
    let addr = listener.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run(listener, shutdown.clone()));
    Spawned {
        addr,
        shutdown,
        handle,
    }
}
