//! In-process fan-out of messages published on named channels, fed either directly
//! (single process, tests) or by one Redis pub/sub connection per process.
//!
//! Each process holds one subscription per channel however many local listeners it has
//! (a board with 10,000 sockets is one Redis SUBSCRIBE), decodes each message once and
//! hands it to listeners through a bounded broadcast. A listener that falls behind gets
//! `Lagged` and must resynchronise from Postgres; when the Redis connection drops, every
//! listener gets `Delivery::Resync` for the same reason. Nothing a client needs lives only
//! here: Redis pub/sub is ephemeral by design.
//!
//! A message for a channel that has listeners in the publishing process is handed to them
//! at once, not after a round trip through Redis (a chat reply whose user is on the relay
//! holding the gateway never waits on Redis). Its Redis copy, for the other processes,
//! carries the publisher's origin tag, and the publisher's own listener drops it unread.

use crate::error::{Error, Result};
use crate::redis::RedisHandle;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// What a listener receives.
#[derive(Debug)]
pub enum Delivery<T> {
    /// A message, decoded once for all listeners in this process.
    Item(Arc<T>),
    /// The transport reconnected: messages may have been lost; reload from the source of
    /// truth.
    Resync,
}

impl<T> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        match self {
            Delivery::Item(item) => Delivery::Item(item.clone()),
            Delivery::Resync => Delivery::Resync,
        }
    }
}

struct Channel<T> {
    tx: broadcast::Sender<Delivery<T>>,
    listeners: usize,
}

enum Command {
    Subscribe(String, oneshot::Sender<Result<()>>),
    Unsubscribe(String),
}

struct Inner<T> {
    channels: Mutex<HashMap<String, Channel<T>>>,
    capacity: usize,
    redis: Option<(RedisHandle, mpsc::UnboundedSender<Command>)>,
    /// Prefix of the Redis copies of messages this fan-out delivered itself:
    /// [`TAG_MARK`], 16 hex digits unique to it, [`TAG_MARK`].
    origin: String,
}

/// Starts and ends an origin tag. No JSON text starts with it, so untagged messages (from
/// other publishers) are read as before.
const TAG_MARK: char = '\u{1}';
/// Length of an origin tag in bytes.
const TAG_LEN: usize = 18;

fn new_origin() -> String {
    format!("{TAG_MARK}{:016x}{TAG_MARK}", fastrand::u64(..))
}

/// Fan-out of `T` messages on named channels.
pub struct Fanout<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Fanout<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Fanout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("redis", &self.inner.redis.is_some())
            .finish_non_exhaustive()
    }
}

