//! Live routing for H5 chat across relay instances: each user's deliveries on
//! `{prefix}h5:user:{id}`, gateway comings and goings on `{prefix}h5:org:{id}:gateways`,
//! and presence (how many sockets each user has open on each instance) in Redis hashes
//! that expire unless their instance keeps refreshing them.

use super::model::{ChatDelivery, GatewayPresence, LiveConnections};
use crate::error::{Error, Result};
use crate::fanout::{Fanout, OrderedPublisher, Subscription};
use crate::ids::{GatewayId, H5UserId, OrgId};
use crate::redis::RedisHandle;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long presence lives without a refresh (a crashed instance's sockets vanish after it).
pub const PRESENCE_TTL: Duration = Duration::from_secs(60);
/// Deliveries a user's listeners may fall behind before they lag (small: one channel per
/// user, and a socket that lags fills the gap from Postgres).
const USER_CAPACITY: usize = 32;
/// Gateway status changes a listener may fall behind.
const STATUS_CAPACITY: usize = 8;

/// Deliveries on their way to users' channels in the order given; see
/// [`ChatHub::ordered_announcer`]. Clones share the queue.
#[derive(Debug, Clone)]
pub struct OrderedAnnouncer {
    hub: ChatHub,
    publisher: OrderedPublisher,
}

impl OrderedAnnouncer {
    /// Queues `delivery` for every socket of `user` (waits only while the queue is full).
    pub async fn announce(&self, user: H5UserId, delivery: &ChatDelivery) -> Result<()> {
        let json = serde_json::to_string(delivery)
            .map_err(|e| Error::internal("encoding a chat delivery", e))?;
        self.publisher
            .publish(self.hub.user_channel(user), json)
            .await
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct ChatHub {
    users: Fanout<ChatDelivery>,
    gateways: Fanout<GatewayPresence>,
    redis: Option<RedisHandle>,
    instance: Arc<str>,
    local: Arc<Mutex<HashMap<H5UserId, u64>>>,
}

impl std::fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatHub")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl ChatHub {
    /// A hub for this relay `instance`, through Redis, or in-process without it.
    pub fn new(redis: Option<RedisHandle>, instance: &str) -> Self {
        let (users, gateways) = match &redis {
            Some(handle) => (
                Fanout::redis(handle.clone(), USER_CAPACITY),
                Fanout::redis(handle.clone(), STATUS_CAPACITY),
            ),
            None => (Fanout::local(USER_CAPACITY), Fanout::local(STATUS_CAPACITY)),
        };
        Self {
            users,
            gateways,
            redis,
            instance: instance.into(),
            local: Arc::default(),
        }
    }

    fn key(&self, suffix: &str) -> String {
        match &self.redis {
            Some(handle) => handle.key(suffix),
            None => suffix.to_owned(),
        }
    }

    fn user_channel(&self, user: H5UserId) -> String {
        self.key(&format!("h5:user:{user}"))
    }

    fn status_channel(&self, org: OrgId) -> String {
        self.key(&format!("h5:org:{org}:gateways"))
    }

    fn instance_key(&self, instance: &str) -> String {
        self.key(&format!("h5:presence:instance:{instance}"))
    }

    fn user_presence_key(&self, user: H5UserId) -> String {
        self.key(&format!("h5:presence:user:{user}"))
    }

    /// Listens to everything for `user`.
    pub async fn subscribe_user(&self, user: H5UserId) -> Result<Subscription<ChatDelivery>> {
        self.users.subscribe(&self.user_channel(user)).await
    }

    /// Sends `delivery` to every socket of `user`, wherever it is.
    pub async fn publish_user(&self, user: H5UserId, delivery: &ChatDelivery) -> Result<()> {
        let json = serde_json::to_string(delivery)
            .map_err(|e| Error::internal("encoding a chat delivery", e))?;
        self.users.publish(&[(self.user_channel(user), json)]).await
    }

    /// A publisher of deliveries that keeps the order they are given in and pipelines
    /// them (one Redis round trip for whatever queued up, not one each): for a gateway's
    /// stream of replies and deltas.
    pub fn ordered_announcer(&self) -> OrderedAnnouncer {
        OrderedAnnouncer {
            hub: self.clone(),
            publisher: self.users.ordered_publisher(),
        }
    }

    /// Listens to the comings and goings of an organization's gateways (rare, so one
    /// channel per organization serves every socket in it).
    pub async fn subscribe_gateways(&self, org: OrgId) -> Result<Subscription<GatewayPresence>> {
        self.gateways.subscribe(&self.status_channel(org)).await
    }

    /// Announces that a gateway came online or went offline.
    pub async fn publish_gateway(
        &self,
        org: OrgId,
        gateway: GatewayId,
        online: bool,
    ) -> Result<()> {
        let json = serde_json::to_string(&GatewayPresence {
            gateway_id: gateway,
            online,
        })
        .map_err(|e| Error::internal("encoding gateway presence", e))?;
        self.gateways
            .publish(&[(self.status_channel(org), json)])
            .await
    }

    /// Records a socket of `user` opening on this instance.
    pub async fn connected(&self, user: H5UserId) -> Result<()> {
        *self
            .local
            .lock()
            .expect("presence lock")
            .entry(user)
            .or_default() += 1;
        self.write_presence(user, 1).await
    }

    /// Records a socket of `user` closing on this instance.
    pub async fn disconnected(&self, user: H5UserId) -> Result<()> {
        {
            let mut local = self.local.lock().expect("presence lock");
            if let Some(count) = local.get_mut(&user) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    local.remove(&user);
                }
            }
        }
        self.write_presence(user, -1).await
    }

    async fn write_presence(&self, user: H5UserId, change: i64) -> Result<()> {
        let Some(handle) = &self.redis else {
            return Ok(());
        };
        let key = self.user_presence_key(user);
        let mut conn = handle.conn();
        let (count,): (i64,) = redis::pipe()
            .cmd("HINCRBY")
            .arg(&key)
            .arg(&*self.instance)
            .arg(change)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(PRESENCE_TTL.as_millis() as u64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        if count <= 0 {
            let _: i64 = redis::cmd("HDEL")
                .arg(&key)
                .arg(&*self.instance)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Sockets `user` has open on this instance.
    pub fn local_connections(&self, user: H5UserId) -> u64 {
        self.local
            .lock()
            .expect("presence lock")
            .get(&user)
            .copied()
            .unwrap_or(0)
    }

    /// The user's open sockets on every instance.
    pub async fn presence(&self, user: H5UserId) -> Result<LiveConnections> {
        let mut all = self.presence_of(&[user]).await?;
        Ok(all.pop().unwrap_or(LiveConnections {
            connections: 0,
            instances: Default::default(),
        }))
    }

    /// The open sockets of each of `users` (in order), in two Redis round trips.
    pub async fn presence_of(&self, users: &[H5UserId]) -> Result<Vec<LiveConnections>> {
        if users.is_empty() {
            // An empty pipeline is not a valid Redis request.
            return Ok(Vec::new());
        }
        let counts: Vec<HashMap<String, i64>> = match &self.redis {
            Some(handle) => {
                let mut pipe = redis::pipe();
                for user in users {
                    pipe.cmd("HGETALL").arg(self.user_presence_key(*user));
                }
                pipe.query_async(&mut handle.conn()).await?
            }
            None => users
                .iter()
                .map(|u| {
                    let n = self.local_connections(*u);
                    [(
                        self.instance.to_string(),
                        i64::try_from(n).unwrap_or(i64::MAX),
                    )]
                    .into()
                })
                .collect(),
        };
        let mut instances: Vec<&String> = counts.iter().flat_map(HashMap::keys).collect();
        instances.sort();
        instances.dedup();
        // A crashed instance's counts stay in a hash while another instance refreshes it;
        // its own liveness key has expired.
        let alive: Vec<bool> = match &self.redis {
            Some(handle) if !instances.is_empty() => {
                let mut pipe = redis::pipe();
                for instance in &instances {
                    pipe.cmd("EXISTS").arg(self.instance_key(instance));
                }
                pipe.query_async(&mut handle.conn()).await?
            }
            _ => vec![true; instances.len()],
        };
        let alive: std::collections::HashSet<&String> = instances
            .into_iter()
            .zip(alive)
            .filter_map(|(i, a)| a.then_some(i))
            .collect();
        Ok(counts
            .iter()
            .map(|per_instance| {
                let instances: std::collections::BTreeMap<String, u64> = per_instance
                    .iter()
                    .filter(|(i, n)| **n > 0 && alive.contains(i))
                    .map(|(i, n)| (i.clone(), n.unsigned_abs()))
                    .collect();
                LiveConnections {
                    connections: instances.values().sum(),
                    instances,
                }
            })
            .collect())
    }

    /// Keeps this instance's presence entries alive (rewriting the counts, so a write
    /// lost to a Redis outage heals) until `shutdown`.
    pub fn spawn_refresher(&self, shutdown: CancellationToken) {
        let Some(handle) = self.redis.clone() else {
            return;
        };
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRESENCE_TTL / 3);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let mut conn = handle.conn();
                let alive: std::result::Result<(), _> = redis::cmd("SET")
                    .arg(hub.instance_key(&hub.instance))
                    .arg(1)
                    .arg("PX")
                    .arg(PRESENCE_TTL.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
                if let Err(err) = alive {
                    tracing::warn!(error = %err, "refreshing H5 presence failed");
                    continue;
                }
                let users: Vec<(H5UserId, u64)> = hub
                    .local
                    .lock()
                    .expect("presence lock")
                    .iter()
                    .map(|(u, n)| (*u, *n))
                    .collect();
                for chunk in users.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for (user, count) in chunk {
                        let key = hub.user_presence_key(*user);
                        pipe.cmd("HSET")
                            .arg(&key)
                            .arg(&*hub.instance)
                            .arg(*count)
                            .ignore()
                            .cmd("PEXPIRE")
                            .arg(&key)
                            .arg(PRESENCE_TTL.as_millis() as u64)
                            .ignore();
                    }
                    if let Err(err) = pipe.query_async::<()>(&mut conn).await {
                        tracing::warn!(error = %err, "refreshing H5 presence failed");
                        break;
                    }
                }
            }
        });
    }
}
