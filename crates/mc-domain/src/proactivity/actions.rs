//! What a rule does when it fires, checked on save, and the templates its texts use.
//!
//! Strings in an action config may hold `{field}` placeholders (`"Overdue: {task.title}"`),
//! filled from the same facts the conditions read; a string that is exactly one
//! placeholder (`"{task.unblocked_task_ids}"`) takes the fact's value as it is (an array,
//! an id, or null).

use super::conditions::{Needs, check_field, lookup};
use super::model::{ActionType, SubjectKind, SuggestionType};
use crate::boards::TaskPriority;
use crate::error::FieldError;
use crate::ids::AgentId;
use serde_json::{Map, Value};

/// What accepting a suggestion does (`payload.on_accept`, or an agent's `payload`).
pub const ACCEPT_ACTIONS: &str = "none, set_priority, assign_tasks, create_task";

/// A checked action config.
#[derive(Debug, Clone)]
pub enum Action {
    /// Makes a suggestion.
    Suggest(SuggestConfig),
    /// Records a notification.
    Notify(NotifyConfig),
    /// Assigns the subject task.
    AutoAssign {
        /// This agent, or the least loaded agent of the task's board.
        agent_id: Option<AgentId>,
    },
}

/// `create_suggestion` config.
#[derive(Debug, Clone)]
pub struct SuggestConfig {
    /// Kind.
    pub suggestion_type: SuggestionType,
    /// Headline template.
    pub title: String,
    /// Details template.
    pub description: Option<String>,
    /// Urgency.
    pub priority: TaskPriority,
    /// 0 to 1.
    pub confidence: f64,
    /// What the suggestion is about (default: the event's task, else agent, else board).
    pub subject: Option<SubjectKind>,
    /// Hours until it expires (default `PROACTIVITY_SUGGESTION_EXPIRY_HOURS`).
    pub expires_in_hours: Option<i64>,
    /// What accepting does (templates inside).
    pub on_accept: Value,
}

/// `send_notification` config.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// `in_app`, `email` or `webhook`.
    pub channel: String,
    /// Roles or addresses.
    pub recipients: Vec<String>,
    /// Title template.
    pub title: String,
    /// Body template.
    pub body: Option<String>,
    /// What it is about.
    pub subject: Option<SubjectKind>,
}

impl Action {
    /// The subject the config names, if any.
    pub fn subject(&self) -> Option<SubjectKind> {
        match self {
            Action::Suggest(c) => c.subject,
            Action::Notify(c) => c.subject,
            Action::AutoAssign { .. } => Some(SubjectKind::Task),
        }
    }

    /// The fact scopes its templates read.
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        let mut note = |s: &str| {
            for p in placeholders(s) {
                needs.note(p);
            }
        };
        match self {
            Action::Suggest(c) => {
                note(&c.title);
                c.description.as_deref().map(&mut note);
                visit_strings(&c.on_accept, &mut note);
            }
            Action::Notify(c) => {
                note(&c.title);
                c.body.as_deref().map(&mut note);
            }
            Action::AutoAssign { .. } => needs.task = true,
        }
        needs
    }
}

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| visit_strings(i, f)),
        Value::Object(map) => map.values().for_each(|i| visit_strings(i, f)),
        _ => {}
    }
}

/// The `{...}` placeholders of a template.
fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    at: &'static str,
}

impl<'a> Reader<'a> {
    fn new(v: &'a Value, at: &'static str) -> Result<Self, FieldError> {
        match v {
            Value::Object(map) => Ok(Self { map, at }),
            _ => Err(FieldError::new(at, "must be an object")),
        }
    }

    fn err(&self, key: &str, m: impl Into<String>) -> FieldError {
        FieldError::new(format!("{}.{key}", self.at), m)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), FieldError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(k, format!("unknown key; expected {}", allowed.join(", ")))),
            None => Ok(()),
        }
    }

    fn template(
        &self,
        key: &str,
        max: usize,
        required: bool,
    ) -> Result<Option<String>, FieldError> {
        match self.map.get(key) {
            None if required => Err(self.err(key, "required")),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                check_template(s).map_err(|m| self.err(key, m))?;
                Ok(Some(s.clone()))
            }
            Some(_) => Err(self.err(key, format!("must be text of 1 to {max} characters"))),
        }
    }

    fn parsed<T: std::str::FromStr<Err = String>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, FieldError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|m: String| self.err(key, m)),
            Some(_) => Err(self.err(key, "must be a string")),
        }
    }
}

fn check_template(s: &str) -> Result<(), String> {
    if s.matches('{').count() != s.matches('}').count() {
        return Err("unbalanced { } in template".into());
    }
    for p in placeholders(s) {
        check_field(p)?;
    }
    Ok(())
}

