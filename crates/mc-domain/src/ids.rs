//! Typed identifiers: a `BoardId` cannot be passed where a `TaskId` is expected.

use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident;)+) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7 keeps index inserts local).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The raw UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )+};
}

typed_id! {
    /// An organization (tenant).
    OrgId;
    /// A console user.
    UserId;
    /// An API key.
    ApiKeyId;
    /// An H5 end user.
    H5UserId;
    /// An agent.
    AgentId;
    /// A board.
    BoardId;
    /// An H5 user's assignment to an agent.
    AssignmentId;
    /// An audit log entry.
    AuditId;
    /// A board group.
    BoardGroupId;
    /// A task.
    TaskId;
    /// A tag.
    TagId;
    /// A task comment.
    CommentId;
    /// An approval.
    ApprovalId;
    /// A queued job.
    JobId;
    /// A job schedule.
    ScheduleId;
    /// A gateway.
    GatewayId;
    /// A gateway registration token.
    GatewayTokenId;
    /// A gateway's relay connection.
    GatewayConnectionId;
    /// An H5 chat session (a user's conversation with one agent).
    ChatSessionId;
    /// A stored H5 chat message.
    ChatMessageId;
    /// A proactive rule.
    RuleId;
    /// An agent suggestion.
    SuggestionId;
}
