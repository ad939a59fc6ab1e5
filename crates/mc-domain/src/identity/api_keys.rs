//! API keys for agents and service accounts: created and shown once, rotated with a
//! grace period in which both keys work, revoked immediately.

use super::IdentityService;
use super::audit::{self, AuditEntry};
use super::context::OrgContext;
use super::model::{ApiKey, IssuedApiKey, Role};
use super::permissions::Permission;
use super::repo;
use super::tokens::new_api_key;
use crate::crypto::sha256_hex;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{AgentId, ApiKeyId};
use crate::pagination::{Page, PageParams, TimeKey};
use crate::values::DisplayName;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Body of `POST /api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Label.
    pub name: DisplayName,
    /// Role the key acts with (at most the creator's).
    pub role: Role,
    /// The agent the key belongs to; its actions are attributed to the agent.
    pub agent_id: Option<AgentId>,
    /// Optional hard expiry (must be in the future).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST /api-keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// Seconds the old key keeps working (default from `API_KEY_ROTATION_GRACE_HOURS`;
    /// 0 ends it at once). At most 30 days.
    pub grace_seconds: Option<u32>,
}

const MAX_GRACE_SECONDS: u32 = 30 * 86_400;

impl IdentityService {
    /// `POST /api-keys`.
    pub async fn create_api_key(
        &self,
        ctx: &OrgContext,
        request: CreateApiKey,
    ) -> Result<IssuedApiKey> {
        ctx.authorize(Permission::ApiKeysManage)?;
        if request.role.rank() > ctx.role.rank() {
            return Err(Error::Forbidden(
                "a key cannot have more privileges than its creator".into(),
            ));
        }
        if request.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::invalid_field("expires_at", "must be in the future"));
        }
        let (secret, lookup) = new_api_key();
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let key = repo::insert_api_key(
            &mut *tx,
            ctx.org_id,
            request.name.as_str(),
            &lookup,
            &sha256_hex(&secret),
            request.role,
            request.agent_id,
            ctx.user_id,
            request.expires_at,
        )
        .await
        .map_err(|e| {
            if db::is_foreign_key_violation(&e) {
                Error::invalid_field("agent_id", "no such agent in this organization")
            } else {
                e.into()
            }
        })?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "api_key.created")
                .target("api_key", key.id.as_uuid())
                .details(serde_json::json!({ "name": key.name, "role": key.role, "agent_id": key.agent_id })),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedApiKey { key, secret })
    }

    /// `GET /api-keys`.
    pub async fn list_api_keys(&self, ctx: &OrgContext, page: &PageParams) -> Result<Page<ApiKey>> {
        ctx.authorize(Permission::ApiKeysManage)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let rows = repo::list_api_keys(&mut *tx, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |k| TimeKey {
            t: k.created_at,
            id: k.id.as_uuid(),
        }))
    }

    /// `POST /api-keys/{id}/rotate`: a new key with the same name, role and agent; the old
    /// one works until the grace period ends.
    pub async fn rotate_api_key(
        &self,
        ctx: &OrgContext,
        id: ApiKeyId,
        request: RotateApiKey,
    ) -> Result<IssuedApiKey> {
        ctx.authorize(Permission::ApiKeysManage)?;
        let grace = match request.grace_seconds {
            Some(s) if s > MAX_GRACE_SECONDS => {
                return Err(Error::invalid_field(
                    "grace_seconds",
                    "must be at most 2592000 (30 days)",
                ));
            }
            Some(s) => chrono::Duration::seconds(i64::from(s)),
            None => {
                chrono::Duration::from_std(self.config.api_key_rotation_grace).unwrap_or_default()
            }
        };
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let old = repo::lock_api_key(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "api key",
            })?;
        if old.revoked_at.is_some() || old.replaced_by.is_some() {
            return Err(Error::Conflict(
                "this key was already revoked or rotated".into(),
            ));
        }
        let (secret, lookup) = new_api_key();
        let key = repo::insert_api_key(
            &mut *tx,
            ctx.org_id,
            &old.name,
            &lookup,
            &sha256_hex(&secret),
            old.role,
            old.agent_id,
            ctx.user_id,
            old.expires_at,
        )
        .await?;
        let grace_until = Utc::now() + grace;
        repo::mark_api_key_rotated(&mut *tx, old.id, key.id, grace_until).await?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "api_key.rotated")
                .target("api_key", old.id.as_uuid())
                .details(serde_json::json!({ "successor": key.id, "grace_until": grace_until })),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedApiKey { key, secret })
    }

    /// `DELETE /api-keys/{id}`: revokes at once.
    pub async fn revoke_api_key(&self, ctx: &OrgContext, id: ApiKeyId) -> Result<ApiKey> {
        ctx.authorize(Permission::ApiKeysManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        repo::lock_api_key(&mut tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "api key",
            })?;
        let key = repo::revoke_api_key(&mut *tx, id).await?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "api_key.revoked").target("api_key", id.as_uuid()),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }
}
