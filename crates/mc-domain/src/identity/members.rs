//! Members of an organization: list, invite or add, change roles, remove.

use super::IdentityService;
use super::audit::{self, AuditEntry};
use super::context::OrgContext;
use super::model::{Member, Role, UserStatus};
use super::permissions::Permission;
use super::repo;
use crate::crypto::{random_urlsafe, sha256_hex};
use crate::db;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::pagination::{Page, PageParams, TimeKey};
use crate::values::{DisplayName, Email};
use chrono::Utc;
use serde::{Deserialize, Serialize};

/// Body of `POST /members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// Email of the person to add.
    pub email: Email,
    /// Their role.
    pub role: Role,
    /// Name, used when the person has no account yet.
    pub display_name: Option<DisplayName>,
}

/// Result of adding a member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddedMember {
    /// The member.
    pub member: Member,
    /// For people without an account: the invitation token to send them (shown once);
    /// they set a password with `POST /auth/accept-invite`.
    pub invitation_token: Option<String>,
    /// When the invitation expires.
    pub invitation_expires_at: Option<chrono::DateTime<Utc>>,
}

/// Body of `PATCH /members/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    /// New role.
    pub role: Role,
}

impl IdentityService {
    /// `GET /members`.
    pub async fn list_members(&self, ctx: &OrgContext, page: &PageParams) -> Result<Page<Member>> {
        ctx.authorize(Permission::MembersRead)?;
        let page = page.parse::<TimeKey>()?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let rows = repo::list_members(&mut *tx, page.after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |m| TimeKey {
            t: m.joined_at,
            id: m.user.id.as_uuid(),
        }))
    }

    /// `POST /members`: adds an existing user, or creates an invited account.
    pub async fn add_member(&self, ctx: &OrgContext, request: AddMember) -> Result<AddedMember> {
        ctx.authorize(Permission::MembersManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let existing = repo::get_user_by_email(&mut *tx, request.email.as_str()).await?;
        let mut invitation = None;
        let user = match existing {
            Some(user) if user.status == UserStatus::Suspended => {
                return Err(Error::Conflict("this account is suspended".into()));
            }
            Some(user) => user,
            None => {
                let user = repo::insert_user(
                    &mut *tx,
                    request.email.as_str(),
                    request.display_name.as_ref().map(DisplayName::as_str),
                    None,
                    UserStatus::Invited,
                    Some(ctx.org_id),
                )
                .await?;
                let token = format!("mc_inv_{}", random_urlsafe(32));
                let expires_at = Utc::now()
                    + chrono::Duration::from_std(self.config.invitation_ttl).unwrap_or_default();
                repo::insert_invitation(
                    &mut *tx,
                    &sha256_hex(&token),
                    user.id,
                    ctx.org_id,
                    expires_at,
                )
                .await?;
                invitation = Some((token, expires_at));
                user
            }
        };
        repo::insert_membership(&mut *tx, ctx.org_id, user.id, request.role, ctx.user_id)
            .await
            .map_err(|e| super::conflict_on_unique(e, "this person is already a member"))?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "member.added")
                .target("user", user.id.as_uuid())
                .details(
                    serde_json::json!({ "role": request.role, "invited": invitation.is_some() }),
                ),
        )
        .await?;
        let member = repo::get_member(&mut *tx, user.id)
            .await?
            .ok_or(Error::NotFound { resource: "member" })?;
        tx.commit().await?;
        Ok(AddedMember {
            member,
            invitation_expires_at: invitation.as_ref().map(|(_, t)| *t),
            invitation_token: invitation.map(|(token, _)| token),
        })
    }

    /// `GET /members/{user_id}`.
    pub async fn get_member(&self, ctx: &OrgContext, user: UserId) -> Result<Member> {
        ctx.authorize(Permission::MembersRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let member = repo::get_member(&mut *tx, user)
            .await?
            .ok_or(Error::NotFound { resource: "member" })?;
        tx.commit().await?;
        Ok(member)
    }

    /// `PATCH /members/{user_id}`: changes a role (takes effect on the next request).
    pub async fn update_member(
        &self,
        ctx: &OrgContext,
        user: UserId,
        request: UpdateMember,
    ) -> Result<Member> {
        ctx.authorize(Permission::MembersManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        // Serialise role changes in this organization so two admins cannot demote each
        // other and leave nobody in charge.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("members:{}", ctx.org_id))
            .execute(&mut *tx)
            .await?;
        let previous = repo::update_member_role(&mut tx, user, request.role)
            .await?
            .ok_or(Error::NotFound { resource: "member" })?;
        if previous == Role::Admin
            && request.role != Role::Admin
            && repo::count_admins(&mut *tx).await? == 0
        {
            return Err(Error::Conflict(
                "an organization needs at least one admin".into(),
            ));
        }
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "member.role_changed")
                .target("user", user.as_uuid())
                .details(serde_json::json!({ "from": previous, "to": request.role })),
        )
        .await?;
        let member = repo::get_member(&mut *tx, user)
            .await?
            .ok_or(Error::NotFound { resource: "member" })?;
        tx.commit().await?;
        Ok(member)
    }

    /// `DELETE /members/{user_id}`: the person loses access at once.
    pub async fn remove_member(&self, ctx: &OrgContext, user: UserId) -> Result<()> {
        ctx.authorize(Permission::MembersManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("members:{}", ctx.org_id))
            .execute(&mut *tx)
            .await?;
        let role = repo::delete_member(&mut *tx, user)
            .await?
            .ok_or(Error::NotFound { resource: "member" })?;
        if role == Role::Admin && repo::count_admins(&mut *tx).await? == 0 {
            return Err(Error::Conflict(
                "an organization needs at least one admin".into(),
            ));
        }
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "member.removed")
                .target("user", user.as_uuid())
                .details(serde_json::json!({ "role": role })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
