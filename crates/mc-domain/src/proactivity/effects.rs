//! Changes to tasks that rules (`auto_assign`) and accepted suggestions make, in the
//! caller's transaction, returning the events that record them (the same events the
//! boards API emits for the same change, so board sockets and rules see them alike).

use crate::boards::{Task, TaskPriority, TaskStatus, repo as boards};
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::identity::context::Actor;
use crate::ids::{AgentId, BoardId, OrgId, TaskId};
use serde_json::json;
use sqlx::PgConnection;

fn updated(task: &Task, changes: &serde_json::Value) -> NewEvent {
    NewEvent::new("task.updated")
        .board(task.board_id)
        .task(task.id)
        .agent(task.assignee_agent_id)
        .payload(json!({ "task_id": task.id, "changes": changes, "task": task }))
}

/// Assigns an open task to `agent` (an agent of the same organization). `None` when the
/// task is gone, done, or already has that agent.
pub async fn assign_task(
    conn: &mut PgConnection,
    task_id: TaskId,
    agent: AgentId,
) -> Result<Option<(Task, Vec<NewEvent>)>> {
    if !boards::missing_agents(conn, &[agent]).await?.is_empty() {
        return Err(Error::invalid_field(
            "agent_id",
            "no such agent in this organization",
        ));
    }
    let Some(mut task) = boards::lock_task(conn, task_id).await? else {
        return Ok(None);
    };
    if task.status == TaskStatus::Done || task.assignee_agent_id == Some(agent) {
        return Ok(None);
    }
    let previous = task.assignee_agent_id;
    task.assignee_agent_id = Some(agent);
    task.assignee_user_id = None;
    boards::save_task(conn, &task).await?;
    let task = boards::get_task(conn, task_id)
        .await?
        .ok_or(Error::NotFound { resource: "task" })?;
    let events = vec![
        updated(
            &task,
            &json!({ "assignee_agent_id": agent, "assignee_user_id": null }),
        ),
        NewEvent::new("task.assigned")
            .board(task.board_id)
            .task(task.id)
            .agent(Some(agent))
            .payload(json!({
                "task_id": task.id, "assignee_agent_id": agent, "assignee_user_id": null,
                "previous_agent_id": previous,
            })),
    ];
    Ok(Some((task, events)))
}

/// Whether `agent` exists in `org` (the rule engine runs across organizations, where row
/// security does not scope the check).
pub async fn agent_in_org(conn: &mut PgConnection, agent: AgentId, org: OrgId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND organization_id = $2)",
    )
    .bind(agent)
    .bind(org)
    .fetch_one(conn)
    .await?)
}

/// The agent of `board` with the fewest open tasks.
pub async fn least_loaded_agent(
    conn: &mut PgConnection,
    board: BoardId,
) -> Result<Option<AgentId>> {
    Ok(sqlx::query_scalar(
        "SELECT a.id FROM agents a WHERE a.board_id = $1
         ORDER BY (SELECT count(*) FROM tasks t
                   WHERE t.assignee_agent_id = a.id AND t.status IN ('todo', 'in_progress')), a.id
         LIMIT 1",
    )
    .bind(board)
    .fetch_optional(conn)
    .await?)
}

/// Sets an open task's priority. `None` when the task is gone or already there.
pub async fn set_priority(
    conn: &mut PgConnection,
    task_id: TaskId,
    priority: TaskPriority,
) -> Result<Option<(Task, Vec<NewEvent>)>> {
    let Some(mut task) = boards::lock_task(conn, task_id).await? else {
        return Ok(None);
    };
    if task.priority == priority {
        return Ok(None);
    }
    task.priority = priority;
    boards::save_task(conn, &task).await?;
    let task = boards::get_task(conn, task_id)
        .await?
        .ok_or(Error::NotFound { resource: "task" })?;
    let event = updated(&task, &json!({ "priority": priority }));
    Ok(Some((task, vec![event])))
}

/// Creates a `todo` task on a live board of the organization.
pub async fn create_task(
    conn: &mut PgConnection,
    org: OrgId,
    board: BoardId,
    title: &str,
    description: Option<&str>,
    priority: TaskPriority,
    actor: &Actor,
) -> Result<(Task, Vec<NewEvent>)> {
    let found = boards::get_board(conn, board)
        .await?
        .filter(|b| b.archived_at.is_none())
        .ok_or(Error::Conflict(
            "the suggested task's board is gone or archived".into(),
        ))?;
    let title: String = title.chars().take(500).collect();
    let position = boards::next_position(conn, found.id, TaskStatus::Todo).await?;
    let id = boards::insert_task(
        conn,
        &boards::NewTask {
            org,
            board,
            title: &title,
            description,
            status: TaskStatus::Todo,
            priority,
            agent: None,
            user: None,
            due_at: None,
            estimate_hours: None,
            evidence: &[],
            position,
            created_by: actor,
        },
    )
    .await?;
    let task = boards::get_task(conn, id)
        .await?
        .ok_or(Error::NotFound { resource: "task" })?;
    let event = NewEvent::new("task.created")
        .board(board)
        .task(id)
        .payload(json!({ "task": task }));
    Ok((task, vec![event]))
}
