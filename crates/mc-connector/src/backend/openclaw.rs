//! WebSocket client of a real OpenClaw gateway (protocol 3/4): waits for
//! `connect.challenge {nonce, ts}`, answers `req connect` as `gateway-client` / `backend`
//! with role `operator`, the gateway token and a signed Ed25519 device identity, expects
//! `hello-ok`, then correlates `req`/`res` and republishes `event` frames. Reconnects with
//! backoff when the gateway restarts; calls made while it is away fail with `UNAVAILABLE`.

use super::RpcError;
use crate::identity::write_private;
use crate::rpc::{LinkError, RpcLink};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "gateway-client";
const CLIENT_MODE: &str = "backend";
const ROLE: &str = "operator";
const SCOPES: [&str; 2] = ["operator.read", "operator.write"];
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The device identity the gateway pairs with, kept in the state directory.
#[derive(Clone)]
pub struct DeviceIdentity {
    key: SigningKey,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl DeviceIdentity {
    /// Loads `device-ed25519.key` from `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("device-ed25519.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = STANDARD.decode(text.trim())?;
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
            return Ok(Self {
                key: SigningKey::from_bytes(&seed),
            });
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        write_private(&path, STANDARD.encode(seed).as_bytes())?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// sha256 of the raw public key, hex.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.key.verifying_key().to_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `device` object of `connect`, signing
    /// `v2|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce`.
    pub fn connect_device(&self, token: &str, nonce: &str, signed_at_ms: i64) -> Value {
        let id = self.id();
        let payload = format!(
            "v2|{id}|{CLIENT_ID}|{CLIENT_MODE}|{ROLE}|{}|{signed_at_ms}|{token}|{nonce}",
            SCOPES.join(",")
        );
        let signature = self.key.sign(payload.as_bytes());
        json!({
            "id": id,
            "publicKey": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            "signedAt": signed_at_ms,
            "nonce": nonce,
        })
    }
}

/// See the module documentation.
pub struct OpenClawClient {
    url: String,
    token: String,
    device: DeviceIdentity,
    events: Arc<super::EventQueue>,
    link: RpcLink<Result<Value, RpcError>>,
}

impl std::fmt::Debug for OpenClawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClawClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The `connect` params for `nonce`.
pub fn connect_params(device: &DeviceIdentity, token: &str, nonce: &str) -> Value {
    json!({
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": CLIENT_ID, "version": env!("CARGO_PKG_VERSION"), "platform": std::env::consts::OS, "mode": CLIENT_MODE},
        "role": ROLE,
        "scopes": SCOPES,
        "caps": [],
        "commands": [],
        "permissions": {},
        "auth": {"token": token},
        "locale": "en-US",
        "userAgent": concat!("mc-connector/", env!("CARGO_PKG_VERSION")),
        "device": device.connect_device(token, nonce, chrono::Utc::now().timestamp_millis()),
    })
}

impl OpenClawClient {
    /// Starts holding a connection to the gateway at `url` until `shutdown`.
    pub fn start(
        url: String,
        token: String,
        device: DeviceIdentity,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let client = Arc::new(Self {
            url,
            token,
            device,
            events: Arc::default(),
            link: RpcLink::default(),
        });
        let supervisor = client.clone();
        tokio::spawn(async move {
            let mut attempt: u32 = 0;
            loop {
                match supervisor.session(&shutdown, &mut attempt).await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "local OpenClaw gateway connection ended")
                    }
                }
                supervisor.link.detach();
                attempt = attempt.saturating_add(1);
                let delay = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(5)))
                    .min(Duration::from_secs(10));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64() * 0.5)) => {}
                }
            }
        });
        client
    }

    /// One connection: handshake, then frames until it drops (`Ok` only on shutdown).
    async fn session(&self, shutdown: &CancellationToken, attempt: &mut u32) -> anyhow::Result<()> {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), None, true).await?;
        let nonce = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(text) = frame? {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["type"] == "event" && v["event"] == "connect.challenge" {
                        return Ok(v["payload"]["nonce"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned());
                    }
                }
            }
            anyhow::bail!("the gateway closed before its challenge")
        })
        .await
        .map_err(|_| anyhow::anyhow!("no connect.challenge within 10 s"))??;
        let connect_id = uuid::Uuid::new_v4().to_string();
        let connect = json!({"type": "req", "id": connect_id, "method": "connect",
                             "params": connect_params(&self.device, &self.token, &nonce)});
        ws.send(Message::text(connect.to_string())).await?;
        let hello = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(text) = frame? {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["type"] == "res" && v["id"] == connect_id.as_str() {
                        return Ok(v);
                    }
                }
            }
            anyhow::bail!("the gateway closed during the handshake")
        })
        .await
        .map_err(|_| anyhow::anyhow!("no answer to connect within 15 s"))??;
        if hello["ok"] != true {
            anyhow::bail!("the gateway refused connect: {}", hello["error"]);
        }
        tracing::info!(protocol = %hello["payload"]["protocol"], device = %self.device.id(), "connected to the local OpenClaw gateway");
        *attempt = 0;
        let (tx, mut rx) = mpsc::channel::<Message>(1024);
        self.link.attach(tx);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
                Some(out) = rx.recv() => ws.send(out).await?,
                frame = ws.next() => {
                    let Some(frame) = frame else { anyhow::bail!("the gateway closed the socket") };
                    match frame? {
                        Message::Text(text) => self.dispatch(&text).await,
                        Message::Close(_) => anyhow::bail!("the gateway closed the socket"),
                        _ => {}
                    }
                }
            }
        }
    }

    async fn dispatch(&self, text: &str) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            tracing::warn!("ignoring a frame from the gateway that is not JSON");
            return;
        };
        match frame["type"].as_str() {
            Some("res") => {
                let Some(id) = frame["id"].as_str() else {
                    return;
                };
                let outcome = if frame["ok"] == true {
                    Ok(frame.get("payload").cloned().unwrap_or_default())
                } else {
                    Err(RpcError::new(
                        frame["error"]["code"].as_str().unwrap_or("UNAVAILABLE"),
                        frame["error"]["message"]
                            .as_str()
                            .unwrap_or("the gateway reported an error"),
                    ))
                };
                self.link.resolve(id, outcome);
            }
            Some("event") if frame["event"].is_string() => {
                // Waits while the relay link is behind: the gateway socket is read later.
                self.events.push(frame).await;
            }
            _ => tracing::warn!("ignoring an unexpected frame from the gateway"),
        }
    }

    /// Calls `method` on the gateway.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = uuid::Uuid::new_v4().to_string();
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        match self.link.request(id, frame, CALL_TIMEOUT).await {
            Ok(outcome) => outcome,
            Err(LinkError::Disconnected) => Err(RpcError::new(
                "UNAVAILABLE",
                "the local gateway is not connected",
            )),
            Err(LinkError::Timeout) => Err(RpcError::new(
                "TIMEOUT",
                format!("{method} got no answer within 60 s"),
            )),
        }
    }

    /// Event frames.
    pub fn events(&self) -> &Arc<super::EventQueue> {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn the_device_signature_verifies_over_the_v2_string() {
        let dir = std::env::temp_dir().join(format!("mc-device-{}", uuid::Uuid::new_v4()));
        let device = DeviceIdentity::load_or_create(&dir).unwrap();
        let again = DeviceIdentity::load_or_create(&dir).unwrap();
        assert_eq!(device.id(), again.id(), "the key is kept");
        assert_eq!(device.id().len(), 64);
        let params = connect_params(&device, "tok", "n-1");
        assert_eq!(
            (
                params["client"]["id"].as_str(),
                params["client"]["mode"].as_str()
            ),
            (Some("gateway-client"), Some("backend"))
        );
        let d = &params["device"];
        let public: [u8; 32] = URL_SAFE_NO_PAD
            .decode(d["publicKey"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();
        let hex: String = Sha256::digest(public)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(d["id"], hex.as_str());
        let signed = format!(
            "v2|{hex}|gateway-client|backend|operator|operator.read,operator.write|{}|tok|n-1",
            d["signedAt"]
        );
        let sig: [u8; 64] = URL_SAFE_NO_PAD
            .decode(d["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        key.verify(signed.as_bytes(), &Signature::from_bytes(&sig))
            .unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
