//! SQL of the identity capability. Every function takes the executor it runs on, so the
//! service decides the transaction (and with it the organization row-level security sees).

use super::model::{
    ApiKey, Assignment, H5User, H5UserStatus, Member, OrgSettings, OrgStatus, OrgTier,
    Organization, Role, User, UserStatus,
};
use crate::error::Result;
use crate::ids::{AgentId, ApiKeyId, AssignmentId, BoardId, H5UserId, OrgId, UserId};
use crate::pagination::TimeKey;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

// ---------------------------------------------------------------- organizations

#[derive(FromRow)]
struct OrgRow {
    id: OrgId,
    slug: String,
    name: String,
    status: OrgStatus,
    tier: OrgTier,
    settings: Json<OrgSettings>,
    deletion_scheduled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Self {
        Organization {
            id: r.id,
            slug: r.slug,
            name: r.name,
            status: r.status,
            tier: r.tier,
            settings: r.settings.0,
            deletion_scheduled_at: r.deletion_scheduled_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const ORG_COLUMNS: &str =
    "id, slug, name, status, tier, settings, deletion_scheduled_at, created_at, updated_at";

/// Inserts an organization (the transaction must be scoped to `id`).
pub async fn insert_org(
    conn: &mut PgConnection,
    id: OrgId,
    slug: &str,
    name: &str,
    tier: OrgTier,
    settings: &OrgSettings,
) -> std::result::Result<Organization, sqlx::Error> {
    let row: OrgRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO organizations (id, slug, name, tier, settings) VALUES ($1, $2, $3, $4, $5)
         RETURNING {ORG_COLUMNS}"
    )))
    .bind(id)
    .bind(slug)
    .bind(name)
    .bind(tier)
    .bind(Json(settings))
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// The organization the transaction is scoped to.
pub async fn get_org(conn: &mut PgConnection, id: OrgId) -> Result<Option<Organization>> {
    let row: Option<OrgRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Updates name and/or settings.
pub async fn update_org(
    conn: &mut PgConnection,
    id: OrgId,
    name: Option<&str>,
    settings: Option<&OrgSettings>,
) -> Result<Organization> {
    let row: OrgRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE organizations SET name = coalesce($2, name), settings = coalesce($3, settings)
         WHERE id = $1 RETURNING {ORG_COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(settings.map(Json))
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Moves an organization to `status`, setting or clearing the deletion time.
pub async fn set_org_status(
    conn: &mut PgConnection,
    id: OrgId,
    status: OrgStatus,
    deletion_scheduled_at: Option<DateTime<Utc>>,
) -> Result<Organization> {
    let row: OrgRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE organizations SET status = $2, deletion_scheduled_at = $3
         WHERE id = $1 RETURNING {ORG_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(deletion_scheduled_at)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// A user's organizations with their role (cross-tenant, through `auth_user_organizations`).
pub async fn user_memberships(
    exec: impl PgExecutor<'_>,
    user: UserId,
) -> Result<Vec<(OrgId, Role, OrgStatus)>> {
    Ok(
        sqlx::query_as("SELECT organization_id, role, org_status FROM auth_user_organizations($1)")
            .bind(user)
            .fetch_all(exec)
            .await?,
    )
}

/// A user's organizations with full rows and their role (cross-tenant, through
/// `auth_user_organization_rows`).
pub async fn user_organizations(
    exec: impl PgExecutor<'_>,
    user: UserId,
) -> Result<Vec<super::model::MyOrganization>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        org: OrgRow,
        role: Role,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLUMNS}, role FROM auth_user_organization_rows($1)"
    )))
    .bind(user)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| super::model::MyOrganization {
            organization: r.org.into(),
            role: r.role,
        })
        .collect())
}

/// One membership with the organization's state and the user's name and state.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipAuth {
    /// Role in the organization.
    pub role: Role,
    /// Organization state.
    pub org_status: OrgStatus,
    /// Organization tier.
    pub org_tier: OrgTier,
    /// Display name or email.
    pub user_name: String,
    /// Account state.
    pub user_status: UserStatus,
}

