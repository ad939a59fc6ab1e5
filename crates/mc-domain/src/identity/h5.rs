//! H5 end users (seed 000 M3): their own register/login/refresh/profile, and the admin
//! side: list, search, create, suspend, assign to agents.

use super::IdentityService;
use super::audit::{self, AuditEntry};
use super::context::{ActorKind, H5Context, OrgContext};
use super::model::{Assignment, H5User, H5UserStatus, OrgStatus};
use super::permissions::Permission;
use super::repo::{self, NewH5User, TokenTable};
use super::tokens::new_refresh_token;
use crate::crypto::sha256_hex;
use crate::db;
use crate::error::{Error, FieldError, Result};
use crate::ids::{AgentId, BoardId, H5UserId, OrgId};
use crate::pagination::{Page, PageParams, TimeKey};
use crate::values::{
    DisplayName, Email, HttpUrl, NewPassword, Phone, PresentedPassword, Slug, Username,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use uuid::Uuid;

/// Body of `POST /h5/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5Register {
    /// Organization id (or give `organization_slug`).
    pub organization_id: Option<OrgId>,
    /// Organization slug (or give `organization_id`).
    pub organization_slug: Option<Slug>,
    /// Login name, unique in the organization.
    pub username: Username,
    /// Password (8-256 characters).
    pub password: NewPassword,
    /// Shown name.
    pub display_name: Option<DisplayName>,
    /// Email.
    pub email: Option<Email>,
    /// Phone.
    pub phone: Option<Phone>,
}

/// Body of `POST /h5/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5Login {
    /// Organization id (or give `organization_slug`).
    pub organization_id: Option<OrgId>,
    /// Organization slug (or give `organization_id`).
    pub organization_slug: Option<Slug>,
    /// Login name.
    pub username: Username,
    /// Password.
    pub password: PresentedPassword,
}

/// Body of `PATCH /h5/auth/me`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5UpdateMe {
    /// New shown name.
    pub display_name: Option<DisplayName>,
    /// New avatar URL.
    pub avatar_url: Option<HttpUrl>,
}

/// Seed 000 §6 `H5TokenResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct H5TokenResponse {
    /// The user.
    pub user: H5User,
    /// Short-lived JWT (signed with `H5_JWT_SECRET`).
    pub access_token: String,
    /// Opaque refresh token, rotated on every use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

/// `GET /h5/auth/me` and the admin detail view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct H5UserDetail {
    /// The user.
    pub user: H5User,
    /// Agents the user may chat with.
    pub assignments: Vec<Assignment>,
}

/// Body of `POST /h5/users` (admin).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5CreateUser {
    /// Login name.
    pub username: Username,
    /// Initial password.
    pub password: NewPassword,
    /// Shown name.
    pub display_name: Option<DisplayName>,
    /// Email.
    pub email: Option<Email>,
    /// Phone.
    pub phone: Option<Phone>,
}

/// Body of `POST /h5/users/{id}/assign`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct H5Assign {
    /// The agent.
    pub agent_id: AgentId,
    /// The board the conversation belongs to.
    pub board_id: BoardId,
    /// Role in the conversation (default `user`).
    pub role: Option<String>,
}

/// Filters of `GET /h5/users`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct H5UserFilter {
    /// Substring of username, display name or email.
    pub q: Option<String>,
    /// Only users in this state.
    pub status: Option<H5UserStatus>,
}

fn org_ref(id: Option<OrgId>, slug: Option<&Slug>) -> Result<(Option<OrgId>, Option<String>)> {
    match (id, slug) {
        (Some(_), Some(_)) => Err(Error::invalid_fields(vec![FieldError::new(
            "organization_slug",
            "give organization_id or organization_slug, not both",
        )])),
        (None, None) => Err(Error::invalid_fields(vec![FieldError::new(
            "organization_id",
            "organization_id or organization_slug is required",
        )])),
        (id, slug) => Ok((id, slug.map(|s| s.as_str().to_owned()))),
    }
}

