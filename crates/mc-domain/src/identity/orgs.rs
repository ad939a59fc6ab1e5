//! Organizations: create (the creator becomes admin), read, settings, and the lifecycle
//! active → suspended → pending_deletion (read-only grace period) → deleted (purged).

use super::IdentityService;
use super::audit::{self, AuditEntry};
use super::context::{ActorKind, OrgContext, Principal};
use super::model::{MyOrganization, OrgSettings, OrgStatus, OrgTier, Organization, Role};
use super::permissions::Permission;
use super::repo;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{OrgId, UserId};
use crate::values::{DisplayName, Slug};
use chrono::Utc;
use serde::Deserialize;

/// Body of `POST /organizations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// Display name.
    pub name: DisplayName,
    /// URL-safe unique name; derived from the name when omitted.
    pub slug: Option<Slug>,
    /// Initial settings (defaults for omitted keys).
    pub settings: Option<OrgSettings>,
}

/// Body of `PATCH /organizations/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// New display name.
    pub name: Option<DisplayName>,
    /// Replacement settings (the whole object; omitted keys take defaults).
    pub settings: Option<OrgSettings>,
}

fn derive_slug(name: &str) -> Option<Slug> {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(48).collect();
    Slug::try_from(slug.trim_end_matches('-')).ok()
}

/// Organizations of a user with their role, oldest membership first (one query).
pub(crate) async fn list_for_user(
    identity: &IdentityService,
    user: UserId,
) -> Result<Vec<MyOrganization>> {
    repo::user_organizations(&identity.pool, user).await
}

impl IdentityService {
    /// `GET /organizations`: the caller's organizations.
    pub async fn list_my_organizations(
        &self,
        principal: &Principal,
    ) -> Result<Vec<MyOrganization>> {
        match principal {
            Principal::User { user_id, .. } => list_for_user(self, *user_id).await,
            Principal::ApiKey(key) => {
                let ctx = self.org_context(principal, Some(key.org_id)).await?;
                Ok(vec![MyOrganization {
                    organization: self.get_organization(&ctx).await?,
                    role: key.role,
                }])
            }
        }
    }

    /// `POST /organizations`: creates an organization with the caller as its admin.
    pub async fn create_organization(
        &self,
        principal: &Principal,
        request: CreateOrganization,
    ) -> Result<MyOrganization> {
        let Principal::User { user_id, .. } = principal else {
            return Err(Error::Forbidden(
                "only console users can create organizations".into(),
            ));
        };
        let slug = match request.slug {
            Some(slug) => slug,
            None => derive_slug(request.name.as_str()).ok_or_else(|| {
                Error::invalid_field("slug", "cannot be derived from the name; provide one")
            })?,
        };
        let settings = request.settings.unwrap_or_default();
        settings.validate()?;
        let id = OrgId::generate();
        let mut tx = db::begin_org(&self.pool, id).await?;
        let organization = repo::insert_org(
            &mut tx,
            id,
            slug.as_str(),
            request.name.as_str(),
            OrgTier::Pro,
            &settings,
        )
        .await
        .map_err(|e| super::conflict_on_unique(e, "an organization with this slug exists"))?;
        repo::insert_membership(&mut *tx, id, *user_id, Role::Admin, None).await?;
        let entry = AuditEntry {
            org: Some(id),
            actor_kind: ActorKind::User,
            actor_id: Some(user_id.as_uuid()),
            action: "organization.created",
            target_type: Some("organization"),
            target_id: Some(id.as_uuid()),
            ip: None,
            details: serde_json::json!({ "slug": organization.slug }),
        };
        audit::record(&mut *tx, &entry).await?;
        tx.commit().await?;
        let user = repo::get_user(&self.pool, *user_id).await?;
        if user.is_some_and(|u| u.default_org_id.is_none()) {
            repo::set_default_org(&self.pool, *user_id, id).await?;
        }
        Ok(MyOrganization {
            organization,
            role: Role::Admin,
        })
    }