/// The caller's membership in `org` (cross-tenant, through `auth_membership`).
pub async fn membership_auth(
    exec: impl PgExecutor<'_>,
    org: OrgId,
    user: UserId,
) -> Result<Option<MembershipAuth>> {
    Ok(sqlx::query_as(
        "SELECT role, org_status, org_tier, user_name, user_status FROM auth_membership($1, $2)",
    )
    .bind(org)
    .bind(user)
    .fetch_optional(exec)
    .await?)
}

/// An organization's id, state, tier and settings by id or slug (for H5 users).
#[derive(Debug, Clone, FromRow)]
pub struct OrgLookup {
    /// Id.
    pub id: OrgId,
    /// State.
    pub status: OrgStatus,
    /// Tier.
    pub tier: OrgTier,
    /// Settings.
    pub settings: Json<OrgSettings>,
}

/// Finds an organization by id or slug (cross-tenant, through `auth_organization`).
pub async fn lookup_org(
    exec: impl PgExecutor<'_>,
    id: Option<OrgId>,
    slug: Option<&str>,
) -> Result<Option<OrgLookup>> {
    Ok(
        sqlx::query_as("SELECT id, status, tier, settings FROM auth_organization($1, $2)")
            .bind(id)
            .bind(slug)
            .fetch_optional(exec)
            .await?,
    )
}

// ---------------------------------------------------------------- users

#[derive(FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    display_name: Option<String>,
    status: UserStatus,
    default_org_id: Option<OrgId>,
    last_login_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            status: r.status,
            default_org_id: r.default_org_id,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
        }
    }
}

const USER_COLUMNS: &str =
    "id, email, display_name, status, default_org_id, last_login_at, created_at";

/// A user and their password hash, by email.
pub async fn user_with_hash_by_email(
    exec: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<(User, Option<String>)>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: Option<String>,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| (r.user.into(), r.password_hash)))
}

/// A user by id.
pub async fn get_user(exec: impl PgExecutor<'_>, id: UserId) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(Into::into))
}

/// A user by email.
pub async fn get_user_by_email(exec: impl PgExecutor<'_>, email: &str) -> Result<Option<User>> {
    Ok(user_with_hash_by_email(exec, email).await?.map(|(u, _)| u))
}

/// Inserts a user.
pub async fn insert_user(
    exec: impl PgExecutor<'_>,
    email: &str,
    display_name: Option<&str>,
    password_hash: Option<&str>,
    status: UserStatus,
    default_org: Option<OrgId>,
) -> std::result::Result<User, sqlx::Error> {
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, display_name, password_hash, status, default_org_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
    )))
    .bind(UserId::generate())
    .bind(email)
    .bind(display_name)
    .bind(password_hash)
    .bind(status)
    .bind(default_org)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// Records a successful login.
pub async fn touch_login(exec: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(exec)
        .await?;
    Ok(())
}

/// Sets a user's default organization.
pub async fn set_default_org(exec: impl PgExecutor<'_>, id: UserId, org: OrgId) -> Result<()> {
    sqlx::query("UPDATE users SET default_org_id = $2 WHERE id = $1")
        .bind(id)
        .bind(org)
        .execute(exec)
        .await?;
    Ok(())
}

/// Sets a password and activates an invited account.
pub async fn activate_user(
    exec: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
    display_name: Option<&str>,
) -> Result<User> {
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET password_hash = $2, status = 'active',
                          display_name = coalesce($3, display_name)
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(id)
    .bind(password_hash)
    .bind(display_name)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// Sets a password and marks the user active (demo seed, admin bootstrap).
pub async fn upsert_active_user(
    exec: impl PgExecutor<'_>,
    email: &str,
    display_name: &str,
    password_hash: &str,
    default_org: OrgId,
) -> Result<User> {
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, display_name, password_hash, status, default_org_id)
         VALUES ($1, $2, $3, $4, 'active', $5)
         ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash,
             status = 'active', default_org_id = coalesce(users.default_org_id, EXCLUDED.default_org_id)
         RETURNING {USER_COLUMNS}"
    )))
    .bind(UserId::generate())
    .bind(email)
    .bind(display_name)
    .bind(password_hash)
    .bind(default_org)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

