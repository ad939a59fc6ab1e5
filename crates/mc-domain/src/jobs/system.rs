//! Mission Control's own housekeeping jobs, run by `mc-worker` on built-in schedules.

use super::{Job, JobContext, JobOutcome, JobPriority};
use crate::db::begin_system;
use crate::ids::OrgId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// Expires pending suggestions nobody acted on in time
/// (`PROACTIVITY_SUGGESTION_EXPIRY_HOURS`, or the rule's own `expires_in_hours`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpireSuggestions;

impl Job for ExpireSuggestions {
    const KIND: &'static str = "proactivity.expire_suggestions";
    const PRIORITY: JobPriority = JobPriority::Low;
    const TIMEOUT: Duration = Duration::from_secs(120);

    async fn run(self, ctx: JobContext) -> JobOutcome {
        let mut expired = 0;
        loop {
            let n =
                crate::proactivity::expire_suggestions(&ctx.pool, ctx.bus.as_ref(), 500).await?;
            expired += n;
            if n < 500 || ctx.cancel.is_cancelled() {
                break;
            }
        }
        Ok(Some(json!({ "expired": expired })))
    }
}

/// Deletes refresh tokens (console and H5) that expired more than a day ago.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenCleanup;

impl Job for TokenCleanup {
    const KIND: &'static str = "maintenance.token_cleanup";
    const PRIORITY: JobPriority = JobPriority::Low;
    const TIMEOUT: Duration = Duration::from_secs(120);

    async fn run(self, ctx: JobContext) -> JobOutcome {
        let mut tx = begin_system(&ctx.pool).await?;
        let console =
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let h5 = sqlx::query(
            "DELETE FROM h5_refresh_tokens WHERE expires_at < now() - interval '1 day'",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(
            json!({ "refresh_tokens": console, "h5_refresh_tokens": h5 }),
        ))
    }
}

/// Keeps monthly `agent_events` partitions three months ahead and drops those wholly
/// older than `ttl_days` (`PROACTIVITY_EVENT_TTL_DAYS`).
#[derive(Debug, Serialize, Deserialize)]
pub struct EventPartitions {
    /// Retention in days.
    pub ttl_days: u32,
}

impl Job for EventPartitions {
    const KIND: &'static str = "maintenance.event_partitions";
    const PRIORITY: JobPriority = JobPriority::Low;
    const TIMEOUT: Duration = Duration::from_secs(300);

    async fn run(self, ctx: JobContext) -> JobOutcome {
        // DDL on the partitioned table: as its owner (the application role), not mc_system.
        let created: i32 = sqlx::query_scalar("SELECT ensure_agent_event_partitions(now(), 3)")
            .fetch_one(&ctx.pool)
            .await?;
        let dropped: Vec<String> = sqlx::query_scalar(
            "SELECT drop_agent_event_partitions_before(now() - make_interval(days => $1))",
        )
        .bind(i32::try_from(self.ttl_days).unwrap_or(i32::MAX))
        .fetch_all(&ctx.pool)
        .await?;
        Ok(Some(json!({ "created": created, "dropped": dropped })))
    }
}

/// Purges organizations whose deletion grace period has ended (their rows go by cascade,
/// append-only tables included, for that organization only).
#[derive(Debug, Serialize, Deserialize)]
pub struct OrgPurge;

impl Job for OrgPurge {
    const KIND: &'static str = "maintenance.org_purge";
    const PRIORITY: JobPriority = JobPriority::Low;
    const TIMEOUT: Duration = Duration::from_secs(600);

    async fn run(self, ctx: JobContext) -> JobOutcome {
        let mut tx = begin_system(&ctx.pool).await?;
        let due: Vec<OrgId> = sqlx::query_scalar(
            "SELECT id FROM organizations
             WHERE status = 'pending_deletion' AND deletion_scheduled_at <= now()
             ORDER BY deletion_scheduled_at LIMIT 20",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut purged = Vec::new();
        for org in due {
            // One transaction per organization, so one failure does not hold up the rest.
            let mut tx = begin_system(&ctx.pool).await?;
            sqlx::query("SELECT set_config('app.purge_org', $1, true)")
                .bind(org.to_string())
                .execute(&mut *tx)
                .await?;
            let gone = sqlx::query(
                "DELETE FROM organizations
                 WHERE id = $1 AND status = 'pending_deletion' AND deletion_scheduled_at <= now()",
            )
            .bind(org)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if gone == 1 {
                sqlx::query(
                    "INSERT INTO audit_log (id, organization_id, actor_type, action, target_type, target_id)
                     VALUES ($1, NULL, 'system', 'organization.purged', 'organization', $2)",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(org)
                .execute(&mut *tx)
                .await
                ?;
                purged.push(org);
            }
            tx.commit().await?;
        }
        Ok(Some(json!({ "purged": purged })))
    }
}

/// Every system job kind.
pub fn register(registry: super::Registry) -> super::Registry {
    registry
        .register::<ExpireSuggestions>()
        .register::<TokenCleanup>()
        .register::<EventPartitions>()
        .register::<OrgPurge>()
}