/// Parses a rule's `action_config` for `action_type`.
pub fn parse(action_type: ActionType, config: &Value) -> Result<Action, FieldError> {
    let r = Reader::new(config, "action_config")?;
    match action_type {
        ActionType::CreateSuggestion => {
            r.only(&[
                "suggestion_type",
                "title",
                "description",
                "priority",
                "confidence",
                "subject",
                "expires_in_hours",
                "on_accept",
            ])?;
            let suggestion_type = r
                .parsed::<SuggestionType>("suggestion_type")?
                .ok_or_else(|| r.err("suggestion_type", "required"))?;
            let confidence = match config.get("confidence") {
                None => 0.5,
                Some(v) => v
                    .as_f64()
                    .filter(|c| (0.0..=1.0).contains(c))
                    .ok_or_else(|| r.err("confidence", "must be a number from 0 to 1"))?,
            };
            let expires_in_hours = match config.get("expires_in_hours") {
                None => None,
                Some(v) => Some(
                    v.as_i64()
                        .filter(|h| (1..=8760).contains(h))
                        .ok_or_else(|| r.err("expires_in_hours", "must be 1 to 8760"))?,
                ),
            };
            let on_accept = config
                .get("on_accept")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"action": "none"}));
            check_accept(&on_accept, "action_config.on_accept", true)?;
            Ok(Action::Suggest(SuggestConfig {
                suggestion_type,
                title: r.template("title", 512, true)?.unwrap_or_default(),
                description: r.template("description", 10_000, false)?,
                priority: r.parsed("priority")?.unwrap_or(TaskPriority::Medium),
                confidence,
                subject: r.parsed("subject")?,
                expires_in_hours,
                on_accept,
            }))
        }
        ActionType::SendNotification => {
            r.only(&["channel", "recipients", "title", "body", "subject"])?;
            let channel = match config.get("channel") {
                None => "in_app".to_owned(),
                Some(Value::String(c)) if matches!(c.as_str(), "in_app" | "email" | "webhook") => {
                    c.clone()
                }
                Some(_) => return Err(r.err("channel", "must be in_app, email or webhook")),
            };
            let recipients = match config.get("recipients") {
                None => vec!["admin".to_owned()],
                Some(Value::Array(items))
                    if !items.is_empty()
                        && items.len() <= 50
                        && items.iter().all(|i| {
                            i.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 254)
                        }) =>
                {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                }
                Some(_) => {
                    return Err(r.err(
                        "recipients",
                        "must be 1 to 50 roles or addresses, like [\"admin\", \"ops@example.com\"]",
                    ));
                }
            };
            Ok(Action::Notify(NotifyConfig {
                channel,
                recipients,
                title: r.template("title", 512, true)?.unwrap_or_default(),
                body: r.template("body", 10_000, false)?,
                subject: r.parsed("subject")?,
            }))
        }
        ActionType::AutoAssign => {
            r.only(&["strategy", "agent_id"])?;
            match config.get("strategy") {
                None => {}
                Some(Value::String(s)) if s == "least_loaded" => {}
                Some(_) => return Err(r.err("strategy", "must be least_loaded")),
            }
            let agent_id = match config.get("agent_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(
                    s.parse::<AgentId>()
                        .map_err(|_| r.err("agent_id", "must be an agent id"))?,
                ),
                Some(_) => return Err(r.err("agent_id", "must be an agent id")),
            };
            Ok(Action::AutoAssign { agent_id })
        }
    }
}

/// Checks what accepting does. `templates` allows `{field}` placeholders (rule configs);
/// an agent's suggestion payload is already concrete.
pub fn check_accept(v: &Value, at: &'static str, templates: bool) -> Result<(), FieldError> {
    let r = Reader::new(v, at)?;
    let action = match v.get("action") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(r.err("action", format!("required: one of {ACCEPT_ACTIONS}"))),
    };
    let need_string = |key: &str| -> Result<(), FieldError> {
        match v.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {
                if templates {
                    check_template(s).map_err(|m| r.err(key, m))
                } else {
                    Ok(())
                }
            }
            _ => Err(r.err(key, "required")),
        }
    };
    let need_id = |key: &str| -> Result<(), FieldError> {
        match v.get(key) {
            Some(Value::String(s)) if templates && s.starts_with('{') => {
                check_template(s).map_err(|m| r.err(key, m))
            }
            Some(Value::String(s)) if s.parse::<uuid::Uuid>().is_ok() => Ok(()),
            _ => Err(r.err(key, "required: an id")),
        }
    };
    match action {
        "none" => r.only(&["action"]),
        "set_priority" => {
            r.only(&["action", "task_id", "priority"])?;
            need_id("task_id")?;
            match v.get("priority").and_then(Value::as_str) {
                Some(p)
                    if p.parse::<TaskPriority>().is_ok() || (templates && p.starts_with('{')) =>
                {
                    Ok(())
                }
                _ => Err(r.err("priority", "required: critical, high, medium or low")),
            }
        }
        "assign_tasks" => {
            r.only(&["action", "task_ids", "agent_id"])?;
            need_id("agent_id")?;
            match v.get("task_ids") {
                Some(Value::String(s)) if templates && s.starts_with('{') => {
                    check_template(s).map_err(|m| r.err("task_ids", m))
                }
                Some(Value::Array(items))
                    if !items.is_empty()
                        && items.len() <= 100
                        && items.iter().all(|i| {
                            i.as_str().is_some_and(|s| {
                                s.parse::<uuid::Uuid>().is_ok()
                                    || (templates
                                        && s.starts_with('{')
                                        && check_template(s).is_ok())
                            })
                        }) =>
                {
                    Ok(())
                }
                _ => Err(r.err("task_ids", "required: 1 to 100 task ids")),
            }
        }
        "create_task" => {
            r.only(&["action", "board_id", "title", "description", "priority"])?;
            need_id("board_id")?;
            need_string("title")?;
            Ok(())
        }
        other => Err(r.err(
            "action",
            format!("unknown action {other:?}; expected one of {ACCEPT_ACTIONS}"),
        )),
    }
}

