//! Mission Control's domain crate: configuration, errors, persistence, and every
//! capability's model and service logic. It knows nothing about HTTP or WebSockets;
//! the binaries translate between the wire and the functions here.

#[macro_use]
mod macros;

pub mod agents;
pub mod boards;
pub mod chat;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod fanout;
pub mod gateways;
pub mod health;
pub mod identity;
pub mod ids;
pub mod infra;
pub mod jobs;
pub mod pagination;
pub mod proactivity;
pub mod ratelimit;
pub mod redis;
pub mod secret;
pub mod values;

pub use error::{Error, Result};
