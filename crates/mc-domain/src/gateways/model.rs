//! Gateway fleet types: registration tokens, gateways, heartbeats, metrics, connections.

use crate::ids::{GatewayConnectionId, GatewayId, GatewayTokenId, OrgId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Prefix of registration tokens (`gw_reg_<base64url(32 bytes)>`).
pub const REGISTRATION_TOKEN_PREFIX: &str = "gw_reg_";
/// Prefix of relay tokens (`gw_relay_<base64url(32 bytes)>`).
pub const RELAY_TOKEN_PREFIX: &str = "gw_relay_";

/// A gateway's health as the control plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GatewayStatus {
    /// Registered, not heard from yet.
    Pending,
    /// Heartbeating or connected.
    Online,
    /// No heartbeat within the offline threshold.
    Offline,
    /// Reports a problem.
    Error,
}

impl GatewayStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayStatus::Pending => "pending",
            GatewayStatus::Online => "online",
            GatewayStatus::Offline => "offline",
            GatewayStatus::Error => "error",
        }
    }

    /// Parses the stored form (unknown values read as `error`).
    pub fn parse(stored: &str) -> Self {
        match stored {
            "pending" => GatewayStatus::Pending,
            "online" => GatewayStatus::Online,
            "offline" => GatewayStatus::Offline,
            _ => GatewayStatus::Error,
        }
    }
}

/// A registration token as listed (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistrationToken {
    /// Id.
    pub id: GatewayTokenId,
    /// Label.
    pub name: String,
    /// First characters, to recognise it.
    pub token_prefix: String,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last registration with it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Registrations with it.
    pub use_count: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// `POST /gateway-registry/tokens`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    /// Label (default "registration token").
    pub name: Option<String>,
    /// Days until it expires (1-3650; default: never).
    pub expires_in_days: Option<u32>,
}

/// A new registration token: the secret is shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedRegistrationToken {
    /// Id.
    pub id: GatewayTokenId,
    /// The secret, `gw_reg_…`. Store it now; it cannot be retrieved later.
    pub token: String,
    /// Label.
    pub name: String,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Latest metrics a gateway reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayMetrics {
    /// Open agent sessions.
    pub active_sessions: i32,
    /// Resident memory, MiB.
    pub memory_mb: f64,
    /// CPU use, percent of one core.
    pub cpu_pct: f64,
    /// Agents it hosts.
    pub agent_count: i32,
}

/// One recorded heartbeat's metrics.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricsSample {
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// What.
    #[serde(flatten)]
    pub metrics: GatewayMetrics,
}

/// A gateway (`/api/v1/gateways`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gateway {
    /// Id.
    pub id: GatewayId,
    /// Organization.
    pub organization_id: OrgId,
    /// Name, unique in the organization.
    pub name: String,
    /// The gateway's own URL (as it reported it).
    pub url: Option<String>,
    /// Its workspace root.
    pub workspace_root: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// What it supports.
    pub capabilities: serde_json::Value,
    /// Health.
    pub status: GatewayStatus,
    /// Last heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// `{ip, version, capabilities, metrics}` as last reported.
    pub connection_info: serde_json::Value,
    /// Whether it registered itself.
    pub auto_registered: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /gateway-registry/register` (seed 000 M2).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterGateway {
    /// Organization the token belongs to.
    pub organization_id: OrgId,
    /// `gw_reg_…`.
    pub registration_token: String,
    /// Gateway name (1-200 characters); registering an existing name reuses that gateway
    /// and issues it a new relay token.
    pub name: String,
    /// Its URL.
    pub url: Option<String>,
    /// Its workspace root.
    pub workspace_root: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// Capabilities (list of strings).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The answer to a registration (seed 000 M2).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    /// The gateway's id.
    pub gateway_id: GatewayId,
    /// Where to open the relay socket.
    pub relay_ws_url: String,
    /// `gw_relay_…`: authenticates heartbeats and the relay. Shown once.
    pub relay_token: String,
    /// How often to heartbeat.
    pub heartbeat_interval_seconds: u64,
}

/// Status a gateway reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    /// Working.
    Online,
    /// Working badly or not at all.
    Error,
}

/// `POST /gateway-registry/heartbeat` (seed 000 M2).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Gateway id.
    pub gateway_id: GatewayId,
    /// `gw_relay_…`.
    pub relay_token: String,
    /// What the gateway says about itself.
    pub status: ReportedStatus,
    /// Its metrics.
    pub metrics: GatewayMetrics,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatAck {
    /// Always true.
    pub ok: bool,
    /// Settings the gateway should apply, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_update: Option<serde_json::Value>,
}

/// `DELETE /gateway-registry/deregister`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deregister {
    /// Gateway id.
    pub gateway_id: GatewayId,
    /// `gw_relay_…`.
    pub relay_token: String,
}

/// `{ok: true}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OkResponse {
    /// Always true.
    pub ok: bool,
}

/// A relay socket of a gateway.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GatewayConnection {
    /// Id.
    pub id: GatewayConnectionId,
    /// Relay instance holding it.
    pub relay_instance: String,
    /// Peer address.
    pub remote_addr: Option<String>,
    /// Opened.
    pub connected_at: DateTime<Utc>,
    /// Closed (none while open).
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Why it closed.
    pub close_reason: Option<String>,
}

/// `POST /gateways/{id}/rotate-relay-token`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRelayToken {
    /// How long the old token keeps working, 0-86400 seconds (default 300).
    pub grace_seconds: Option<u32>,
}

/// A new relay token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedRelayToken {
    /// `gw_relay_…`, shown once.
    pub relay_token: String,
    /// Until when the previous token still works.
    pub previous_valid_until: DateTime<Utc>,
}

/// Filters of the gateway list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GatewayFilter {
    /// Only gateways in this state.
    pub status: Option<GatewayStatus>,
}

/// A gateway authenticated by its relay token.
#[derive(Debug, Clone)]
pub struct AuthedGateway {
    /// Id.
    pub id: GatewayId,
    /// Organization.
    pub organization_id: OrgId,
    /// Name.
    pub name: String,
    /// Status before this call.
    pub status: GatewayStatus,
}
