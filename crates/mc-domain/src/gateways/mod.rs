//! The gateway fleet (issue 6): registration tokens, self-registered gateways with relay
//! tokens, heartbeats and metrics, relay connection records, the offline sweep.

pub mod model;
pub mod repo;
pub mod router;
pub mod service;
pub mod sweep;

pub use model::*;
pub use service::{GatewayService, sweep_offline};
