//! `mc-api` binary: thin entry point over the `mc_api` library.

use mc_domain::config::{ApiConfig, Env};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = Env::from_process();
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("serve") => match mc_web::runner::load_config::<ApiConfig>(&env) {
            Ok(config) => mc_web::runner::run_service(config, mc_api::run),
            Err(code) => code,
        },
        Some("migrate") => mc_api::cli::migrate(&env),
        Some("seed-demo") => mc_api::cli::seed_demo(&env),
        Some("openapi") => mc_api::cli::openapi(),
        Some("help" | "-h" | "--help") => {
            let _ = write!(std::io::stdout(), "{}", mc_api::cli::USAGE);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprint!(
                "mc-api: unknown command {other:?}\n\n{}",
                mc_api::cli::USAGE
            );
            ExitCode::from(mc_web::runner::EXIT_CONFIG)
        }
    }
}
