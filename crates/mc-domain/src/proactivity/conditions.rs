//! The condition language of proactive rules, stored as JSONB and built by the console.
//!
//! A node is one of
//! `{"all": [node, ...]}`, `{"any": [node, ...]}`, `{"not": node}`, `{}` (always true), or a
//! comparison `{"field": "task.status", "op": "eq", "value": "review"}`. A comparison's
//! `value` may name another field, scaled: `{"field": "board.max_agents", "times": 3}`.
//! Rules fired by a cron tick say what they look at with a top-level
//! `"for_each": "task" | "agent" | "board"`. Fields are the triggering event's
//! (`event.type`, `event.payload.to`, ...) and facts the engine computes (see [`FIELDS`]).
//! Everything is checked on save, with the path of the first problem.

use super::model::SubjectKind;
use crate::error::FieldError;
use regex::Regex;
use serde_json::Value;

/// Facts the engine computes, by scope (besides `event.*`).
pub const FIELDS: &[(&str, &[&str])] = &[
    (
        "task",
        &[
            "id",
            "board_id",
            "title",
            "description",
            "status",
            "priority",
            "assignee_agent_id",
            "assignee_user_id",
            "due_at",
            "overdue",
            "due_in_seconds",
            "age_seconds",
            "age_in_status_seconds",
            "open_blocker_count",
            "unblocked_downstream_count",
            "unblocked_task_ids",
        ],
    ),
    (
        "board",
        &[
            "id",
            "name",
            "max_agents",
            "in_progress_count",
            "open_task_count",
            "blocked_count",
        ],
    ),
    (
        "agent",
        &[
            "id",
            "name",
            "board_id",
            "in_progress_count",
            "idle_seconds",
            "next_task_id",
            "next_task_title",
        ],
    ),
];

/// Fields of the event itself (besides anything under `event.payload.`).
const EVENT_FIELDS: &[&str] = &[
    "type",
    "seq",
    "board_id",
    "task_id",
    "agent_id",
    "actor.kind",
    "actor.id",
    "actor.name",
];

/// Operators, for messages.
const OPS: &str = "eq, ne, gt, gte, lt, lte, in, not_in, contains, matches, exists";

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 12;
/// Most nodes accepted in one tree.
const MAX_NODES: usize = 200;
/// Largest compiled regular expression accepted (bytes).
const MAX_REGEX_SIZE: usize = 64 * 1024;

/// Which fact scopes a rule reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `task.*`.
    pub task: bool,
    /// `board.*`.
    pub board: bool,
    /// `agent.*`.
    pub agent: bool,
}

impl Needs {
    /// Notes that `path` is read.
    pub fn note(&mut self, path: &str) {
        match path.split('.').next() {
            Some("task") => self.task = true,
            Some("board") => self.board = true,
            Some("agent") => self.agent = true,
            _ => {}
        }
    }

    /// Both sets.
    pub fn union(self, other: Needs) -> Needs {
        Needs {
            task: self.task || other.task,
            board: self.board || other.board,
            agent: self.agent || other.agent,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Contains,
    Matches,
    Exists,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Field {
        path: FieldPath,
        times: f64,
        plus: f64,
    },
    Pattern(Regex),
}

/// A parsed node.
#[derive(Debug, Clone)]
enum Node {
    True,
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Compare {
        field: FieldPath,
        op: Op,
        value: Operand,
    },
}

/// A checked field path, split once when the rule is compiled (rules are evaluated for
/// every event; splitting the dotted path each time showed up in profiles).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    parts: Box<[String]>,
    /// Whether it reads facts (anything but `event.*`).
    facts: bool,
}

impl FieldPath {
    fn new(path: &str) -> Self {
        Self {
            parts: path.split('.').map(str::to_owned).collect(),
            facts: reads_facts(path),
        }
    }

    /// The value at this path of a facts document, if set and not null.
    pub fn get<'a>(&self, facts: &'a Value) -> Option<&'a Value> {
        let mut at = facts;
        for part in &self.parts {
            at = at.get(part)?;
        }
        (!at.is_null()).then_some(at)
    }
}

/// A validated condition tree.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// What a cron-fired rule iterates over.
    pub for_each: Option<SubjectKind>,
    root: Node,
    needs: Needs,
}