// ---------------------------------------------------------------- invitations

/// Stores an invitation token hash.
pub async fn insert_invitation(
    exec: impl PgExecutor<'_>,
    token_hash: &str,
    user: UserId,
    org: OrgId,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO user_invitations (token_hash, user_id, organization_id, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user)
    .bind(org)
    .bind(expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Consumes an unexpired, unaccepted invitation; returns its user and organization.
pub async fn accept_invitation(
    exec: impl PgExecutor<'_>,
    token_hash: &str,
) -> Result<Option<(UserId, OrgId)>> {
    Ok(sqlx::query_as(
        "UPDATE user_invitations SET accepted_at = now()
         WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now()
         RETURNING user_id, organization_id",
    )
    .bind(token_hash)
    .fetch_optional(exec)
    .await?)
}

// ---------------------------------------------------------------- memberships

/// Adds a member (the transaction must be scoped to `org`).
pub async fn insert_membership(
    exec: impl PgExecutor<'_>,
    org: OrgId,
    user: UserId,
    role: Role,
    invited_by: Option<UserId>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO memberships (organization_id, user_id, role, invited_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(org)
    .bind(user)
    .bind(role)
    .bind(invited_by)
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    role: Role,
    joined_at: DateTime<Utc>,
}

/// Members of the scoped organization, oldest first, after `after`.
pub async fn list_members(
    exec: impl PgExecutor<'_>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Member>> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.display_name, u.status, u.default_org_id, u.last_login_at,
                u.created_at, m.role, m.created_at AS joined_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE ($1::timestamptz IS NULL OR (m.created_at, m.user_id) > ($1, $2))
         ORDER BY m.created_at, m.user_id
         LIMIT $3",
    )
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Member {
            user: r.user.into(),
            role: r.role,
            joined_at: r.joined_at,
        })
        .collect())
}

/// One member of the scoped organization.
pub async fn get_member(exec: impl PgExecutor<'_>, user: UserId) -> Result<Option<Member>> {
    let row: Option<MemberRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.display_name, u.status, u.default_org_id, u.last_login_at,
                u.created_at, m.role, m.created_at AS joined_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.user_id = $1",
    )
    .bind(user)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| Member {
        user: r.user.into(),
        role: r.role,
        joined_at: r.joined_at,
    }))
}

/// Changes a member's role; returns the previous role.
pub async fn update_member_role(
    conn: &mut PgConnection,
    user: UserId,
    role: Role,
) -> Result<Option<Role>> {
    Ok(sqlx::query_scalar(
        "UPDATE memberships m SET role = $2 FROM memberships old
         WHERE m.user_id = $1 AND old.user_id = m.user_id
           AND old.organization_id = m.organization_id
         RETURNING old.role",
    )
    .bind(user)
    .bind(role)
    .fetch_optional(conn)
    .await?)
}

/// Removes a member; returns their role if they were one.
pub async fn delete_member(exec: impl PgExecutor<'_>, user: UserId) -> Result<Option<Role>> {
    Ok(
        sqlx::query_scalar("DELETE FROM memberships WHERE user_id = $1 RETURNING role")
            .bind(user)
            .fetch_optional(exec)
            .await?,
    )
}

/// Admins of the scoped organization.
pub async fn count_admins(exec: impl PgExecutor<'_>) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM memberships WHERE role = 'admin'")
            .fetch_one(exec)
            .await?,
    )
}

// ---------------------------------------------------------------- refresh tokens

/// A stored refresh token.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshTokenRow {
    /// Id.
    pub id: Uuid,
    /// Login family.
    pub family_id: Uuid,
    /// Owner (user or H5 user).
    pub subject_id: Uuid,
    /// Organization context.
    pub organization_id: Option<OrgId>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Successor after rotation.
    pub replaced_by: Option<Uuid>,
    /// Whether it was revoked (rotated, logged out, or family revoked).
    pub revoked: bool,
}

