//! Evaluates events against the enabled rules of their organization and carries out what
//! fires. Each event is evaluated at most once: a receipt is written in the transaction of
//! its effects, so a redelivery (a consumer died before acknowledging) or the catch-up scan
//! finding it again does nothing.

use super::actions::{self, Action};
use super::conditions::{Conditions, FieldPath, Needs};
use super::model::{Rule, SubjectKind};
use super::{effects, facts, repo};
use crate::db::begin_system;
use crate::error::Result;
use crate::events::{self, Event, EventBus, NewEvent};
use crate::identity::context::{Actor, ActorKind};
use crate::ids::{AgentId, BoardId, OrgId, TaskId};
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The stored rule.
    pub rule: Rule,
    /// Its conditions.
    pub conditions: Conditions,
    /// Its action.
    pub action: Action,
    needs: Needs,
}

impl CompiledRule {
    /// Checks a stored rule (rules are checked on save; this guards against rows written
    /// some other way).
    pub fn compile(rule: Rule) -> std::result::Result<Self, crate::error::FieldError> {
        let cron = super::model::CRON_TRIGGERS.contains(&rule.trigger_event.as_str());
        let conditions = Conditions::parse(&rule.conditions, cron)?;
        let action = actions::parse(rule.action_type, &rule.action_config)?;
        let needs = conditions.needs().union(action.needs());
        Ok(Self {
            rule,
            conditions,
            action,
            needs,
        })
    }
}

/// What one call of [`Engine::evaluate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Events evaluated now.
    pub evaluated: usize,
    /// Events already evaluated before (redeliveries).
    pub duplicates: usize,
    /// Rule firings (after cooldowns).
    pub fired: usize,
    /// Events whose evaluation failed; they stay unacknowledged and are retried.
    pub failed: Vec<Uuid>,
}

/// An event with the rules that could still fire for it once its facts are known.
struct Candidate<'a> {
    event: &'a Event,
    /// `{"event": ..}`: what the conditions see before facts are added.
    event_only: Value,
    rules: Vec<&'a CompiledRule>,
    /// The fact scopes its direct (not cron-sweeping) rules read.
    needs: Needs,
}

impl<'a> Candidate<'a> {
    /// The event's rules that the event alone does not rule out; `None` when none is left.
    fn of(event: &'a Event, rules: &'a RuleSet) -> Option<Self> {
        let event_only = json!({ "event": facts::event_doc(event) });
        let rules: Vec<&CompiledRule> = rules
            .for_event(&event_only)
            .filter(|r| {
                r.rule.board_id.is_none()
                    || r.rule.board_id == event.board_id
                    || r.conditions.for_each.is_some()
            })
            .filter(|r| Engine::could_fire(event, r, &event_only))
            .collect();
        if rules.is_empty() {
            return None;
        }
        let needs = rules
            .iter()
            .filter(|r| r.conditions.for_each.is_none())
            .fold(Needs::default(), |n, r| n.union(r.needs));
        Some(Self {
            event,
            event_only,
            rules,
            needs,
        })
    }
}

/// The enabled rules of one organization and trigger, indexed by their event gates
/// ([`Conditions::event_gate`]): with many rules on one trigger, an event is compared with
/// the rules whose gate it passes, found by one lookup per gated field.
#[derive(Default)]
struct RuleSet {
    /// In load order (creation), the order they are evaluated in.
    rules: Vec<Arc<CompiledRule>>,
    /// Per gated field: rule positions by the text the field must hold.
    gated: Vec<(FieldPath, HashMap<String, Vec<usize>>)>,
    ungated: Vec<usize>,
}

impl RuleSet {
    fn add(&mut self, rule: Arc<CompiledRule>) {
        let at = self.rules.len();
        // A cron rule iterates subjects; it is not gated (its trigger is all it needs).
        match rule
            .conditions
            .event_gate()
            .filter(|_| rule.conditions.for_each.is_none())
        {
            Some((path, text)) => {
                let by_text = match self.gated.iter().position(|(p, _)| p == path) {
                    Some(i) => &mut self.gated[i].1,
                    None => {
                        self.gated.push((path.clone(), HashMap::new()));
                        &mut self.gated.last_mut().expect("just pushed").1
                    }
                };
                by_text.entry(text.to_owned()).or_default().push(at);
            }
            None => self.ungated.push(at),
        }
        self.rules.push(rule);
    }

