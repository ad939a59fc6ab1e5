//! The proactivity engine (seed 000 M8): proactive rules evaluated against events and
//! cron ticks, the suggestions they make, and what accepting a suggestion does. The rule
//! engine (`mc-rules`) consumes the event stream as a consumer group and catches up from
//! the event log; the API manages rules and suggestions; the worker expires suggestions.

pub mod actions;
pub mod catchup;
pub mod conditions;
pub mod consumer;
pub mod cron;
pub mod effects;
pub mod engine;
pub mod facts;
pub mod model;
pub mod repo;
pub mod service;

pub use engine::{BatchReport, CompiledRule, Engine};
pub use model::*;
pub use service::{ProactivityConfig, ProactivityService, expire_suggestions};
