//! A stand-in gateway with N scripted agents (`sim-1` … `sim-N`). `chat.send` is checked
//! like OpenClaw checks it (required `sessionKey`, `message`, `idempotencyKey`; unknown
//! fields rejected), acknowledged `{runId, status: "started"}`, and answered with `chat`
//! events: `delta`s carrying `deltaText` and the accumulated `message`, then `final`, with
//! a `seq` that has gaps, as the real gateway's does. The reply is deterministic:
//! `"<agent name> heard: <message>"`.

use super::EventQueue;
use super::RpcError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Fields `chat.send` accepts (its schema is closed).
const CHAT_SEND_FIELDS: [&str; 7] = [
    "sessionKey",
    "message",
    "idempotencyKey",
    "thinking",
    "deliver",
    "attachments",
    "timeoutMs",
];
/// Idempotency keys remembered.
const MAX_REMEMBERED_RUNS: usize = 100_000;
/// Messages kept per session.
const MAX_TRANSCRIPT: usize = 200;
/// Pieces a reply is streamed in.
const DELTAS: usize = 3;

/// See the module documentation.
#[derive(Debug)]
pub struct Simulated {
    agents: Vec<(String, String)>,
    events: Arc<EventQueue>,
    seq: AtomicU64,
    /// idempotencyKey → runId, so a retried send starts nothing new.
    runs: Mutex<HashMap<String, String>>,
    /// sessionKey → transcript.
    sessions: Mutex<HashMap<String, Vec<Value>>>,
}

/// The deterministic reply of `agent_name` to `message`.
pub fn reply_for(agent_name: &str, message: &str) -> String {
    format!("{agent_name} heard: {message}")
}

impl Simulated {
    /// `n` agents.
    pub fn new(n: usize) -> Self {
        let agents = (1..=n)
            .map(|i| (format!("sim-{i}"), format!("Simulated agent {i}")))
            .collect();
        Self {
            agents,
            events: Arc::default(),
            seq: AtomicU64::new(0),
            runs: Mutex::default(),
            sessions: Mutex::default(),
        }
    }

    /// Event frames.
    pub fn events(&self) -> &Arc<EventQueue> {
        &self.events
    }

    fn next_seq(&self) -> u64 {
        // Steps of 2: OpenClaw shares the counter with `agent` events, so chat seqs have gaps.
        self.seq.fetch_add(2, Ordering::Relaxed) + 2
    }

    /// Serves one RPC.
    pub fn call(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        match method {
            "health" => Ok(json!({"ok": true, "simulated": true, "agents": self.agents.len()})),
            "agents.list" => Ok(json!({
                "defaultId": self.agents.first().map(|a| a.0.clone()),
                "mainKey": "main",
                "scope": "per-sender",
                "agents": self.agents.iter().map(|(id, name)| json!({"id": id, "name": name}))
                    .collect::<Vec<_>>(),
            })),
            "sessions.list" => {
                let sessions = self.sessions.lock().expect("sessions lock");
                let mut keys: Vec<&String> = sessions.keys().collect();
                keys.sort();
                Ok(json!({"sessions": keys.iter().map(|k| json!({"key": k})).collect::<Vec<_>>()}))
            }
            "chat.history" => {
                let key = params["sessionKey"]
                    .as_str()
                    .ok_or_else(|| RpcError::new("INVALID_REQUEST", "sessionKey is required"))?;
                let sessions = self.sessions.lock().expect("sessions lock");
                Ok(
                    json!({"sessionKey": key, "messages": sessions.get(key).cloned().unwrap_or_default()}),
                )
            }
            "chat.send" => self.chat_send(params),
            other => Err(RpcError::new(
                "INVALID_REQUEST",
                format!("unknown method: {other}"),
            )),
        }
    }

