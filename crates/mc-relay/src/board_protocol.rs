//! The board sync wire protocol (seed 000 §M9 and §6 `BoardSyncMessage`): client frames,
//! and the rendering of logged events into server frames.

use chrono::Utc;
use mc_domain::Error;
use mc_domain::boards::{TaskPriority, TaskStatus};
use mc_domain::events::Event;
use mc_domain::ids::{AgentId, OrgId, TaskId};
use mc_domain::values::{LongText, Title};
use serde::Deserialize;
use serde_json::{Value, json};

/// A frame from the client.
#[derive(Debug)]
pub enum ClientFrame {
    /// First frame.
    Auth(AuthFrame),
    /// Moves a task to another column.
    TaskMove(TaskMoveFrame),
    /// Creates a task on this board.
    TaskCreate(TaskCreateFrame),
    /// After a reconnect: replay every change after `last_seq`, then continue live.
    Resume(ResumeFrame),
    /// Keep-alive; answered with `heartbeat`.
    Heartbeat,
}

/// `auth`: an access token or API key (and, for users in several organizations, the
/// organization). With `last_seq` the server replays what was missed instead of sending
/// `board.state`.
#[derive(Debug, Deserialize)]
pub struct AuthFrame {
    /// Access token or API key.
    pub token: String,
    /// Organization to act in (defaults to the token's).
    #[serde(default)]
    pub org_id: Option<OrgId>,
    /// Resume after this sequence number instead of loading the full state.
    #[serde(default)]
    pub last_seq: Option<i64>,
}

/// `task.move`.
#[derive(Debug, Deserialize)]
pub struct TaskMoveFrame {
    /// Client correlation id, echoed in the `ack` or `error`.
    #[serde(default)]
    pub id: Option<String>,
    /// The task (must be on this board).
    pub task_id: TaskId,
    /// Target status.
    pub status: TaskStatus,
    /// Position within the column.
    #[serde(default)]
    pub position: Option<f64>,
}

/// `task.create`.
#[derive(Debug, Deserialize)]
pub struct TaskCreateFrame {
    /// Client correlation id.
    #[serde(default)]
    pub id: Option<String>,
    /// Title.
    pub title: Title,
    /// Initial status (default `todo`).
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Priority (default `medium`).
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    /// Agent to assign.
    #[serde(default)]
    pub assignee_id: Option<AgentId>,
    /// Description.
    #[serde(default)]
    pub description: Option<LongText>,
}

/// `resume`.
#[derive(Debug, Deserialize)]
pub struct ResumeFrame {
    /// The last sequence number the client applied.
    pub last_seq: i64,
}

fn fields<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

impl ClientFrame {
    /// Parses a text frame; the error names the offending field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON frame: {e}"))?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or("type: missing")?
            .to_owned();
        match kind.as_str() {
            "auth" => fields(value).map(Self::Auth),
            "task.move" => fields(value).map(Self::TaskMove),
            "task.create" => fields(value).map(Self::TaskCreate),
            "resume" => fields(value).map(Self::Resume),
            "heartbeat" => Ok(Self::Heartbeat),
            other => Err(format!(
                "type: unknown frame type {other:?} (expected auth, task.move, task.create, resume or heartbeat)"
            )),
        }
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `auth_ok`.
pub fn auth_ok(board_id: &str, actor: &Value, seq: i64) -> String {
    json!({"type": "auth_ok", "board_id": board_id, "actor": actor, "seq": seq}).to_string()
}

/// `auth_error`.
pub fn auth_error(reason: &str) -> String {
    json!({"type": "auth_error", "reason": reason}).to_string()
}

/// `board.state`: the full state at `seq`.
pub fn board_state(board: &Value, tasks: &Value, seq: i64) -> String {
    json!({"type": "board.state", "board": board, "tasks": tasks, "seq": seq, "timestamp": now()})
        .to_string()
}

/// `ack` for a client command.
pub fn ack(id: Option<&str>, task: &Value) -> String {
    json!({"type": "ack", "id": id, "task": task}).to_string()
}

/// `heartbeat`.
pub fn heartbeat() -> String {
    json!({"type": "heartbeat", "timestamp": now()}).to_string()
}

/// `error {code, message}`; codes are the stable error codes in upper case, plus
/// `INVALID_MESSAGE` for frames that do not parse.
pub fn error(id: Option<&str>, code: &str, message: &str, details: &Value) -> String {
    json!({"type": "error", "id": id, "code": code, "message": message, "details": details})
        .to_string()
}

/// An error frame for a domain error.
pub fn domain_error(id: Option<&str>, err: &Error) -> String {
    let details: Vec<Value> = err
        .details()
        .iter()
        .map(|d| json!({"field": d.field, "message": d.message}))
        .collect();
    error(
        id,
        &err.code().to_ascii_uppercase(),
        &err.public_message(),
        &Value::Array(details),
    )
}

/// How a rendered event affects the socket beyond delivering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Keep going.
    Continue,
    /// The board is gone: deliver, then close.
    BoardGone,
}