/// A listener on one channel; leaving (drop) unsubscribes when it was the last one.
pub struct Subscription<T> {
    /// Deliveries for this listener.
    pub rx: broadcast::Receiver<Delivery<T>>,
    channel: String,
    inner: Arc<Inner<T>>,
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let mut channels = self.inner.channels.lock().expect("fanout lock");
        let last = match channels.get_mut(&self.channel) {
            Some(channel) => {
                channel.listeners = channel.listeners.saturating_sub(1);
                channel.listeners == 0
            }
            None => false,
        };
        if last {
            channels.remove(&self.channel);
            if let Some((_, commands)) = &self.inner.redis {
                let _ = commands.send(Command::Unsubscribe(self.channel.clone()));
            }
        }
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Fanout<T> {
    /// Fan-out within this process only (tests, single-process deployments).
    pub fn local(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                channels: Mutex::new(HashMap::new()),
                capacity,
                redis: None,
                origin: new_origin(),
            }),
        }
    }

    /// Fan-out across processes through Redis pub/sub. Spawns the listener task.
    pub fn redis(handle: RedisHandle, capacity: usize) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            channels: Mutex::new(HashMap::new()),
            capacity,
            redis: Some((handle.clone(), commands)),
            origin: new_origin(),
        });
        tokio::spawn(listen(handle, Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// Listens on `channel` (a full Redis channel name). Returns once the subscription is
    /// live, so anything published afterwards is delivered.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription<T>> {
        let rx = {
            let mut channels = self.inner.channels.lock().expect("fanout lock");
            let entry = channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    tx: broadcast::channel(self.inner.capacity).0,
                    listeners: 0,
                });
            entry.listeners += 1;
            entry.tx.subscribe()
        };
        let subscription = Subscription {
            rx,
            channel: channel.to_owned(),
            inner: self.inner.clone(),
        };
        if let Some((_, commands)) = &self.inner.redis {
            // Every caller waits for a confirmed SUBSCRIBE (repeating it for an existing
            // channel is harmless), so nothing published after this returns is missed.
            let (ack, acked) = oneshot::channel();
            commands
                .send(Command::Subscribe(channel.to_owned(), ack))
                .map_err(|_| Error::unavailable("event fan-out stopped"))?;
            match tokio::time::timeout(Duration::from_secs(5), acked).await {
                Ok(Ok(result)) => result?,
                _ => return Err(Error::unavailable("redis subscription timed out")),
            }
        }
        Ok(subscription)
    }

    /// Number of channels this process listens on.
    pub fn channel_count(&self) -> usize {
        self.inner.channels.lock().expect("fanout lock").len()
    }

    /// Delivers a message published on `channel` to this process's listeners. Used by the
    /// local mode's publish and by the Redis listener.
    fn dispatch(inner: &Inner<T>, channel: &str, payload: &[u8]) {
        let sender = {
            let channels = inner.channels.lock().expect("fanout lock");
            channels.get(channel).map(|c| c.tx.clone())
        };
        let Some(sender) = sender else { return };
        Self::decode_to(&sender, channel, payload);
    }

    fn decode_to(sender: &broadcast::Sender<Delivery<T>>, channel: &str, payload: &[u8]) {
        match serde_json::from_slice::<T>(payload) {
            Ok(item) => {
                let _ = sender.send(Delivery::Item(Arc::new(item)));
            }
            Err(err) => {
                tracing::warn!(channel, error = %err, "dropping an undecodable message");
            }
        }
    }

    /// A message from Redis: dropped when this fan-out tagged it (its listeners had it
    /// already), else delivered without its tag.
    fn receive(inner: &Inner<T>, channel: &str, payload: &[u8]) {
        let payload = match payload.first() {
            Some(1) if payload.len() >= TAG_LEN => {
                if payload[..TAG_LEN] == *inner.origin.as_bytes() {
                    return;
                }
                &payload[TAG_LEN..]
            }
            _ => payload,
        };
        Self::dispatch(inner, channel, payload);
    }

    /// This process's listeners of `channel` and how many there are, if any.
    fn local_listeners(&self, channel: &str) -> Option<(broadcast::Sender<Delivery<T>>, usize)> {
        let channels = self.inner.channels.lock().expect("fanout lock");
        channels
            .get(channel)
            .filter(|c| c.listeners > 0)
            .map(|c| (c.tx.clone(), c.listeners))
    }

    /// Publishes already-encoded messages, pipelined. In Redis mode they reach every
    /// process (this one's listeners at once); locally they are dispatched at once.
    pub async fn publish(&self, messages: &[(String, String)]) -> Result<()> {
        match &self.inner.redis {
            None => {
                for (channel, payload) in messages {
                    Self::dispatch(&self.inner, channel, payload.as_bytes());
                }
                Ok(())
            }
            Some((handle, _)) => {
                let mut pipe = redis::pipe();
                for (channel, payload) in messages {
                    match self.local_listeners(channel) {
                        Some((sender, _)) => {
                            Self::decode_to(&sender, channel, payload.as_bytes());
                            let mut tagged = String::with_capacity(TAG_LEN + payload.len());
                            tagged.push_str(&self.inner.origin);
                            tagged.push_str(payload);
                            pipe.cmd("PUBLISH").arg(channel).arg(tagged).ignore();
                        }
                        None => {
                            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                        }
                    }
                }
                let mut conn = handle.conn();
                let _: () = pipe.query_async(&mut conn).await?;
                Ok(())
            }
        }
    }

    /// Publishes one message for a channel with one holder (a gateway's route) and returns
    /// how many got it. When this process listens, only its listeners get it (their count
    /// is returned); otherwise Redis counts the processes subscribed. Zero means nobody
    /// holds the channel now.
    pub async fn publish_counted(&self, channel: &str, payload: &str) -> Result<usize> {
        if let Some((sender, listeners)) = self.local_listeners(channel) {
            Self::decode_to(&sender, channel, payload.as_bytes());
            return Ok(listeners);
        }
        match &self.inner.redis {
            None => Ok(0),
            Some((handle, _)) => {
                let mut conn = handle.conn();
                let receivers: usize = redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await?;
                Ok(receivers)
            }
        }
    }
}

/// Messages an [`OrderedPublisher`] holds before its producer waits.
const ORDERED_QUEUE: usize = 4096;
/// Messages pipelined in one round trip at most.
const ORDERED_BATCH: usize = 256;

/// Publishes in the order given without making the producer wait for Redis: a task
/// pipelines whatever has queued up in one round trip. For a socket loop that must not
/// spend a round trip per frame (a gateway streaming replies) but whose messages must
/// arrive in order (an ack before the events that follow it). Dropping it flushes what is
/// queued, then stops the task.
#[derive(Debug, Clone)]
pub struct OrderedPublisher {
    queue: mpsc::Sender<(String, String)>,
}

