//! H5 chat records and what travels between relay instances.

use crate::ids::{AgentId, BoardId, ChatMessageId, ChatSessionId, GatewayId, H5UserId, OrgId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

text_enum! {
    /// Who wrote a message.
    ChatRole {
        /// The H5 user.
        User => "user",
        /// The agent.
        Agent => "agent",
    }
}

text_enum! {
    /// Where a message is in its life.
    MessageStatus {
        /// A user message stored, not yet accepted by the gateway.
        Received => "received",
        /// A user message the gateway accepted (it has a run).
        Sent => "sent",
        /// A user message the gateway could not be given.
        Failed => "failed",
        /// An agent reply, complete.
        Completed => "completed",
        /// An agent run that ended in an error (the content is the error).
        Error => "error",
        /// An agent run that was aborted (the content is what was produced).
        Aborted => "aborted",
    }
}

/// A user's conversation with one agent (seed 000 M4 `h5_chat_sessions`).
#[derive(Debug, Clone, Serialize, Deserialize, FromRow, utoipa::ToSchema)]
pub struct ChatSession {
    /// Id.
    pub id: ChatSessionId,
    /// The user.
    pub h5_user_id: H5UserId,
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's name.
    pub agent_name: String,
    /// The gateway the conversation runs on.
    pub gateway_id: GatewayId,
    /// The OpenClaw session key (`agent:{id}:h5-{session}`).
    pub session_key: String,
    /// `active` or `closed`.
    pub status: String,
    /// The seq of its newest message (0 before the first).
    pub last_seq: i64,
    /// When the newest message was stored.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow, utoipa::ToSchema)]
pub struct ChatMessage {
    /// Id.
    pub id: ChatMessageId,
    /// Session.
    pub session_id: ChatSessionId,
    /// Position in the session: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// `user` or `agent`.
    pub role: ChatRole,
    /// Text.
    pub content: String,
    /// The client's id of a user message (`run:{runId}` for a reply).
    pub client_message_id: String,
    /// The gateway run.
    pub run_id: Option<String>,
    /// Status.
    pub status: MessageStatus,
    /// Stored.
    pub created_at: DateTime<Utc>,
}

/// A message to send (`chat` frame from an H5 client).
#[derive(Debug, Clone)]
pub struct SendChat {
    /// The agent addressed.
    pub agent_id: AgentId,
    /// Text.
    pub content: String,
    /// The conversation, when the client names one.
    pub session_id: Option<ChatSessionId>,
    /// The client's id for the message: a retry with the same id is stored once.
    pub client_message_id: Option<String>,
}

/// Where an agent is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRoute {
    /// Organization.
    pub org_id: OrgId,
    /// The agent.
    pub agent_id: AgentId,
    /// Its name.
    pub agent_name: String,
    /// Its gateway, if bound.
    pub gateway_id: Option<GatewayId>,
    /// Its id inside the gateway.
    pub openclaw_agent_id: Option<String>,
    /// The board of the assignment.
    pub board_id: BoardId,
    /// Its name.
    pub board_name: String,
}

/// Where a session stands: its newest seq and its agent.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct SessionCursor {
    /// Session.
    #[sqlx(rename = "id")]
    pub session_id: ChatSessionId,
    /// Its agent.
    pub agent_id: AgentId,
    /// Its newest seq.
    #[sqlx(rename = "last_seq")]
    pub seq: i64,
}

/// What a chat socket starts from: the user's agents and where each session stands.
#[derive(Debug, Clone)]
pub struct ChatOpening {
    /// The agents the user is assigned to.
    pub routes: Vec<AgentRoute>,
    /// The user's sessions.
    pub sessions: Vec<SessionCursor>,
}

/// A stored user message and where it goes.
#[derive(Debug)]
pub struct Accepted {
    /// The conversation.
    pub session: ChatSession,
    /// The message as stored.
    pub message: ChatMessage,
    /// Whether it had been stored before (a client retry).
    pub duplicate: bool,
    /// Its place in the gateway's backlog on this instance, given up when this is
    /// dropped (after the hand-over).
    pub backlog: Option<super::service::BacklogSlot>,
}

/// What a user's sockets receive, on any relay instance (channel `h5:user:{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatDelivery {
    /// A stored message (the user's own, from any device, or an agent's reply).
    Message {
        /// The agent of the session.
        agent_id: AgentId,
        /// The message.
        message: ChatMessage,
    },
    /// Part of a reply being written (not stored; the final `Message` replaces it).
    Delta {
        /// Session.
        session_id: ChatSessionId,
        /// Agent.
        agent_id: AgentId,
        /// The run the reply belongs to.
        run_id: String,
        /// The new text.
        delta: String,
        /// All the text so far.
        content: String,
    },
    /// A message could not be given to the agent.
    Failed {
        /// Agent.
        agent_id: AgentId,
        /// The message, with status `failed`.
        message: ChatMessage,
        /// Stable code (`AGENT_UNAVAILABLE`).
        code: String,
        /// Explanation.
        reason: String,
    },
}