/// The frame a logged board event becomes, if board clients see it.
pub fn render(event: &Event) -> Option<(String, Effect)> {
    let p = &event.payload;
    let actor = serde_json::to_value(&event.actor).unwrap_or(Value::Null);
    let ts = event
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let frame = match event.event_type.as_str() {
        "task.created" => json!({
            "type": "task.created", "seq": event.seq, "task": p["task"],
            "created_by": actor, "timestamp": ts,
        }),
        // Every change that carries the task's new state; `task.assigned` and
        // `task.completed` accompany one of these in the same commit, so they add nothing.
        "task.updated"
        | "task.status_changed"
        | "task.dependency_added"
        | "task.dependency_removed" => json!({
            "type": "task.updated", "seq": event.seq, "task_id": event.task_id,
            "changes": p.get("changes").cloned().unwrap_or_else(|| json!({})),
            "task": p["task"], "updated_by": actor, "cause": event.event_type, "timestamp": ts,
        }),
        "task.deleted" => json!({
            "type": "task.deleted", "seq": event.seq, "task_id": event.task_id,
            "deleted_by": actor, "timestamp": ts,
        }),
        "suggestion.created" => json!({
            "type": "suggestion.new", "seq": event.seq, "suggestion": p["suggestion"], "timestamp": ts,
        }),
        "board.updated" => json!({
            "type": "board.updated", "seq": event.seq, "board": p["board"],
            "changes": p.get("changes").cloned().unwrap_or_else(|| json!({})),
            "updated_by": actor, "timestamp": ts,
        }),
        "board.deleted" => {
            let frame = json!({
                "type": "board.deleted", "seq": event.seq, "deleted_by": actor, "timestamp": ts,
            });
            return Some((frame.to_string(), Effect::BoardGone));
        }
        _ => return None,
    };
    Some((frame.to_string(), Effect::Continue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_and_errors_name_the_field() {
        let f = ClientFrame::parse(r#"{"type":"task.move","task_id":"01a20673-588f-75d5-a6f0-8b6aa81f7abd","status":"review"}"#).unwrap();
        assert!(matches!(
            f,
            ClientFrame::TaskMove(TaskMoveFrame {
                status: TaskStatus::Review,
                ..
            })
        ));
        let err = ClientFrame::parse(r#"{"type":"task.move","task_id":"01a20673-588f-75d5-a6f0-8b6aa81f7abd","status":"finished"}"#).unwrap_err();
        assert!(err.starts_with("status"), "{err}");
        let err = ClientFrame::parse(r#"{"type":"task.create","title":"  "}"#).unwrap_err();
        assert!(err.starts_with("title"), "{err}");
        assert!(ClientFrame::parse(r#"{"type":"launch.missiles"}"#).is_err());
        assert!(ClientFrame::parse("not json").is_err());
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"heartbeat"}"#).unwrap(),
            ClientFrame::Heartbeat
        ));
    }
}
