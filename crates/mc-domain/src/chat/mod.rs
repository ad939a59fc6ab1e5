//! H5 chat: end users talk to their assigned agents through the relay (seed 000 M4).
//! Messages are stored with a per-session seq before they are relayed; the live path
//! (Redis pub/sub per user) is only a shortcut a socket can always catch up on.

pub mod appender;
pub mod live;
pub mod model;
pub mod repo;
pub mod service;

pub use live::ChatHub;
pub use model::*;
pub use service::{ChatService, MessageQuery};