/// Which refresh-token table: console users or H5 users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTable {
    /// `refresh_tokens`.
    Console,
    /// `h5_refresh_tokens`.
    H5,
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    /// Which table.
    pub table: TokenTable,
    /// Id.
    pub id: Uuid,
    /// Login family.
    pub family: Uuid,
    /// Owner.
    pub subject: Uuid,
    /// Organization context.
    pub org: Option<OrgId>,
    /// SHA-256 of the token.
    pub token_hash: &'a str,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Inserts a refresh token.
pub async fn insert_refresh_token(
    exec: impl PgExecutor<'_>,
    t: &NewRefreshToken<'_>,
) -> Result<()> {
    let table = t.table;
    let sql = match table {
        TokenTable::Console => {
            "INSERT INTO refresh_tokens (id, family_id, user_id, organization_id, token_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)"
        }
        TokenTable::H5 => {
            "INSERT INTO h5_refresh_tokens (id, family_id, h5_user_id, organization_id, token_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)"
        }
    };
    sqlx::query(sql)
        .bind(t.id)
        .bind(t.family)
        .bind(t.subject)
        .bind(t.org)
        .bind(t.token_hash)
        .bind(t.expires_at)
        .execute(exec)
        .await?;
    Ok(())
}

/// Locks a refresh token by hash for rotation.
pub async fn lock_refresh_token(
    conn: &mut PgConnection,
    table: TokenTable,
    token_hash: &str,
) -> Result<Option<RefreshTokenRow>> {
    let sql = match table {
        TokenTable::Console => {
            "SELECT id, family_id, user_id AS subject_id, organization_id, expires_at, replaced_by,
                    revoked_at IS NOT NULL AS revoked
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE"
        }
        TokenTable::H5 => {
            "SELECT id, family_id, h5_user_id AS subject_id, organization_id, expires_at, replaced_by,
                    revoked AS revoked
             FROM h5_refresh_tokens WHERE token_hash = $1 FOR UPDATE"
        }
    };
    Ok(sqlx::query_as(sql)
        .bind(token_hash)
        .fetch_optional(conn)
        .await?)
}

/// Marks a token as replaced by its successor.
pub async fn mark_refresh_replaced(
    exec: impl PgExecutor<'_>,
    table: TokenTable,
    id: Uuid,
    successor: Uuid,
) -> Result<()> {
    let sql = match table {
        TokenTable::Console => {
            "UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE id = $1"
        }
        TokenTable::H5 => {
            "UPDATE h5_refresh_tokens SET revoked = true, replaced_by = $2 WHERE id = $1"
        }
    };
    sqlx::query(sql)
        .bind(id)
        .bind(successor)
        .execute(exec)
        .await?;
    Ok(())
}

/// Revokes every token of a login family; returns how many were still live.
pub async fn revoke_refresh_family(
    exec: impl PgExecutor<'_>,
    table: TokenTable,
    family: Uuid,
) -> Result<u64> {
    let sql = match table {
        TokenTable::Console => {
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL"
        }
        TokenTable::H5 => {
            "UPDATE h5_refresh_tokens SET revoked = true WHERE family_id = $1 AND NOT revoked"
        }
    };
    Ok(sqlx::query(sql)
        .bind(family)
        .execute(exec)
        .await?
        .rows_affected())
}

/// Revokes every refresh token of a subject (suspension).
pub async fn revoke_refresh_subject(
    exec: impl PgExecutor<'_>,
    table: TokenTable,
    subject: Uuid,
) -> Result<u64> {
    let sql = match table {
        TokenTable::Console => {
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        }
        TokenTable::H5 => {
            "UPDATE h5_refresh_tokens SET revoked = true WHERE h5_user_id = $1 AND NOT revoked"
        }
    };
    Ok(sqlx::query(sql)
        .bind(subject)
        .execute(exec)
        .await?
        .rows_affected())
}

// ---------------------------------------------------------------- API keys

