//! Gateway registry logic: registration tokens, self-registration, heartbeats, relay
//! authentication and connection tracking, the admin view, and the offline sweep.

use super::model::*;
use super::repo;
use crate::config::GatewayConfig;
use crate::crypto::{constant_time_eq, random_urlsafe, sha256_hex};
use crate::db::{begin_org, begin_system};
use crate::error::{Error, Result};
use crate::events::{self, EventBus, NewEvent};
use crate::identity::context::{Actor, ActorKind};
use crate::identity::{OrgContext, Permission};
use crate::ids::{GatewayConnectionId, GatewayId, GatewayTokenId, OrgId};
use crate::pagination::{Page, PageParams};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct GatewayService {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    settings: GatewayConfig,
}

/// The actor of what a gateway does itself.
pub(crate) fn gateway_actor(id: GatewayId, name: &str) -> Actor {
    Actor {
        kind: ActorKind::System,
        id: id.0,
        name: format!("gateway:{name}"),
    }
}

/// `NotFound` unless the change touched a row.
fn found(done: bool, resource: &'static str) -> Result<()> {
    if done {
        Ok(())
    } else {
        Err(Error::NotFound { resource })
    }
}

fn bad_credentials() -> Error {
    Error::Unauthorized("unknown gateway or wrong relay token".into())
}

fn status_event(status: GatewayStatus) -> &'static str {
    match status {
        GatewayStatus::Online => "gateway.online",
        GatewayStatus::Offline => "gateway.offline",
        GatewayStatus::Error => "gateway.error",
        GatewayStatus::Pending => "gateway.pending",
    }
}