/// Fills a text template.
pub fn render_text(template: &str, facts: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match lookup(facts, &after[..close]) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => match n.as_f64() {
                // Whole numbers read better without ".0".
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                    out.push_str(&(f as i64).to_string())
                }
                _ => out.push_str(&n.to_string()),
            },
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Fills every template in a JSON value.
pub fn render_value(v: &Value, facts: &Value) -> Value {
    match v {
        Value::String(s) => {
            let found = placeholders(s);
            let whole = found.len() == 1 && s.len() == found[0].len() + 2 && s.starts_with('{');
            if whole {
                lookup(facts, &s[1..s.len() - 1])
                    .cloned()
                    .unwrap_or(Value::Null)
            } else {
                Value::String(render_text(s, facts))
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match render_value(item, facts) {
                    // A one-placeholder item that names an array splices it in.
                    Value::Array(inner) if item.is_string() => out.extend(inner),
                    Value::Null => {}
                    other => out.push(other),
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_value(v, facts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_text_and_values() {
        let facts = json!({"task": {"title": "Ship", "id": "t1", "unblocked_task_ids": ["a", "b"], "n": 3.0}});
        assert_eq!(
            render_text("Overdue: {task.title} ({task.n})", &facts),
            "Overdue: Ship (3)"
        );
        assert_eq!(render_text("{task.missing}!", &facts), "!");
        let v = render_value(
            &json!({"action": "assign_tasks", "task_ids": "{task.unblocked_task_ids}", "one": ["{task.id}"], "gone": "{task.nope}"}),
            &facts,
        );
        assert_eq!(
            v,
            json!({"action": "assign_tasks", "task_ids": ["a", "b"], "one": ["t1"], "gone": null})
        );
    }

    #[test]
    fn configs_are_checked_with_paths() {
        let bad = [
            (
                ActionType::CreateSuggestion,
                json!({"title": "x"}),
                "action_config.suggestion_type",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "nope", "title": "x"}),
                "action_config.suggestion_type",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert"}),
                "action_config.title",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert", "title": "{task.colour}"}),
                "action_config.title",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert", "title": "x", "confidence": 2}),
                "action_config.confidence",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert", "title": "x", "on_accept": {"action": "launch"}}),
                "action_config.on_accept.action",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert", "title": "x", "on_accept": {"action": "create_task"}}),
                "action_config.on_accept.board_id",
            ),
            (
                ActionType::CreateSuggestion,
                json!({"suggestion_type": "deadline_alert", "title": "x", "bogus": 1}),
                "action_config.bogus",
            ),
            (
                ActionType::SendNotification,
                json!({}),
                "action_config.title",
            ),
            (
                ActionType::SendNotification,
                json!({"title": "x", "channel": "pigeon"}),
                "action_config.channel",
            ),
            (
                ActionType::AutoAssign,
                json!({"agent_id": "not-a-uuid"}),
                "action_config.agent_id",
            ),
            (ActionType::AutoAssign, json!([]), "action_config"),
        ];
        for (kind, config, path) in bad {
            assert_eq!(parse(kind, &config).unwrap_err().field, path, "{config}");
        }
        let ok = parse(
            ActionType::CreateSuggestion,
            &json!({"suggestion_type": "task_create", "title": "Follow up on {task.title}",
                    "on_accept": {"action": "create_task", "board_id": "{task.board_id}", "title": "Follow up: {task.title}"}}),
        )
        .unwrap();
        assert!(ok.needs().task && !ok.needs().agent);
        assert!(parse(ActionType::AutoAssign, &json!({})).is_ok());
    }
}