/// A gateway came or went (channel `h5:org:{id}:gateways`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GatewayPresence {
    /// The gateway.
    pub gateway_id: GatewayId,
    /// Whether a relay holds its socket now.
    pub online: bool,
}

/// Live H5 sockets of a user, per relay instance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveConnections {
    /// Sockets open now, over all instances.
    pub connections: u64,
    /// Relay instance → sockets.
    pub instances: std::collections::BTreeMap<String, u64>,
}

/// `GET /h5/users/{id}` for admins: the user, assignments, live sockets and sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct H5UserLive {
    /// The user and assignments.
    #[serde(flatten)]
    pub detail: crate::identity::h5::H5UserDetail,
    /// Open sockets.
    pub live: LiveConnections,
    /// Chat sessions, newest activity first.
    pub sessions: Vec<ChatSession>,
}

/// A live chat session on a gateway (`GET /gateways/{id}/connections`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GatewayChatSession {
    /// The session.
    #[serde(flatten)]
    pub session: ChatSession,
    /// Sockets the user has open now.
    pub user_connections: u64,
}

/// `GET /gateways/{id}/connections`: relay sockets and the chat sessions running on it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayLive {
    /// Relay sockets: open ones, then recently closed ones.
    pub relay_connections: Vec<crate::gateways::GatewayConnection>,
    /// Active H5 chat sessions on the gateway, most recent activity first.
    pub chat_sessions: Vec<GatewayChatSession>,
}

/// How a gateway run's `chat` event ends (or that it is still streaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Part of the reply.
    Delta,
    /// The reply is complete.
    Final,
    /// The run was aborted.
    Aborted,
    /// The run failed.
    Error,
}

/// A gateway `chat` event of an H5 session, read once from its frame so only what chat
/// needs travels on (events of other sessions are not ours and never get this far).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayChatEvent {
    /// The H5 session (from the session key `…:h5-{id}`).
    pub session_id: ChatSessionId,
    /// The gateway run.
    pub run_id: String,
    /// Delta or how the run ended.
    pub state: RunState,
    /// The new text of a delta.
    pub delta: String,
    /// All the text so far (the reply, for a final).
    pub text: String,
    /// The gateway's error message of a failed run.
    pub error_message: Option<String>,
}

impl GatewayChatEvent {
    /// Reads an OpenClaw `event` frame: `Some` for a `chat` event of an H5 session.
    pub fn parse(frame: &serde_json::Value) -> Option<Self> {
        if frame["event"] != "chat" {
            return None;
        }
        let payload = &frame["payload"];
        let session_id = payload["sessionKey"]
            .as_str()
            .and_then(super::service::session_of_key)?;
        let run_id = payload["runId"]
            .as_str()
            .filter(|r| !r.is_empty())?
            .to_owned();
        let state = match payload["state"].as_str()? {
            "delta" => RunState::Delta,
            "final" => RunState::Final,
            "aborted" => RunState::Aborted,
            "error" => RunState::Error,
            _ => return None,
        };
        Some(Self {
            session_id,
            run_id,
            state,
            delta: payload["deltaText"].as_str().unwrap_or_default().to_owned(),
            text: message_text(&payload["message"]),
            error_message: payload["errorMessage"].as_str().map(str::to_owned),
        })
    }
}

/// The text of an OpenClaw message (`{content: [{type: "text", text}]}` or a string).
fn message_text(message: &serde_json::Value) -> String {
    use serde_json::Value;
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect(),
        _ => message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_chat_events_of_h5_sessions_are_read() {
        let session = ChatSessionId::generate();
        let frame = |key: &str, state: &str| {
            json!({"type": "event", "event": "chat", "payload": {
                "runId": "r1", "sessionKey": key, "state": state, "deltaText": "lo",
                "message": {"role": "assistant", "content": [
                    {"type": "text", "text": "hel"}, {"type": "toolCall"}, {"type": "text", "text": "lo"}]},
            }})
        };
        let key = format!("agent:main:h5-{session}");
        let event = GatewayChatEvent::parse(&frame(&key, "final")).unwrap();
        assert_eq!(event.session_id, session);
        assert_eq!(event.state, RunState::Final);
        assert_eq!(event.text, "hello");
        assert_eq!(event.delta, "lo");
        assert!(GatewayChatEvent::parse(&frame("agent:main:main", "final")).is_none());
        assert!(GatewayChatEvent::parse(&frame(&key, "thinking")).is_none());
        let mut other = frame(&key, "delta");
        other["event"] = json!("agent");
        assert!(GatewayChatEvent::parse(&other).is_none());
    }
}
