//! `mc-worker` binary: thin entry point over the `mc_worker` library.

use mc_domain::config::{Env, WorkerConfig};
use std::process::ExitCode;

fn main() -> ExitCode {
    match mc_web::runner::load_config::<WorkerConfig>(&Env::from_process()) {
        Ok(config) => mc_web::runner::run_service(config, mc_worker::run),
        Err(code) => code,
    }
}