#[derive(FromRow)]
struct ApiKeyRow {
    id: ApiKeyId,
    name: String,
    lookup_prefix: String,
    role: Role,
    agent_id: Option<AgentId>,
    expires_at: Option<DateTime<Utc>>,
    grace_until: Option<DateTime<Utc>>,
    replaced_by: Option<ApiKeyId>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            display_prefix: format!(
                "{}{}…",
                super::tokens::API_KEY_PREFIX,
                &r.lookup_prefix[..4]
            ),
            role: r.role,
            agent_id: r.agent_id,
            expires_at: r.expires_at,
            grace_until: r.grace_until,
            replaced_by: r.replaced_by,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            created_at: r.created_at,
        }
    }
}

const KEY_COLUMNS: &str = "id, name, lookup_prefix, role, agent_id, expires_at, grace_until, \
                           replaced_by, revoked_at, last_used_at, created_at";

/// Inserts a key (scoped transaction).
#[allow(clippy::too_many_arguments)]
pub async fn insert_api_key(
    exec: impl PgExecutor<'_>,
    org: OrgId,
    name: &str,
    lookup_prefix: &str,
    key_hash: &str,
    role: Role,
    agent_id: Option<AgentId>,
    created_by: Option<UserId>,
    expires_at: Option<DateTime<Utc>>,
) -> std::result::Result<ApiKey, sqlx::Error> {
    let row: ApiKeyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (id, organization_id, name, lookup_prefix, key_hash, role, agent_id,
                               created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {KEY_COLUMNS}"
    )))
    .bind(ApiKeyId::generate())
    .bind(org)
    .bind(name)
    .bind(lookup_prefix)
    .bind(key_hash)
    .bind(role)
    .bind(agent_id)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// Keys of the scoped organization, newest first.
pub async fn list_api_keys(
    exec: impl PgExecutor<'_>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<ApiKey>> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys
         WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One key of the scoped organization, locked for update.
pub async fn lock_api_key(conn: &mut PgConnection, id: ApiKeyId) -> Result<Option<ApiKey>> {
    let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Starts the grace period of a rotated key.
pub async fn mark_api_key_rotated(
    exec: impl PgExecutor<'_>,
    id: ApiKeyId,
    successor: ApiKeyId,
    grace_until: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE api_keys SET replaced_by = $2, grace_until = $3 WHERE id = $1")
        .bind(id)
        .bind(successor)
        .bind(grace_until)
        .execute(exec)
        .await?;
    Ok(())
}

/// Revokes a key now.
pub async fn revoke_api_key(exec: impl PgExecutor<'_>, id: ApiKeyId) -> Result<ApiKey> {
    let row: ApiKeyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
         RETURNING {KEY_COLUMNS}"
    )))
    .bind(id)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// A candidate key for authentication.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyAuthRow {
    /// Id.
    pub id: ApiKeyId,
    /// Organization.
    pub organization_id: OrgId,
    /// Label.
    pub name: String,
    /// SHA-256 of the secret.
    pub key_hash: String,
    /// Role.
    pub role: Role,
    /// Agent.
    pub agent_id: Option<AgentId>,
    /// Agent name.
    pub agent_name: Option<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// End of the grace period after rotation.
    pub grace_until: Option<DateTime<Utc>>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Organization state.
    pub org_status: OrgStatus,
    /// Organization tier.
    pub org_tier: OrgTier,
}

/// Keys sharing a lookup prefix (cross-tenant, through `auth_api_keys`).
pub async fn api_keys_by_prefix(
    exec: impl PgExecutor<'_>,
    prefix: &str,
) -> Result<Vec<ApiKeyAuthRow>> {
    Ok(sqlx::query_as(
        "SELECT id, organization_id, name, key_hash, role, agent_id, agent_name, expires_at,
                grace_until, revoked_at, org_status, org_tier
         FROM auth_api_keys($1)",
    )
    .bind(prefix)
    .fetch_all(exec)
    .await?)
}