    fn chat_send(&self, params: &Value) -> Result<Value, RpcError> {
        let Some(obj) = params.as_object() else {
            return Err(RpcError::new("INVALID_REQUEST", "params must be an object"));
        };
        if let Some(unknown) = obj.keys().find(|k| !CHAT_SEND_FIELDS.contains(&k.as_str())) {
            return Err(RpcError::new(
                "INVALID_REQUEST",
                format!("invalid chat.send params: unexpected property '{unknown}'"),
            ));
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let (Some(session), Some(message), Some(idem)) =
            (text("sessionKey"), text("message"), text("idempotencyKey"))
        else {
            return Err(RpcError::new(
                "INVALID_REQUEST",
                "invalid chat.send params: sessionKey, message and idempotencyKey are required",
            ));
        };
        // `agent:<agentId>:<rest>`; anything else goes to the default agent.
        let agent_id = session
            .strip_prefix("agent:")
            .and_then(|r| r.split(':').next())
            .filter(|id| self.agents.iter().any(|a| a.0 == *id))
            .or_else(|| self.agents.first().map(|a| a.0.as_str()))
            .ok_or_else(|| RpcError::new("UNAVAILABLE", "no agents configured"))?
            .to_owned();
        {
            let runs = self.runs.lock().expect("runs lock");
            if let Some(run) = runs.get(idem) {
                return Ok(json!({"runId": run, "status": "in_flight"}));
            }
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        {
            let mut runs = self.runs.lock().expect("runs lock");
            // Retries come soon after the first send; an old key is not worth memory.
            if runs.len() >= MAX_REMEMBERED_RUNS {
                runs.clear();
            }
            runs.insert(idem.to_owned(), run_id.clone());
        }
        let name = self
            .agents
            .iter()
            .find(|a| a.0 == agent_id)
            .map(|a| a.1.clone())
            .unwrap_or_default();
        let reply = reply_for(&name, message);
        {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            let transcript = sessions.entry(session.to_owned()).or_default();
            transcript.extend([
                json!({"role": "user", "content": [{"type": "text", "text": message}]}),
                json!({"role": "assistant", "content": [{"type": "text", "text": reply}]}),
            ]);
            // A long-running demo keeps only the recent history, like a compacted session.
            if transcript.len() > MAX_TRANSCRIPT {
                let excess = transcript.len() - MAX_TRANSCRIPT;
                transcript.drain(..excess);
            }
        }
        self.stream(&run_id, session, &agent_id, &reply);
        Ok(json!({"runId": run_id, "status": "started"}))
    }

    /// Publishes the reply as `chat` events (after the ack: the caller sends the ack first
    /// because events go out on the same socket in order).
    fn stream(&self, run_id: &str, session: &str, agent_id: &str, reply: &str) {
        let chars: Vec<char> = reply.chars().collect();
        let step = chars.len().div_ceil(DELTAS).max(1);
        let mut sent = 0;
        let frame = |state: &str, delta: Option<String>, upto: usize, seq: u64| {
            let text: String = chars[..upto].iter().collect();
            let mut payload = json!({
                "runId": run_id, "sessionKey": session, "agentId": agent_id, "seq": seq,
                "state": state,
                "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            });
            if let Some(delta) = delta {
                payload["deltaText"] = json!(delta);
            }
            json!({"type": "event", "event": "chat", "payload": payload, "seq": seq})
        };
        let mut frames = Vec::with_capacity(DELTAS + 1);
        while sent < chars.len() {
            let upto = (sent + step).min(chars.len());
            let delta: String = chars[sent..upto].iter().collect();
            frames.push(frame("delta", Some(delta), upto, self.next_seq()));
            sent = upto;
        }
        frames.push(frame("final", None, chars.len(), self.next_seq()));
        // Queued in order by a task: a full queue makes it wait, never drop a frame.
        let events = self.events.clone();
        tokio::spawn(async move {
            for frame in frames {
                events.push(frame).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chat_send_is_checked_acked_and_streamed_deterministically() {
        let sim = Simulated::new(2);
        let events = sim.events().clone();
        let bad = sim.call("chat.send", &json!({"sessionKey": "agent:sim-2:x", "message": "hi", "idempotencyKey": "k", "metadata": {}}))
            .unwrap_err();
        assert!(bad.message.contains("metadata"));
        assert_eq!(
            sim.call(
                "chat.send",
                &json!({"sessionKey": "agent:sim-2:x", "message": "hi"})
            )
            .unwrap_err()
            .code,
            "INVALID_REQUEST"
        );
        let ack = sim.call("chat.send", &json!({"sessionKey": "agent:sim-2:x", "message": "hello there", "idempotencyKey": "k1"}))
            .unwrap();
        assert_eq!(ack["status"], "started");
        let mut text = String::new();
        let mut last_seq = 0;
        loop {
            let f = events.next().await.unwrap();
            let seq = f["seq"].as_u64().unwrap();
            assert!(seq > last_seq + 1, "seq has gaps");
            last_seq = seq;
            assert_eq!(f["payload"]["agentId"], "sim-2");
            if f["payload"]["state"] == "final" {
                assert_eq!(f["payload"]["message"]["content"][0]["text"], text.as_str());
                break;
            }
            text.push_str(f["payload"]["deltaText"].as_str().unwrap());
        }
        assert_eq!(text, reply_for("Simulated agent 2", "hello there"));
        let again = sim.call("chat.send", &json!({"sessionKey": "agent:sim-2:x", "message": "hello there", "idempotencyKey": "k1"}))
            .unwrap();
        assert_eq!(again["runId"], ack["runId"]);
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), events.next());
        assert!(nothing.await.is_err(), "a retried send starts no new run");
        let history = sim
            .call("chat.history", &json!({"sessionKey": "agent:sim-2:x"}))
            .unwrap();
        assert_eq!(history["messages"].as_array().unwrap().len(), 2);
    }
}
