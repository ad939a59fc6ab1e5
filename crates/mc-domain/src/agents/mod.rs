//! Agents (issue 6, seed 000 M4/M6): the AI workers of an organization, bound to the
//! gateway that runs them, linked from what the gateway reports (`agents.list`) or created
//! by an admin. An agent goes offline with its gateway.

pub mod model;
pub mod repo;
pub mod service;
pub mod tunnel;

pub use model::*;
pub use service::AgentService;