impl OrderedPublisher {
    /// Queues `payload` for `channel`; waits only while the queue is full. A batch Redis
    /// refuses is logged and dropped, as a failed single publish would be: pub/sub is
    /// never the only copy of anything.
    pub async fn publish(&self, channel: String, payload: String) -> Result<()> {
        self.queue
            .send((channel, payload))
            .await
            .map_err(|_| Error::unavailable("event fan-out stopped"))
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Fanout<T> {
    /// An [`OrderedPublisher`] on this fan-out (spawns its task).
    pub fn ordered_publisher(&self) -> OrderedPublisher {
        let (queue, mut queued) = mpsc::channel(ORDERED_QUEUE);
        let fanout = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(ORDERED_BATCH);
            while queued.recv_many(&mut batch, ORDERED_BATCH).await > 0 {
                // messages / batches: how much one round trip carries.
                metrics::counter!("mc_fanout_ordered_batches_total").increment(1);
                metrics::counter!("mc_fanout_ordered_messages_total").increment(batch.len() as u64);
                if let Err(err) = fanout.publish(&batch).await {
                    tracing::warn!(error = %err, count = batch.len(), "publishing a batch failed");
                }
                batch.clear();
            }
        });
        OrderedPublisher { queue }
    }
}

async fn listen<T: DeserializeOwned + Send + Sync + 'static>(
    handle: RedisHandle,
    inner: std::sync::Weak<Inner<T>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        if inner.upgrade().is_none() {
            return;
        }
        let pubsub = match handle.client().get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(err) => {
                tracing::warn!(error = %err, "redis pub/sub connect failed; retrying");
                // Subscribers waiting for an acknowledgement must not hang.
                while let Ok(cmd) = commands.try_recv() {
                    if let Command::Subscribe(_, ack) = cmd {
                        let _ = ack.send(Err(Error::unavailable("redis pub/sub unavailable")));
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let (mut sink, mut stream) = pubsub.split();
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let current: Vec<String> = strong
            .channels
            .lock()
            .expect("fanout lock")
            .keys()
            .cloned()
            .collect();
        if !current.is_empty() && sink.subscribe(&current).await.is_err() {
            continue;
        }
        if connected_before {
            // Whatever was published while we were away is lost to this process.
            let senders: Vec<_> = strong
                .channels
                .lock()
                .expect("fanout lock")
                .values()
                .map(|c| c.tx.clone())
                .collect();
            for tx in senders {
                let _ = tx.send(Delivery::Resync);
            }
        }
        drop(strong);
        connected_before = true;
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(Command::Subscribe(channel, ack)) => {
                        let result = sink.subscribe(&channel).await.map_err(Error::from);
                        let failed = result.is_err();
                        let _ = ack.send(result);
                        if failed { break; }
                    }
                    Some(Command::Unsubscribe(channel)) => {
                        // Someone may have subscribed again since the last listener left.
                        let still_wanted = inner
                            .upgrade()
                            .is_some_and(|i| i.channels.lock().expect("fanout lock").contains_key(&channel));
                        if !still_wanted && sink.unsubscribe(&channel).await.is_err() {
                            break;
                        }
                    }
                },
                msg = stream.next() => match msg {
                    None => {
                        tracing::warn!("redis pub/sub connection lost; reconnecting");
                        break;
                    }
                    Some(msg) => {
                        let Some(strong) = inner.upgrade() else { return };
                        let channel = msg.get_channel_name().to_owned();
                        Fanout::<T>::receive(&strong, &channel, msg.get_payload_bytes());
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_fanout_delivers_to_every_listener_once_decoded() {
        let fanout: Fanout<serde_json::Value> = Fanout::local(16);
        let mut a = fanout.subscribe("c1").await.unwrap();
        let mut b = fanout.subscribe("c1").await.unwrap();
        let mut other = fanout.subscribe("c2").await.unwrap();
        fanout
            .publish(&[("c1".into(), r#"{"n":1}"#.into())])
            .await
            .unwrap();
        for rx in [&mut a.rx, &mut b.rx] {
            match rx.recv().await.unwrap() {
                Delivery::Item(v) => assert_eq!(v["n"], 1),
                Delivery::Resync => panic!("unexpected resync"),
            }
        }
        assert!(other.rx.try_recv().is_err());
        assert_eq!(fanout.channel_count(), 2);
        drop(a);
        drop(b);
        assert_eq!(fanout.channel_count(), 1);
    }

    #[tokio::test]
    async fn slow_listeners_lag_instead_of_blocking() {
        let fanout: Fanout<u32> = Fanout::local(4);
        let mut slow = fanout.subscribe("c").await.unwrap();
        for n in 0..10 {
            fanout
                .publish(&[("c".into(), n.to_string())])
                .await
                .unwrap();
        }
        assert!(matches!(
            slow.rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }
}
