//! Glue shared by the Mission Control binaries: process start-up and shutdown,
//! telemetry, the operational endpoints (`/healthz`, `/readyz`, `/metrics`) and the
//! mapping of domain errors to HTTP responses. Capability logic lives in `mc-domain`.

pub mod error;
pub mod extract;
pub mod metrics;
pub mod ops;
pub mod runner;
pub mod serve;
pub mod telemetry;

pub use error::ApiError;