    /// The rules whose gates the event passes, in load order.
    fn for_event<'s>(&'s self, event_only: &Value) -> impl Iterator<Item = &'s CompiledRule> {
        let mut positions = self.ungated.clone();
        for (path, by_text) in &self.gated {
            if let Some(hits) = path
                .get(event_only)
                .and_then(Value::as_str)
                .and_then(|text| by_text.get(text))
            {
                positions.extend_from_slice(hits);
            }
        }
        positions.sort_unstable();
        positions.into_iter().map(|i| self.rules[i].as_ref())
    }
}

/// What evaluating one event did.
#[derive(Default)]
struct EventOutcome {
    fired: usize,
    /// Events to record, by the rules that fired.
    recorded: Vec<NewEvent>,
    /// Whether a rule changed a task (facts loaded before are stale).
    changed_tasks: bool,
}

impl EventOutcome {
    fn note_fired(&mut self, rule: &CompiledRule, new: Vec<NewEvent>) {
        self.fired += 1;
        self.changed_tasks |= matches!(rule.action, Action::AutoAssign { .. }) && !new.is_empty();
        let actor = rule_actor(&rule.rule);
        self.recorded
            .extend(new.into_iter().map(|e| e.by(actor.clone())));
    }
}

/// Whether a direct rule fires on the event's facts (cooldowns aside).
fn fires_on(event: &Event, rule: &CompiledRule, doc: &Value) -> bool {
    let kind = rule
        .action
        .subject()
        .unwrap_or_else(|| default_subject(event));
    subject_of(kind, doc).is_some() && rule.conditions.eval(doc)
}

/// The rule engine's evaluation core, shared by the stream consumer and the catch-up scan.
#[derive(Debug, Clone)]
pub struct Engine {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    suggestion_expiry: Duration,
    /// Compiled rules by id and version (`updated_at`): rules are read every batch, but
    /// compiled (regular expressions included) only when they change.
    compiled: Arc<std::sync::Mutex<HashMap<Uuid, Arc<CompiledRule>>>>,
}

