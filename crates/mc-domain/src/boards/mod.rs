//! Boards, board groups, tasks with dependencies and evidence, tags, comments and
//! approvals: the work entities, each change recorded in the event log.

pub mod model;
pub mod repo;
pub mod service;

pub use model::*;
pub use service::{Access, BoardService};
