//! The connector's configuration: the seed's `gateway-config.yaml` plus environment
//! overrides, validated at start with every problem named at once.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `mission_control:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MissionControlSection {
    api_server: Option<String>,
    organization_id: Option<String>,
    registration_token: Option<String>,
    /// Overrides the relay URL the API hands out (split-horizon networks, tests).
    relay_url: Option<String>,
}

/// `gateway:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    name: Option<String>,
    workspace_root: Option<String>,
    reconnect_max_retries: Option<i64>,
    reconnect_base_interval_seconds: Option<f64>,
    reconnect_max_interval_seconds: Option<f64>,
    heartbeat_interval_seconds: Option<u64>,
}

/// `openclaw:` section: the local gateway this connector bridges to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenClawSection {
    url: Option<String>,
    token: Option<String>,
}

/// `connector:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorSection {
    state_dir: Option<String>,
    proxy_addr: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    mission_control: MissionControlSection,
    #[serde(default)]
    gateway: GatewaySection,
    #[serde(default)]
    openclaw: OpenClawSection,
    #[serde(default)]
    connector: ConnectorSection,
}

/// Validated settings.
#[derive(Clone)]
pub struct ConnectorConfig {
    /// Control-plane API base URL, no trailing slash.
    pub api_server: String,
    /// The organization the gateway belongs to.
    pub organization_id: String,
    /// `gw_reg_…`, needed to register (not once an identity is saved).
    pub registration_token: Option<String>,
    /// Relay URL override.
    pub relay_url: Option<String>,
    /// Gateway name (unique in the organization).
    pub name: String,
    /// Reported workspace root.
    pub workspace_root: Option<String>,
    /// Reconnect attempts in a row before giving up; `None`: unlimited.
    pub reconnect_max_retries: Option<u64>,
    /// First reconnect delay.
    pub reconnect_base: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// Heartbeat period until the control plane says otherwise.
    pub heartbeat_interval: Duration,
    /// Local OpenClaw gateway (`ws://127.0.0.1:18789`) and its token.
    pub openclaw_url: String,
    /// Token for the local OpenClaw gateway.
    pub openclaw_token: Option<String>,
    /// Where the identity and device key are kept.
    pub state_dir: PathBuf,
    /// Loopback HTTP proxy for agents' REST calls.
    pub proxy_addr: SocketAddr,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens stay out of logs.
        f.debug_struct("ConnectorConfig")
            .field("api_server", &self.api_server)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("openclaw_url", &self.openclaw_url)
            .field("state_dir", &self.state_dir)
            .field("proxy_addr", &self.proxy_addr)
            .finish_non_exhaustive()
    }
}

/// Every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("mc-connector configuration is invalid:\n{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

fn pick(env: &dyn Fn(&str) -> Option<String>, key: &str, file: Option<String>) -> Option<String> {
    env(key).filter(|v| !v.trim().is_empty()).or(file)
}

fn seconds(problems: &mut Vec<String>, key: &str, value: f64, min: f64) -> Duration {
    if !value.is_finite() || value < min || value > 86_400.0 {
        problems.push(format!("{key} must be between {min} and 86400 seconds"));
        return Duration::from_secs(1);
    }
    Duration::from_secs_f64(value)
}