/// Checks that `path` names a known field; returns a message otherwise.
pub fn check_field(path: &str) -> Result<(), String> {
    if let Some(rest) = path.strip_prefix("event.") {
        if let Some(payload) = rest.strip_prefix("payload.") {
            let ok = !payload.is_empty()
                && payload.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            return if ok {
                Ok(())
            } else {
                Err(format!(
                    "{path:?} is not a payload path like event.payload.to"
                ))
            };
        }
        if rest == "payload" || EVENT_FIELDS.contains(&rest) {
            return Ok(());
        }
        return Err(format!(
            "unknown field {path:?}; event fields are {} and event.payload.*",
            EVENT_FIELDS
                .iter()
                .map(|f| format!("event.{f}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (scope, name) = path.split_once('.').unwrap_or((path, ""));
    match FIELDS.iter().find(|(s, _)| *s == scope) {
        Some((_, names)) if names.contains(&name) => Ok(()),
        Some((_, names)) => Err(format!(
            "unknown field {path:?}; {scope} fields are {}",
            names
                .iter()
                .map(|n| format!("{scope}.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Err(format!(
            "unknown field {path:?}; fields start with event., task., board. or agent."
        )),
    }
}

struct Parser {
    nodes: usize,
    needs: Needs,
}

impl Parser {
    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Result<Node, FieldError> {
        let err = |m: String| FieldError::new(at, m);
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(err(format!("more than {MAX_NODES} conditions")));
        }
        if depth > MAX_DEPTH {
            return Err(err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(map) = v else {
            return Err(err("must be an object".into()));
        };
        let keys: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !(depth == 0 && *k == "for_each"))
            .collect();
        if keys.is_empty() {
            return Ok(Node::True);
        }
        if keys.iter().any(|k| matches!(*k, "all" | "any" | "not")) {
            if keys.len() != 1 {
                return Err(err(format!(
                    "a group has exactly one of all, any or not; found {}",
                    keys.join(", ")
                )));
            }
            let key = keys[0];
            let inner = &map[key];
            return match key {
                "not" => Ok(Node::Not(Box::new(self.node(
                    inner,
                    &format!("{at}.not"),
                    depth + 1,
                )?))),
                _ => {
                    let Value::Array(items) = inner else {
                        return Err(err(format!("{key} must be an array of conditions")));
                    };
                    if items.is_empty() {
                        return Err(err(format!("{key} must not be empty")));
                    }
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        out.push(self.node(item, &format!("{at}.{key}[{i}]"), depth + 1)?);
                    }
                    Ok(if key == "all" {
                        Node::All(out)
                    } else {
                        Node::Any(out)
                    })
                }
            };
        }
        self.compare(map, at, depth == 0)
    }

    /// `top` says the comparison is the whole tree, where `for_each` may sit beside it.
    fn compare(
        &mut self,
        map: &serde_json::Map<String, Value>,
        at: &str,
        top: bool,
    ) -> Result<Node, FieldError> {
        if let Some(k) = map.keys().find(|k| {
            let allowed = matches!(k.as_str(), "field" | "op" | "value");
            !(allowed || (top && *k == "for_each"))
        }) {
            return Err(FieldError::new(
                format!("{at}.{k}"),
                "unknown key; a comparison has field, op and value (a group has all, any or not)",
            ));
        }
        let field = match map.get("field") {
            Some(Value::String(f)) => f.clone(),
            _ => {
                return Err(FieldError::new(
                    format!("{at}.field"),
                    "required: the field to compare, like task.status",
                ));
            }
        };
        check_field(&field).map_err(|m| FieldError::new(format!("{at}.field"), m))?;
        self.needs.note(&field);
        let op = match map.get("op").and_then(Value::as_str) {
            Some("eq") => Op::Eq,
            Some("ne") => Op::Ne,
            Some("gt") => Op::Gt,
            Some("gte") => Op::Gte,
            Some("lt") => Op::Lt,
            Some("lte") => Op::Lte,
            Some("in") => Op::In,
            Some("not_in") => Op::NotIn,
            Some("contains") => Op::Contains,
            Some("matches") => Op::Matches,
            Some("exists") => Op::Exists,
            Some(other) => {
                return Err(FieldError::new(
                    format!("{at}.op"),
                    format!("unknown operator {other:?}; expected one of {OPS}"),
                ));
            }
            None => {
                return Err(FieldError::new(
                    format!("{at}.op"),
                    format!("required: one of {OPS}"),
                ));
            }
        };
        let value_at = format!("{at}.value");
        let raw = map.get("value");
        let value = match (op, raw) {
            (Op::Exists, None) => Operand::Literal(Value::Bool(true)),
            (Op::Exists, Some(Value::Bool(b))) => Operand::Literal(Value::Bool(*b)),
            (Op::Exists, Some(_)) => {
                return Err(FieldError::new(
                    value_at,
                    "exists takes true, false or nothing",
                ));
            }
            (_, None) => return Err(FieldError::new(value_at, "required for this operator")),
            (Op::Matches, Some(Value::String(p))) => {
                let re = regex::RegexBuilder::new(p)
                    .size_limit(MAX_REGEX_SIZE)
                    .build()
                    .map_err(|e| {
                        FieldError::new(&value_at, format!("not a valid regular expression: {e}"))
                    })?;
                Operand::Pattern(re)
            }
            (Op::Matches, Some(_)) => {
                return Err(FieldError::new(
                    value_at,
                    "matches takes a regular expression string",
                ));
            }
            (Op::In | Op::NotIn, Some(Value::Array(items))) => {
                Operand::Literal(Value::Array(items.clone()))
            }
            (Op::In | Op::NotIn, Some(_)) => {
                return Err(FieldError::new(value_at, "in and not_in take an array"));
            }
            (_, Some(Value::Object(reference))) => self.reference(reference, &value_at)?,
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if !(v.is_number() || v.is_string()) => {
                return Err(FieldError::new(
                    value_at,
                    "ordering compares numbers (or strings such as timestamps)",
                ));
            }
            (_, Some(v)) => Operand::Literal(v.clone()),
        };
        Ok(Node::Compare {
            field: FieldPath::new(&field),
            op,
            value,
        })
    }

    fn reference(
        &mut self,
        map: &serde_json::Map<String, Value>,
        at: &str,
    ) -> Result<Operand, FieldError> {
        if let Some(k) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "field" | "times" | "plus"))
        {
            return Err(FieldError::new(
                format!("{at}.{k}"),
                "unknown key; a field reference has field, and optionally times and plus",
            ));
        }
        let Some(Value::String(path)) = map.get("field") else {
            return Err(FieldError::new(
                format!("{at}.field"),
                "required: the field whose value to compare with",
            ));
        };
        check_field(path).map_err(|m| FieldError::new(format!("{at}.field"), m))?;
        self.needs.note(path);
        let number = |key: &str, default: f64| -> Result<f64, FieldError> {
            match map.get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| FieldError::new(format!("{at}.{key}"), "must be a number")),
            }
        };
        Ok(Operand::Field {
            path: FieldPath::new(path),
            times: number("times", 1.0)?,
            plus: number("plus", 0.0)?,
        })
    }
}

impl Conditions {
    /// Parses and checks a stored or submitted tree; `cron` says whether the rule is fired
    /// by a cron tick (and so must say what it iterates over).
    pub fn parse(value: &Value, cron: bool) -> Result<Self, FieldError> {
        let for_each = match value.get("for_each") {
            None => None,
            Some(Value::String(s)) => Some(
                s.parse::<SubjectKind>()
                    .ok()
                    .filter(|k| *k != SubjectKind::Org)
                    .ok_or_else(|| {
                        FieldError::new("conditions.for_each", "must be task, agent or board")
                    })?,
            ),
            Some(_) => {
                return Err(FieldError::new(
                    "conditions.for_each",
                    "must be task, agent or board",
                ));
            }
        };
        match (cron, for_each) {
            (true, None) => {
                return Err(FieldError::new(
                    "conditions.for_each",
                    "required for cron triggers: task, agent or board",
                ));
            }
            (false, Some(_)) => {
                return Err(FieldError::new(
                    "conditions.for_each",
                    "only cron-triggered rules iterate; an event rule looks at the event's subject",
                ));
            }
            _ => {}
        }
        let mut parser = Parser {
            nodes: 0,
            needs: Needs::default(),
        };
        let root = parser.node(value, "conditions", 0)?;
        let mut needs = parser.needs;
        match for_each {
            Some(SubjectKind::Task) => needs.task = true,
            Some(SubjectKind::Agent) => needs.agent = true,
            Some(SubjectKind::Board) => needs.board = true,
            _ => {}
        }
        Ok(Self {
            for_each,
            root,
            needs,
        })
    }

    /// The fact scopes this tree reads.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Whether the facts satisfy the tree.
    pub fn eval(&self, facts: &Value) -> bool {
        eval(&self.root, facts)
    }

    /// The verdict from the event alone, before any fact is loaded: `Some(false)` means
    /// no fact could make the tree true (so nothing need be loaded), `None` that it
    /// depends on facts.
    pub fn eval_event_only(&self, facts: &Value) -> Option<bool> {
        partial(&self.root, facts)
    }

    /// A comparison `event.<path> eq "<text>"` the whole tree depends on (the tree or one
    /// of its top-level `all` items): an event whose field holds anything else cannot
    /// make the tree true. The engine indexes rules by it, so an event is compared with
    /// the rules that could match it rather than with all of them.
    pub fn event_gate(&self) -> Option<(&FieldPath, &str)> {
        match &self.root {
            Node::All(items) => items.iter().find_map(event_gate),
            node => event_gate(node),
        }
    }
}

fn event_gate(node: &Node) -> Option<(&FieldPath, &str)> {
    match node {
        Node::Compare {
            field,
            op: Op::Eq,
            value: Operand::Literal(Value::String(text)),
        } if !field.facts => Some((field, text.as_str())),
        _ => None,
    }
}

fn reads_facts(path: &str) -> bool {
    !path.starts_with("event.")
}

/// Three-valued evaluation: comparisons on facts not loaded are unknown.
fn partial(node: &Node, facts: &Value) -> Option<bool> {
    match node {
        Node::True => Some(true),
        Node::All(items) => {
            let mut unknown = false;
            for item in items {
                match partial(item, facts) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown { None } else { Some(true) }
        }
        Node::Any(items) => {
            let mut unknown = false;
            for item in items {
                match partial(item, facts) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown { None } else { Some(false) }
        }
        Node::Not(inner) => partial(inner, facts).map(|b| !b),
        Node::Compare { field, op, value } => {
            let reference_reads_facts = matches!(value, Operand::Field { path, .. } if path.facts);
            if field.facts || reference_reads_facts {
                None
            } else {
                Some(compare(field.get(facts), *op, value, facts))
            }
        }
    }
}

/// The value at a dotted path of the facts document (`{"event": .., "task": .., ...}`).
pub fn lookup<'a>(facts: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = facts;
    for part in path.split('.') {
        at = at.get(part)?;
    }
    (!at.is_null()).then_some(at)
}

fn eval(node: &Node, facts: &Value) -> bool {
    match node {
        Node::True => true,
        Node::All(items) => items.iter().all(|n| eval(n, facts)),
        Node::Any(items) => items.iter().any(|n| eval(n, facts)),
        Node::Not(inner) => !eval(inner, facts),
        Node::Compare { field, op, value } => compare(field.get(facts), *op, value, facts),
    }
}

fn compare(left: Option<&Value>, op: Op, right: &Operand, facts: &Value) -> bool {
    if op == Op::Exists {
        let want = matches!(right, Operand::Literal(Value::Bool(true)));
        return left.is_some() == want;
    }
    let Some(left) = left else { return false };
    let resolved;
    let right = match right {
        Operand::Pattern(re) => {
            return left.as_str().is_some_and(|s| re.is_match(s));
        }
        Operand::Literal(v) => v,
        Operand::Field { path, times, plus } => {
            let Some(base) = path.get(facts) else {
                return false;
            };
            resolved = match base.as_f64() {
                Some(n) if *times != 1.0 || *plus != 0.0 => {
                    serde_json::Number::from_f64(n * times + plus)
                        .map_or(Value::Null, Value::Number)
                }
                _ => base.clone(),
            };
            &resolved
        }
    };
    match op {
        Op::Eq => same(left, right),
        Op::Ne => !same(left, right),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let ordering = match (left.as_f64(), right.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => match (left.as_str(), right.as_str()) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
            };
            let Some(ordering) = ordering else {
                return false;
            };
            match op {
                Op::Gt => ordering.is_gt(),
                Op::Gte => ordering.is_ge(),
                Op::Lt => ordering.is_lt(),
                _ => ordering.is_le(),
            }
        }
        Op::In => right
            .as_array()
            .is_some_and(|items| items.iter().any(|i| same(left, i))),
        Op::NotIn => right
            .as_array()
            .is_some_and(|items| !items.iter().any(|i| same(left, i))),
        Op::Contains => match (left, right) {
            (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
            (Value::Array(items), needle) => items.iter().any(|i| same(i, needle)),
            _ => false,
        },
        Op::Matches | Op::Exists => false,
    }
}

/// Equality that treats 3 and 3.0 as the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Conditions {
        Conditions::parse(v, false).unwrap()
    }

    fn problem(v: &Value, cron: bool) -> FieldError {
        Conditions::parse(v, cron).unwrap_err()
    }

    #[test]
    fn evaluates_groups_comparisons_and_references() {
        let facts = json!({
            "event": {"type": "task.status_changed", "payload": {"to": "done"}},
            "task": {"title": "Write the follow-up", "status": "done", "age_in_status_seconds": 90000.0,
                     "unblocked_task_ids": ["a", "b"]},
            "board": {"in_progress_count": 16, "max_agents": 5},
        });
        let c = parse(&json!({"all": [
            {"field": "event.payload.to", "op": "eq", "value": "done"},
            {"any": [{"field": "task.title", "op": "matches", "value": "(?i)follow[ -]?up"},
                     {"field": "task.status", "op": "eq", "value": "review"}]},
            {"not": {"field": "task.priority", "op": "exists"}},
            {"field": "board.in_progress_count", "op": "gt", "value": {"field": "board.max_agents", "times": 3}},
            {"field": "task.age_in_status_seconds", "op": "gte", "value": 86400},
            {"field": "task.unblocked_task_ids", "op": "contains", "value": "b"},
            {"field": "task.status", "op": "in", "value": ["done", "review"]},
        ]}));
        assert!(c.eval(&facts));
        assert!(c.needs().task && c.needs().board && !c.needs().agent);
        let over = parse(&json!({"field": "board.in_progress_count", "op": "gt",
                                "value": {"field": "board.max_agents", "times": 3, "plus": 1}}));
        assert!(!over.eval(&facts), "16 > 5*3+1 is false");
        assert!(parse(&json!({})).eval(&facts));
        let missing = parse(&json!({"field": "agent.idle_seconds", "op": "gt", "value": 1}));
        assert!(
            !missing.eval(&facts),
            "a missing fact satisfies no comparison"
        );
        assert!(
            parse(&json!({"field": "task.due_at", "op": "exists", "value": false})).eval(&facts)
        );
        assert!(
            parse(&json!({"field": "board.max_agents", "op": "eq", "value": 5.0})).eval(&facts)
        );
    }

    #[test]
    fn a_tree_names_the_event_text_it_depends_on() {
        let gate = |v: Value| {
            parse(&v)
                .event_gate()
                .map(|(path, text)| (path.clone(), text.to_owned()))
        };
        let to = FieldPath::new("event.payload.to");
        assert_eq!(
            gate(json!({"all": [
                {"field": "task.status", "op": "eq", "value": "review"},
                {"field": "event.payload.to", "op": "eq", "value": "done"},
            ]})),
            Some((to.clone(), "done".into())),
            "the first event comparison among the top-level all"
        );
        assert_eq!(
            gate(json!({"field": "event.payload.to", "op": "eq", "value": "done"})),
            Some((to, "done".into()))
        );
        for loose in [
            json!({"any": [{"field": "event.payload.to", "op": "eq", "value": "done"},
                           {"field": "task.status", "op": "eq", "value": "done"}]}),
            json!({"not": {"field": "event.payload.to", "op": "eq", "value": "done"}}),
            json!({"field": "event.payload.to", "op": "ne", "value": "done"}),
            json!({"field": "event.payload.n", "op": "eq", "value": 3}),
            json!({"field": "task.status", "op": "eq", "value": "done"}),
        ] {
            assert_eq!(gate(loose.clone()), None, "{loose}");
        }
    }

    #[test]
    fn the_event_alone_can_rule_a_tree_out() {
        let c = parse(&json!({"all": [
            {"field": "event.payload.to", "op": "eq", "value": "done"},
            {"field": "task.unblocked_downstream_count", "op": "gt", "value": 0},
        ]}));
        let moved = |to: &str| json!({"event": {"payload": {"to": to}}});
        assert_eq!(c.eval_event_only(&moved("review")), Some(false));
        assert_eq!(
            c.eval_event_only(&moved("done")),
            None,
            "depends on the task"
        );
        let either = parse(&json!({"any": [
            {"field": "event.type", "op": "eq", "value": "task.created"},
            {"field": "board.max_agents", "op": "gt", "value": 1},
        ]}));
        assert_eq!(
            either.eval_event_only(&json!({"event": {"type": "task.created"}})),
            Some(true)
        );
        assert_eq!(
            either.eval_event_only(&json!({"event": {"type": "task.deleted"}})),
            None
        );
        assert_eq!(
            parse(&json!({"not": {"field": "event.type", "op": "exists"}}))
                .eval_event_only(&moved("x")),
            Some(true)
        );
    }

    #[test]
    fn cron_rules_say_what_they_iterate() {
        let c = Conditions::parse(
            &json!({"for_each": "task", "all": [{"field": "task.overdue", "op": "eq", "value": true}]}),
            true,
        )
        .unwrap();
        assert_eq!(c.for_each, Some(SubjectKind::Task));
        // A single comparison may sit beside for_each too, not only a group.
        let c = Conditions::parse(
            &json!({"for_each": "task", "field": "task.overdue", "op": "eq", "value": true}),
            true,
        )
        .unwrap();
        assert_eq!(c.for_each, Some(SubjectKind::Task));
        // Deeper down, for_each is still an unknown key.
        assert_eq!(
            problem(
                &json!({"for_each": "task",
                        "all": [{"for_each": "task", "field": "task.overdue", "op": "eq", "value": true}]}),
                true
            )
            .field,
            "conditions.all[0].for_each"
        );
        assert_eq!(problem(&json!({}), true).field, "conditions.for_each");
        assert_eq!(
            problem(&json!({"for_each": "task"}), false).field,
            "conditions.for_each"
        );
        assert_eq!(
            problem(&json!({"for_each": "planet"}), true).field,
            "conditions.for_each"
        );
    }

    #[test]
    fn every_problem_names_its_path() {
        let cases = [
            (json!([]), "conditions"),
            (json!({"all": []}), "conditions"),
            (json!({"all": {}}), "conditions"),
            (
                json!({"all": [{"field": "task.status", "op": "eqq", "value": 1}]}),
                "conditions.all[0].op",
            ),
            (
                json!({"any": [{"field": "task.colour", "op": "eq", "value": 1}]}),
                "conditions.any[0].field",
            ),
            (
                json!({"field": "planet.size", "op": "eq", "value": 1}),
                "conditions.field",
            ),
            (
                json!({"field": "task.status", "op": "eq"}),
                "conditions.value",
            ),
            (
                json!({"field": "task.status", "op": "in", "value": "done"}),
                "conditions.value",
            ),
            (
                json!({"field": "task.title", "op": "matches", "value": "("}),
                "conditions.value",
            ),
            (
                json!({"field": "task.age_seconds", "op": "gt", "value": true}),
                "conditions.value",
            ),
            (
                json!({"field": "task.status", "op": "eq", "value": 1, "extra": 2}),
                "conditions.extra",
            ),
            (json!({"all": [{}], "any": [{}]}), "conditions"),
            (
                json!({"not": {"field": "board.max_agents", "op": "gt", "value": {"field": "board.nope"}}}),
                "conditions.not.value.field",
            ),
            (
                json!({"field": "event.payload.", "op": "exists"}),
                "conditions.field",
            ),
        ];
        for (tree, path) in cases {
            assert_eq!(problem(&tree, false).field, path, "{tree}");
        }
        let mut deep = json!({"field": "task.status", "op": "exists"});
        for _ in 0..20 {
            deep = json!({"not": deep});
        }
        assert!(Conditions::parse(&deep, false).is_err());
    }
}
