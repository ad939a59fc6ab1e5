//! A TCP proxy that a test can cut and restore, to make Postgres or Redis "unreachable"
//! for one service without disturbing the servers other tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

struct State {
    target: String,
    open: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

/// Forwards connections from a local port to `target` while open.
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl TcpProxy {
    /// Starts forwarding from `127.0.0.1:<random>` to `target` (`host:port`).
    pub async fn start(target: impl Into<String>) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("address"), target).await
    }

    /// Starts forwarding from `bind` (e.g. a veth address another network namespace
    /// reaches) to `target`.
    pub async fn start_on(bind: SocketAddr, target: impl Into<String>) -> Self {
        let listener = TcpListener::bind(bind).await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            target: target.into(),
            open: AtomicBool::new(true),
            connections: Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !accept_state.open.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = accept_state.target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let mut inbound = inbound;
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_state
                    .connections
                    .lock()
                    .expect("proxy lock")
                    .push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            state,
            accept,
        }
    }

    /// `host:port` to connect to instead of the target.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.open.store(false, Ordering::SeqCst);
        for conn in self.state.connections.lock().expect("proxy lock").drain(..) {
            conn.abort();
        }
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.state.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
