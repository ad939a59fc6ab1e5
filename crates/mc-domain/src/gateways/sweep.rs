//! The offline sweeper as a job (`mc-worker` runs it on a system schedule).

use crate::jobs::{Job, JobContext, JobOutcome, JobPriority};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Marks gateways offline after `threshold_seconds` without a heartbeat
/// (`GATEWAY_OFFLINE_THRESHOLD_SECONDS`).
#[derive(Debug, Serialize, Deserialize)]
pub struct OfflineSweep {
    /// Silence after which a gateway is offline.
    pub threshold_seconds: u64,
}

impl Job for OfflineSweep {
    const KIND: &'static str = "gateways.offline_sweep";
    const PRIORITY: JobPriority = JobPriority::High;
    const TIMEOUT: Duration = Duration::from_secs(60);
    const MAX_ATTEMPTS: i32 = 1;

    async fn run(self, ctx: JobContext) -> JobOutcome {
        let n = super::sweep_offline(
            &ctx.pool,
            ctx.bus.as_ref(),
            Duration::from_secs(self.threshold_seconds),
        )
        .await?;
        Ok(Some(serde_json::json!({ "offline": n })))
    }
}