/// Records a key's use (at most once a minute, in the database function).
pub async fn touch_api_key(exec: impl PgExecutor<'_>, id: ApiKeyId) -> Result<()> {
    sqlx::query("SELECT auth_touch_api_key($1)")
        .bind(id)
        .execute(exec)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- H5 users

#[derive(FromRow)]
struct H5UserRow {
    id: H5UserId,
    organization_id: OrgId,
    username: String,
    display_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    avatar_url: Option<String>,
    status: H5UserStatus,
    last_login_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<H5UserRow> for H5User {
    fn from(r: H5UserRow) -> Self {
        H5User {
            id: r.id,
            organization_id: r.organization_id,
            username: r.username,
            display_name: r.display_name,
            email: r.email,
            phone: r.phone,
            avatar_url: r.avatar_url,
            status: r.status,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
        }
    }
}

const H5_COLUMNS: &str = "id, organization_id, username, display_name, email, phone, avatar_url, \
                          status, last_login_at, created_at";

/// Fields of a new H5 user.
#[derive(Debug, Clone)]
pub struct NewH5User<'a> {
    /// Organization.
    pub org: OrgId,
    /// Login name.
    pub username: &'a str,
    /// Argon2id hash.
    pub password_hash: &'a str,
    /// Shown name.
    pub display_name: Option<&'a str>,
    /// Email.
    pub email: Option<&'a str>,
    /// Phone.
    pub phone: Option<&'a str>,
}

/// Inserts an H5 user (scoped transaction).
pub async fn insert_h5_user(
    exec: impl PgExecutor<'_>,
    user: &NewH5User<'_>,
) -> std::result::Result<H5User, sqlx::Error> {
    let row: H5UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO h5_users (id, organization_id, username, password_hash, display_name, email, phone)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {H5_COLUMNS}"
    )))
    .bind(H5UserId::generate())
    .bind(user.org)
    .bind(user.username)
    .bind(user.password_hash)
    .bind(user.display_name)
    .bind(user.email)
    .bind(user.phone)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// Inserts or resets an H5 user's password (demo seed).
pub async fn upsert_h5_user(exec: impl PgExecutor<'_>, user: &NewH5User<'_>) -> Result<H5User> {
    let row: H5UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO h5_users (id, organization_id, username, password_hash, display_name, email, phone)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (organization_id, username) DO UPDATE
             SET password_hash = EXCLUDED.password_hash, status = 'active'
         RETURNING {H5_COLUMNS}"
    )))
    .bind(H5UserId::generate())
    .bind(user.org)
    .bind(user.username)
    .bind(user.password_hash)
    .bind(user.display_name)
    .bind(user.email)
    .bind(user.phone)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// An H5 user and their password hash by username (scoped transaction).
pub async fn h5_user_with_hash(
    exec: impl PgExecutor<'_>,
    username: &str,
) -> Result<Option<(H5User, String)>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: H5UserRow,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {H5_COLUMNS}, password_hash FROM h5_users WHERE username = $1"
    )))
    .bind(username)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| (r.user.into(), r.password_hash)))
}

/// An H5 user by id (scoped transaction).
pub async fn get_h5_user(exec: impl PgExecutor<'_>, id: H5UserId) -> Result<Option<H5User>> {
    let row: Option<H5UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {H5_COLUMNS} FROM h5_users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(Into::into))
}

/// Records an H5 login.
pub async fn touch_h5_login(exec: impl PgExecutor<'_>, id: H5UserId) -> Result<()> {
    sqlx::query("UPDATE h5_users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(exec)
        .await?;
    Ok(())
}

/// Updates an H5 user's own profile fields.
pub async fn update_h5_profile(
    exec: impl PgExecutor<'_>,
    id: H5UserId,
    display_name: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<H5User> {
    let row: H5UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE h5_users SET display_name = coalesce($2, display_name),
                             avatar_url = coalesce($3, avatar_url)
         WHERE id = $1 RETURNING {H5_COLUMNS}"
    )))
    .bind(id)
    .bind(display_name)
    .bind(avatar_url)
    .fetch_one(exec)
    .await?;
    Ok(row.into())
}

/// Sets an H5 user's status.
pub async fn set_h5_status(
    exec: impl PgExecutor<'_>,
    id: H5UserId,
    status: H5UserStatus,
) -> Result<Option<H5User>> {
    let row: Option<H5UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE h5_users SET status = $2 WHERE id = $1 RETURNING {H5_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(Into::into))
}

