//! The audit log: security-relevant actions, appended and never changed (a trigger
//! rejects UPDATE, DELETE and TRUNCATE).

use super::context::{ActorKind, OrgContext};
use super::permissions::Permission;
use crate::error::Result;
use crate::ids::{AuditId, OrgId};
use crate::pagination::{Page, PageParams, TimeKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgExecutor};
use std::net::IpAddr;
use uuid::Uuid;

/// One entry to append.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Organization concerned, if known.
    pub org: Option<OrgId>,
    /// Who acted.
    pub actor_kind: ActorKind,
    /// Their id, if known.
    pub actor_id: Option<Uuid>,
    /// What happened (`auth.login_succeeded`, `member.role_changed`, ...).
    pub action: &'static str,
    /// Kind of thing acted on.
    pub target_type: Option<&'static str>,
    /// Its id.
    pub target_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Anything else worth keeping (never secrets).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// An entry for `action` by the context's actor in its organization.
    pub fn by(ctx: &OrgContext, action: &'static str) -> Self {
        Self {
            org: Some(ctx.org_id),
            actor_kind: ctx.actor.kind,
            actor_id: Some(ctx.actor.id),
            action,
            target_type: None,
            target_id: None,
            ip: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Sets the target.
    pub fn target(mut self, kind: &'static str, id: Uuid) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id);
        self
    }

    /// Sets details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Appends an entry. Run it in the same transaction as the action it records.
pub async fn record(exec: impl PgExecutor<'_>, entry: &AuditEntry) -> Result<()> {
    let actor_type = match entry.actor_kind {
        ActorKind::User if entry.actor_id.is_none() => "anonymous",
        ActorKind::User => "user",
        ActorKind::Agent | ActorKind::ApiKey => "api_key",
        ActorKind::H5User => "h5_user",
        ActorKind::System => "system",
    };
    sqlx::query(
        "INSERT INTO audit_log (id, organization_id, actor_type, actor_id, action, target_type,
                                target_id, ip, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::inet, $9)",
    )
    .bind(AuditId::generate())
    .bind(entry.org)
    .bind(actor_type)
    .bind(entry.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.ip.map(|ip| ip.to_string()))
    .bind(&entry.details)
    .execute(exec)
    .await?;
    Ok(())
}

/// An audit entry as listed.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Id.
    pub id: AuditId,
    /// Who acted: `user`, `api_key`, `h5_user`, `system`, `anonymous`.
    pub actor_type: String,
    /// Their id.
    pub actor_id: Option<Uuid>,
    /// What happened.
    pub action: String,
    /// Kind of thing acted on.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<String>,
    /// Details.
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Filters of the audit log list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only this action (exact) or prefix ending in `*` (`auth.*`).
    pub action: Option<String>,
    /// Only this actor.
    pub actor_id: Option<Uuid>,
}

/// Lists the organization's audit log, newest first.
pub async fn list(
    pool: &sqlx::PgPool,
    ctx: &OrgContext,
    filter: &AuditFilter,
    page: &PageParams,
) -> Result<Page<AuditRecord>> {
    ctx.authorize(Permission::AuditRead)?;
    let page = page.parse::<TimeKey>()?;
    let (exact, prefix) = match filter.action.as_deref() {
        Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*').to_owned())),
        Some(a) => (Some(a.to_owned()), None),
        None => (None, None),
    };
    let mut tx = crate::db::begin_org(pool, ctx.org_id).await?;
    let rows: Vec<AuditRecord> = sqlx::query_as(
        "SELECT id, actor_type, actor_id, action, target_type, target_id, host(ip) AS ip,
                details, created_at
         FROM audit_log
         WHERE ($1::text IS NULL OR action = $1)
           AND ($2::text IS NULL OR starts_with(action, $2))
           AND ($3::uuid IS NULL OR actor_id = $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6",
    )
    .bind(exact)
    .bind(prefix)
    .bind(filter.actor_id)
    .bind(page.after.map(|k| k.t))
    .bind(page.after.map(|k| k.id))
    .bind(page.fetch_limit())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, page.limit, |r| TimeKey {
        t: r.created_at,
        id: r.id.as_uuid(),
    }))
}
