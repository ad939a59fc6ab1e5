//! Console authentication: login, refresh rotation with reuse detection, logout,
//! organization switching, invitations, and resolving each request's caller.

use super::audit::{self, AuditEntry};
use super::context::{Actor, ActorKind, ApiKeyPrincipal, OrgContext, Principal};
use super::model::{MyOrganization, OrgStatus, Role, TokenPair, User, UserStatus};
use super::repo::{self, TokenTable};
use super::tokens::{api_key_lookup, new_refresh_token};
use super::{IdentityService, orgs};
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{OrgId, UserId};
use crate::values::{DisplayName, Email, NewPassword, PresentedPassword};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use uuid::Uuid;

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account email.
    pub email: Email,
    /// Password.
    pub password: PresentedPassword,
}

/// Result of a login, refresh or organization switch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// The user.
    pub user: User,
    /// Organization the access token acts in, if any.
    pub organization_id: Option<OrgId>,
}

/// Body of `POST /auth/accept-invite`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The invitation token from the admin.
    pub token: String,
    /// The password to set.
    pub password: NewPassword,
    /// Optional name.
    pub display_name: Option<DisplayName>,
}

/// `GET /auth/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// Organization of the current token or `X-Org-Id`.
    pub current_organization_id: Option<OrgId>,
    /// Every organization the user belongs to, with their role.
    pub organizations: Vec<MyOrganization>,
}

const BAD_CREDENTIALS: &str = "invalid email or password";

/// Lifetime of a stream ticket.
pub const STREAM_TICKET_TTL_SECS: i64 = 60;

/// `POST /auth/stream-ticket`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` to a stream endpoint.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

fn redis_key_revoked(jti: Uuid) -> String {
    format!("auth:revoked:{jti}")
}

fn redis_key_cutoff(user: Uuid) -> String {
    format!("auth:cutoff:{user}")
}