impl ConnectorConfig {
    /// Reads `path` (when it exists; `required` makes a missing file an error) and the
    /// environment through `env`. Variables: `MC_API_SERVER`, `MC_ORGANIZATION_ID`,
    /// `MC_REGISTRATION_TOKEN`, `MC_RELAY_URL`, `GATEWAY_NAME`, `OPENCLAW_GATEWAY_URL`,
    /// `OPENCLAW_GATEWAY_TOKEN`, `MC_CONNECTOR_STATE_DIR`, `MC_CONNECTOR_PROXY_ADDR`.
    pub fn load(
        path: &Path,
        required: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => serde_saphyr::from_str::<FileConfig>(&text)
                .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                FileConfig::default()
            }
            Err(e) => return Err(ConfigError(vec![format!("{}: {e}", path.display())])),
        };
        Self::from_parts(file, env)
    }

    fn from_parts(
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mc = file.mission_control;
        let gw = file.gateway;
        let api_server = pick(env, "MC_API_SERVER", mc.api_server).unwrap_or_default();
        if !(api_server.starts_with("http://") || api_server.starts_with("https://")) {
            problems.push(
                "mission_control.api_server (MC_API_SERVER) must be an http(s) URL".to_owned(),
            );
        }
        let organization_id =
            pick(env, "MC_ORGANIZATION_ID", mc.organization_id).unwrap_or_default();
        if uuid::Uuid::parse_str(organization_id.trim()).is_err() {
            problems.push(
                "mission_control.organization_id (MC_ORGANIZATION_ID) must be a UUID".to_owned(),
            );
        }
        let relay_url = pick(env, "MC_RELAY_URL", mc.relay_url);
        if relay_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("ws://") || u.starts_with("wss://")))
        {
            problems
                .push("mission_control.relay_url (MC_RELAY_URL) must be a ws(s) URL".to_owned());
        }
        let name = pick(env, "GATEWAY_NAME", gw.name).unwrap_or_default();
        if name.trim().is_empty() || name.chars().count() > 128 {
            problems.push("gateway.name (GATEWAY_NAME) must be 1-128 characters".to_owned());
        }
        let reconnect_max_retries = match gw.reconnect_max_retries.unwrap_or(-1) {
            -1 => None,
            n if n >= 0 => Some(n as u64),
            _ => {
                problems.push("gateway.reconnect_max_retries must be -1 or at least 0".to_owned());
                None
            }
        };
        let reconnect_base = seconds(
            &mut problems,
            "gateway.reconnect_base_interval_seconds",
            gw.reconnect_base_interval_seconds.unwrap_or(1.0),
            0.01,
        );
        let reconnect_max = seconds(
            &mut problems,
            "gateway.reconnect_max_interval_seconds",
            gw.reconnect_max_interval_seconds.unwrap_or(10.0),
            0.01,
        );
        if reconnect_max < reconnect_base {
            problems.push(
                "gateway.reconnect_max_interval_seconds must be at least the base interval"
                    .to_owned(),
            );
        }
        let heartbeat_interval = seconds(
            &mut problems,
            "gateway.heartbeat_interval_seconds",
            gw.heartbeat_interval_seconds.unwrap_or(30) as f64,
            1.0,
        );
        let openclaw_url = pick(env, "OPENCLAW_GATEWAY_URL", file.openclaw.url)
            .unwrap_or_else(|| "ws://127.0.0.1:18789".to_owned());
        if !(openclaw_url.starts_with("ws://") || openclaw_url.starts_with("wss://")) {
            problems.push("openclaw.url (OPENCLAW_GATEWAY_URL) must be a ws(s) URL".to_owned());
        }
        let state_dir = pick(env, "MC_CONNECTOR_STATE_DIR", file.connector.state_dir)
            .unwrap_or_else(|| ".mc-connector".to_owned());
        let proxy_addr = pick(env, "MC_CONNECTOR_PROXY_ADDR", file.connector.proxy_addr)
            .unwrap_or_else(|| "127.0.0.1:18790".to_owned());
        let proxy_addr = proxy_addr.parse().unwrap_or_else(|_| {
            problems.push(
                "connector.proxy_addr (MC_CONNECTOR_PROXY_ADDR) must be host:port".to_owned(),
            );
            SocketAddr::from(([127, 0, 0, 1], 18790))
        });
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            api_server: api_server.trim_end_matches('/').to_owned(),
            organization_id: organization_id.trim().to_owned(),
            registration_token: pick(env, "MC_REGISTRATION_TOKEN", mc.registration_token),
            relay_url,
            name: name.trim().to_owned(),
            workspace_root: gw.workspace_root,
            reconnect_max_retries,
            reconnect_base,
            reconnect_max,
            heartbeat_interval,
            openclaw_url,
            openclaw_token: pick(env, "OPENCLAW_GATEWAY_TOKEN", file.openclaw.token),
            state_dir: PathBuf::from(state_dir),
            proxy_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn reads_the_seed_file_and_lets_the_environment_override_it() {
        let yaml = r#"
mission_control:
  api_server: "https://api.example.com/"
  organization_id: "550e8400-e29b-41d4-a716-446655440000"
  registration_token: "gw_reg_abc"
gateway:
  name: "office-gateway-shenzhen-01"
  workspace_root: "/opt/openclaw/workspace"
  reconnect_max_retries: -1
  reconnect_base_interval_seconds: 1
  reconnect_max_interval_seconds: 10
  heartbeat_interval_seconds: 30
"#;
        let file: FileConfig = serde_saphyr::from_str(yaml).unwrap();
        let config = ConnectorConfig::from_parts(file.clone(), &no_env).unwrap();
        assert_eq!(config.api_server, "https://api.example.com");
        assert_eq!(config.reconnect_max_retries, None);
        assert_eq!(config.reconnect_max, Duration::from_secs(10));
        assert_eq!(config.proxy_addr.port(), 18790);
        let env = |k: &str| (k == "GATEWAY_NAME").then(|| "renamed".to_owned());
        assert_eq!(
            ConnectorConfig::from_parts(file, &env).unwrap().name,
            "renamed"
        );
    }

    #[test]
    fn names_every_problem() {
        let yaml = "gateway:\n  reconnect_base_interval_seconds: 20\n  reconnect_max_interval_seconds: 5\n";
        let file: FileConfig = serde_saphyr::from_str(yaml).unwrap();
        let err = ConnectorConfig::from_parts(file, &no_env).unwrap_err();
        let text = err.to_string();
        for needle in [
            "api_server",
            "organization_id",
            "gateway.name",
            "at least the base",
        ] {
            assert!(text.contains(needle), "{text}");
        }
        assert!(serde_saphyr::from_str::<FileConfig>("gateway:\n  colour: red\n").is_err());
    }
}