fn optional_text(field: &str, value: Option<&String>, max: usize) -> Result<Option<String>> {
    match value.map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(Error::invalid_field(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

impl GatewayService {
    /// A service over `pool` publishing on `bus`.
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>, settings: GatewayConfig) -> Self {
        Self {
            pool,
            bus,
            settings,
        }
    }

    /// Records an admin's change (`event`) in the caller's organization and commits.
    async fn finish_as(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        ctx: &OrgContext,
        event: NewEvent,
    ) -> Result<()> {
        events::commit_with(tx, self.bus.as_ref(), ctx.org_id, &ctx.actor, vec![event]).await?;
        Ok(())
    }

    /// Records what a gateway did (`events`, possibly none) in its organization and commits.
    async fn finish_as_gateway(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        org: OrgId,
        id: GatewayId,
        name: &str,
        events: Vec<NewEvent>,
    ) -> Result<()> {
        events::commit_with(tx, self.bus.as_ref(), org, &gateway_actor(id, name), events).await?;
        Ok(())
    }

    /// What a connected gateway is told in `auth_ok` and heartbeat answers.
    pub fn gateway_config(&self) -> serde_json::Value {
        json!({ "heartbeat_interval_seconds": self.settings.heartbeat_interval.as_secs() })
    }

    // ------------------------------------------------------- registration tokens

    /// `POST /gateway-registry/tokens` (admin): the secret is returned once.
    pub async fn create_token(
        &self,
        ctx: &OrgContext,
        input: CreateRegistrationToken,
    ) -> Result<CreatedRegistrationToken> {
        ctx.authorize(Permission::GatewaysManage)?;
        let name = optional_text("name", input.name.as_ref(), 200)?
            .unwrap_or_else(|| "registration token".to_owned());
        let expires_at = match input.expires_in_days {
            None => None,
            Some(d) if (1..=3650).contains(&d) => {
                Some(Utc::now() + chrono::Duration::days(i64::from(d)))
            }
            Some(_) => return Err(Error::invalid_field("expires_in_days", "must be 1-3650")),
        };
        let token = format!("{REGISTRATION_TOKEN_PREFIX}{}", random_urlsafe(32));
        let prefix: String = token
            .chars()
            .take(REGISTRATION_TOKEN_PREFIX.len() + 4)
            .collect();
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let stored = repo::insert_token(
            &mut tx,
            GatewayTokenId::generate(),
            ctx.org_id,
            &name,
            &prefix,
            &sha256_hex(&token),
            ctx.user_id.map(|u| u.0),
            expires_at,
        )
        .await?;
        let event = NewEvent::new("gateway_token.created")
            .payload(json!({ "token_id": stored.id, "name": stored.name }));
        self.finish_as(tx, ctx, event).await?;
        Ok(CreatedRegistrationToken {
            id: stored.id,
            token,
            name: stored.name,
            expires_at: stored.expires_at,
            created_at: stored.created_at,
        })
    }

    /// `GET /gateway-registry/tokens` (admin).
    pub async fn list_tokens(
        &self,
        ctx: &OrgContext,
        page: &PageParams,
    ) -> Result<Page<RegistrationToken>> {
        ctx.authorize(Permission::GatewaysManage)?;
        let page = page.parse::<(DateTime<Utc>, Uuid)>()?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let rows = repo::list_tokens(&mut tx, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |t| {
            (t.created_at, t.id.0)
        }))
    }

    /// `DELETE /gateway-registry/tokens/{id}` (admin): revoked at once.
    pub async fn revoke_token(&self, ctx: &OrgContext, id: GatewayTokenId) -> Result<()> {
        ctx.authorize(Permission::GatewaysManage)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        found(repo::revoke_token(&mut tx, id).await?, "registration token")?;
        let event = NewEvent::new("gateway_token.revoked").payload(json!({ "token_id": id }));
        self.finish_as(tx, ctx, event).await?;
        Ok(())
    }

    // ------------------------------------------------------ gateway-facing calls

    /// `POST /gateway-registry/register`: a registration token of the organization gives
    /// a gateway id and a relay token (a known name gets a fresh relay token).
    pub async fn register(
        &self,
        input: RegisterGateway,
        remote_ip: Option<&str>,
    ) -> Result<Registered> {
        if !self.settings.registration_enabled {
            return Err(Error::Forbidden(
                "gateway self-registration is disabled (GATEWAY_REGISTRATION_ENABLED)".into(),
            ));
        }
        let name = optional_text("name", Some(&input.name), 200)?
            .ok_or_else(|| Error::invalid_field("name", "must not be empty"))?;
        let url = optional_text("url", input.url.as_ref(), 2000)?;
        let workspace_root = optional_text("workspace_root", input.workspace_root.as_ref(), 1000)?;
        let version = optional_text("version", input.version.as_ref(), 100)?;
        if input.capabilities.len() > 100
            || input
                .capabilities
                .iter()
                .any(|c| c.is_empty() || c.len() > 100)
        {
            return Err(Error::invalid_field(
                "capabilities",
                "at most 100 names of 1-100 characters",
            ));
        }
        if !input
            .registration_token
            .starts_with(REGISTRATION_TOKEN_PREFIX)
        {
            return Err(Error::Unauthorized(
                "not a registration token (gw_reg_…)".into(),
            ));
        }
        let token_hash = sha256_hex(&input.registration_token);
        let relay_token = format!("{RELAY_TOKEN_PREFIX}{}", random_urlsafe(32));
        let relay_hash = sha256_hex(&relay_token);
        let mut tx = begin_org(&self.pool, input.organization_id).await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM organizations WHERE id = $1")
                .bind(input.organization_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(token_id) = repo::use_token(&mut tx, &token_hash).await? else {
            return Err(Error::Unauthorized(
                "registration token unknown, revoked or expired for this organization".into(),
            ));
        };
        if status.as_deref() != Some("active") {
            return Err(Error::Forbidden("the organization is not active".into()));
        }
        let (gateway, created) = repo::upsert_registration(
            &mut tx,
            &repo::Registration {
                org: input.organization_id,
                name: &name,
                url: url.as_deref(),
                workspace_root: workspace_root.as_deref(),
                version: version.as_deref(),
                capabilities: json!(input.capabilities),
                registration_token_hash: &token_hash,
                registration_token_id: token_id,
                relay_token_hash: &relay_hash,
            },
        )
        .await?;
        let event = NewEvent::new("gateway.registered").payload(json!({
            "gateway_id": gateway.id, "name": gateway.name, "new": created,
            "version": gateway.version, "ip": remote_ip,
        }));
        self.finish_as_gateway(
            tx,
            gateway.organization_id,
            gateway.id,
            &gateway.name,
            vec![event],
        )
        .await?;
        Ok(Registered {
            gateway_id: gateway.id,
            relay_ws_url: format!(
                "{}/ws/gateway/{}/relay",
                self.settings.relay_public_url.trim_end_matches('/'),
                gateway.id
            ),
            relay_token,
            heartbeat_interval_seconds: self.settings.heartbeat_interval.as_secs(),
        })
    }

    /// Checks a relay token (current, or the previous one within its grace period).
    pub async fn authenticate(&self, id: GatewayId, relay_token: &str) -> Result<AuthedGateway> {
        let mut tx = begin_system(&self.pool).await?;
        let found = repo::auth_lookup(&mut tx, id).await?;
        tx.commit().await?;
        let (gateway, current, previous, previous_until) = found.ok_or_else(bad_credentials)?;
        let presented = sha256_hex(relay_token);
        let previous_ok = match (previous, previous_until) {
            (Some(hash), Some(until)) => until > Utc::now() && constant_time_eq(&hash, &presented),
            _ => false,
        };
        if constant_time_eq(&current, &presented) || previous_ok {
            Ok(gateway)
        } else {
            Err(bad_credentials())
        }
    }

    /// `POST /gateway-registry/heartbeat`: records metrics and status; at most one a
    /// second per gateway (429 otherwise).
    pub async fn heartbeat(
        &self,
        input: Heartbeat,
        remote_ip: Option<&str>,
    ) -> Result<HeartbeatAck> {
        let m = &input.metrics;
        if m.active_sessions < 0
            || m.agent_count < 0
            || !(m.memory_mb.is_finite() && m.memory_mb >= 0.0)
            || !(m.cpu_pct.is_finite() && m.cpu_pct >= 0.0)
        {
            return Err(Error::invalid_field(
                "metrics",
                "counts and measurements must be finite and not negative",
            ));
        }
        let gateway = self
            .authenticate(input.gateway_id, &input.relay_token)
            .await?;
        let status = match input.status {
            ReportedStatus::Online => GatewayStatus::Online,
            ReportedStatus::Error => GatewayStatus::Error,
        };
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        let Some((before, after)) =
            repo::record_heartbeat(&mut tx, gateway.id, status, m, remote_ip).await?
        else {
            return Err(Error::RateLimited {
                retry_after_secs: 1,
            });
        };
        let events = if before == after {
            Vec::new()
        } else {
            vec![NewEvent::new(status_event(after)).payload(json!({
                "gateway_id": gateway.id, "name": gateway.name,
                "previous_status": before, "via": "heartbeat",
            }))]
        };
        self.finish_as_gateway(
            tx,
            gateway.organization_id,
            gateway.id,
            &gateway.name,
            events,
        )
        .await?;
        Ok(HeartbeatAck {
            ok: true,
            config_update: None,
        })
    }

    /// `DELETE /gateway-registry/deregister`: the gateway leaves the registry.
    pub async fn deregister(&self, input: Deregister) -> Result<OkResponse> {
        let gateway = self
            .authenticate(input.gateway_id, &input.relay_token)
            .await?;
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        repo::delete(&mut tx, gateway.id).await?;
        let event = NewEvent::new("gateway.deregistered")
            .payload(json!({ "gateway_id": gateway.id, "name": gateway.name }));
        self.finish_as_gateway(
            tx,
            gateway.organization_id,
            gateway.id,
            &gateway.name,
            vec![event],
        )
        .await?;
        Ok(OkResponse { ok: true })
    }

    // ------------------------------------------------------------ relay sockets

    /// Records an authenticated relay socket and marks the gateway online.
    pub async fn relay_connected(
        &self,
        gateway: &AuthedGateway,
        instance: &str,
        remote_addr: Option<&str>,
    ) -> Result<GatewayConnectionId> {
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        let id = repo::open_connection(&mut tx, gateway, instance, remote_addr).await?;
        let before = repo::set_status(&mut tx, gateway.id, GatewayStatus::Online).await?;
        let mut new = vec![NewEvent::new("gateway.connected").payload(json!({
            "gateway_id": gateway.id, "connection_id": id, "relay_instance": instance,
        }))];
        if before.is_some_and(|b| b != GatewayStatus::Online) {
            new.push(NewEvent::new("gateway.online").payload(json!({
                "gateway_id": gateway.id, "name": gateway.name,
                "previous_status": before, "via": "relay",
            })));
        }
        self.finish_as_gateway(tx, gateway.organization_id, gateway.id, &gateway.name, new)
            .await?;
        Ok(id)
    }

    /// Records a closed relay socket (status is left to heartbeats and the sweeper).
    pub async fn relay_disconnected(
        &self,
        gateway: &AuthedGateway,
        connection: GatewayConnectionId,
        reason: &str,
    ) -> Result<()> {
        let mut tx = begin_org(&self.pool, gateway.organization_id).await?;
        if !repo::close_connection(&mut tx, connection, reason).await? {
            return Ok(());
        }
        let event = NewEvent::new("gateway.disconnected").payload(json!({
            "gateway_id": gateway.id, "connection_id": connection, "reason": reason,
        }));
        self.finish_as_gateway(
            tx,
            gateway.organization_id,
            gateway.id,
            &gateway.name,
            vec![event],
        )
        .await?;
        Ok(())
    }

    /// Closes the records of sockets a relay instance held when it stopped.
    pub async fn relay_instance_stopped(&self, instance: &str) -> Result<u64> {
        let mut tx = begin_system(&self.pool).await?;
        let n =
            repo::close_instance_connections(&mut tx, instance, "relay instance stopped").await?;
        tx.commit().await?;
        Ok(n)
    }

    // --------------------------------------------------------------- admin view

    async fn read<T>(
        &self,
        ctx: &OrgContext,
        f: impl for<'c> FnOnce(&'c mut PgConnection) -> futures::future::BoxFuture<'c, Result<T>>,
    ) -> Result<T> {
        ctx.authorize(Permission::GatewaysRead)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// `GET /gateways`: with status and latest metrics (`connection_info.metrics`).
    pub async fn list(
        &self,
        ctx: &OrgContext,
        filter: &GatewayFilter,
        page: &PageParams,
    ) -> Result<Page<Gateway>> {
        let page = page.parse::<(DateTime<Utc>, Uuid)>()?;
        let (after, limit, status) = (page.after, page.fetch_limit(), filter.status);
        let rows = self
            .read(ctx, move |c| Box::pin(repo::list(c, status, after, limit)))
            .await?;
        Ok(Page::from_rows(rows, page.limit, |g| {
            (g.created_at, g.id.0)
        }))
    }

    /// `GET /gateways/{id}`.
    pub async fn get(&self, ctx: &OrgContext, id: GatewayId) -> Result<Gateway> {
        self.read(ctx, move |c| Box::pin(repo::get(c, id)))
            .await?
            .ok_or(Error::NotFound {
                resource: "gateway",
            })
    }

    /// `GET /gateways/{id}/metrics`: samples, newest first.
    pub async fn metrics(
        &self,
        ctx: &OrgContext,
        id: GatewayId,
        since: Option<DateTime<Utc>>,
        limit: Option<u32>,
    ) -> Result<Vec<MetricsSample>> {
        let limit = i64::from(limit.unwrap_or(100));
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid_field("limit", "must be 1-1000"));
        }
        self.read(ctx, move |c| {
            Box::pin(async move {
                repo::get(&mut *c, id).await?.ok_or(Error::NotFound {
                    resource: "gateway",
                })?;
                repo::metrics(c, id, since, limit).await
            })
        })
        .await
    }

    /// `GET /gateways/{id}/connections`: open relay sockets first, then recent ones.
    pub async fn connections(
        &self,
        ctx: &OrgContext,
        id: GatewayId,
    ) -> Result<Vec<GatewayConnection>> {
        self.read(ctx, move |c| {
            Box::pin(async move {
                repo::get(&mut *c, id).await?.ok_or(Error::NotFound {
                    resource: "gateway",
                })?;
                let mut open = repo::connections(&mut *c, id, true, 100).await?;
                let recent = repo::connections(c, id, false, 50).await?;
                open.extend(recent.into_iter().filter(|r| r.disconnected_at.is_some()));
                Ok(open)
            })
        })
        .await
    }

    /// `POST /gateways/{id}/rotate-relay-token` (admin).
    pub async fn rotate_relay_token(
        &self,
        ctx: &OrgContext,
        id: GatewayId,
        input: RotateRelayToken,
    ) -> Result<RotatedRelayToken> {
        ctx.authorize(Permission::GatewaysManage)?;
        let grace = input.grace_seconds.unwrap_or(300);
        if grace > 86_400 {
            return Err(Error::invalid_field("grace_seconds", "must be 0-86400"));
        }
        let relay_token = format!("{RELAY_TOKEN_PREFIX}{}", random_urlsafe(32));
        let until = Utc::now() + chrono::Duration::seconds(i64::from(grace));
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        found(
            repo::rotate_relay_token(&mut tx, id, &sha256_hex(&relay_token), until).await?,
            "gateway",
        )?;
        let event = NewEvent::new("gateway.relay_token_rotated")
            .payload(json!({ "gateway_id": id, "previous_valid_until": until }));
        self.finish_as(tx, ctx, event).await?;
        Ok(RotatedRelayToken {
            relay_token,
            previous_valid_until: until,
        })
    }

    /// `DELETE /gateways/{id}` (admin): its agents stay, unbound and offline.
    pub async fn remove(&self, ctx: &OrgContext, id: GatewayId) -> Result<()> {
        ctx.authorize(Permission::GatewaysManage)?;
        let mut tx = begin_org(&self.pool, ctx.org_id).await?;
        found(repo::delete(&mut tx, id).await?, "gateway")?;
        let event = NewEvent::new("gateway.removed").payload(json!({ "gateway_id": id }));
        self.finish_as(tx, ctx, event).await?;
        Ok(())
    }
}

