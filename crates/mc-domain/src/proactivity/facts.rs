//! Facts the rule engine computes for conditions and templates, loaded in bulk: one
//! query per scope for every subject of a batch or a cron sweep.

use super::conditions::Needs;
use crate::error::Result;
use crate::events::Event;
use crate::ids::{AgentId, BoardId, OrgId, TaskId};
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Most subjects a cron-fired rule looks at per tick.
pub const MAX_SWEEP_SUBJECTS: i64 = 10_000;

/// The event as conditions see it (`event.*`).
pub fn event_doc(event: &Event) -> Value {
    json!({
        "type": event.event_type,
        "seq": event.seq,
        "board_id": event.board_id,
        "task_id": event.task_id,
        "agent_id": event.agent_id,
        "actor": {"kind": event.actor.kind, "id": event.actor.id, "name": event.actor.name},
        "payload": event.payload,
    })
}

async fn load(
    conn: &mut PgConnection,
    sql: &'static str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Value>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(sql).bind(ids).fetch_all(conn).await?;
    Ok(rows.into_iter().collect())
}

/// `task.*` facts by task id.
pub async fn tasks(conn: &mut PgConnection, ids: &[TaskId]) -> Result<HashMap<Uuid, Value>> {
    let ids: Vec<Uuid> = ids.iter().map(|t| t.0).collect();
    load(
        conn,
        "SELECT t.id, jsonb_build_object(
             'id', t.id, 'board_id', t.board_id, 'title', t.title, 'description', t.description,
             'status', t.status, 'priority', t.priority,
             'assignee_agent_id', t.assignee_agent_id, 'assignee_user_id', t.assignee_user_id,
             'due_at', t.due_at,
             'overdue', (t.due_at IS NOT NULL AND t.due_at < now() AND t.status <> 'done'),
             'due_in_seconds', extract(epoch FROM t.due_at - now())::float8,
             'age_seconds', extract(epoch FROM now() - t.created_at)::float8,
             'age_in_status_seconds', extract(epoch FROM now() - t.status_changed_at)::float8,
             'open_blocker_count', (SELECT count(*) FROM task_dependencies d
                                    JOIN tasks b ON b.id = d.depends_on_task_id
                                    WHERE d.task_id = t.id AND b.status <> 'done'),
             'unblocked_task_ids', u.ids,
             'unblocked_downstream_count', cardinality(u.ids))
         FROM tasks t
         CROSS JOIN LATERAL (
             SELECT coalesce(array_agg(d.task_id ORDER BY d.task_id), '{}') AS ids
             FROM task_dependencies d JOIN tasks w ON w.id = d.task_id
             WHERE t.status = 'done' AND d.depends_on_task_id = t.id AND w.status <> 'done'
               AND NOT EXISTS (SELECT 1 FROM task_dependencies d2
                               JOIN tasks b2 ON b2.id = d2.depends_on_task_id
                               WHERE d2.task_id = d.task_id AND b2.status <> 'done')) u
         WHERE t.id = ANY($1)",
        &ids,
    )
    .await
}

/// `board.*` facts by board id.
pub async fn boards(conn: &mut PgConnection, ids: &[BoardId]) -> Result<HashMap<Uuid, Value>> {
    let ids: Vec<Uuid> = ids.iter().map(|b| b.0).collect();
    load(
        conn,
        "SELECT b.id, jsonb_build_object(
             'id', b.id, 'name', b.name, 'max_agents', b.max_agents,
             'in_progress_count', count(t.id) FILTER (WHERE t.status = 'in_progress'),
             'open_task_count', count(t.id) FILTER (WHERE t.status <> 'done'),
             'blocked_count', count(t.id) FILTER (WHERE t.status = 'blocked'))
         FROM boards b LEFT JOIN tasks t ON t.board_id = b.id
         WHERE b.id = ANY($1) GROUP BY b.id",
        &ids,
    )
    .await
}

/// `agent.*` facts by agent id. An agent is idle from the last time one of its tasks
/// changed status (or its creation) while nothing of its is in progress.
pub async fn agents(conn: &mut PgConnection, ids: &[AgentId]) -> Result<HashMap<Uuid, Value>> {
    let ids: Vec<Uuid> = ids.iter().map(|a| a.0).collect();
    load(
        conn,
        "SELECT a.id, jsonb_build_object(
             'id', a.id, 'name', a.name, 'board_id', a.board_id,
             'in_progress_count', w.in_progress,
             'idle_seconds', CASE WHEN w.in_progress > 0 THEN 0
                             ELSE extract(epoch FROM now() - greatest(a.created_at, w.last_change))::float8 END,
             'next_task_id', n.id, 'next_task_title', n.title)
         FROM agents a
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE t.status = 'in_progress') AS in_progress,
                    max(t.status_changed_at) AS last_change
             FROM tasks t WHERE t.assignee_agent_id = a.id) w
         LEFT JOIN LATERAL (
             SELECT t.id, t.title FROM tasks t
             WHERE t.board_id = a.board_id AND t.status = 'todo'
               AND t.assignee_agent_id IS NULL AND t.assignee_user_id IS NULL
             ORDER BY CASE t.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                                      WHEN 'medium' THEN 2 ELSE 3 END, t.position, t.id
             LIMIT 1) n ON true
         WHERE a.id = ANY($1)",
        &ids,
    )
    .await
}

