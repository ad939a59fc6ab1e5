//! The rule engine's consumer of the event stream: a Redis consumer group, so each event
//! is handed to one instance; entries are acknowledged after their effects commit; entries
//! a dead (or failing) consumer left unacknowledged are claimed by another after
//! `reclaim_idle`; an entry delivered `max_deliveries` times is recorded as poison and
//! skipped instead of blocking the stream.

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::OrgId;
use crate::redis::RedisHandle;
use redis::AsyncCommands;
use redis::streams::{StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Name of the consumer group every `mc-rules` instance joins.
pub const GROUP: &str = "mc-rules";

/// How long one read waits for new entries.
const BLOCK: Duration = Duration::from_millis(1000);

/// Idle time after which a consumer with nothing pending is removed from the group (every
/// process joins under a fresh name, so restarts would otherwise accumulate names).
const DEPARTED_AFTER: Duration = Duration::from_secs(3600);

/// Consumer settings.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSettings {
    /// Entries per read and per evaluation transaction.
    pub batch_size: usize,
    /// Idle time after which an unacknowledged entry is claimed by someone else.
    pub reclaim_idle: Duration,
    /// Deliveries after which an entry is poison.
    pub max_deliveries: u64,
}

/// What one pass handled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Entries acknowledged.
    pub acked: usize,
    /// Entries left pending (their evaluation failed).
    pub failed: usize,
    /// Entries given up on.
    pub poison: usize,
}

/// One member of the consumer group.
#[derive(Debug, Clone)]
pub struct RuleConsumer {
    engine: Engine,
    redis: RedisHandle,
    stream: String,
    name: String,
    settings: ConsumerSettings,
}

fn redis_err(context: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |e| Error::ServiceUnavailable {
        message: context.into(),
        source: Some(Box::new(e)),
    }
}

impl RuleConsumer {
    /// A consumer called `name` of the stream `{prefix}events`.
    pub fn new(
        engine: Engine,
        redis: RedisHandle,
        name: String,
        settings: ConsumerSettings,
    ) -> Self {
        Self {
            stream: redis.key("events"),
            engine,
            redis,
            name,
            settings,
        }
    }

