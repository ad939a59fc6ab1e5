//! One-shot commands of the `mc-api` binary.

use mc_domain::config::{DatabaseConfig, Env};
use mc_domain::db;
use std::io::Write;
use std::process::ExitCode;

/// Usage text for `mc-api --help`.
pub const USAGE: &str = "\
usage: mc-api [COMMAND]

commands:
  serve      run the REST API (default)
  migrate    apply pending database migrations (needs DATABASE_URL) and exit
  seed-demo  create or update the demo organization and users (idempotent); passwords
             from MC_DEMO_ADMIN_PASSWORD / MC_DEMO_H5_PASSWORD, random and printed if unset
  openapi    print the OpenAPI document
  help       show this text

configuration comes from the environment and .env; see .env.example
";

/// `mc-api migrate`: applies pending migrations and reports the resulting version.
pub fn migrate(env: &Env) -> ExitCode {
    let config = match DatabaseConfig::from_env(env, "mc-api migrate") {
        Ok(config) => config,
        Err(err) => {
            eprint!("{err}");
            return ExitCode::from(mc_web::runner::EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("mc-api migrate: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let outcome = async {
            let pool = db::pool(&config, "mc-api migrate")?;
            let state = db::migrate(&pool).await?;
            pool.close().await;
            Ok::<_, mc_domain::Error>(state)
        }
        .await;
        match outcome {
            Ok(state) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "migrations applied to {}: {}",
                    config.redacted_url(),
                    state.describe()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mc-api migrate: {}", mc_domain::health::error_chain(&err));
                ExitCode::FAILURE
            }
        }
    })
}

/// `mc-api openapi`: prints the OpenAPI document.
pub fn openapi() -> ExitCode {
    let _ = write!(std::io::stdout(), "{}", crate::openapi::spec_json());
    ExitCode::SUCCESS
}

/// `mc-api seed-demo`: the demo organization `demo`, admin `admin@example.com` and H5
/// user `demo-user`. Prints the credentials it set.
pub fn seed_demo(env: &Env) -> ExitCode {
    use mc_domain::config::{ApiConfig, ServiceConfig};
    use mc_domain::identity::IdentityService;
    use mc_domain::identity::seed::{DEMO_ADMIN_EMAIL, DEMO_H5_USERNAME, DEMO_ORG_SLUG};

    let config = match ApiConfig::from_env(env) {
        Ok(config) => config,
        Err(err) => {
            eprint!("{err}");
            return ExitCode::from(mc_web::runner::EXIT_CONFIG);
        }
    };
    let admin_password = env.get("MC_DEMO_ADMIN_PASSWORD").map(str::to_owned);
    let h5_password = env.get("MC_DEMO_H5_PASSWORD").map(str::to_owned);
    for (var, value) in [
        ("MC_DEMO_ADMIN_PASSWORD", &admin_password),
        ("MC_DEMO_H5_PASSWORD", &h5_password),
    ] {
        if let Some(v) = value
            && let Err(problem) = mc_domain::values::NewPassword::try_from(v.clone())
        {
            eprintln!("mc-api seed-demo: {var} {problem}");
            return ExitCode::from(mc_web::runner::EXIT_CONFIG);
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("mc-api seed-demo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let outcome = async {
            let pool = db::pool(&config.common.database, "mc-api seed-demo")?;
            db::ensure_migrations_current(&pool).await?;
            let redis = mc_domain::redis::RedisHandle::new(&config.common.redis)?;
            let identity =
                IdentityService::new(pool.clone(), redis, config.auth.clone(), config.rate_limits.clone())?;
            let outcome = identity
                .seed_demo(admin_password.as_deref(), h5_password.as_deref())
                .await?;
            pool.close().await;
            Ok::<_, mc_domain::Error>(outcome)
        }
        .await;
        match outcome {
            Ok(outcome) => {
                let show = |p: &Option<String>| {
                    p.clone()
                        .unwrap_or_else(|| "(unchanged)".to_owned())
                };
                let _ = writeln!(
                    std::io::stdout(),
                    "demo organization '{DEMO_ORG_SLUG}' ({}): admin {DEMO_ADMIN_EMAIL} password {} | H5 user {DEMO_H5_USERNAME} password {}",
                    outcome.org_id,
                    show(&outcome.admin_password),
                    show(&outcome.h5_password),
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mc-api seed-demo: {}", mc_domain::health::error_chain(&err));
                ExitCode::FAILURE
            }
        }
    })
}