    /// `GET /organizations/{id}`.
    pub async fn get_organization(&self, ctx: &OrgContext) -> Result<Organization> {
        ctx.authorize(Permission::OrgRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let org = repo::get_org(&mut tx, ctx.org_id)
            .await?
            .ok_or(Error::NotFound {
                resource: "organization",
            })?;
        tx.commit().await?;
        Ok(org)
    }

    /// `PATCH /organizations/{id}`: name and settings.
    pub async fn update_organization(
        &self,
        ctx: &OrgContext,
        request: UpdateOrganization,
    ) -> Result<Organization> {
        ctx.authorize(Permission::OrgManage)?;
        if let Some(settings) = &request.settings {
            settings.validate()?;
        }
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let org = repo::update_org(
            &mut tx,
            ctx.org_id,
            request.name.as_ref().map(DisplayName::as_str),
            request.settings.as_ref(),
        )
        .await?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "organization.updated")
                .target("organization", ctx.org_id.as_uuid())
                .details(serde_json::json!({
                    "name_changed": request.name.is_some(),
                    "settings_changed": request.settings.is_some(),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    async fn transition(
        &self,
        ctx: &OrgContext,
        allowed_from: &[OrgStatus],
        to: OrgStatus,
        action: &'static str,
    ) -> Result<Organization> {
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let current = repo::get_org(&mut tx, ctx.org_id)
            .await?
            .ok_or(Error::NotFound {
                resource: "organization",
            })?;
        if !allowed_from.contains(&current.status) {
            return Err(Error::Conflict(
                format!(
                    "organization is {}; cannot {}",
                    current.status,
                    action.trim_start_matches("organization.")
                )
                .into(),
            ));
        }
        let deletion_at = (to == OrgStatus::PendingDeletion).then(|| {
            Utc::now() + chrono::Duration::hours(i64::from(current.settings.deletion_grace_hours))
        });
        let org = repo::set_org_status(&mut tx, ctx.org_id, to, deletion_at).await?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, action)
                .target("organization", ctx.org_id.as_uuid())
                .details(serde_json::json!({
                    "from": current.status,
                    "to": to,
                    "deletion_scheduled_at": deletion_at,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// `POST /organizations/{id}/suspend`: read-only until reactivated.
    pub async fn suspend_organization(&self, ctx: &OrgContext) -> Result<Organization> {
        ctx.authorize_role(Permission::OrgManage)?;
        self.transition(
            ctx,
            &[OrgStatus::Active],
            OrgStatus::Suspended,
            "organization.suspended",
        )
        .await
    }

    /// `POST /organizations/{id}/reactivate`.
    pub async fn reactivate_organization(&self, ctx: &OrgContext) -> Result<Organization> {
        ctx.authorize_role(Permission::OrgManage)?;
        self.transition(
            ctx,
            &[OrgStatus::Suspended],
            OrgStatus::Active,
            "organization.reactivated",
        )
        .await
    }

    /// `DELETE /organizations/{id}`: starts the grace period; the worker purges after it.
    pub async fn delete_organization(&self, ctx: &OrgContext) -> Result<Organization> {
        ctx.authorize_role(Permission::OrgManage)?;
        self.transition(
            ctx,
            &[OrgStatus::Active, OrgStatus::Suspended],
            OrgStatus::PendingDeletion,
            "organization.deletion_requested",
        )
        .await
    }

    /// `POST /organizations/{id}/restore`: cancels a pending deletion.
    pub async fn restore_organization(&self, ctx: &OrgContext) -> Result<Organization> {
        ctx.authorize_role(Permission::OrgManage)?;
        self.transition(
            ctx,
            &[OrgStatus::PendingDeletion],
            OrgStatus::Active,
            "organization.restored",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_derive_from_names() {
        assert_eq!(
            derive_slug("Acme Robotics").unwrap().as_str(),
            "acme-robotics"
        );
        assert_eq!(derive_slug("  Demo!! Org  ").unwrap().as_str(), "demo-org");
        assert!(derive_slug("张三").is_none());
    }
}