/// H5 users of the scoped organization, newest first, optionally matching `search`.
pub async fn list_h5_users(
    exec: impl PgExecutor<'_>,
    search: Option<&str>,
    status: Option<H5UserStatus>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<H5User>> {
    let rows: Vec<H5UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {H5_COLUMNS} FROM h5_users
         WHERE ($1::text IS NULL OR
                (username || ' ' || coalesce(display_name, '') || ' ' || coalesce(email, ''))
                    ILIKE '%' || $1 || '%')
           AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    )))
    .bind(search.map(escape_like))
    .bind(status)
    .bind(after.map(|k| k.t))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Counts H5 users matching the same filters.
pub async fn count_h5_users(
    exec: impl PgExecutor<'_>,
    search: Option<&str>,
    status: Option<H5UserStatus>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM h5_users
         WHERE ($1::text IS NULL OR
                (username || ' ' || coalesce(display_name, '') || ' ' || coalesce(email, ''))
                    ILIKE '%' || $1 || '%')
           AND ($2::text IS NULL OR status = $2)",
    )
    .bind(search.map(escape_like))
    .bind(status)
    .fetch_one(exec)
    .await?)
}

fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Assignments of an H5 user with agent and board names (scoped transaction).
pub async fn assignments_of(exec: impl PgExecutor<'_>, user: H5UserId) -> Result<Vec<Assignment>> {
    #[derive(FromRow)]
    struct Row {
        id: AssignmentId,
        agent_id: AgentId,
        agent_name: String,
        board_id: BoardId,
        board_name: String,
        role: String,
        assigned_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.id, a.agent_id, ag.name AS agent_name, a.board_id, b.name AS board_name,
                a.role, a.assigned_at
         FROM h5_user_agent_assignments a
         JOIN agents ag ON ag.id = a.agent_id
         JOIN boards b ON b.id = a.board_id
         WHERE a.h5_user_id = $1
         ORDER BY a.assigned_at, a.id",
    )
    .bind(user)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Assignment {
            id: r.id,
            agent_id: r.agent_id,
            agent_name: r.agent_name,
            board_id: r.board_id,
            board_name: r.board_name,
            role: r.role,
            assigned_at: r.assigned_at,
        })
        .collect())
}

/// Assigns (or re-assigns) an H5 user to an agent on a board.
pub async fn upsert_assignment(
    exec: impl PgExecutor<'_>,
    org: OrgId,
    user: H5UserId,
    agent: AgentId,
    board: BoardId,
    role: &str,
    assigned_by: Option<UserId>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO h5_user_agent_assignments
             (id, organization_id, h5_user_id, agent_id, board_id, role, assigned_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (h5_user_id, agent_id) DO UPDATE
             SET board_id = EXCLUDED.board_id, role = EXCLUDED.role,
                 assigned_by = EXCLUDED.assigned_by, assigned_at = now()",
    )
    .bind(AssignmentId::generate())
    .bind(org)
    .bind(user)
    .bind(agent)
    .bind(board)
    .bind(role)
    .bind(assigned_by)
    .execute(exec)
    .await?;
    Ok(())
}

/// Removes an assignment; returns whether one existed.
pub async fn delete_assignment(
    exec: impl PgExecutor<'_>,
    user: H5UserId,
    agent: AgentId,
) -> Result<bool> {
    Ok(
        sqlx::query(
            "DELETE FROM h5_user_agent_assignments WHERE h5_user_id = $1 AND agent_id = $2",
        )
        .bind(user)
        .bind(agent)
        .execute(exec)
        .await?
        .rows_affected()
            > 0,
    )
}

/// Whether an agent and a board exist in the scoped organization.
pub async fn agent_and_board_exist(
    exec: impl PgExecutor<'_>,
    agent: AgentId,
    board: BoardId,
) -> Result<(bool, bool)> {
    Ok(sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1),
                EXISTS (SELECT 1 FROM boards WHERE id = $2)",
    )
    .bind(agent)
    .bind(board)
    .fetch_one(exec)
    .await?)
}
