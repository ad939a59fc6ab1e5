//! Agent logic: the admin's CRUD, linking what a gateway reports, and the check that lets
//! a gateway tunnel an agent's REST calls.

use super::model::*;
use super::repo;
use crate::db::{self, begin_org};
use crate::error::{Error, Result};
use crate::events::{self, EventBus, NewEvent};
use crate::gateways::AuthedGateway;
use crate::gateways::router::GatewayRouter;
use crate::identity::{OrgContext, Permission};
use crate::ids::{AgentId, GatewayId};
use crate::pagination::{Page, PageParams};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AgentService {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
}

fn not_found() -> Error {
    Error::NotFound { resource: "agent" }
}

fn validate_capabilities(tags: Option<&Vec<String>>) -> Result<Option<serde_json::Value>> {
    let Some(tags) = tags else { return Ok(None) };
    if tags.len() > 50 {
        return Err(Error::invalid_field("capabilities", "at most 50 tags"));
    }
    if let Some(bad) = tags
        .iter()
        .find(|t| t.trim().is_empty() || t.chars().count() > 64)
    {
        return Err(Error::invalid_field(
            "capabilities",
            format!("tag {bad:?} must be 1-64 characters"),
        ));
    }
    Ok(Some(json!(tags)))
}

fn validate_openclaw_id(id: Option<&str>) -> Result<()> {
    match id {
        Some(id) if id.trim().is_empty() || id.chars().count() > 200 || id.contains(':') => Err(
            Error::invalid_field("openclaw_agent_id", "must be 1-200 characters without ':'"),
        ),
        _ => Ok(()),
    }
}

fn validate_session_key(key: Option<&str>) -> Result<()> {
    match key {
        Some(k)
            if !k.starts_with("agent:")
                || k.chars().count() > 300
                || k.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(Error::invalid_field(
                "session_key",
                "must look like agent:<agent id>:<session>, at most 300 characters, no spaces",
            ))
        }
        _ => Ok(()),
    }
}

fn reference_errors(board_ok: bool, gateway_ok: bool) -> Result<()> {
    if !board_ok {
        return Err(Error::invalid_field(
            "board_id",
            "no such board in this organization",
        ));
    }
    if !gateway_ok {
        return Err(Error::invalid_field(
            "gateway_id",
            "no such gateway in this organization",
        ));
    }
    Ok(())
}

fn conflict_or(err: sqlx::Error) -> Error {
    if db::is_unique_violation(&err, Some("agents_gateway_openclaw")) {
        Error::Conflict("this gateway already has an agent with that openclaw_agent_id".into())
    } else {
        err.into()
    }
}