impl IdentityService {
    /// Rejects the request with 429 when `key` is over `quota`.
    async fn enforce_limit(&self, key: &str, quota: crate::config::Quota) -> Result<()> {
        let decision = self.limiter.check(key, quota).await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after_secs: decision.retry_after.as_secs().max(1),
            })
        }
    }

    /// Issues an access token and a new refresh-token family.
    pub(crate) async fn issue_console_tokens(
        &self,
        user: UserId,
        org: Option<OrgId>,
    ) -> Result<TokenPair> {
        let (access_token, _) = self.tokens.issue_access(user.as_uuid(), org)?;
        let refresh_token = new_refresh_token(false);
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.tokens.refresh_ttl).unwrap_or_default();
        repo::insert_refresh_token(
            &self.pool,
            &repo::NewRefreshToken {
                table: TokenTable::Console,
                id: Uuid::now_v7(),
                family: Uuid::now_v7(),
                subject: user.as_uuid(),
                org,
                token_hash: &sha256_hex(&refresh_token),
                expires_at,
            },
        )
        .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.tokens.access_ttl_secs(),
        })
    }

    /// The organization a fresh login acts in: the default if still a member, else the
    /// oldest membership, skipping deleted organizations.
    async fn pick_login_org(&self, user: &User) -> Result<Option<OrgId>> {
        let memberships = repo::user_memberships(&self.pool, user.id).await?;
        let usable = |org: &OrgId| {
            memberships
                .iter()
                .any(|(o, _, s)| o == org && *s != OrgStatus::Deleted)
        };
        if let Some(default) = user.default_org_id.filter(|o| usable(o)) {
            return Ok(Some(default));
        }
        Ok(memberships
            .iter()
            .find(|(_, _, s)| *s != OrgStatus::Deleted)
            .map(|(o, _, _)| *o))
    }

    /// `POST /auth/login`: rate-limited per IP and per account, argon2id verification,
    /// audited either way.
    pub async fn login(&self, ip: IpAddr, request: LoginRequest) -> Result<LoginResponse> {
        let limits = self.rate_limits.clone();
        self.enforce_limit(&format!("login:ip:{ip}"), limits.login_per_ip)
            .await?;
        self.enforce_limit(
            &format!("login:acct:{}", request.email),
            limits.login_per_account,
        )
        .await?;

        let found = repo::user_with_hash_by_email(&self.pool, request.email.as_str()).await?;
        let (user, hash) = match &found {
            Some((user, hash)) => (Some(user), hash.as_deref()),
            None => (None, None),
        };
        let ok = self.hasher.verify(request.password.expose(), hash).await?;
        let Some(user) = user.filter(|_| ok) else {
            let mut entry = AuditEntry {
                org: None,
                actor_kind: ActorKind::User,
                actor_id: user.map(|u| u.id.as_uuid()),
                action: "auth.login_failed",
                target_type: Some("user"),
                target_id: user.map(|u| u.id.as_uuid()),
                ip: Some(ip),
                details: serde_json::json!({ "email": request.email }),
            };
            // Failed logins of known users are visible to their organization's admins.
            if let Some(u) = user
                && let Some(org) = self.pick_login_org(u).await?
            {
                entry.org = Some(org);
                let mut tx = db::begin_org(&self.pool, org).await?;
                audit::record(&mut *tx, &entry).await?;
                tx.commit().await?;
            } else {
                audit::record(&self.pool, &entry).await?;
            }
            return Err(Error::Unauthorized(BAD_CREDENTIALS.into()));
        };
        match user.status {
            UserStatus::Active => {}
            UserStatus::Invited => return Err(Error::Unauthorized(BAD_CREDENTIALS.into())),
            UserStatus::Suspended => {
                return Err(Error::Forbidden("this account is suspended".into()));
            }
        }
        let org = self.pick_login_org(user).await?;
        let tokens = self.issue_console_tokens(user.id, org).await?;
        repo::touch_login(&self.pool, user.id).await?;
        let entry = AuditEntry {
            org,
            actor_kind: ActorKind::User,
            actor_id: Some(user.id.as_uuid()),
            action: "auth.login_succeeded",
            target_type: Some("user"),
            target_id: Some(user.id.as_uuid()),
            ip: Some(ip),
            details: serde_json::json!({}),
        };
        match org {
            Some(org) => {
                let mut tx = db::begin_org(&self.pool, org).await?;
                audit::record(&mut *tx, &entry).await?;
                tx.commit().await?;
            }
            None => audit::record(&self.pool, &entry).await?,
        }
        let user = repo::get_user(&self.pool, user.id)
            .await?
            .ok_or(Error::NotFound { resource: "user" })?;
        Ok(LoginResponse {
            tokens,
            user,
            organization_id: org,
        })
    }

    /// `POST /auth/refresh`: rotates the token. Presenting a token that was already
    /// rotated revokes its whole family and every access token of the user.
    pub async fn refresh(&self, refresh_token: &str) -> Result<LoginResponse> {
        let hash = sha256_hex(refresh_token);
        let mut tx = self.pool.begin().await?;
        let Some(row) = repo::lock_refresh_token(&mut tx, TokenTable::Console, &hash).await? else {
            return Err(Error::Unauthorized("invalid refresh token".into()));
        };
        if row.revoked {
            if row.replaced_by.is_some() {
                let revoked =
                    repo::revoke_refresh_family(&mut *tx, TokenTable::Console, row.family_id)
                        .await?;
                let entry = AuditEntry {
                    org: None,
                    actor_kind: ActorKind::User,
                    actor_id: Some(row.subject_id),
                    action: "auth.refresh_reuse_detected",
                    target_type: Some("user"),
                    target_id: Some(row.subject_id),
                    ip: None,
                    details: serde_json::json!({ "family_id": row.family_id, "revoked": revoked }),
                };
                audit::record(&mut *tx, &entry).await?;
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
        let user_id = UserId(row.subject_id);
        let user = repo::get_user(&mut *tx, user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("invalid refresh token".into()))?;
        if user.status != UserStatus::Active {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        // Keep the organization only while the user is still a member of it.
        let org = match row.organization_id {
            Some(org) => repo::membership_auth(&mut *tx, org, user_id)
                .await?
                .filter(|m| m.org_status != OrgStatus::Deleted)
                .map(|_| org),
            None => None,
        };
        let (access_token, _) = self.tokens.issue_access(user_id.as_uuid(), org)?;
        let refresh = new_refresh_token(false);
        let successor = Uuid::now_v7();
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.tokens.refresh_ttl).unwrap_or_default();
        repo::insert_refresh_token(
            &mut *tx,
            &repo::NewRefreshToken {
                table: TokenTable::Console,
                id: successor,
                family: row.family_id,
                subject: user_id.as_uuid(),
                org,
                token_hash: &sha256_hex(&refresh),
                expires_at,
            },
        )
        .await?;
        repo::mark_refresh_replaced(&mut *tx, TokenTable::Console, row.id, successor).await?;
        tx.commit().await?;
        Ok(LoginResponse {
            tokens: TokenPair {
                access_token,
                refresh_token: refresh,
                token_type: "Bearer",
                expires_in: self.tokens.access_ttl_secs(),
            },
            user,
            organization_id: org,
        })
    }

    /// `POST /auth/logout`: revokes the current access token and, if given, the refresh
    /// token's family.
    pub async fn logout(&self, principal: &Principal, refresh_token: Option<&str>) -> Result<()> {
        let Principal::User {
            user_id, jti, exp, ..
        } = principal
        else {
            return Err(Error::invalid_field(
                "authorization",
                "API keys do not log out; revoke the key instead",
            ));
        };
        let ttl = (*exp - Utc::now().timestamp()).max(1);
        self.revoke_login(
            *jti,
            ttl,
            TokenTable::Console,
            user_id.as_uuid(),
            refresh_token,
        )
        .await
    }

    /// Revokes an access token's `jti` for `ttl` seconds (its remaining life) and, when a
    /// refresh token of the same subject is given, that token's whole family.
    pub(super) async fn revoke_login(
        &self,
        jti: Uuid,
        ttl: i64,
        table: TokenTable,
        subject: Uuid,
        refresh_token: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.redis.conn();
        let _: () = redis::cmd("SET")
            .arg(self.redis.key(redis_key_revoked(jti)))
            .arg(1)
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await?;
        if let Some(token) = refresh_token {
            let mut tx = self.pool.begin().await?;
            if let Some(row) = repo::lock_refresh_token(&mut tx, table, &sha256_hex(token)).await?
                && row.subject_id == subject
            {
                repo::revoke_refresh_family(&mut *tx, table, row.family_id).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Rejects every access token of `subject` issued before now (suspension, token theft).
    pub(crate) async fn revoke_all_access(&self, subject: Uuid) -> Result<()> {
        let mut conn = self.redis.conn();
        let ttl = self
            .tokens
            .access_ttl_secs()
            .max(self.tokens.h5_access_ttl_secs())
            + 60;
        let _: () = redis::cmd("SET")
            .arg(self.redis.key(redis_key_cutoff(subject)))
            .arg(Utc::now().timestamp())
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether a verified token has been revoked (logout, or a cutoff for its subject).
    pub(crate) async fn is_revoked(&self, jti: Uuid, subject: Uuid, iat: i64) -> Result<bool> {
        let mut conn = self.redis.conn();
        let (revoked, cutoff): (Option<i64>, Option<i64>) = redis::cmd("MGET")
            .arg(self.redis.key(redis_key_revoked(jti)))
            .arg(self.redis.key(redis_key_cutoff(subject)))
            .query_async(&mut conn)
            .await?;
        // A token issued in the same second as the cutoff predates it.
        Ok(revoked.is_some() || cutoff.is_some_and(|c| iat <= c))
    }

    /// Authenticates an admin-API credential: a console access token or an API key.
    pub async fn authenticate(&self, credential: &str) -> Result<Principal> {
        if credential.starts_with(super::tokens::API_KEY_PREFIX) {
            return self.authenticate_api_key(credential).await;
        }
        let claims = self.tokens.verify_access(credential)?;
        if self.is_revoked(claims.jti, claims.sub, claims.iat).await? {
            return Err(Error::Unauthorized("token has been revoked".into()));
        }
        Ok(Principal::User {
            user_id: UserId(claims.sub),
            token_org: claims.org,
            jti: claims.jti,
            exp: claims.exp,
        })
    }

    /// Authenticates an API key: found by prefix, compared by hash in constant time,
    /// checked for revocation, expiry and the end of a rotation grace period.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let invalid = || Error::Unauthorized("invalid API key".into());
        let lookup = api_key_lookup(key).ok_or_else(invalid)?;
        let hash = sha256_hex(key);
        let candidates = repo::api_keys_by_prefix(&self.pool, lookup).await?;
        let row = candidates
            .into_iter()
            .find(|row| constant_time_eq(&row.key_hash, &hash))
            .ok_or_else(invalid)?;
        let now = Utc::now();
        if row.revoked_at.is_some() {
            return Err(Error::Unauthorized("API key has been revoked".into()));
        }
        if row.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::Unauthorized("API key has expired".into()));
        }
        if row.grace_until.is_some_and(|t| t <= now) {
            return Err(Error::Unauthorized(
                "API key was rotated and its grace period is over".into(),
            ));
        }
        if row.org_status == OrgStatus::Deleted {
            return Err(invalid());
        }
        repo::touch_api_key(&self.pool, row.id).await?;
        Ok(Principal::ApiKey(ApiKeyPrincipal {
            key_id: row.id,
            key_name: row.name,
            org_id: row.organization_id,
            role: row.role,
            agent: row.agent_id.zip(row.agent_name),
            org_status: row.org_status,
            org_tier: row.org_tier,
        }))
    }

    /// Resolves the organization a request acts in (`X-Org-Id`, else the token's) and the
    /// caller's role there. Not a member, or no such organization: 404.
    pub async fn org_context(
        &self,
        principal: &Principal,
        requested: Option<OrgId>,
    ) -> Result<OrgContext> {
        let not_found = Error::NotFound {
            resource: "organization",
        };
        match principal {
            Principal::User {
                user_id, token_org, ..
            } => {
                let org = requested.or(*token_org).ok_or_else(|| {
                    Error::invalid_field(
                        "X-Org-Id",
                        "no organization selected: send X-Org-Id or call /auth/switch-org",
                    )
                })?;
                let membership = repo::membership_auth(&self.pool, org, *user_id)
                    .await?
                    .filter(|m| m.org_status != OrgStatus::Deleted)
                    .ok_or(not_found)?;
                if membership.user_status != UserStatus::Active {
                    return Err(Error::Forbidden("this account is suspended".into()));
                }
                Ok(OrgContext {
                    org_id: org,
                    role: membership.role,
                    org_status: membership.org_status,
                    org_tier: membership.org_tier,
                    actor: Actor {
                        kind: ActorKind::User,
                        id: user_id.as_uuid(),
                        name: membership.user_name,
                    },
                    user_id: Some(*user_id),
                    agent_id: None,
                })
            }
            Principal::ApiKey(key) => {
                if requested.is_some_and(|org| org != key.org_id) {
                    return Err(not_found);
                }
                let actor = match &key.agent {
                    Some((agent_id, agent_name)) => Actor {
                        kind: ActorKind::Agent,
                        id: agent_id.as_uuid(),
                        name: agent_name.clone(),
                    },
                    None => Actor {
                        kind: ActorKind::ApiKey,
                        id: key.key_id.as_uuid(),
                        name: key.key_name.clone(),
                    },
                };
                Ok(OrgContext {
                    org_id: key.org_id,
                    role: key.role,
                    org_status: key.org_status,
                    org_tier: key.org_tier,
                    actor,
                    user_id: None,
                    agent_id: key.agent.as_ref().map(|(id, _)| *id),
                })
            }
        }
    }

    /// `GET /auth/me`.
    pub async fn me(&self, principal: &Principal, requested: Option<OrgId>) -> Result<Me> {
        let Principal::User {
            user_id, token_org, ..
        } = principal
        else {
            return Err(Error::Forbidden(
                "API keys have no user profile; use the key's organization endpoints".into(),
            ));
        };
        let user = repo::get_user(&self.pool, *user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("user no longer exists".into()))?;
        if user.status == UserStatus::Suspended {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        let organizations = orgs::list_for_user(self, *user_id).await?;
        let current = requested.or(*token_org);
        if let Some(org) = requested
            && !organizations.iter().any(|o| o.organization.id == org)
        {
            return Err(Error::NotFound {
                resource: "organization",
            });
        }
        Ok(Me {
            user,
            current_organization_id: current,
            organizations,
        })
    }

    /// `POST /auth/switch-org`: new tokens acting in `org`, which becomes the default.
    pub async fn switch_org(&self, principal: &Principal, org: OrgId) -> Result<LoginResponse> {
        let Principal::User { user_id, .. } = principal else {
            return Err(Error::Forbidden(
                "an API key belongs to one organization".into(),
            ));
        };
        repo::membership_auth(&self.pool, org, *user_id)
            .await?
            .filter(|m| m.org_status != OrgStatus::Deleted)
            .ok_or(Error::NotFound {
                resource: "organization",
            })?;
        repo::set_default_org(&self.pool, *user_id, org).await?;
        let tokens = self.issue_console_tokens(*user_id, Some(org)).await?;
        let user = repo::get_user(&self.pool, *user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("user no longer exists".into()))?;
        Ok(LoginResponse {
            tokens,
            user,
            organization_id: Some(org),
        })
    }

    /// `POST /auth/accept-invite`: sets the password of an invited user and logs them in.
    pub async fn accept_invite(&self, request: AcceptInviteRequest) -> Result<LoginResponse> {
        let hash = self.hasher.hash(request.password.expose()).await?;
        let mut tx = self.pool.begin().await?;
        let (user_id, org) = repo::accept_invitation(&mut *tx, &sha256_hex(&request.token))
            .await?
            .ok_or_else(|| {
                Error::invalid_field("token", "invitation is unknown, used or expired")
            })?;
        let user = repo::get_user(&mut *tx, user_id)
            .await?
            .ok_or(Error::NotFound { resource: "user" })?;
        if user.status == UserStatus::Suspended {
            return Err(Error::Forbidden("this account is suspended".into()));
        }
        repo::activate_user(
            &mut *tx,
            user_id,
            &hash,
            request.display_name.as_ref().map(DisplayName::as_str),
        )
        .await?;
        tx.commit().await?;
        let mut tx = db::begin_org(&self.pool, org).await?;
        let entry = AuditEntry {
            org: Some(org),
            actor_kind: ActorKind::User,
            actor_id: Some(user_id.as_uuid()),
            action: "member.invitation_accepted",
            target_type: Some("user"),
            target_id: Some(user_id.as_uuid()),
            ip: None,
            details: serde_json::json!({}),
        };
        audit::record(&mut *tx, &entry).await?;
        tx.commit().await?;
        let tokens = self.issue_console_tokens(user_id, Some(org)).await?;
        let user = repo::get_user(&self.pool, user_id)
            .await?
            .ok_or(Error::NotFound { resource: "user" })?;
        Ok(LoginResponse {
            tokens,
            user,
            organization_id: Some(org),
        })
    }

    /// `POST /auth/stream-ticket`: a short-lived ticket standing in for `credential` in a
    /// URL, for clients that cannot set headers (EventSource). Valid for 60 seconds, so an
    /// EventSource reconnecting right away can reuse it.
    pub async fn issue_stream_ticket(
        &self,
        credential: &str,
        org: Option<OrgId>,
    ) -> Result<StreamTicket> {
        let ticket = format!("mc_st_{}", crate::crypto::random_urlsafe(24));
        let value = serde_json::json!({ "credential": credential, "org": org }).to_string();
        let mut conn = self.redis.conn();
        let _: () = redis::cmd("SET")
            .arg(
                self.redis
                    .key(format!("auth:ticket:{}", sha256_hex(&ticket))),
            )
            .arg(value)
            .arg("EX")
            .arg(STREAM_TICKET_TTL_SECS)
            .query_async(&mut conn)
            .await?;
        Ok(StreamTicket {
            ticket,
            expires_in: STREAM_TICKET_TTL_SECS,
        })
    }

    /// The credential and organization a stream ticket stands for.
    pub async fn redeem_stream_ticket(&self, ticket: &str) -> Result<(String, Option<OrgId>)> {
        let mut conn = self.redis.conn();
        let value: Option<String> = redis::cmd("GET")
            .arg(
                self.redis
                    .key(format!("auth:ticket:{}", sha256_hex(ticket))),
            )
            .query_async(&mut conn)
            .await?;
        let value = value
            .ok_or_else(|| Error::Unauthorized("stream ticket is unknown or expired".into()))?;
        #[derive(Deserialize)]
        struct Stored {
            credential: String,
            org: Option<OrgId>,
        }
        let stored: Stored = serde_json::from_str(&value)
            .map_err(|e| Error::internal("decoding a stream ticket", e))?;
        Ok((stored.credential, stored.org))
    }

    /// The role a principal would have in `org` (for callers that only need the role).
    pub async fn role_in(&self, principal: &Principal, org: OrgId) -> Result<Role> {
        Ok(self.org_context(principal, Some(org)).await?.role)
    }
}