    /// This consumer's name in the group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the group (at the stream's end: earlier events are the catch-up scan's).
    pub async fn ensure_group(&self) -> Result<()> {
        let mut conn = self.redis.conn();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(redis_err("creating the rule engine's consumer group")(e)),
        }
    }

    /// Reads, evaluates and acknowledges until `shutdown`; claims idle entries now and
    /// then. A batch in progress finishes before it stops.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut reader = None;
        // A batch read while the previous one was evaluated.
        let mut ahead: Option<Vec<StreamId>> = None;
        let mut last_reclaim = Instant::now();
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            if reader.is_none() {
                let config = redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
                match self
                    .redis
                    .client()
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                {
                    Ok(c) => reader = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "rule consumer cannot reach Redis");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let Some(conn) = reader.as_mut() else {
                continue;
            };
            let read = match ahead.take() {
                Some(entries) => Ok(entries),
                None => tokio::select! {
                    () = shutdown.cancelled() => break,
                    read = self.read_new(conn) => read,
                },
            };
            let outcome = match read {
                // A full batch means a backlog: the next one is read (without waiting)
                // while this one is evaluated, so Redis and PostgreSQL work at once.
                Ok(entries) if entries.len() >= self.settings.batch_size => {
                    let (handled, next) =
                        tokio::join!(self.handle(entries, None), self.read_group(conn, None));
                    match next {
                        Ok(next) if !next.is_empty() => ahead = Some(next),
                        Ok(_) => {}
                        // Whatever was read stays pending here and is reclaimed later.
                        Err(e) => tracing::warn!(error = %e, "reading ahead failed"),
                    }
                    handled.map(|_| ())
                }
                Ok(entries) => self.handle(entries, None).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "rule consumer pass failed; retrying");
                if matches!(err, Error::ServiceUnavailable { .. }) {
                    reader = None;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(100);
            if last_reclaim.elapsed() >= self.settings.reclaim_idle / 2 {
                last_reclaim = Instant::now();
                if let Err(err) = self.reclaim().await {
                    tracing::warn!(error = %err, "claiming idle rule-stream entries failed");
                }
                if let Err(err) = self.forget_departed(DEPARTED_AFTER).await {
                    tracing::warn!(error = %err, "removing departed consumers failed");
                }
            }
        }
        // A batch read ahead is this consumer's: finish it rather than leave it for a
        // reclaim.
        if let Some(entries) = ahead
            && let Err(err) = self.handle(entries, None).await
        {
            tracing::warn!(error = %err, "the batch read ahead failed at shutdown");
        }
    }

    /// `XREADGROUP` for new entries, waiting up to `block` for some.
    async fn read_group(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        block: Option<Duration>,
    ) -> Result<Vec<StreamId>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.settings.batch_size);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        let reply: Option<StreamReadReply> = cmd
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(conn)
            .await
            .map_err(redis_err("reading the event stream"))?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    async fn read_new(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> Result<Vec<StreamId>> {
        self.read_group(conn, Some(BLOCK)).await
    }

    /// Reads once without blocking and handles what came (tests and benchmarks drive the
    /// consumer step by step with this).
    pub async fn poll_once(&self) -> Result<PassReport> {
        let mut conn = self.redis.conn();
        let entries = self.read_group(&mut conn, None).await?;
        self.handle(entries, None).await
    }

    /// Claims entries idle for longer than `reclaim_idle` (whoever held them) and handles
    /// them; those delivered too often become poison.
    pub async fn reclaim(&self) -> Result<PassReport> {
        let mut conn = self.redis.conn();
        let idle_ms = self.settings.reclaim_idle.as_millis() as u64;
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle_ms)
            .arg("-")
            .arg("+")
            .arg(self.settings.batch_size)
            .query_async(&mut conn)
            .await
            .map_err(redis_err("listing pending stream entries"))?;
        if pending.ids.is_empty() {
            return Ok(PassReport::default());
        }
        let deliveries: HashMap<String, usize> = pending
            .ids
            .iter()
            .map(|p| (p.id.clone(), p.times_delivered))
            .collect();
        let ids: Vec<&str> = pending.ids.iter().map(|p| p.id.as_str()).collect();
        let claimed: StreamClaimReply = conn
            .xclaim(&self.stream, GROUP, &self.name, idle_ms, &ids)
            .await
            .map_err(redis_err("claiming idle stream entries"))?;
        // Entries trimmed from the stream come back empty: nothing to evaluate, let them go.
        let gone: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !claimed.ids.iter().any(|c| c.id == *id))
            .collect();
        if !gone.is_empty() {
            let _: () = conn
                .xack(&self.stream, GROUP, &gone)
                .await
                .map_err(redis_err("acknowledging vanished entries"))?;
        }
        metrics::counter!("mc_rules_reclaimed_total").increment(claimed.ids.len() as u64);
        self.handle(claimed.ids, Some(&deliveries)).await
    }

    /// Removes consumers idle for longer than `after` that hold nothing pending; returns
    /// how many.
    pub async fn forget_departed(&self, after: Duration) -> Result<usize> {
        let mut conn = self.redis.conn();
        let consumers: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.stream)
            .arg(GROUP)
            .query_async(&mut conn)
            .await
            .map_err(redis_err("listing the group's consumers"))?;
        let mut removed = 0;
        for c in consumers {
            let name = match c.get("name") {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(redis::Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            let number = |key: &str| match c.get(key) {
                Some(redis::Value::Int(n)) => *n,
                _ => -1,
            };
            let idle_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
            if name != self.name && number("pending") == 0 && number("idle") > idle_ms {
                let _: i64 = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(&self.stream)
                    .arg(GROUP)
                    .arg(&name)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err("removing a departed consumer"))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Evaluates entries and acknowledges all but the failed ones. `deliveries` (from a
    /// reclaim) marks entries that have had their chances as poison.
    async fn handle(
        &self,
        entries: Vec<StreamId>,
        deliveries: Option<&HashMap<String, usize>>,
    ) -> Result<PassReport> {
        let mut report = PassReport::default();
        if entries.is_empty() {
            return Ok(report);
        }
        let mut ack: Vec<String> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut poison: Vec<(Uuid, OrgId, i64)> = Vec::new();
        let mut entry_of: HashMap<Uuid, String> = HashMap::new();
        for entry in entries {
            let parsed = entry
                .get::<String>("event")
                .and_then(|json| serde_json::from_str::<Event>(&json).ok());
            let Some(event) = parsed else {
                metrics::counter!("mc_rules_poison_total", "reason" => "unreadable").increment(1);
                tracing::warn!(entry = %entry.id, "skipping an unreadable stream entry");
                report.poison += 1;
                ack.push(entry.id);
                continue;
            };
            // XCLAIM counts the claim itself as a delivery.
            let delivered = deliveries
                .and_then(|d| d.get(&entry.id))
                .copied()
                .unwrap_or(0)
                + 1;
            if deliveries.is_some() && delivered as u64 > self.settings.max_deliveries {
                metrics::counter!("mc_rules_poison_total", "reason" => "failing").increment(1);
                tracing::warn!(entry = %entry.id, event_id = %event.id, event_type = %event.event_type,
                    delivered, "giving up on an event that keeps failing");
                poison.push((event.id, event.organization_id, event.seq));
                report.poison += 1;
                ack.push(entry.id);
                continue;
            }
            entry_of.insert(event.id, entry.id);
            events.push(event);
        }
        if !poison.is_empty() {
            self.engine.give_up(&poison).await?;
        }
        if !events.is_empty() {
            let outcome = self.engine.evaluate(&events).await?;
            report.failed = outcome.failed.len();
            for (event_id, entry_id) in entry_of {
                if !outcome.failed.contains(&event_id) {
                    ack.push(entry_id);
                }
            }
        }
        if !ack.is_empty() {
            let mut conn = self.redis.conn();
            let _: () = conn
                .xack(&self.stream, GROUP, &ack)
                .await
                .map_err(redis_err("acknowledging stream entries"))?;
        }
        report.acked = ack.len();
        Ok(report)
    }
}
