//! Identity and tenancy types.

use crate::error::{Error, FieldError};
use crate::ids::{AgentId, ApiKeyId, AssignmentId, BoardId, H5UserId, OrgId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

text_enum! {
    /// A member's role in an organization (Godel §8.2), most to least privileged.
    Role {
        /// Full access.
        Admin => "admin",
        /// Read and execute operations.
        Operator => "operator",
        /// Read and create tasks.
        Developer => "developer",
        /// Read-only.
        Viewer => "viewer",
    }
}

impl Role {
    /// Higher is more privileged.
    pub fn rank(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Operator => 2,
            Role::Developer => 1,
            Role::Viewer => 0,
        }
    }
}

text_enum! {
    /// Lifecycle of an organization.
    OrgStatus {
        /// Normal operation.
        Active => "active",
        /// Frozen by an admin: read-only until reactivated.
        Suspended => "suspended",
        /// Deletion requested: read-only during the grace period, then purged.
        PendingDeletion => "pending_deletion",
        /// Gone (only seen by the purge).
        Deleted => "deleted",
    }
}

text_enum! {
    /// Commercial tier, which sets the API rate limits (Godel §10.3).
    OrgTier {
        /// 60 requests/min, burst 10.
        Free => "free",
        /// 600 requests/min, burst 100.
        Pro => "pro",
        /// 6000 requests/min, burst 1000.
        Enterprise => "enterprise",
    }
}

text_enum! {
    /// State of a console user account.
    UserStatus {
        /// Can log in.
        Active => "active",
        /// Invited, has not set a password yet.
        Invited => "invited",
        /// Blocked by an admin.
        Suspended => "suspended",
    }
}

text_enum! {
    /// State of an H5 end user.
    H5UserStatus {
        /// Can log in and chat.
        Active => "active",
        /// Blocked by an admin.
        Suspended => "suspended",
        /// Removed.
        Deleted => "deleted",
    }
}

text_enum! {
    /// Language of the console and notifications.
    Locale {
        /// English.
        En => "en",
        /// Simplified Chinese.
        ZhCn => "zh-CN",
    }
}

/// Organization settings (JSONB). Closed schema: unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OrgSettings {
    /// IANA time zone used for due dates and daily rules (`UTC`, `Asia/Shanghai`).
    pub timezone: String,
    /// Default language.
    pub locale: Locale,
    /// Whether H5 end users may register themselves (otherwise admins create them).
    pub h5_self_registration: bool,
    /// Whether new boards require an approval before a task may reach `done`.
    pub require_approval_for_done: bool,
    /// Hours an organization stays read-only after deletion is requested.
    pub deletion_grace_hours: u32,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            timezone: "UTC".to_owned(),
            locale: Locale::En,
            h5_self_registration: true,
            require_approval_for_done: false,
            deletion_grace_hours: 72,
        }
    }
}

impl OrgSettings {
    /// Checks values serde cannot (ranges, formats).
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if !is_plausible_timezone(&self.timezone) {
            problems.push(FieldError::new(
                "settings.timezone",
                "must be an IANA time zone such as UTC or Asia/Shanghai",
            ));
        }
        if !(1..=24 * 90).contains(&self.deletion_grace_hours) {
            problems.push(FieldError::new(
                "settings.deletion_grace_hours",
                "must be between 1 and 2160 hours",
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_fields(problems))
        }
    }
}

fn is_plausible_timezone(tz: &str) -> bool {
    if tz == "UTC" {
        return true;
    }
    let mut parts = tz.split('/');
    let area_ok = parts.next().is_some_and(|area| {
        matches!(
            area,
            "Africa"
                | "America"
                | "Antarctica"
                | "Asia"
                | "Atlantic"
                | "Australia"
                | "Europe"
                | "Indian"
                | "Pacific"
                | "Etc"
        )
    });
    let rest: Vec<&str> = parts.collect();
    area_ok
        && !rest.is_empty()
        && tz.len() <= 64
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// An organization as callers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// URL-safe unique name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Lifecycle state.
    pub status: OrgStatus,
    /// Rate-limit tier.
    pub tier: OrgTier,
    /// Settings.
    pub settings: OrgSettings,
    /// When a pending deletion becomes final.
    pub deletion_scheduled_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An organization in the caller's list, with the caller's role in it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyOrganization {
    /// The organization.
    #[serde(flatten)]
    pub organization: Organization,
    /// The caller's role.
    pub role: Role,
}

/// A console user as others see them (no secrets).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Email (login name).
    pub email: String,
    /// Name shown in the console.
    pub display_name: Option<String>,
    /// Account state.
    pub status: UserStatus,
    /// Organization chosen at login when the token names none.
    pub default_org_id: Option<OrgId>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A member of an organization.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    /// The user.
    pub user: User,
    /// Their role here.
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// An API key as listed (the secret is never returned again after creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// First characters of the key, to recognise it (`mc_live_AbC…`).
    pub display_prefix: String,
    /// Role the key acts with.
    pub role: Role,
    /// Agent the key belongs to, if any.
    pub agent_id: Option<AgentId>,
    /// Hard expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// After rotation: the old key keeps working until this time.
    pub grace_until: Option<DateTime<Utc>>,
    /// The key that replaced this one.
    pub replaced_by: Option<ApiKeyId>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A newly created or rotated key: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedApiKey {
    /// The key's metadata.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret, `mc_live_…`. Store it now; it cannot be retrieved later.
    pub secret: String,
}

/// An H5 end user (seed 000 §6 `H5User`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct H5User {
    /// Id.
    pub id: H5UserId,
    /// Organization.
    pub organization_id: OrgId,
    /// Login name, unique in the organization.
    pub username: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Account state.
    pub status: H5UserStatus,
    /// Last login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// An H5 user's assignment to an agent on a board.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    /// Id.
    pub id: AssignmentId,
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's name.
    pub agent_name: String,
    /// The board.
    pub board_id: BoardId,
    /// The board's name.
    pub board_name: String,
    /// The user's role in the conversation.
    pub role: String,
    /// When assigned.
    pub assigned_at: DateTime<Utc>,
}

/// Access and refresh token pair.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `/auth/refresh`; rotated on every use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_closed_schema() {
        let parsed: OrgSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, OrgSettings::default());
        assert!(serde_json::from_str::<OrgSettings>(r#"{"colour":"red"}"#).is_err());
        let mut bad = OrgSettings {
            timezone: "Mars/Olympus".into(),
            ..OrgSettings::default()
        };
        assert!(bad.validate().is_err());
        bad.timezone = "Asia/Shanghai".into();
        assert!(bad.validate().is_ok());
        bad.deletion_grace_hours = 0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn enums_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(serde_json::to_string(&Locale::ZhCn).unwrap(), "\"zh-CN\"");
        assert_eq!(
            serde_json::to_string(&OrgStatus::PendingDeletion).unwrap(),
            "\"pending_deletion\""
        );
    }
}
