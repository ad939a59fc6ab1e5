//! The demo data `scripts/dev` loads: organization `demo`, admin `admin@example.com`,
//! H5 user `demo-user`. Idempotent: running it again changes nothing except passwords
//! that are given explicitly.

use super::IdentityService;
use super::model::{OrgSettings, OrgTier, Role, UserStatus};
use super::repo::{self, NewH5User};
use crate::crypto::random_urlsafe;
use crate::db;
use crate::error::Result;
use crate::ids::{H5UserId, OrgId, UserId};

/// Slug of the demo organization.
pub const DEMO_ORG_SLUG: &str = "demo";
/// Email of the demo admin.
pub const DEMO_ADMIN_EMAIL: &str = "admin@example.com";
/// Username of the demo H5 user.
pub const DEMO_H5_USERNAME: &str = "demo-user";

/// What the seed did.
#[derive(Debug, Clone)]
pub struct DemoSeedOutcome {
    /// The demo organization.
    pub org_id: OrgId,
    /// The demo admin.
    pub admin_id: UserId,
    /// The admin's password when it was set now (given or generated); `None` when an
    /// existing account was left alone.
    pub admin_password: Option<String>,
    /// The demo H5 user.
    pub h5_user_id: H5UserId,
    /// The H5 user's password when it was set now.
    pub h5_password: Option<String>,
}

impl IdentityService {
    /// Creates or updates the demo organization and its two users.
    pub async fn seed_demo(
        &self,
        admin_password: Option<&str>,
        h5_password: Option<&str>,
    ) -> Result<DemoSeedOutcome> {
        let existing = repo::lookup_org(&self.pool, None, Some(DEMO_ORG_SLUG)).await?;
        let org_id = match existing {
            Some(org) => org.id,
            None => {
                let id = OrgId::generate();
                let mut tx = db::begin_org(&self.pool, id).await?;
                repo::insert_org(
                    &mut tx,
                    id,
                    DEMO_ORG_SLUG,
                    "Demo",
                    OrgTier::Enterprise,
                    &OrgSettings::default(),
                )
                .await?;
                tx.commit().await?;
                id
            }
        };

        let mut tx = db::begin_org(&self.pool, org_id).await?;
        let admin = repo::get_user_by_email(&mut *tx, DEMO_ADMIN_EMAIL).await?;
        let (admin_id, set_admin_password) = match (admin, admin_password) {
            (Some(user), None) if user.status == UserStatus::Active => (user.id, None),
            (_, given) => {
                let password = given.map_or_else(|| random_urlsafe(12), str::to_owned);
                let hash = self.hasher.hash(&password).await?;
                let user = repo::upsert_active_user(
                    &mut *tx,
                    DEMO_ADMIN_EMAIL,
                    "Demo Admin",
                    &hash,
                    org_id,
                )
                .await?;
                (user.id, Some(password))
            }
        };
        if repo::get_member(&mut *tx, admin_id).await?.is_none() {
            repo::insert_membership(&mut *tx, org_id, admin_id, Role::Admin, None).await?;
        }

        let h5 = repo::h5_user_with_hash(&mut *tx, DEMO_H5_USERNAME).await?;
        let (h5_user_id, set_h5_password) = match (h5, h5_password) {
            (Some((user, _)), None) => (user.id, None),
            (_, given) => {
                let password = given.map_or_else(|| random_urlsafe(12), str::to_owned);
                let hash = self.hasher.hash(&password).await?;
                let user = repo::upsert_h5_user(
                    &mut *tx,
                    &NewH5User {
                        org: org_id,
                        username: DEMO_H5_USERNAME,
                        password_hash: &hash,
                        display_name: Some("Demo User"),
                        email: None,
                        phone: None,
                    },
                )
                .await?;
                (user.id, Some(password))
            }
        };
        tx.commit().await?;
        Ok(DemoSeedOutcome {
            org_id,
            admin_id,
            admin_password: set_admin_password,
            h5_user_id,
            h5_password: set_h5_password,
        })
    }
}
