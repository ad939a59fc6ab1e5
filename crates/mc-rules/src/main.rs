//! `mc-rules` binary: thin entry point over the `mc_rules` library.

use mc_domain::config::{Env, RulesConfig};
use std::process::ExitCode;

fn main() -> ExitCode {
    match mc_web::runner::load_config::<RulesConfig>(&Env::from_process()) {
        Ok(config) => mc_web::runner::run_service(config, mc_rules::run),
        Err(code) => code,
    }
}