impl IdentityService {
    async fn resolve_h5_org(
        &self,
        id: Option<OrgId>,
        slug: Option<&Slug>,
    ) -> Result<repo::OrgLookup> {
        let (id, slug) = org_ref(id, slug)?;
        let org = repo::lookup_org(&self.pool, id, slug.as_deref())
            .await?
            .filter(|o| o.status != OrgStatus::Deleted)
            .ok_or(Error::NotFound {
                resource: "organization",
            })?;
        if org.status != OrgStatus::Active {
            return Err(Error::Forbidden(
                "this organization is not accepting sign-ins".into(),
            ));
        }
        Ok(org)
    }

    async fn issue_h5_tokens(
        &self,
        exec: impl sqlx::PgExecutor<'_>,
        user: &H5User,
        family: Uuid,
    ) -> Result<(String, String)> {
        let (access, _) = self
            .tokens
            .issue_h5(user.id.as_uuid(), user.organization_id)?;
        let refresh = new_refresh_token(true);
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.tokens.h5_refresh_ttl).unwrap_or_default();
        repo::insert_refresh_token(
            exec,
            &repo::NewRefreshToken {
                table: TokenTable::H5,
                id: Uuid::now_v7(),
                family,
                subject: user.id.as_uuid(),
                org: Some(user.organization_id),
                token_hash: &sha256_hex(&refresh),
                expires_at,
            },
        )
        .await?;
        Ok((access, refresh))
    }

    fn h5_response(&self, user: H5User, (access, refresh): (String, String)) -> H5TokenResponse {
        H5TokenResponse {
            user,
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: self.tokens.h5_access_ttl_secs(),
        }
    }

    /// `POST /h5/auth/register`.
    pub async fn h5_register(&self, ip: IpAddr, request: H5Register) -> Result<H5TokenResponse> {
        self.enforce_h5_limit(ip, None).await?;
        let org = self
            .resolve_h5_org(request.organization_id, request.organization_slug.as_ref())
            .await?;
        if !org.settings.h5_self_registration {
            return Err(Error::Forbidden(
                "self-registration is disabled for this organization".into(),
            ));
        }
        let hash = self.hasher.hash(request.password.expose()).await?;
        let mut tx = db::begin_org(&self.pool, org.id).await?;
        let user = repo::insert_h5_user(
            &mut *tx,
            &NewH5User {
                org: org.id,
                username: request.username.as_str(),
                password_hash: &hash,
                display_name: request.display_name.as_ref().map(DisplayName::as_str),
                email: request.email.as_ref().map(Email::as_str),
                phone: request.phone.as_ref().map(Phone::as_str),
            },
        )
        .await
        .map_err(|e| super::conflict_on_unique(e, "this username is taken"))?;
        let tokens = self
            .issue_h5_tokens(&mut *tx, &user, Uuid::now_v7())
            .await?;
        audit::record(
            &mut *tx,
            &AuditEntry {
                org: Some(org.id),
                actor_kind: ActorKind::H5User,
                actor_id: Some(user.id.as_uuid()),
                action: "h5.registered",
                target_type: Some("h5_user"),
                target_id: Some(user.id.as_uuid()),
                ip: Some(ip),
                details: serde_json::json!({ "username": user.username }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(self.h5_response(user, tokens))
    }

    async fn enforce_h5_limit(&self, ip: IpAddr, account: Option<&str>) -> Result<()> {
        for (key, quota) in [
            (
                Some(format!("h5login:ip:{ip}")),
                self.rate_limits.login_per_ip,
            ),
            (
                account.map(|a| format!("h5login:acct:{a}")),
                self.rate_limits.login_per_account,
            ),
        ] {
            let Some(key) = key else { continue };
            let decision = self.limiter.check(&key, quota).await?;
            if !decision.allowed {
                return Err(Error::RateLimited {
                    retry_after_secs: decision.retry_after.as_secs().max(1),
                });
            }
        }
        Ok(())
    }

    /// `POST /h5/auth/login`.
    pub async fn h5_login(&self, ip: IpAddr, request: H5Login) -> Result<H5TokenResponse> {
        let org = self
            .resolve_h5_org(request.organization_id, request.organization_slug.as_ref())
            .await?;
        self.enforce_h5_limit(ip, Some(&format!("{}:{}", org.id, request.username)))
            .await?;
        let mut tx = db::begin_org(&self.pool, org.id).await?;
        let found = repo::h5_user_with_hash(&mut *tx, request.username.as_str()).await?;
        let ok = self
            .hasher
            .verify(
                request.password.expose(),
                found.as_ref().map(|(_, h)| h.as_str()),
            )
            .await?;
        let Some((user, _)) = found.filter(|_| ok) else {
            audit::record(
                &mut *tx,
                &AuditEntry {
                    org: Some(org.id),
                    actor_kind: ActorKind::H5User,
                    actor_id: None,
                    action: "h5.login_failed",
                    target_type: None,
                    target_id: None,
                    ip: Some(ip),
                    details: serde_json::json!({ "username": request.username }),
                },
            )
            .await?;
            tx.commit().await?;
            return Err(Error::Unauthorized("invalid username or password".into()));
        };
        match user.status {
            H5UserStatus::Active => {}
            H5UserStatus::Suspended => {
                return Err(Error::Forbidden("this account is suspended".into()));
            }
            H5UserStatus::Deleted => {
                return Err(Error::Unauthorized("invalid username or password".into()));
            }
        }
        repo::touch_h5_login(&mut *tx, user.id).await?;
        let tokens = self
            .issue_h5_tokens(&mut *tx, &user, Uuid::now_v7())
            .await?;
        audit::record(
            &mut *tx,
            &AuditEntry {
                org: Some(org.id),
                actor_kind: ActorKind::H5User,
                actor_id: Some(user.id.as_uuid()),
                action: "h5.login_succeeded",
                target_type: Some("h5_user"),
                target_id: Some(user.id.as_uuid()),
                ip: Some(ip),
                details: serde_json::json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(self.h5_response(user, tokens))
    }

    /// `POST /h5/auth/refresh`: rotation with reuse detection, as for console users.
    pub async fn h5_refresh(&self, refresh_token: &str) -> Result<H5TokenResponse> {
        let mut tx = self.pool.begin().await?;
        let row = repo::lock_refresh_token(&mut tx, TokenTable::H5, &sha256_hex(refresh_token))
            .await?
            .ok_or_else(|| Error::Unauthorized("invalid refresh token".into()))?;
        if row.revoked {
            if row.replaced_by.is_some() {
                repo::revoke_refresh_family(&mut *tx, TokenTable::H5, row.family_id).await?;
                tx.commit().await?;
                self.revoke_all_access(row.subject_id).await?;
                return Err(Error::Unauthorized(
                    "refresh token was already used; this login has been revoked".into(),
                ));
            }
            return Err(Error::Unauthorized("refresh token has been revoked".into()));
        }
        if row.expires_at <= Utc::now() {
            return Err(Error::Unauthorized("refresh token expired".into()));
        }
        let org = row
            .organization_id
            .ok_or_else(|| Error::Unauthorized("invalid refresh token".into()))?;
        sqlx::query("SELECT set_config('app.current_org_id', $1, true)")
            .bind(org.to_string())
            .execute(&mut *tx)
            .await?;
        let user = repo::get_h5_user(&mut *tx, H5UserId(row.subject_id))
            .await?
            .ok_or_else(|| Error::Unauthorized("invalid refresh token".into()))?;
        if user.status != H5UserStatus::Active {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        let (access, _) = self.tokens.issue_h5(user.id.as_uuid(), org)?;
        let refresh = new_refresh_token(true);
        let successor = Uuid::now_v7();
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.tokens.h5_refresh_ttl).unwrap_or_default();
        repo::insert_refresh_token(
            &mut *tx,
            &repo::NewRefreshToken {
                table: TokenTable::H5,
                id: successor,
                family: row.family_id,
                subject: user.id.as_uuid(),
                org: Some(org),
                token_hash: &sha256_hex(&refresh),
                expires_at,
            },
        )
        .await?;
        repo::mark_refresh_replaced(&mut *tx, TokenTable::H5, row.id, successor).await?;
        tx.commit().await?;
        Ok(self.h5_response(user, (access, refresh)))
    }

    /// Ends an H5 login: the access token is revoked at once (sockets holding it close at
    /// their next check) and, when given, the refresh token's whole family too.
    pub async fn h5_logout(&self, ctx: &H5Context, refresh_token: Option<&str>) -> Result<()> {
        // The token's own expiry is not in the context; its lifetime (plus the verification
        // leeway) bounds it.
        let ttl = self.tokens.h5_access_ttl_secs().saturating_add(60);
        self.revoke_login(
            ctx.jti,
            ttl,
            TokenTable::H5,
            ctx.user_id.as_uuid(),
            refresh_token,
        )
        .await
    }

    /// Verifies an H5 access token (signature, audience, revocation) and the account state.
    pub async fn authenticate_h5(&self, token: &str) -> Result<H5Context> {
        let claims = self.tokens.verify_h5(token)?;
        if self.is_revoked(claims.jti, claims.sub, claims.iat).await? {
            return Err(Error::Unauthorized("token has been revoked".into()));
        }
        let org = claims
            .org
            .ok_or_else(|| Error::Unauthorized("invalid token".into()))?;
        Ok(H5Context {
            user_id: H5UserId(claims.sub),
            org_id: org,
            jti: claims.jti,
        })
    }

    /// The H5 user and their assignments, failing when the account is no longer active.
    pub async fn h5_me(&self, ctx: &H5Context) -> Result<H5UserDetail> {
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let user = repo::get_h5_user(&mut *tx, ctx.user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("account no longer exists".into()))?;
        if user.status != H5UserStatus::Active {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        let assignments = repo::assignments_of(&mut *tx, ctx.user_id).await?;
        tx.commit().await?;
        Ok(H5UserDetail { user, assignments })
    }

    /// `PATCH /h5/auth/me`.
    pub async fn h5_update_me(&self, ctx: &H5Context, request: H5UpdateMe) -> Result<H5UserDetail> {
        self.h5_me(ctx).await?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        repo::update_h5_profile(
            &mut *tx,
            ctx.user_id,
            request.display_name.as_ref().map(DisplayName::as_str),
            request.avatar_url.as_ref().map(HttpUrl::as_str),
        )
        .await?;
        tx.commit().await?;
        self.h5_me(ctx).await
    }

    /// `GET /h5/users` (admin): search and filter, newest first, with a total.
    pub async fn list_h5_users(
        &self,
        ctx: &OrgContext,
        filter: &H5UserFilter,
        page: &PageParams,
    ) -> Result<Page<H5User>> {
        ctx.authorize(Permission::H5UsersRead)?;
        let page = page.parse::<TimeKey>()?;
        let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > 100) {
            return Err(Error::invalid_field("q", "must be at most 100 characters"));
        }
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let rows =
            repo::list_h5_users(&mut *tx, q, filter.status, page.after, page.fetch_limit()).await?;
        let total = repo::count_h5_users(&mut *tx, q, filter.status).await?;
        tx.commit().await?;
        Ok(Page::from_rows(rows, page.limit, |u| TimeKey {
            t: u.created_at,
            id: u.id.as_uuid(),
        })
        .with_total(total))
    }

    /// `GET /h5/users/{id}` (admin).
    pub async fn get_h5_user(&self, ctx: &OrgContext, id: H5UserId) -> Result<H5UserDetail> {
        ctx.authorize(Permission::H5UsersRead)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let user = repo::get_h5_user(&mut *tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "h5 user",
            })?;
        let assignments = repo::assignments_of(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(H5UserDetail { user, assignments })
    }

    /// `POST /h5/users` (admin).
    pub async fn create_h5_user(&self, ctx: &OrgContext, request: H5CreateUser) -> Result<H5User> {
        ctx.authorize(Permission::H5UsersManage)?;
        let hash = self.hasher.hash(request.password.expose()).await?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let user = repo::insert_h5_user(
            &mut *tx,
            &NewH5User {
                org: ctx.org_id,
                username: request.username.as_str(),
                password_hash: &hash,
                display_name: request.display_name.as_ref().map(DisplayName::as_str),
                email: request.email.as_ref().map(Email::as_str),
                phone: request.phone.as_ref().map(Phone::as_str),
            },
        )
        .await
        .map_err(|e| super::conflict_on_unique(e, "this username is taken"))?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "h5_user.created").target("h5_user", user.id.as_uuid()),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// `POST /h5/users/{id}/suspend` and `/activate` (admin). Suspension also ends the
    /// user's sessions: refresh tokens are revoked and access tokens cut off.
    pub async fn set_h5_user_status(
        &self,
        ctx: &OrgContext,
        id: H5UserId,
        status: H5UserStatus,
    ) -> Result<H5User> {
        ctx.authorize(Permission::H5UsersManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        let user = repo::set_h5_status(&mut *tx, id, status)
            .await?
            .ok_or(Error::NotFound {
                resource: "h5 user",
            })?;
        if status != H5UserStatus::Active {
            repo::revoke_refresh_subject(&mut *tx, TokenTable::H5, id.as_uuid()).await?;
        }
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "h5_user.status_changed")
                .target("h5_user", id.as_uuid())
                .details(serde_json::json!({ "status": status })),
        )
        .await?;
        tx.commit().await?;
        if status != H5UserStatus::Active {
            self.revoke_all_access(id.as_uuid()).await?;
        }
        Ok(user)
    }

    /// `POST /h5/users/{id}/assign` (admin).
    pub async fn assign_h5_user(
        &self,
        ctx: &OrgContext,
        id: H5UserId,
        request: H5Assign,
    ) -> Result<H5UserDetail> {
        ctx.authorize(Permission::H5UsersManage)?;
        let role = request.role.unwrap_or_else(|| "user".to_owned());
        if role.is_empty() || role.len() > 32 {
            return Err(Error::invalid_field("role", "must be 1 to 32 characters"));
        }
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        repo::get_h5_user(&mut *tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "h5 user",
            })?;
        let (agent_ok, board_ok) =
            repo::agent_and_board_exist(&mut *tx, request.agent_id, request.board_id).await?;
        let mut problems = Vec::new();
        if !agent_ok {
            problems.push(FieldError::new(
                "agent_id",
                "no such agent in this organization",
            ));
        }
        if !board_ok {
            problems.push(FieldError::new(
                "board_id",
                "no such board in this organization",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        repo::upsert_assignment(
            &mut *tx,
            ctx.org_id,
            id,
            request.agent_id,
            request.board_id,
            &role,
            ctx.user_id,
        )
        .await?;
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "h5_user.assigned")
                .target("h5_user", id.as_uuid())
                .details(serde_json::json!({ "agent_id": request.agent_id, "board_id": request.board_id })),
        )
        .await?;
        let user = repo::get_h5_user(&mut *tx, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "h5 user",
            })?;
        let assignments = repo::assignments_of(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(H5UserDetail { user, assignments })
    }

    /// `DELETE /h5/users/{id}/assign/{agent_id}` (admin).
    pub async fn unassign_h5_user(
        &self,
        ctx: &OrgContext,
        id: H5UserId,
        agent: AgentId,
    ) -> Result<()> {
        ctx.authorize(Permission::H5UsersManage)?;
        let mut tx = db::begin_org(&self.pool, ctx.org_id).await?;
        if !repo::delete_assignment(&mut *tx, id, agent).await? {
            return Err(Error::NotFound {
                resource: "assignment",
            });
        }
        audit::record(
            &mut *tx,
            &AuditEntry::by(ctx, "h5_user.unassigned")
                .target("h5_user", id.as_uuid())
                .details(serde_json::json!({ "agent_id": agent })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
