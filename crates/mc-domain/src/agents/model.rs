//! Agent types.

use crate::ids::{AgentId, ApiKeyId, BoardId, GatewayId};
use crate::values::DisplayName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an agent is doing, as its gateway reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Reachable through a connected gateway.
    Online,
    /// Its gateway is gone, or it was never seen.
    Offline,
    /// Working at capacity.
    Busy,
    /// Reports a problem.
    Error,
}

impl AgentStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Offline => "offline",
            AgentStatus::Busy => "busy",
            AgentStatus::Error => "error",
        }
    }

    /// Parses the stored form (unknown values read as `error`).
    pub fn parse(stored: &str) -> Self {
        match stored {
            "online" => AgentStatus::Online,
            "offline" => AgentStatus::Offline,
            "busy" => AgentStatus::Busy,
            _ => AgentStatus::Error,
        }
    }
}

/// An agent.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// The board it works on, if any.
    pub board_id: Option<BoardId>,
    /// The gateway that runs it.
    pub gateway_id: Option<GatewayId>,
    /// Its id inside the OpenClaw gateway (`main`, `research`, …).
    pub openclaw_agent_id: Option<String>,
    /// The OpenClaw session the control plane talks to it in.
    pub session_key: Option<String>,
    /// Status.
    pub status: AgentStatus,
    /// When its gateway last reported it.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// What it can do (free-form tags).
    pub capabilities: serde_json::Value,
    /// Tasks it is working on.
    pub current_load: i32,
    /// Its current API key (newest neither revoked nor expired), if it has one.
    pub api_key_id: Option<ApiKeyId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /agents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Display name.
    pub name: DisplayName,
    /// Board.
    pub board_id: Option<BoardId>,
    /// Gateway that runs it.
    pub gateway_id: Option<GatewayId>,
    /// Its id inside the gateway (needs `gateway_id`).
    pub openclaw_agent_id: Option<String>,
    /// OpenClaw session key (default `agent:{openclaw_agent_id}:mc-{id}`, or
    /// `agent:mc-{id}:main` without an OpenClaw id).
    pub session_key: Option<String>,
    /// Capability tags (at most 50, each 1-64 characters).
    pub capabilities: Option<Vec<String>>,
}

/// Body of `PATCH /agents/{id}`; absent fields stay, `null` clears.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// Display name.
    pub name: Option<DisplayName>,
    /// Board (`null`: none).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<BoardId>)]
    pub board_id: Option<Option<BoardId>>,
    /// Gateway (`null`: unbind; the agent goes offline).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<GatewayId>)]
    pub gateway_id: Option<Option<GatewayId>>,
    /// Id inside the gateway (`null` clears).
    #[serde(default, deserialize_with = "crate::values::nullable")]
    #[schema(value_type = Option<String>)]
    pub openclaw_agent_id: Option<Option<String>>,
    /// Session key.
    pub session_key: Option<String>,
    /// Capability tags.
    pub capabilities: Option<Vec<String>>,
    /// Status (an admin can mark an agent `error` or `offline`; gateways report the rest).
    pub status: Option<AgentStatus>,
}

/// Filters of the agent list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilter {
    /// Only agents in this state.
    pub status: Option<AgentStatus>,
    /// Only agents of this gateway.
    pub gateway_id: Option<GatewayId>,
    /// Only agents of this board.
    pub board_id: Option<BoardId>,
}

/// One agent as a gateway reports it in `agents.list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedAgent {
    /// Its OpenClaw id.
    pub openclaw_agent_id: String,
    /// Its name (the id when the gateway gives none).
    pub name: String,
}

impl ReportedAgent {
    /// Reads an `agents.list` payload `{agents: [{id, name?, identity?: {name?}}]}`,
    /// skipping entries without a usable id and repeats of an id.
    pub fn from_agents_list(payload: &serde_json::Value) -> Vec<Self> {
        let Some(list) = payload["agents"].as_array() else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        list.iter()
            .filter_map(|a| {
                let id = a["id"].as_str()?.trim();
                if id.is_empty() || id.chars().count() > 200 {
                    return None;
                }
                let name = a["name"]
                    .as_str()
                    .or_else(|| a["identity"]["name"].as_str())
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(id);
                if !seen.insert(id.to_owned()) {
                    return None;
                }
                Some(Self {
                    openclaw_agent_id: id.to_owned(),
                    name: name.chars().take(200).collect(),
                })
            })
            .collect()
    }
}

/// What linking a gateway's report changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LinkSummary {
    /// Agents created for ids seen the first time.
    pub created: u32,
    /// Known agents that were offline (or in error) and are back online.
    pub online: u32,
    /// Agents of the gateway it no longer reports, marked offline.
    pub offline: u32,
}
