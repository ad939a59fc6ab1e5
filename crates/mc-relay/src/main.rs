//! `mc-relay` binary: thin entry point over the `mc_relay` library.

use mc_domain::config::{Env, RelayConfig};
use std::process::ExitCode;

fn main() -> ExitCode {
    match mc_web::runner::load_config::<RelayConfig>(&Env::from_process()) {
        Ok(config) => mc_web::runner::run_service(config, mc_relay::run),
        Err(code) => code,
    }
}

/// A socket's buffers and frames come and go thousands of times a second; mimalloc's
/// per-thread free lists cost a fraction of glibc malloc's bin searches here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
