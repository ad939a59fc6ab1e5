//! The permission matrix (Godel §8.2, extended to every resource Mission Control has).
//!
//! Every domain operation that acts inside an organization asks its context to
//! `authorize` one of these; the matrix lives here and nowhere else. `docs/permissions.md`
//! is generated from it (`permission_matrix_markdown`) and a test keeps them equal.

use super::model::Role;

macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident => ($resource:literal, $action:literal, $role:ident, $read:literal),)+) => {
        /// Something a caller may be allowed to do in an organization.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission { $($(#[$doc])* $name),+ }

        impl Permission {
            /// Every permission, in matrix order.
            pub const ALL: &'static [Permission] = &[$(Permission::$name),+];

            /// The least privileged role that holds it.
            pub fn min_role(self) -> Role {
                match self { $(Permission::$name => Role::$role),+ }
            }

            /// Whether it only reads (allowed in read-only organizations).
            pub fn is_read(self) -> bool {
                match self { $(Permission::$name => $read),+ }
            }

            /// Resource and action, for messages and the generated table.
            pub fn describe(self) -> (&'static str, &'static str) {
                match self { $(Permission::$name => ($resource, $action)),+ }
            }
        }
    };
}

permissions! {
    /// See the organization and its settings.
    OrgRead => ("organization", "read", Viewer, true),
    /// Change settings; suspend, reactivate, delete, restore.
    OrgManage => ("organization", "manage", Admin, false),
    /// List members.
    MembersRead => ("members", "read", Viewer, true),
    /// Invite, remove, change roles.
    MembersManage => ("members", "manage", Admin, false),
    /// Create, list, rotate and revoke API keys.
    ApiKeysManage => ("api keys", "manage", Admin, false),
    /// Read the audit log.
    AuditRead => ("audit log", "read", Admin, true),
    /// List H5 users and their assignments.
    H5UsersRead => ("h5 users", "read", Operator, true),
    /// Create, suspend, assign and unassign H5 users.
    H5UsersManage => ("h5 users", "manage", Admin, false),
    /// See boards and board groups.
    BoardsRead => ("boards", "read", Viewer, true),
    /// Create, change and delete boards and board groups.
    BoardsManage => ("boards", "manage", Admin, false),
    /// See tasks, comments, dependencies.
    TasksRead => ("tasks", "read", Viewer, true),
    /// Create tasks and comment.
    TasksCreate => ("tasks", "create", Developer, false),
    /// Edit tasks and dependencies.
    TasksUpdate => ("tasks", "update", Operator, false),
    /// Move tasks between statuses.
    TasksExecute => ("tasks", "execute", Operator, false),
    /// Delete tasks.
    TasksDelete => ("tasks", "delete", Admin, false),
    /// See approvals.
    ApprovalsRead => ("approvals", "read", Viewer, true),
    /// Request an approval.
    ApprovalsRequest => ("approvals", "create", Developer, false),
    /// Approve or reject.
    ApprovalsResolve => ("approvals", "execute", Operator, false),
    /// See tags.
    TagsRead => ("tags", "read", Viewer, true),
    /// Create, rename, delete tags.
    TagsManage => ("tags", "manage", Operator, false),
    /// See agents.
    AgentsRead => ("agents", "read", Viewer, true),
    /// Create, change, delete agents.
    AgentsManage => ("agents", "manage", Admin, false),
    /// Operate agents (send work, restart sessions).
    AgentsExecute => ("agents", "execute", Operator, false),
    /// See gateways and their metrics.
    GatewaysRead => ("gateways", "read", Viewer, true),
    /// Registration tokens, relay token rotation, removal.
    GatewaysManage => ("gateways", "manage", Admin, false),
    /// See chat sessions.
    SessionsRead => ("sessions", "read", Viewer, true),
    /// Open and close sessions.
    SessionsManage => ("sessions", "manage", Operator, false),
    /// Read the event log and streams.
    EventsRead => ("events", "read", Viewer, true),
    /// Queue depth, jobs, dead letters.
    JobsRead => ("jobs", "read", Operator, true),
    /// Retry, cancel, replay jobs; manage schedules.
    JobsManage => ("jobs", "manage", Operator, false),
    /// See suggestions.
    SuggestionsRead => ("suggestions", "read", Viewer, true),
    /// Accept or dismiss suggestions.
    SuggestionsAct => ("suggestions", "execute", Operator, false),
    /// See proactive rules.
    RulesRead => ("rules", "read", Viewer, true),
    /// Create, change, toggle, delete rules.
    RulesManage => ("rules", "manage", Admin, false),
}

impl Role {
    /// Whether this role holds `permission`.
    pub fn can(self, permission: Permission) -> bool {
        self.rank() >= permission.min_role().rank()
    }
}

/// The matrix as a Markdown table (the body of `docs/permissions.md`).
pub fn permission_matrix_markdown() -> String {
    let mut out = String::from(
        "# Permissions\n\nGenerated from `crates/mc-domain/src/identity/permissions.rs` \
         (a test fails when this file is stale). A caller who is not a member of an \
         organization gets 404 for everything in it; a member without the permission gets \
         403. In a suspended organization, or one pending deletion, only read permissions \
         are granted.\n\n| Resource | Action | admin | operator | developer | viewer |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for permission in Permission::ALL {
        let (resource, action) = permission.describe();
        let cells: Vec<&str> = Role::ALL
            .iter()
            .map(|role| if role.can(*permission) { "yes" } else { "-" })
            .collect();
        out.push_str(&format!(
            "| {resource} | {action} | {} |\n",
            cells.join(" | ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godel_matrix_holds() {
        // tasks: create developer+ (role description), update/execute operator+, delete admin
        assert!(Role::Developer.can(Permission::TasksCreate));
        assert!(!Role::Viewer.can(Permission::TasksCreate));
        assert!(!Role::Developer.can(Permission::TasksUpdate));
        assert!(Role::Operator.can(Permission::TasksExecute));
        assert!(!Role::Operator.can(Permission::TasksDelete));
        assert!(Role::Admin.can(Permission::TasksDelete));
        // agents: manage admin, execute operator, read all
        assert!(!Role::Operator.can(Permission::AgentsManage));
        assert!(Role::Operator.can(Permission::AgentsExecute));
        assert!(Role::Viewer.can(Permission::AgentsRead));
        // config is admin only, reading included
        assert!(!Role::Operator.can(Permission::AuditRead));
        assert!(!Role::Operator.can(Permission::ApiKeysManage));
        // viewers read everything that is not configuration
        for p in Permission::ALL {
            if Role::Viewer.can(*p) {
                assert!(p.is_read(), "{p:?} lets viewers write");
            }
        }
    }

    #[test]
    fn docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/permissions.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("MC_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, permission_matrix_markdown()).expect("write docs");
            return;
        }
        assert_eq!(
            on_disk,
            permission_matrix_markdown(),
            "docs/permissions.md is stale: run MC_UPDATE_SNAPSHOTS=1 cargo test -p mc-domain"
        );
    }
}