/// Subjects a cron-fired rule sweeps: open tasks, agents, or live boards of the
/// organization (of one board when the rule has one).
pub async fn sweep_subjects(
    conn: &mut PgConnection,
    org: OrgId,
    board: Option<BoardId>,
    kind: super::SubjectKind,
) -> Result<Vec<Uuid>> {
    use super::SubjectKind;
    let sql = match kind {
        SubjectKind::Task => {
            "SELECT id FROM tasks WHERE organization_id = $1 AND status <> 'done'
               AND ($2::uuid IS NULL OR board_id = $2) ORDER BY id LIMIT $3"
        }
        SubjectKind::Agent => {
            "SELECT id FROM agents WHERE organization_id = $1
               AND ($2::uuid IS NULL OR board_id = $2) ORDER BY id LIMIT $3"
        }
        SubjectKind::Board => {
            "SELECT id FROM boards WHERE organization_id = $1 AND archived_at IS NULL
               AND ($2::uuid IS NULL OR id = $2) ORDER BY id LIMIT $3"
        }
        SubjectKind::Org => return Ok(Vec::new()),
    };
    Ok(sqlx::query_scalar(sql)
        .bind(org)
        .bind(board)
        .bind(MAX_SWEEP_SUBJECTS)
        .fetch_all(conn)
        .await?)
}

/// Facts for the events of a batch, loaded with one query per scope for all of them
/// (tasks first, then the agents and boards they lead to), then read per event in memory.
#[derive(Debug, Default)]
pub struct EventFacts {
    tasks: HashMap<Uuid, Value>,
    agents: HashMap<Uuid, Value>,
    boards: HashMap<Uuid, Value>,
}

fn id_field(doc: Option<&Value>, key: &str) -> Option<Uuid> {
    doc?.get(key)?.as_str()?.parse().ok()
}

impl EventFacts {
    /// Loads what each event's rules need.
    pub async fn load(conn: &mut PgConnection, wanted: &[(&Event, Needs)]) -> Result<Self> {
        let mut facts = Self::default();
        // The task's facts are a costly query; board and agent ids usually come with the
        // event, so the task is read only when its own facts are wanted or an id is not.
        let task_ids: Vec<TaskId> = unique(wanted.iter().filter_map(|(event, needs)| {
            let task_needed = needs.task
                || (needs.board && event.board_id.is_none())
                || (needs.agent && event.agent_id.is_none());
            event.task_id.filter(|_| task_needed)
        }));
        facts.tasks = tasks(conn, &task_ids).await?;
        let agent_ids: Vec<AgentId> = unique(
            wanted
                .iter()
                .filter(|(_, needs)| needs.agent)
                .filter_map(|(event, _)| facts.agent_of(event))
                .map(AgentId),
        );
        facts.agents = agents(conn, &agent_ids).await?;
        let board_ids: Vec<BoardId> = unique(
            wanted
                .iter()
                .filter(|(_, needs)| needs.board)
                .filter_map(|(event, _)| facts.board_of(event))
                .map(BoardId),
        );
        facts.boards = boards(conn, &board_ids).await?;
        Ok(facts)
    }

    fn task_of(&self, event: &Event) -> Option<&Value> {
        self.tasks.get(&event.task_id?.0)
    }

    fn agent_of(&self, event: &Event) -> Option<Uuid> {
        event
            .agent_id
            .map(|a| a.0)
            .or_else(|| id_field(self.task_of(event), "assignee_agent_id"))
    }

    fn board_of(&self, event: &Event) -> Option<Uuid> {
        event
            .board_id
            .map(|b| b.0)
            .or_else(|| id_field(self.task_of(event), "board_id"))
            .or_else(|| {
                id_field(
                    self.agent_of(event).and_then(|a| self.agents.get(&a)),
                    "board_id",
                )
            })
    }

    /// The facts document (`{"event", "task", "board", "agent"}`) of one loaded event.
    pub fn doc(&self, event: &Event, needs: Needs, mut doc: Value) -> Value {
        if needs.board
            && let Some(board) = self.board_of(event).and_then(|b| self.boards.get(&b))
        {
            doc["board"] = board.clone();
        }
        if let Some(task) = self.task_of(event) {
            doc["task"] = task.clone();
        }
        if needs.agent
            && let Some(agent) = self.agent_of(event).and_then(|a| self.agents.get(&a))
        {
            doc["agent"] = agent.clone();
        }
        doc
    }
}

fn unique<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}
