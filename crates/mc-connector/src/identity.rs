//! The gateway's identity with the control plane: registered once with the registration
//! token, saved in the state directory, reused on restart, renewed when the control plane
//! no longer accepts it (the gateway was removed or its relay token rotated away).

use crate::config::ConnectorConfig;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What registration returned, as saved in `identity.json`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// The control plane it was registered with.
    pub api_server: String,
    /// Organization.
    pub organization_id: String,
    /// Gateway id.
    pub gateway_id: String,
    /// `gw_relay_…`.
    pub relay_token: String,
    /// Relay socket URL.
    pub relay_ws_url: String,
    /// Heartbeat period the control plane asked for.
    pub heartbeat_interval_seconds: u64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("gateway_id", &self.gateway_id)
            .field("relay_ws_url", &self.relay_ws_url)
            .finish_non_exhaustive()
    }
}

fn identity_path(dir: &Path) -> PathBuf {
    dir.join("identity.json")
}

/// Writes `bytes` to `path` atomically (temp file + rename), readable only by the owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("state path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("saving {}", path.display()))?;
    Ok(())
}

/// The saved identity, if it belongs to this control plane and organization.
pub fn load(config: &ConnectorConfig) -> Option<Identity> {
    let text = std::fs::read_to_string(identity_path(&config.state_dir)).ok()?;
    let saved: Identity = serde_json::from_str(&text)
        .inspect_err(|e| tracing::warn!(error = %e, "ignoring an unreadable identity file"))
        .ok()?;
    (saved.api_server == config.api_server && saved.organization_id == config.organization_id)
        .then_some(saved)
}

/// HTTP calls to the registry.
#[derive(Debug, Clone)]
pub struct Registry {
    http: reqwest::Client,
    config: ConnectorConfig,
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The control plane refused the credentials (401/403/404): register again.
    #[error("the control plane no longer accepts this gateway ({0})")]
    Rejected(u16),
    /// Anything else: try again later.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Registry {
    /// A client for `config.api_server`.
    pub fn new(config: ConnectorConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, config })
    }

    /// The saved identity, or a new registration (saved before it is returned).
    pub async fn identity(&self) -> anyhow::Result<Identity> {
        if let Some(saved) = load(&self.config) {
            return Ok(self.with_relay_override(saved));
        }
        self.register().await
    }

    fn with_relay_override(&self, mut identity: Identity) -> Identity {
        if let Some(relay) = &self.config.relay_url {
            identity.relay_ws_url = format!(
                "{}/ws/gateway/{}/relay",
                relay.trim_end_matches('/'),
                identity.gateway_id
            );
        }
        identity
    }

    /// Registers with the registration token and saves the identity.
    pub async fn register(&self) -> anyhow::Result<Identity> {
        let Some(token) = &self.config.registration_token else {
            bail!(
                "no saved identity in {} and no registration token (mission_control.registration_token / MC_REGISTRATION_TOKEN)",
                self.config.state_dir.display()
            );
        };
        let body = json!({
            "organization_id": self.config.organization_id,
            "registration_token": token,
            "name": self.config.name,
            "url": self.config.openclaw_url,
            "workspace_root": self.config.workspace_root,
            "version": env!("CARGO_PKG_VERSION"),
            "capabilities": ["chat", "agents", "api.request"],
        });
        let response = self
            .http
            .post(format!(
                "{}/api/v1/gateway-registry/register",
                self.config.api_server
            ))
            .json(&body)
            .send()
            .await
            .context("reaching the control plane")?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "registration refused ({status}): {}",
                answer["error"]["message"]
                    .as_str()
                    .unwrap_or("no reason given")
            );
        }
        let identity = Identity {
            api_server: self.config.api_server.clone(),
            organization_id: self.config.organization_id.clone(),
            gateway_id: answer["gateway_id"].as_str().unwrap_or_default().to_owned(),
            relay_token: answer["relay_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            relay_ws_url: answer["relay_ws_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            heartbeat_interval_seconds: answer["heartbeat_interval_seconds"].as_u64().unwrap_or(30),
        };
        if identity.gateway_id.is_empty() || identity.relay_token.is_empty() {
            bail!("the registration answer lacks gateway_id or relay_token");
        }
        write_private(
            &identity_path(&self.config.state_dir),
            &serde_json::to_vec_pretty(&identity)?,
        )?;
        tracing::info!(gateway_id = %identity.gateway_id, "registered with the control plane");
        Ok(self.with_relay_override(identity))
    }

    /// Sends one heartbeat; returns a new heartbeat period if the control plane sent one.
    pub async fn heartbeat(
        &self,
        identity: &Identity,
        metrics: Value,
    ) -> Result<Option<u64>, RegistryError> {
        let response = self
            .http
            .post(format!(
                "{}/api/v1/gateway-registry/heartbeat",
                self.config.api_server
            ))
            .json(&json!({
                "gateway_id": identity.gateway_id,
                "relay_token": identity.relay_token,
                "status": "online",
                "metrics": metrics,
            }))
            .send()
            .await
            .map_err(|e| RegistryError::Other(e.into()))?;
        let status = response.status().as_u16();
        if matches!(status, 401 | 403 | 404) {
            return Err(RegistryError::Rejected(status));
        }
        if !response.status().is_success() {
            return Err(RegistryError::Other(anyhow::anyhow!(
                "heartbeat answered {status}"
            )));
        }
        let ack: Value = response.json().await.unwrap_or_default();
        Ok(ack["config_update"]["heartbeat_interval_seconds"].as_u64())
    }
}