impl Engine {
    /// An engine writing through `pool`; suggestions expire after `suggestion_expiry`
    /// unless their rule says otherwise.
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>, suggestion_expiry: Duration) -> Self {
        Self {
            pool,
            bus,
            suggestion_expiry,
            compiled: Default::default(),
        }
    }

    /// The compiled form of a stored rule, from the cache while it is unchanged.
    fn compile(
        &self,
        rule: Rule,
    ) -> std::result::Result<Arc<CompiledRule>, crate::error::FieldError> {
        let mut cache = self
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = cache.get(&rule.id.0)
            && hit.rule.updated_at == rule.updated_at
        {
            return Ok(hit.clone());
        }
        let id = rule.id.0;
        let compiled = Arc::new(CompiledRule::compile(rule)?);
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id, compiled.clone());
        Ok(compiled)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Evaluates a batch in one transaction (a savepoint per event that matches a rule, so
    /// one failing event does not undo the others).
    pub async fn evaluate(&self, batch: &[Event]) -> Result<BatchReport> {
        let mut report = BatchReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut tx = begin_system(&self.pool).await?;
        let keys: Vec<(Uuid, OrgId, i64)> = batch
            .iter()
            .map(|e| (e.id, e.organization_id, e.seq))
            .collect();
        let fresh = repo::insert_receipts(&mut tx, &keys, repo::Outcome::Evaluated).await?;
        report.duplicates = batch.len() - fresh.len();
        report.evaluated = fresh.len();
        let events: Vec<&Event> = batch.iter().filter(|e| fresh.contains(&e.id)).collect();
        if events.is_empty() {
            tx.commit().await?;
            return Ok(report);
        }
        let orgs: Vec<Uuid> = unique(events.iter().map(|e| e.organization_id.0));
        let triggers: Vec<String> = unique(events.iter().map(|e| e.event_type.clone()));
        let mut by_trigger: HashMap<(OrgId, String), RuleSet> = HashMap::new();
        for rule in repo::enabled_rules(&mut tx, &orgs, &triggers).await? {
            let key = (rule.organization_id, rule.trigger_event.clone());
            match self.compile(rule) {
                Ok(compiled) => by_trigger.entry(key).or_default().add(compiled),
                Err(problem) => {
                    metrics::counter!("mc_rules_invalid_total").increment(1);
                    tracing::warn!(field = %problem.field, message = %problem.message,
                        "skipping a stored rule that does not validate");
                }
            }
        }
        // Events are recorded after every evaluation, organization by organization in id
        // order: holding an organization's sequence lock while locking tasks, or taking two
        // organizations' locks in different orders, could deadlock with other writers.
        let mut pending: std::collections::BTreeMap<Uuid, Vec<NewEvent>> = Default::default();
        let mut events = events;
        events.sort_by_key(|e| (e.organization_id.0, e.seq));
        let candidates: Vec<Candidate> = events
            .into_iter()
            .filter_map(|event| {
                let rules = by_trigger.get(&(event.organization_id, event.event_type.clone()))?;
                Candidate::of(event, rules)
            })
            .collect();
        // Facts for the whole batch, one query per scope. They hold until a rule of the
        // batch changes a task (auto_assign); the events after that load their own.
        let wanted: Vec<(&Event, Needs)> = candidates.iter().map(|c| (c.event, c.needs)).collect();
        let mut batch_facts = Some(facts::EventFacts::load(&mut tx, &wanted).await?);
        for candidate in candidates {
            let doc = batch_facts.as_ref().map(|f| {
                f.doc(
                    candidate.event,
                    candidate.needs,
                    candidate.event_only.clone(),
                )
            });
            // Most events fire nothing: decided here, they cost no savepoint.
            if let Some(doc) = &doc
                && !candidate
                    .rules
                    .iter()
                    .any(|r| r.conditions.for_each.is_some() || fires_on(candidate.event, r, doc))
            {
                continue;
            }
            let event = candidate.event;
            let mut savepoint = (*tx).begin().await?;
            match self.evaluate_event(&mut savepoint, &candidate, doc).await {
                Ok(outcome) => {
                    savepoint.commit().await?;
                    report.fired += outcome.fired;
                    if outcome.changed_tasks {
                        batch_facts = None;
                    }
                    pending
                        .entry(event.organization_id.0)
                        .or_default()
                        .extend(outcome.recorded);
                }
                Err(err) => {
                    savepoint.rollback().await?;
                    sqlx::query("DELETE FROM rule_event_receipts WHERE event_id = $1")
                        .bind(event.id)
                        .execute(&mut *tx)
                        .await?;
                    metrics::counter!("mc_rules_evaluation_failures_total").increment(1);
                    tracing::warn!(error = %err, event_id = %event.id, event_type = %event.event_type,
                        "evaluating an event failed; it will be retried");
                    report.failed.push(event.id);
                }
            }
        }
        let mut published = Vec::new();
        let engine = Actor::system("rule engine");
        for (org, new_events) in pending {
            published.extend(events::append(&mut tx, OrgId(org), &engine, new_events).await?);
        }
        tx.commit().await?;
        metrics::counter!("mc_rules_events_evaluated_total").increment(report.evaluated as u64);
        metrics::counter!("mc_rules_fired_total").increment(report.fired as u64);
        self.bus.publish(&published).await;
        Ok(report)
    }

    /// Whether the rule could fire for the event. What the event alone decides is decided
    /// here, in memory: most events fire nothing, and those should cost no round trip
    /// beyond the batch's receipts (only rules still undecided load facts).
    fn could_fire(event: &Event, rule: &CompiledRule, event_only: &Value) -> bool {
        if rule.conditions.for_each.is_some() {
            return true;
        }
        match rule.conditions.eval_event_only(event_only) {
            Some(false) => false,
            // True on the event alone still needs the subject, which may be a fact.
            Some(true) if rule.needs == Needs::default() => {
                let kind = rule
                    .action
                    .subject()
                    .unwrap_or_else(|| default_subject(event));
                subject_of(kind, event_only).is_some()
            }
            _ => true,
        }
    }

    /// Records events that kept failing as evaluated (`poison`), so they stop coming back.
    pub async fn give_up(&self, events: &[(Uuid, OrgId, i64)]) -> Result<()> {
        self.record(events, repo::Outcome::Poison).await
    }

    /// Records events as handled without evaluating them.
    pub async fn record(
        &self,
        events: &[(Uuid, OrgId, i64)],
        outcome: repo::Outcome,
    ) -> Result<()> {
        let mut tx = begin_system(&self.pool).await?;
        repo::insert_receipts(&mut tx, events, outcome).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Evaluates one event with its facts (loaded now when `doc` is `None`).
    async fn evaluate_event(
        &self,
        conn: &mut PgConnection,
        candidate: &Candidate<'_>,
        doc: Option<Value>,
    ) -> Result<EventOutcome> {
        let event = candidate.event;
        let mut outcome = EventOutcome::default();
        let direct: Vec<&CompiledRule> = candidate
            .rules
            .iter()
            .copied()
            .filter(|r| r.conditions.for_each.is_none())
            .collect();
        if !direct.is_empty() {
            let doc = match doc {
                Some(doc) => doc,
                None => facts::EventFacts::load(conn, &[(event, candidate.needs)])
                    .await?
                    .doc(event, candidate.needs, candidate.event_only.clone()),
            };
            for rule in direct {
                let kind = rule
                    .action
                    .subject()
                    .unwrap_or_else(|| default_subject(event));
                let Some(subject) = subject_of(kind, &doc) else {
                    continue;
                };
                if rule.conditions.eval(&doc)
                    && let Some(new) = self.fire(conn, rule, event, kind, &subject, &doc).await?
                {
                    outcome.note_fired(rule, new);
                }
            }
        }
        let event_doc = &candidate.event_only["event"];
        for rule in candidate
            .rules
            .iter()
            .filter(|r| r.conditions.for_each.is_some())
        {
            let kind = rule.conditions.for_each.unwrap_or(SubjectKind::Task);
            let ids = facts::sweep_subjects(conn, event.organization_id, rule.rule.board_id, kind)
                .await?;
            let docs = FactsLoader::for_subjects(conn, kind, &ids, rule.needs, event_doc).await?;
            for doc in docs {
                let Some(subject) = subject_of(kind, &doc) else {
                    continue;
                };
                if rule.conditions.eval(&doc)
                    && let Some(new) = self.fire(conn, rule, event, kind, &subject, &doc).await?
                {
                    outcome.note_fired(rule, new);
                }
            }
        }
        Ok(outcome)
    }

    /// Carries out a rule's action for one subject, unless the rule is cooling down for
    /// it; returns the events to record.
    async fn fire(
        &self,
        conn: &mut PgConnection,
        rule: &CompiledRule,
        event: &Event,
        kind: SubjectKind,
        subject: &str,
        doc: &Value,
    ) -> Result<Option<Vec<NewEvent>>> {
        if !repo::claim_firing(conn, &rule.rule, subject).await? {
            return Ok(None);
        }
        let id_at = |path: &str| -> Option<Uuid> {
            super::conditions::lookup(doc, path)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        };
        let task = id_at("task.id").map(TaskId);
        let board = id_at("task.board_id")
            .or_else(|| id_at("board.id"))
            .or_else(|| id_at("agent.board_id"))
            .or(event.board_id.map(|b| b.0))
            .map(BoardId);
        let agent = id_at("agent.id")
            .or_else(|| id_at("task.assignee_agent_id"))
            .or(event.agent_id.map(|a| a.0))
            .map(AgentId);
        let org = event.organization_id;
        let mut out = Vec::new();
        match &rule.action {
            Action::Suggest(c) => {
                let title = clip(&actions::render_text(&c.title, doc), 512);
                let description = c
                    .description
                    .as_deref()
                    .map(|d| clip(&actions::render_text(d, doc), 10_000));
                let payload = actions::render_value(&c.on_accept, doc);
                let expiry = c.expires_in_hours.map_or(self.suggestion_expiry, |h| {
                    Duration::from_secs(h.unsigned_abs() * 3600)
                });
                let inserted = repo::insert_suggestion(
                    conn,
                    &repo::NewSuggestion {
                        org,
                        board,
                        agent,
                        task: if kind == SubjectKind::Task || kind == SubjectKind::Org {
                            task
                        } else {
                            None
                        },
                        rule: Some(rule.rule.id),
                        suggestion_type: c.suggestion_type,
                        title: if title.trim().is_empty() {
                            rule.rule.name.as_str()
                        } else {
                            &title
                        },
                        description: description.as_deref(),
                        confidence: c.confidence,
                        priority: c.priority,
                        payload: &payload,
                        subject: Some(subject),
                        source_event: Some(event.id),
                        created_by_type: "system",
                        created_by_id: rule.rule.id.0,
                        expires_at: chrono::Duration::from_std(expiry)
                            .ok()
                            .map(|d| Utc::now() + d),
                    },
                )
                .await?;
                if let Some(s) = inserted {
                    metrics::counter!("mc_suggestions_created_total", "type" => s.suggestion_type.as_str()).increment(1);
                    out.push(created_event(&s));
                }
            }
            Action::Notify(c) => {
                let title = clip(&actions::render_text(&c.title, doc), 512);
                let body = c
                    .body
                    .as_deref()
                    .map(|b| clip(&actions::render_text(b, doc), 10_000));
                let id = repo::insert_notification(
                    conn,
                    &repo::NewNotification {
                        org,
                        rule: rule.rule.id,
                        channel: &c.channel,
                        recipients: &c.recipients,
                        title: if title.trim().is_empty() {
                            rule.rule.name.as_str()
                        } else {
                            &title
                        },
                        body: body.as_deref(),
                        subject,
                        source_event: event.id,
                    },
                )
                .await?;
                let mut e = NewEvent::new("notification.created")
                    .agent(agent)
                    .payload(json!({
                        "notification_id": id, "rule_id": rule.rule.id, "channel": c.channel,
                        "recipients": c.recipients, "title": title, "subject": subject,
                    }));
                if let Some(b) = board {
                    e = e.board(b);
                }
                out.push(e);
            }
            Action::AutoAssign { agent_id } => {
                let (Some(task_id), Some(board_id)) = (task, board) else {
                    return Ok(Some(out));
                };
                let open = super::conditions::lookup(doc, "task.assignee_agent_id").is_none()
                    && super::conditions::lookup(doc, "task.assignee_user_id").is_none();
                let target = match agent_id {
                    // A rule may outlive its agent: then there is nothing to do (not a
                    // failure to retry).
                    Some(a) if effects::agent_in_org(conn, *a, org).await? => Some(*a),
                    Some(a) => {
                        tracing::warn!(rule_id = %rule.rule.id, agent_id = %a,
                            "auto_assign names an agent that is gone; nothing assigned");
                        None
                    }
                    None => effects::least_loaded_agent(conn, board_id).await?,
                };
                if let (true, Some(target)) = (open, target)
                    && let Some((_, events)) = effects::assign_task(conn, task_id, target).await?
                {
                    out.extend(events);
                }
            }
        }
        Ok(Some(out))
    }
}

/// The `suggestion.created` event (board sockets show it as `suggestion.new`).
pub fn created_event(s: &super::Suggestion) -> NewEvent {
    suggestion_event("suggestion.created", s)
}

/// A `suggestion.*` event carrying the suggestion as it is now.
pub fn suggestion_event(event_type: &str, s: &super::Suggestion) -> NewEvent {
    let mut e = NewEvent::new(event_type)
        .agent(s.agent_id)
        .payload(json!({ "suggestion": s }));
    if let Some(b) = s.board_id {
        e = e.board(b);
    }
    if let Some(t) = s.task_id {
        e = e.task(t);
    }
    e
}

fn rule_actor(rule: &Rule) -> Actor {
    Actor {
        kind: ActorKind::System,
        id: rule.id.0,
        name: format!("rule: {}", rule.name),
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn unique<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

fn default_subject(event: &Event) -> SubjectKind {
    if event.task_id.is_some() {
        SubjectKind::Task
    } else if event.agent_id.is_some() {
        SubjectKind::Agent
    } else if event.board_id.is_some() {
        SubjectKind::Board
    } else {
        SubjectKind::Org
    }
}

/// The subject key (`task:<id>`, ...) from the facts, if the subject is known.
fn subject_of(kind: SubjectKind, doc: &Value) -> Option<String> {
    let id = |path: &str| super::conditions::lookup(doc, path).and_then(Value::as_str);
    let key = match kind {
        SubjectKind::Task => id("task.id").or_else(|| id("event.task_id")),
        SubjectKind::Agent => id("agent.id")
            .or_else(|| id("event.agent_id"))
            .or_else(|| id("task.assignee_agent_id")),
        SubjectKind::Board => id("board.id")
            .or_else(|| id("event.board_id"))
            .or_else(|| id("task.board_id")),
        SubjectKind::Org => return Some("org".into()),
    };
    key.map(|k| format!("{kind}:{k}"))
}

/// Builds facts documents (`{"event", "task", "board", "agent"}`).
struct FactsLoader;

impl FactsLoader {
    async fn for_subjects(
        conn: &mut PgConnection,
        kind: SubjectKind,
        ids: &[Uuid],
        needs: Needs,
        event_doc: &Value,
    ) -> Result<Vec<Value>> {
        let field = |d: &Value, key: &str| -> Option<Uuid> {
            d.get(key)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        };
        let mut docs = Vec::with_capacity(ids.len());
        match kind {
            SubjectKind::Task => {
                let tasks =
                    facts::tasks(conn, &ids.iter().map(|i| TaskId(*i)).collect::<Vec<_>>()).await?;
                let boards = if needs.board {
                    let b: Vec<BoardId> =
                        unique(tasks.values().filter_map(|t| field(t, "board_id")))
                            .into_iter()
                            .map(BoardId)
                            .collect();
                    facts::boards(conn, &b).await?
                } else {
                    HashMap::new()
                };
                let agents = if needs.agent {
                    let a: Vec<AgentId> =
                        unique(tasks.values().filter_map(|t| field(t, "assignee_agent_id")))
                            .into_iter()
                            .map(AgentId)
                            .collect();
                    facts::agents(conn, &a).await?
                } else {
                    HashMap::new()
                };
                for id in ids {
                    let Some(task) = tasks.get(id) else { continue };
                    let mut doc = json!({ "event": event_doc, "task": task });
                    if let Some(b) = field(task, "board_id").and_then(|b| boards.get(&b)) {
                        doc["board"] = b.clone();
                    }
                    if let Some(a) = field(task, "assignee_agent_id").and_then(|a| agents.get(&a)) {
                        doc["agent"] = a.clone();
                    }
                    docs.push(doc);
                }
            }
            SubjectKind::Agent => {
                let agents =
                    facts::agents(conn, &ids.iter().map(|i| AgentId(*i)).collect::<Vec<_>>())
                        .await?;
                let boards = if needs.board {
                    let b: Vec<BoardId> =
                        unique(agents.values().filter_map(|a| field(a, "board_id")))
                            .into_iter()
                            .map(BoardId)
                            .collect();
                    facts::boards(conn, &b).await?
                } else {
                    HashMap::new()
                };
                for id in ids {
                    let Some(agent) = agents.get(id) else {
                        continue;
                    };
                    let mut doc = json!({ "event": event_doc, "agent": agent });
                    if let Some(b) = field(agent, "board_id").and_then(|b| boards.get(&b)) {
                        doc["board"] = b.clone();
                    }
                    docs.push(doc);
                }
            }
            SubjectKind::Board => {
                let boards =
                    facts::boards(conn, &ids.iter().map(|i| BoardId(*i)).collect::<Vec<_>>())
                        .await?;
                for id in ids {
                    if let Some(board) = boards.get(id) {
                        docs.push(json!({ "event": event_doc, "board": board }));
                    }
                }
            }
            SubjectKind::Org => {}
        }
        Ok(docs)
    }
}
