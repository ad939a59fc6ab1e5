//! The event outbox: writers that must not take an organization's `org_event_seq` lock
//! in their own transaction (the job queue's multi-organization statements, chat at
//! thousands of messages a second) record events in `event_outbox` through triggers, in
//! the changing transaction. The forwarder here moves those rows into `agent_events` in
//! order, one organization-and-actor run per append, and publishes them on the bus
//! (docs/adr/0002-events-through-the-outbox.md).

use crate::db::{Notifications, begin_system};
use crate::error::Result;
use crate::events::{self, Event, EventBus, NewEvent};
use crate::identity::context::{Actor, ActorKind};
use crate::ids::{AgentId, OrgId};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The notification the outbox triggers send.
pub const CHANNEL: &str = "mc_event_outbox";

/// Rows moved per forwarding transaction.
pub const FORWARD_BATCH: i64 = 1000;

/// Key of the advisory lock that makes one forwarder run at a time (so the events of one
/// job or one chat session reach the log in the order they happened).
const FORWARDER_LOCK: i64 = 0x6d63_6a6f_6265_7673; // "mcjobevs"

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    organization_id: OrgId,
    event_type: String,
    actor_type: String,
    actor_id: Uuid,
    actor_name: String,
    agent_id: Option<AgentId>,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
}

fn actor_kind(stored: &str) -> ActorKind {
    match stored {
        "user" => ActorKind::User,
        "agent" => ActorKind::Agent,
        "api_key" => ActorKind::ApiKey,
        "h5_user" => ActorKind::H5User,
        _ => ActorKind::System,
    }
}

/// The event an outbox row records, by the actor the trigger saw.
fn outbox_event(r: OutboxRow) -> NewEvent {
    let mut payload = r.payload;
    if let Some(map) = payload.as_object_mut() {
        map.insert("occurred_at".into(), serde_json::json!(r.created_at));
    }
    NewEvent::new(r.event_type)
        .agent(r.agent_id)
        .payload(payload)
        .by(Actor {
            kind: actor_kind(&r.actor_type),
            id: r.actor_id,
            name: r.actor_name,
        })
}

/// Moves up to `limit` outbox rows into the event log and publishes them. Returns how
/// many were moved (0 also when another forwarder holds the lock).
pub async fn forward_once(pool: &PgPool, bus: &dyn EventBus, limit: i64) -> Result<usize> {
    let mut tx = begin_system(pool).await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(FORWARDER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(0);
    }
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, organization_id, event_type, actor_type, actor_id, actor_name, agent_id,
                payload, created_at
         FROM event_outbox ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut appended: Vec<Event> = Vec::with_capacity(rows.len());
    // Runs of one organization become one append, each event with its own actor (chat
    // alternates users and agents row by row); outbox order is kept.
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let org = first.organization_id;
        let mut batch = vec![outbox_event(first)];
        while let Some(next) = rows.next_if(|r| r.organization_id == org) {
            batch.push(outbox_event(next));
        }
        let fallback = Actor::system("outbox");
        appended.extend(events::append(&mut tx, org, &fallback, batch).await?);
    }
    sqlx::query("DELETE FROM event_outbox WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    bus.publish(&appended).await;
    metrics::counter!("mc_outbox_events_forwarded_total").increment(appended.len() as u64);
    Ok(appended.len())
}

/// How soon the forwarder looks again after moving events. Chat's trigger does not
/// notify, so under a steady stream this, not the poll, sets the batch size: at 2,000
/// events a second a 1 s poll moved them in bursts of 1,000 that held a core for tens of
/// milliseconds and raised the chat's p99 in every second (docs/h5-chat.md, stop 26).
pub const FOLLOW_UP: Duration = Duration::from_millis(50);

/// Forwards until `shutdown`: woken by the trigger's notification, polling every
/// `poll` as the fallback, and every [`FOLLOW_UP`] (or `poll`, if shorter) for one `poll`
/// after it last moved events, so a stream with short gaps is followed closely. Errors
/// are logged and retried; the outbox keeps everything.
pub async fn forward(
    pool: PgPool,
    bus: std::sync::Arc<dyn EventBus>,
    poll: Duration,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut notes = Notifications::new(pool.clone(), CHANNEL);
    let mut last_moved: Option<tokio::time::Instant> = None;
    loop {
        notes.ensure().await;
        loop {
            match forward_once(&pool, bus.as_ref(), FORWARD_BATCH).await {
                Ok(n) => {
                    if n > 0 {
                        last_moved = Some(tokio::time::Instant::now());
                    }
                    if n as i64 != FORWARD_BATCH {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "forwarding outbox events failed; will retry");
                    break;
                }
            }
        }
        let streaming = last_moved.is_some_and(|at| at.elapsed() < poll);
        let wait = if streaming { FOLLOW_UP.min(poll) } else { poll };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = notes.recv() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
