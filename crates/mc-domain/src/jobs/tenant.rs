//! Job kinds an organization may schedule itself (`/api/v1/schedules`). System kinds
//! (purges, retention) are not among them: a tenant never runs cross-tenant work.

use super::{Job, JobContext, JobError, JobOutcome, JobPriority, Registry, complete_in};
use crate::db::begin_org;
use crate::error::{Error, Result};
use crate::events::{self, NewEvent, validate_event_type};
use crate::identity::context::Actor;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Appends an event of the organization's choosing to its log (a timed trigger: rules
/// and subscribers react to it like to any other event).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitEvent {
    /// Dotted type; `schedule.` is prefixed when it does not start with it.
    pub event_type: String,
    /// Event payload.
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl EmitEvent {
    /// The type the event is recorded with: always under `schedule.`, so a tenant cannot
    /// forge `task.*` or `job.*` events.
    pub fn recorded_type(&self) -> String {
        if self.event_type.starts_with("schedule.") {
            self.event_type.clone()
        } else {
            format!("schedule.{}", self.event_type)
        }
    }
}

impl Job for EmitEvent {
    const KIND: &'static str = "schedule.emit_event";
    const PRIORITY: JobPriority = JobPriority::Medium;
    const TIMEOUT: Duration = Duration::from_secs(30);

    async fn run(self, ctx: JobContext) -> JobOutcome {
        let org = ctx
            .job
            .organization_id
            .ok_or_else(|| JobError::Fatal("schedule.emit_event needs an organization".into()))?;
        let mut tx = begin_org(&ctx.pool, org).await?;
        let mut payload = match &self.payload {
            serde_json::Value::Null => serde_json::json!({}),
            other => other.clone(),
        };
        if let Some(map) = payload.as_object_mut() {
            map.insert("job_id".into(), serde_json::json!(ctx.job.id));
        }
        let appended = events::append(
            &mut tx,
            org,
            &Actor::system("scheduler"),
            vec![NewEvent::new(self.recorded_type()).payload(payload)],
        )
        .await?;
        if !complete_in(&mut tx, &ctx, None).await? {
            return Err(JobError::Retry("lease lost before commit".into()));
        }
        tx.commit().await?;
        ctx.bus.publish(&appended).await;
        Ok(Some(serde_json::json!({ "seq": appended[0].seq })))
    }
}

/// Kinds `/api/v1/schedules` accepts.
pub const SCHEDULABLE_KINDS: &[&str] = &[EmitEvent::KIND];

/// Checks that a tenant may schedule `kind` with `payload` (precise 400 otherwise).
pub fn validate(kind: &str, payload: &serde_json::Value) -> Result<()> {
    match kind {
        EmitEvent::KIND => {
            let job: EmitEvent = serde_json::from_value(payload.clone())
                .map_err(|e| Error::invalid_field("payload", e.to_string()))?;
            validate_event_type(&job.recorded_type())
                .map_err(|m| Error::invalid_field("payload.event_type", m))?;
            if !(job.payload.is_object() || job.payload.is_null()) {
                return Err(Error::invalid_field("payload.payload", "must be an object"));
            }
            Ok(())
        }
        _ => Err(Error::invalid_field(
            "kind",
            format!(
                "cannot be scheduled; one of: {}",
                SCHEDULABLE_KINDS.join(", ")
            ),
        )),
    }
}

/// Registers the tenant kinds.
pub fn register(registry: Registry) -> Registry {
    registry.register::<EmitEvent>()
}