/// Marks gateways silent for longer than `threshold` offline (their agents with them),
/// records `gateway.offline` in each organization's log, prunes week-old metrics.
/// Returns how many went offline. Safe to run from any number of workers at once.
pub async fn sweep_offline(
    pool: &PgPool,
    bus: &dyn EventBus,
    threshold: Duration,
) -> Result<usize> {
    let mut tx = begin_system(pool).await?;
    let stale = repo::sweep_offline(&mut tx, threshold.as_secs_f64()).await?;
    repo::prune_metrics(&mut tx, 7).await?;
    let mut recorded = Vec::new();
    // Grouped by organization, in id order (the rows come sorted that way).
    let mut orgs: Vec<OrgId> = stale.iter().map(|s| s.1).collect();
    orgs.sort();
    orgs.dedup();
    for org in orgs {
        let new: Vec<NewEvent> = stale
            .iter()
            .filter(|s| s.1 == org)
            .map(|(id, _, name, before)| {
                NewEvent::new("gateway.offline").payload(json!({
                    "gateway_id": id, "name": name, "previous_status": before,
                    "via": "sweeper", "threshold_seconds": threshold.as_secs(),
                }))
            })
            .collect();
        recorded
            .extend(events::append(&mut tx, org, &Actor::system("gateway-sweeper"), new).await?);
    }
    tx.commit().await?;
    bus.publish(&recorded).await;
    Ok(stale.len())
}