impl AgentService {
    /// A service over `pool` publishing on `bus`.
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>) -> Self {
        Self { pool, bus }
    }

    /// `GET /agents`.
    pub async fn list(
        &self,
        ctx: &OrgContext,
        filter: &AgentFilter,
        page: &PageParams,
    ) -> Result<Page<Agent>> {
        ctx.authorize(Permission::AgentsRead)?;
        let page = page.parse::<(DateTime<Utc>, Uuid)>()?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let rows = repo::list(&mut tx, filter, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |a| {
            (a.created_at, a.id.0)
        }))
    }

    /// `GET /agents/{id}`.
    pub async fn get(&self, ctx: &OrgContext, id: AgentId) -> Result<Agent> {
        ctx.authorize(Permission::AgentsRead)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let agent = repo::get(&mut tx, id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(agent)
    }

    /// `POST /agents` (admin).
    pub async fn create(&self, ctx: &OrgContext, input: CreateAgent) -> Result<Agent> {
        ctx.authorize(Permission::AgentsManage)?;
        let capabilities = validate_capabilities(input.capabilities.as_ref())?;
        validate_openclaw_id(input.openclaw_agent_id.as_deref())?;
        validate_session_key(input.session_key.as_deref())?;
        if input.openclaw_agent_id.is_some() && input.gateway_id.is_none() {
            return Err(Error::invalid_field(
                "openclaw_agent_id",
                "needs gateway_id: the id is only meaningful inside a gateway",
            ));
        }
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let (board_ok, gateway_ok) =
            repo::references_exist(&mut tx, input.board_id, input.gateway_id).await?;
        reference_errors(board_ok, gateway_ok)?;
        let id = AgentId::generate();
        let session_key = input
            .session_key
            .clone()
            .unwrap_or_else(|| repo::default_session_key(id, input.openclaw_agent_id.as_deref()));
        let agent = repo::insert(
            &mut tx,
            ctx.org_id,
            &repo::NewAgent {
                id,
                name: input.name.as_str(),
                board_id: input.board_id,
                gateway_id: input.gateway_id,
                openclaw_agent_id: input.openclaw_agent_id.as_deref(),
                session_key: &session_key,
                capabilities: capabilities.unwrap_or_else(|| json!([])),
            },
        )
        .await
        .map_err(conflict_or)?;
        let event = NewEvent::new("agent.created")
            .agent(Some(agent.id))
            .payload(
                json!({ "agent_id": agent.id, "name": agent.name, "gateway_id": agent.gateway_id }),
            );
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, vec![event]).await?;
        Ok(agent)
    }

    /// `PATCH /agents/{id}` (admin).
    pub async fn update(&self, ctx: &OrgContext, id: AgentId, input: UpdateAgent) -> Result<Agent> {
        ctx.authorize(Permission::AgentsManage)?;
        let capabilities = validate_capabilities(input.capabilities.as_ref())?;
        validate_openclaw_id(input.openclaw_agent_id.clone().flatten().as_deref())?;
        validate_session_key(input.session_key.as_deref())?;
        if matches!(input.status, Some(AgentStatus::Online | AgentStatus::Busy)) {
            return Err(Error::invalid_field(
                "status",
                "online and busy are reported by the agent's gateway; an admin may set offline or error",
            ));
        }
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let (board_ok, gateway_ok) = repo::references_exist(
            &mut tx,
            input.board_id.flatten(),
            input.gateway_id.flatten(),
        )
        .await?;
        reference_errors(board_ok, gateway_ok)?;
        let agent = repo::update(&mut tx, id, &input, capabilities)
            .await
            .map_err(conflict_or)?
            .ok_or_else(not_found)?;
        if agent.openclaw_agent_id.is_some() && agent.gateway_id.is_none() {
            return Err(Error::invalid_field(
                "openclaw_agent_id",
                "needs gateway_id: the id is only meaningful inside a gateway",
            ));
        }
        let event = NewEvent::new("agent.updated")
            .agent(Some(agent.id))
            .payload(json!({ "agent_id": agent.id, "status": agent.status, "gateway_id": agent.gateway_id }));
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, vec![event]).await?;
        Ok(agent)
    }

    /// `DELETE /agents/{id}` (admin). Its API keys go with it.
    pub async fn delete(&self, ctx: &OrgContext, id: AgentId) -> Result<()> {
        ctx.authorize(Permission::AgentsManage)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        if !repo::delete(&mut tx, id).await? {
            return Err(not_found());
        }
        let event = NewEvent::new("agent.deleted").payload(json!({ "agent_id": id }));
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, vec![event]).await?;
        Ok(())
    }

    /// Links what `gateway` reported in `agents.list` (`payload`): new OpenClaw ids become
    /// agents, reported ones go online, the gateway's others offline.
    pub async fn link_reported(
        &self,
        gateway: &AuthedGateway,
        payload: &serde_json::Value,
    ) -> Result<LinkSummary> {
        let reported = ReportedAgent::from_agents_list(payload);
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        let (created, summary) =
            repo::link_reported(&mut tx, gateway.organization_id, gateway.id, &reported).await?;
        let mut new: Vec<NewEvent> = created
            .iter()
            .map(|a| {
                NewEvent::new("agent.created")
                    .agent(Some(a.id))
                    .payload(json!({
                        "agent_id": a.id, "name": a.name, "gateway_id": gateway.id,
                        "openclaw_agent_id": a.openclaw_agent_id, "via": "agents.list",
                    }))
            })
            .collect();
        if summary != LinkSummary::default() {
            new.push(NewEvent::new("gateway.agents_linked").payload(json!({
                "gateway_id": gateway.id, "created": summary.created,
                "online": summary.online, "offline": summary.offline,
            })));
        }
        let actor = crate::gateways::service::gateway_actor(gateway.id, &gateway.name);
        events::commit_with(tx, self.bus.as_ref(), gateway.organization_id, &actor, new).await?;
        Ok(summary)
    }

    /// `POST /gateways/{id}/sync-agents` (admin): asks the gateway for `agents.list` through
    /// `router` and links the answer.
    pub async fn sync_from_gateway(
        &self,
        ctx: &OrgContext,
        router: &GatewayRouter,
        gateway: GatewayId,
        timeout: Duration,
    ) -> Result<LinkSummary> {
        ctx.authorize(Permission::AgentsManage)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let found = crate::gateways::repo::get(&mut tx, gateway)
            .await?
            .ok_or(Error::NotFound {
                resource: "gateway",
            })?;
        tx.commit().await?;
        let payload = router
            .call(gateway, "agents.list", json!({}), timeout)
            .await?
            .into_result()?;
        let authed = AuthedGateway {
            id: found.id,
            organization_id: found.organization_id,
            name: found.name,
            status: found.status,
        };
        self.link_reported(&authed, &payload).await
    }

    /// Whether `agent` is bound to `gateway` (in the gateway's organization): a gateway may
    /// only tunnel REST calls of its own agents.
    pub async fn is_bound_to(&self, gateway: &AuthedGateway, agent: AgentId) -> Result<bool> {
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        let bound = repo::is_bound_to(&mut tx, agent, gateway.id).await?;
        tx.commit().await?;
        Ok(bound)
    }
}
