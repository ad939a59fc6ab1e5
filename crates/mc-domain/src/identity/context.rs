//! Who is calling, and in which organization with which role.

use super::model::{OrgStatus, OrgTier, Role};
use super::permissions::Permission;
use crate::error::{Error, Result};
use crate::ids::{AgentId, ApiKeyId, H5UserId, OrgId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An authenticated caller of the admin API, before an organization is chosen.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A console user with a verified access token.
    User {
        /// The user.
        user_id: UserId,
        /// Organization named in the token.
        token_org: Option<OrgId>,
        /// Token id (for logout).
        jti: Uuid,
        /// Token expiry (unix seconds).
        exp: i64,
    },
    /// An API key (an agent or a service account); bound to one organization.
    ApiKey(ApiKeyPrincipal),
}

/// What an API key authenticates as.
#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    /// The key.
    pub key_id: ApiKeyId,
    /// The key's label.
    pub key_name: String,
    /// Its organization.
    pub org_id: OrgId,
    /// Its role.
    pub role: Role,
    /// The agent it belongs to, if any.
    pub agent: Option<(AgentId, String)>,
    /// Organization state.
    pub org_status: OrgStatus,
    /// Organization tier.
    pub org_tier: OrgTier,
}

impl Principal {
    /// A stable key for per-caller rate limits.
    pub fn rate_key(&self) -> String {
        match self {
            Principal::User { user_id, .. } => format!("u:{user_id}"),
            Principal::ApiKey(key) => format!("k:{}", key.key_id),
        }
    }
}

/// Kind of actor, as recorded on events and audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A console user.
    User,
    /// An agent (through its API key).
    Agent,
    /// A service account API key.
    ApiKey,
    /// An H5 end user.
    H5User,
    /// Mission Control itself (rules, sweepers).
    System,
}

impl ActorKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Agent => "agent",
            ActorKind::ApiKey => "api_key",
            ActorKind::H5User => "h5_user",
            ActorKind::System => "system",
        }
    }
}

/// Who acted (seed 000 §6 `ActorRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// Id of the user, agent, key or H5 user.
    pub id: Uuid,
    /// Human-readable name.
    pub name: String,
}

impl Actor {
    /// Mission Control acting on its own.
    pub fn system(name: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: Uuid::nil(),
            name: name.to_owned(),
        }
    }
}

/// A caller acting inside one organization: every tenant operation takes one.
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// The organization.
    pub org_id: OrgId,
    /// The caller's role in it.
    pub role: Role,
    /// The organization's state (suspended and pending-deletion are read-only).
    pub org_status: OrgStatus,
    /// The organization's tier.
    pub org_tier: OrgTier,
    /// Who is acting.
    pub actor: Actor,
    /// The console user, when the caller is one.
    pub user_id: Option<UserId>,
    /// The agent, when the caller is an agent's key.
    pub agent_id: Option<AgentId>,
}

impl OrgContext {
    /// Fails unless the role holds `permission` and, for writes, the organization is active.
    pub fn authorize(&self, permission: Permission) -> Result<()> {
        if !self.role.can(permission) {
            let (resource, action) = permission.describe();
            return Err(Error::Forbidden(
                format!(
                    "role {} may not {action} {resource} (needs {} or above)",
                    self.role,
                    permission.min_role()
                )
                .into(),
            ));
        }
        if !permission.is_read() && self.org_status != OrgStatus::Active {
            return Err(Error::Forbidden(
                format!(
                    "organization is {}: it is read-only",
                    self.org_status.as_str().replace('_', " ")
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// The same check for role only (restoring an organization pending deletion).
    pub fn authorize_role(&self, permission: Permission) -> Result<()> {
        if self.role.can(permission) {
            Ok(())
        } else {
            self.authorize(permission)
        }
    }
}

/// An authenticated H5 end user.
#[derive(Debug, Clone)]
pub struct H5Context {
    /// The user.
    pub user_id: H5UserId,
    /// Their organization.
    pub org_id: OrgId,
    /// Token id.
    pub jti: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(role: Role, status: OrgStatus) -> OrgContext {
        OrgContext {
            org_id: OrgId::generate(),
            role,
            org_status: status,
            org_tier: OrgTier::Pro,
            actor: Actor::system("test"),
            user_id: None,
            agent_id: None,
        }
    }

    #[test]
    fn roles_and_read_only_orgs() {
        assert!(
            ctx(Role::Viewer, OrgStatus::Active)
                .authorize(Permission::TasksRead)
                .is_ok()
        );
        let denied = ctx(Role::Viewer, OrgStatus::Active)
            .authorize(Permission::TasksCreate)
            .unwrap_err();
        assert_eq!(denied.code(), "forbidden");
        assert!(denied.to_string().contains("developer"), "{denied}");
        let frozen = ctx(Role::Admin, OrgStatus::Suspended);
        assert!(frozen.authorize(Permission::TasksRead).is_ok());
        assert!(frozen.authorize(Permission::TasksCreate).is_err());
        assert!(
            ctx(Role::Admin, OrgStatus::PendingDeletion)
                .authorize_role(Permission::OrgManage)
                .is_ok()
        );
    }
}
