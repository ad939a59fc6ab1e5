//! Redis: one multiplexed, self-reconnecting connection per process plus key naming.
//!
//! Every key and channel carries the configured prefix (`mc:` by default). Pub/sub ignores
//! the database index, so isolation between deployments sharing a Redis comes from the
//! prefix, not from `/db` numbers.

use crate::config::RedisConfig;
use crate::error::{Error, Result};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Shared access to Redis for one process.
#[derive(Clone)]
pub struct RedisHandle {
    client: ::redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// Creates the handle without connecting; commands connect (and reconnect) on demand.
    pub fn new(config: &RedisConfig) -> Result<Self> {
        let client = ::redis::Client::open(config.url.expose())
            .map_err(|err| Error::invalid_field("REDIS_URL", format!("not a Redis URL: {err}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            // Fail a command quickly while Redis is down instead of queueing behind retries;
            // the next command tries to reconnect again.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|err| Error::internal("creating the Redis connection manager", err))?;
        Ok(Self {
            client,
            conn,
            prefix: Arc::from(config.key_prefix.as_str()),
        })
    }

    /// A clone of the multiplexed connection for commands.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The underlying client, for dedicated connections (pub/sub, blocking reads).
    pub fn client(&self) -> &::redis::Client {
        &self.client
    }

    /// The key prefix, e.g. `mc:`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A full key or channel name: the prefix followed by `suffix`.
    pub fn key(&self, suffix: impl AsRef<str>) -> String {
        let suffix = suffix.as_ref();
        let mut key = String::with_capacity(self.prefix.len() + suffix.len());
        key.push_str(&self.prefix);
        key.push_str(suffix);
        key
    }

    /// Round-trips a PING.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn();
        let reply: String = ::redis::cmd("PING").query_async(&mut conn).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "redis answered PING with {reply:?}"
            )))
        }
    }
}
