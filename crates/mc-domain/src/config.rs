//! Typed configuration from the environment (and `.env`), one struct per service.
//!
//! Every service validates all of its variables at start and reports every problem
//! at once, so an operator fixes the environment in one pass. Every variable read
//! here is documented in `.env.example`.

use crate::secret::{Secret, redact_url};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A snapshot of the environment variables a service reads.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment, after loading `.env` from the working directory
    /// (variables already set in the process win over the file).
    pub fn from_process() -> Self {
        // A missing .env is normal; a malformed one is reported when a variable is read.
        let _ = dotenvy::dotenv();
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment made of the given pairs only (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets or replaces one variable.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// Removes one variable.
    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
    }

    /// The raw value of a variable, treating an empty value as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Every problem found while reading one service's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The service whose configuration failed (`mc-api`).
    pub service: &'static str,
    /// One line per problem, each naming its variable.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} cannot start: {} configuration problem{} (see .env.example):",
            self.service,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables and collects problems instead of stopping at the first.
pub struct EnvReader<'a> {
    env: &'a Env,
    problems: Vec<String>,
}

impl<'a> EnvReader<'a> {
    /// Starts reading from `env`.
    pub fn new(env: &'a Env) -> Self {
        Self {
            env,
            problems: Vec::new(),
        }
    }

    /// Records a problem found by custom validation.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// A variable that must be set; `hint` says what it should look like.
    pub fn required<T: FromStr>(&mut self, key: &str, hint: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        match self.env.get(key) {
            None => {
                self.problems.push(format!("{key} is required ({hint})"));
                None
            }
            Some(raw) => self.parse(key, raw, hint),
        }
    }

    /// A variable that may be unset.
    pub fn optional<T: FromStr>(&mut self, key: &str, hint: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let raw = self.env.get(key)?;
        self.parse(key, raw, hint)
    }

    /// A variable with a default; a malformed value is a problem, not a silent default.
    pub fn or_default<T: FromStr>(&mut self, key: &str, default: T, hint: &str) -> T
    where
        T::Err: fmt::Display,
    {
        match self.env.get(key) {
            None => default,
            Some(raw) => self.parse(key, raw, hint).unwrap_or(default),
        }
    }

    /// A number of seconds with a default, which must be at least `min`.
    pub fn seconds(&mut self, key: &str, default: u64, min: u64) -> Duration {
        let value: u64 = self.or_default(key, default, "a whole number of seconds");
        if value < min {
            self.problems
                .push(format!("{key} must be at least {min} seconds, got {value}"));
        }
        Duration::from_secs(value.max(min))
    }

    /// A required secret of at least `min_len` characters.
    pub fn secret(&mut self, key: &str, min_len: usize, hint: &str) -> Option<Secret> {
        match self.env.get(key) {
            None => {
                self.problems.push(format!("{key} is required ({hint})"));
                None
            }
            Some(raw) if raw.len() < min_len => {
                self.problems.push(format!(
                    "{key} is too short: at least {min_len} characters are required ({hint})"
                ));
                None
            }
            Some(raw) => Some(Secret::new(raw)),
        }
    }

    fn parse<T: FromStr>(&mut self, key: &str, raw: &str, hint: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        match raw.trim().parse::<T>() {
            Ok(value) => Some(value),
            Err(err) => {
                // Never echo the raw value: it may be a secret pasted in the wrong place.
                self.problems
                    .push(format!("{key} is invalid: {err} (expected {hint})"));
                None
            }
        }
    }

    /// Ends reading: `Ok` when nothing was wrong.
    pub fn finish(self, service: &'static str) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                service,
                problems: self.problems,
            })
        }
    }
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (default; what log pipelines ingest).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            other => Err(format!("unknown log format {other:?}")),
        }
    }
}

/// Logging and tracing settings shared by every binary.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `LOG_FORMAT`: json (default) or pretty.
    pub log_format: LogFormat,
    /// `RUST_LOG`: tracing filter directives.
    pub log_filter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/HTTP collector; traces are exported only when set.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        Self {
            log_format: r.or_default("LOG_FORMAT", LogFormat::Json, "json or pretty"),
            log_filter: r.or_default(
                "RUST_LOG",
                "info,sqlx=warn".to_owned(),
                "tracing filter directives",
            ),
            otlp_endpoint: r
                .optional::<url::Url>("OTEL_EXPORTER_OTLP_ENDPOINT", "an http(s) URL")
                .map(|u| u.to_string().trim_end_matches('/').to_owned()),
        }
    }
}

/// Postgres connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`: connection URL of the application role (never a superuser).
    pub url: Secret,
    /// `DATABASE_MAX_CONNECTIONS`: pool size per process.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECONDS`: how long a request waits for a pooled connection.
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    fn read(r: &mut EnvReader<'_>) -> Option<Self> {
        let url: Option<url::Url> = r.required(
            "DATABASE_URL",
            "postgres://user:password@host:port/database of the application role",
        );
        if let Some(u) = &url
            && !matches!(u.scheme(), "postgres" | "postgresql")
        {
            r.problem(format!(
                "DATABASE_URL must use the postgres:// scheme, got {}://",
                u.scheme()
            ));
        }
        let max_connections = r.or_default("DATABASE_MAX_CONNECTIONS", 10u32, "a positive integer");
        if max_connections == 0 {
            r.problem("DATABASE_MAX_CONNECTIONS must be at least 1");
        }
        let acquire_timeout = r.seconds("DATABASE_ACQUIRE_TIMEOUT_SECONDS", 5, 1);
        Some(Self {
            url: Secret::new(url?.to_string()),
            max_connections: max_connections.max(1),
            acquire_timeout,
        })
    }

    /// The URL with its password hidden.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }

    /// Reads only the database settings (for one-shot commands such as `mc-api migrate`).
    pub fn from_env(env: &Env, command: &'static str) -> Result<Self, ConfigError> {
        let mut r = EnvReader::new(env);
        let config = Self::read(&mut r);
        r.finish(command)?;
        Ok(config.expect("finish() reports missing values"))
    }
}

/// Redis connection settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`: `redis://[:password@]host:port[/db]`.
    pub url: Secret,
    /// `REDIS_KEY_PREFIX`: prefix of every key and channel (default `mc:`), so several
    /// deployments or test runs can share one Redis.
    pub key_prefix: String,
}

impl RedisConfig {
    fn read(r: &mut EnvReader<'_>) -> Option<Self> {
        let url: Option<url::Url> = r.required("REDIS_URL", "redis://host:port");
        if let Some(u) = &url
            && !matches!(u.scheme(), "redis" | "rediss")
        {
            r.problem(format!(
                "REDIS_URL must use the redis:// or rediss:// scheme, got {}://",
                u.scheme()
            ));
        }
        let key_prefix: String =
            r.or_default("REDIS_KEY_PREFIX", "mc:".to_owned(), "a short string");
        if !key_prefix.ends_with(':') {
            r.problem("REDIS_KEY_PREFIX must end with ':' (e.g. mc:)");
        }
        Some(Self {
            url: Secret::new(url?.to_string()),
            key_prefix,
        })
    }

    /// The URL with its password hidden.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }
}

/// Settings every long-running service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// Postgres.
    pub database: DatabaseConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// `MC_SHUTDOWN_GRACE_SECONDS`: how long in-flight work may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl CommonConfig {
    fn read(r: &mut EnvReader<'_>) -> Option<Self> {
        let database = DatabaseConfig::read(r);
        let redis = RedisConfig::read(r);
        let telemetry = TelemetryConfig::read(r);
        let shutdown_grace = r.seconds("MC_SHUTDOWN_GRACE_SECONDS", 20, 1);
        Some(Self {
            database: database?,
            redis: redis?,
            telemetry,
            shutdown_grace,
        })
    }
}

/// What every service config exposes to the shared start-up code.
pub trait ServiceConfig: Sized {
    /// Binary name, used in logs and error messages.
    const SERVICE: &'static str;
    /// Reads and validates the configuration.
    fn from_env(env: &Env) -> Result<Self, ConfigError>;
    /// Address of the service's HTTP listener.
    fn addr(&self) -> SocketAddr;
    /// Shared settings.
    fn common(&self) -> &CommonConfig;
}

fn read_addr(r: &mut EnvReader<'_>, key: &str, default: &str) -> SocketAddr {
    let fallback: SocketAddr = default.parse().expect("default addresses are valid");
    r.or_default(key, fallback, "host:port, e.g. 127.0.0.1:8000")
}

/// Configuration of `mc-api` (REST, SSE, OpenAPI, console).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `MC_API_ADDR`: listen address (default 127.0.0.1:8000).
    pub addr: SocketAddr,
    /// Shared settings.
    pub common: CommonConfig,
    /// Tokens and passwords.
    pub auth: AuthConfig,
    /// Request rate limits.
    pub rate_limits: RateLimitConfig,
    /// `MC_STREAM_CHECK_INTERVAL_SECONDS`: how often SSE streams send a heartbeat,
    /// re-check the caller's access and look for events dropped at the tail (default 15).
    pub stream_check_interval: Duration,
    /// Gateway registration.
    pub gateways: GatewayConfig,
    /// Suggestion expiry and default rule cooldown.
    pub proactivity: crate::proactivity::ProactivityConfig,
    /// The built console and H5 app.
    pub web: WebConfig,
}

/// Where the browser apps are and how browsers reach the relay.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `MC_WEB_DIR`: the frontend build (`console/` and `h5/` inside), served at `/` and
    /// `/h5/` (default `frontend/dist`). Missing is not an error: the API still serves.
    pub dir: std::path::PathBuf,
    /// `MC_RELAY_BROWSER_URL`: the relay's `ws://` or `wss://` base as browsers see it;
    /// empty means the same origin as the console (a reverse proxy forwards `/ws`)
    /// (default empty).
    pub relay_browser_url: String,
}

impl WebConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        let dir: String = r.or_default("MC_WEB_DIR", "frontend/dist".to_owned(), "a directory");
        let relay_browser_url: String = r.or_default(
            "MC_RELAY_BROWSER_URL",
            String::new(),
            "ws:// or wss:// URL, or empty",
        );
        if !(relay_browser_url.is_empty()
            || relay_browser_url.starts_with("ws://")
            || relay_browser_url.starts_with("wss://"))
        {
            r.problem("MC_RELAY_BROWSER_URL must be empty or start with ws:// or wss://");
        }
        Self {
            dir: dir.into(),
            relay_browser_url: relay_browser_url.trim_end_matches('/').to_owned(),
        }
    }
}

/// Gateway registration settings (seed 000 §7).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_REGISTRATION_ENABLED`: whether gateways may register themselves (default true).
    pub registration_enabled: bool,
    /// `GATEWAY_HEARTBEAT_INTERVAL_SECONDS`: heartbeat period gateways are told (default 30).
    pub heartbeat_interval: Duration,
    /// `MC_RELAY_PUBLIC_URL`: how gateways reach the relay, `ws://` or `wss://`
    /// (default ws://127.0.0.1:8001).
    pub relay_public_url: String,
    /// `GATEWAY_CALL_TIMEOUT_SECONDS`: how long a call to a gateway waits for its answer
    /// before it fails with `gateway_timeout` (default 30).
    pub call_timeout: Duration,
    /// `GATEWAY_MAX_FRAMES_PER_SECOND`: frames a gateway socket may send per second, bursts
    /// up to twice that; beyond it the relay reads the socket more slowly (backpressure,
    /// nothing is dropped) (default 10000).
    pub max_frames_per_second: u32,
}

impl GatewayConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        let registration_enabled =
            r.or_default("GATEWAY_REGISTRATION_ENABLED", true, "true or false");
        let heartbeat_interval = r.seconds("GATEWAY_HEARTBEAT_INTERVAL_SECONDS", 30, 1);
        let relay_public_url: String = r.or_default(
            "MC_RELAY_PUBLIC_URL",
            "ws://127.0.0.1:8001".to_owned(),
            "a ws:// or wss:// URL",
        );
        if !(relay_public_url.starts_with("ws://") || relay_public_url.starts_with("wss://")) {
            r.problem("MC_RELAY_PUBLIC_URL must start with ws:// or wss://");
        }
        let call_timeout = r.seconds("GATEWAY_CALL_TIMEOUT_SECONDS", 30, 1);
        let max_frames_per_second: u32 = r.or_default(
            "GATEWAY_MAX_FRAMES_PER_SECOND",
            10_000,
            "a positive number of frames",
        );
        if max_frames_per_second == 0 {
            r.problem("GATEWAY_MAX_FRAMES_PER_SECOND must be positive");
        }
        Self {
            registration_enabled,
            heartbeat_interval,
            relay_public_url,
            call_timeout,
            max_frames_per_second,
        }
    }
}

impl ServiceConfig for ApiConfig {
    const SERVICE: &'static str = "mc-api";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut r = EnvReader::new(env);
        let addr = read_addr(&mut r, "MC_API_ADDR", "127.0.0.1:8000");
        let common = CommonConfig::read(&mut r);
        let auth = AuthConfig::read(&mut r);
        let rate_limits = RateLimitConfig::read(&mut r);
        let stream_check_interval = r.seconds("MC_STREAM_CHECK_INTERVAL_SECONDS", 15, 1);
        let gateways = GatewayConfig::read(&mut r);
        let proactivity = read_proactivity(&mut r);
        let web = WebConfig::read(&mut r);
        r.finish(Self::SERVICE)?;
        Ok(Self {
            addr,
            common: common.expect("finish() reports missing values"),
            auth: auth.expect("finish() reports missing values"),
            rate_limits,
            stream_check_interval,
            gateways,
            proactivity,
            web,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

/// Token, password and key settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `JWT_SECRET`: HS256 key of console access tokens (at least 32 characters).
    pub jwt_secret: Secret,
    /// `H5_JWT_SECRET`: HS256 key of H5 access tokens; must differ from `JWT_SECRET`.
    pub h5_jwt_secret: Secret,
    /// `JWT_ISSUER`: `iss` of every token.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: `aud` of console tokens.
    pub jwt_audience: String,
    /// `H5_JWT_AUDIENCE`: `aud` of H5 tokens.
    pub h5_jwt_audience: String,
    /// `JWT_ACCESS_TTL_MINUTES`: console access token lifetime.
    pub access_ttl: Duration,
    /// `JWT_REFRESH_TTL_DAYS`: console refresh token lifetime.
    pub refresh_ttl: Duration,
    /// `H5_JWT_ACCESS_TTL_MINUTES`: H5 access token lifetime.
    pub h5_access_ttl: Duration,
    /// `H5_JWT_REFRESH_TTL_DAYS`: H5 refresh token lifetime.
    pub h5_refresh_ttl: Duration,
    /// `PASSWORD_HASH_MEMORY_KIB`: argon2id memory cost.
    pub password_memory_kib: u32,
    /// `PASSWORD_HASH_ITERATIONS`: argon2id time cost.
    pub password_iterations: u32,
    /// `API_KEY_ROTATION_GRACE_HOURS`: default overlap in which a rotated key still works.
    pub api_key_rotation_grace: Duration,
    /// `INVITATION_TTL_HOURS`: how long an invitation can be accepted.
    pub invitation_ttl: Duration,
}

impl AuthConfig {
    fn read(r: &mut EnvReader<'_>) -> Option<Self> {
        let jwt_secret = r.secret("JWT_SECRET", 32, "random string of at least 32 characters");
        let h5_jwt_secret = r.secret(
            "H5_JWT_SECRET",
            32,
            "random string of at least 32 characters, different from JWT_SECRET",
        );
        if let (Some(a), Some(b)) = (&jwt_secret, &h5_jwt_secret)
            && a == b
        {
            r.problem("H5_JWT_SECRET must differ from JWT_SECRET (seed 000 M3)");
        }
        let minutes = |r: &mut EnvReader<'_>, key: &str, default: u64| {
            let v: u64 = r.or_default(key, default, "a whole number of minutes");
            if !(1..=24 * 60).contains(&v) {
                r.problem(format!("{key} must be between 1 and 1440 minutes"));
            }
            Duration::from_secs(v.clamp(1, 24 * 60) * 60)
        };
        let days = |r: &mut EnvReader<'_>, key: &str, default: u64| {
            let v: u64 = r.or_default(key, default, "a whole number of days");
            if !(1..=365).contains(&v) {
                r.problem(format!("{key} must be between 1 and 365 days"));
            }
            Duration::from_secs(v.clamp(1, 365) * 86_400)
        };
        let hours = |r: &mut EnvReader<'_>, key: &str, default: u64| {
            let v: u64 = r.or_default(key, default, "a whole number of hours");
            if v > 24 * 365 {
                r.problem(format!("{key} must be at most 8760 hours"));
            }
            Duration::from_secs(v.min(24 * 365) * 3600)
        };
        let access_ttl = minutes(r, "JWT_ACCESS_TTL_MINUTES", 15);
        let refresh_ttl = days(r, "JWT_REFRESH_TTL_DAYS", 7);
        let h5_access_ttl = minutes(r, "H5_JWT_ACCESS_TTL_MINUTES", 15);
        let h5_refresh_ttl = days(r, "H5_JWT_REFRESH_TTL_DAYS", 30);
        let password_memory_kib: u32 = r.or_default(
            "PASSWORD_HASH_MEMORY_KIB",
            19_456,
            "KiB of memory for argon2id",
        );
        if !(8_192..=1_048_576).contains(&password_memory_kib) {
            r.problem("PASSWORD_HASH_MEMORY_KIB must be between 8192 and 1048576");
        }
        let password_iterations: u32 =
            r.or_default("PASSWORD_HASH_ITERATIONS", 2, "argon2id iterations");
        if !(1..=10).contains(&password_iterations) {
            r.problem("PASSWORD_HASH_ITERATIONS must be between 1 and 10");
        }
        let api_key_rotation_grace = hours(r, "API_KEY_ROTATION_GRACE_HOURS", 24);
        let invitation_ttl = hours(r, "INVITATION_TTL_HOURS", 168);
        Some(Self {
            jwt_secret: jwt_secret?,
            h5_jwt_secret: h5_jwt_secret?,
            jwt_issuer: r.or_default("JWT_ISSUER", "mission-control".to_owned(), "a string"),
            jwt_audience: r.or_default(
                "JWT_AUDIENCE",
                "mission-control-api".to_owned(),
                "a string",
            ),
            h5_jwt_audience: r.or_default(
                "H5_JWT_AUDIENCE",
                "mission-control-h5".to_owned(),
                "a string",
            ),
            access_ttl,
            refresh_ttl,
            h5_access_ttl,
            h5_refresh_ttl,
            password_memory_kib,
            password_iterations,
            api_key_rotation_grace,
            invitation_ttl,
        })
    }

    /// Defaults with the given secrets (tests and embedding).
    pub fn for_tests(jwt_secret: Secret, h5_jwt_secret: Secret) -> Self {
        Self {
            jwt_secret,
            h5_jwt_secret,
            jwt_issuer: "mission-control".to_owned(),
            jwt_audience: "mission-control-api".to_owned(),
            h5_jwt_audience: "mission-control-h5".to_owned(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            h5_access_ttl: Duration::from_secs(15 * 60),
            h5_refresh_ttl: Duration::from_secs(30 * 86_400),
            password_memory_kib: 19_456,
            password_iterations: 2,
            api_key_rotation_grace: Duration::from_secs(24 * 3600),
            invitation_ttl: Duration::from_secs(168 * 3600),
        }
    }
}

/// Requests per minute with a burst allowance (generic cell rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Sustained rate.
    pub per_minute: u32,
    /// Requests that may arrive at once.
    pub burst: u32,
}

/// Rate limits per tier (Godel §10.3) and for logins.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `RATE_LIMIT_FREE_PER_MINUTE` / `RATE_LIMIT_FREE_BURST`.
    pub free: Quota,
    /// `RATE_LIMIT_PRO_PER_MINUTE` / `RATE_LIMIT_PRO_BURST`.
    pub pro: Quota,
    /// `RATE_LIMIT_ENTERPRISE_PER_MINUTE` / `RATE_LIMIT_ENTERPRISE_BURST`.
    pub enterprise: Quota,
    /// `RATE_LIMIT_ANONYMOUS_PER_MINUTE` / `_BURST`: unauthenticated requests, per IP.
    pub anonymous: Quota,
    /// `LOGIN_RATE_PER_IP_PER_MINUTE` / `_BURST`: login attempts per client IP.
    pub login_per_ip: Quota,
    /// `LOGIN_RATE_PER_ACCOUNT_PER_MINUTE` / `_BURST`: login attempts per account.
    pub login_per_account: Quota,
    /// `MC_TRUST_FORWARDED_FOR`: take the client IP from `X-Forwarded-For` (only behind
    /// a proxy that sets it).
    pub trust_forwarded_for: bool,
}

impl RateLimitConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        let quota = |r: &mut EnvReader<'_>, name: &str, per_minute: u32, burst: u32| {
            let rate_key = format!("{name}_PER_MINUTE");
            let burst_key = format!("{name}_BURST");
            let q = Quota {
                per_minute: r.or_default(&rate_key, per_minute, "requests per minute"),
                burst: r.or_default(&burst_key, burst, "requests"),
            };
            if q.per_minute == 0 {
                r.problem(format!("{rate_key} must be at least 1"));
            }
            if q.burst == 0 {
                r.problem(format!("{burst_key} must be at least 1"));
            }
            Quota {
                per_minute: q.per_minute.max(1),
                burst: q.burst.max(1),
            }
        };
        Self {
            free: quota(r, "RATE_LIMIT_FREE", 60, 10),
            pro: quota(r, "RATE_LIMIT_PRO", 600, 100),
            enterprise: quota(r, "RATE_LIMIT_ENTERPRISE", 6000, 1000),
            anonymous: quota(r, "RATE_LIMIT_ANONYMOUS", 120, 30),
            login_per_ip: quota(r, "LOGIN_RATE_PER_IP", 30, 10),
            login_per_account: quota(r, "LOGIN_RATE_PER_ACCOUNT", 6, 5),
            trust_forwarded_for: r.or_default("MC_TRUST_FORWARDED_FOR", false, "true or false"),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::read(&mut EnvReader::new(&Env::default()))
    }
}
/// Configuration of `mc-relay` (WebSockets).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `MC_RELAY_ADDR`: listen address (default 127.0.0.1:8001).
    pub addr: SocketAddr,
    /// Shared settings.
    pub common: CommonConfig,
    /// Tokens (sockets authenticate with the same credentials as the REST API).
    pub auth: AuthConfig,
    /// Socket limits and timings.
    pub ws: WsConfig,
    /// Gateway settings (the heartbeat period gateways are told on the relay).
    pub gateways: GatewayConfig,
    /// `MC_RELAY_API_URL`: where the relay forwards agents' REST calls tunnelled through
    /// their gateway (`api.request`), an http(s) base URL (default http://127.0.0.1:8000).
    pub api_url: String,
    /// H5 chat limits.
    pub chat: ChatConfig,
}

/// H5 chat settings.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// `CHAT_MAX_MESSAGE_CHARS`: longest message a user may send (default 8000).
    pub max_message_chars: usize,
    /// `CHAT_EVENT_INCLUDE_CONTENT`: whether `chat.*` events in the event log carry the
    /// message text (default false: only ids, seqs and lengths).
    pub event_include_content: bool,
    /// `CHAT_SEND_ATTEMPTS`: tries to hand a message to the gateway before it counts as
    /// failed (default 3; each waits up to `GATEWAY_CALL_TIMEOUT_SECONDS`).
    pub send_attempts: u32,
    /// `CHAT_MAX_BACKLOG_PER_GATEWAY`: user messages one relay instance holds for one
    /// gateway (being stored, or waiting for the gateway to take them); more are refused
    /// with `RATE_LIMITED` and nothing stored, so an overloaded or stalled gateway makes
    /// clients wait and retry instead of queueing for minutes (default 1000).
    pub max_backlog_per_gateway: usize,
}

impl ChatConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        let max_message_chars: usize =
            r.or_default("CHAT_MAX_MESSAGE_CHARS", 8000, "a number of characters");
        if max_message_chars == 0 {
            r.problem("CHAT_MAX_MESSAGE_CHARS must be at least 1");
        }
        let send_attempts: u32 = r.or_default("CHAT_SEND_ATTEMPTS", 3, "a number of attempts");
        if send_attempts == 0 {
            r.problem("CHAT_SEND_ATTEMPTS must be at least 1");
        }
        let max_backlog_per_gateway: usize =
            r.or_default("CHAT_MAX_BACKLOG_PER_GATEWAY", 1000, "a number of messages");
        if max_backlog_per_gateway == 0 {
            r.problem("CHAT_MAX_BACKLOG_PER_GATEWAY must be at least 1");
        }
        Self {
            max_message_chars: max_message_chars.max(1),
            event_include_content: r.or_default(
                "CHAT_EVENT_INCLUDE_CONTENT",
                false,
                "true or false",
            ),
            send_attempts: send_attempts.max(1),
            max_backlog_per_gateway: max_backlog_per_gateway.max(1),
        }
    }
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self::read(&mut EnvReader::new(&Env::default()))
    }
}

/// WebSocket limits and timings shared by every socket endpoint.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// `WS_HEARTBEAT_INTERVAL_SECONDS`: server ping period (default 30).
    pub heartbeat_interval: Duration,
    /// `WS_HEARTBEAT_TIMEOUT_SECONDS`: a socket silent this long is closed (default 90).
    pub heartbeat_timeout: Duration,
    /// `WS_AUTH_TIMEOUT_SECONDS`: time allowed for the first (`auth`) frame (default 10).
    pub auth_timeout: Duration,
    /// `WS_MAX_CONNECTIONS_PER_INSTANCE`: sockets one relay accepts (default 20000).
    pub max_connections: usize,
    /// `WS_OUTBOUND_QUEUE`: frames queued per socket before it counts as a slow consumer
    /// and is closed with 4009 (default 256).
    pub outbound_queue: usize,
    /// `WS_MAX_FRAME_BYTES`: largest accepted client frame (default 65536).
    pub max_frame_bytes: usize,
    /// `WS_MESSAGES_PER_SECOND`: sustained client frames per socket; bursts up to twice
    /// this are allowed, more closes the socket with 4008 (default 20).
    pub messages_per_second: u32,
    /// `MC_STREAM_CHECK_INTERVAL_SECONDS`: how often live feeds re-check access and look for
    /// events dropped at the tail (default 15).
    pub check_interval: Duration,
}

impl WsConfig {
    fn read(r: &mut EnvReader<'_>) -> Self {
        let heartbeat_interval = r.seconds("WS_HEARTBEAT_INTERVAL_SECONDS", 30, 1);
        let heartbeat_timeout = r.seconds("WS_HEARTBEAT_TIMEOUT_SECONDS", 90, 2);
        if heartbeat_timeout <= heartbeat_interval {
            r.problem(
                "WS_HEARTBEAT_TIMEOUT_SECONDS must be longer than WS_HEARTBEAT_INTERVAL_SECONDS",
            );
        }
        let positive = |r: &mut EnvReader<'_>, key: &str, default: usize, hint: &str| {
            let v: usize = r.or_default(key, default, hint);
            if v == 0 {
                r.problem(format!("{key} must be at least 1"));
            }
            v.max(1)
        };
        let max_connections = positive(
            r,
            "WS_MAX_CONNECTIONS_PER_INSTANCE",
            20_000,
            "a number of sockets",
        );
        let outbound_queue = positive(r, "WS_OUTBOUND_QUEUE", 256, "a number of frames");
        let max_frame_bytes = positive(r, "WS_MAX_FRAME_BYTES", 65_536, "bytes");
        let messages_per_second = u32::try_from(positive(
            r,
            "WS_MESSAGES_PER_SECOND",
            20,
            "frames per second",
        ))
        .unwrap_or(u32::MAX);
        Self {
            heartbeat_interval,
            heartbeat_timeout,
            auth_timeout: r.seconds("WS_AUTH_TIMEOUT_SECONDS", 10, 1),
            max_connections,
            outbound_queue,
            max_frame_bytes,
            messages_per_second,
            check_interval: r.seconds("MC_STREAM_CHECK_INTERVAL_SECONDS", 15, 1),
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self::read(&mut EnvReader::new(&Env::default()))
    }
}

impl ServiceConfig for RelayConfig {
    const SERVICE: &'static str = "mc-relay";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut r = EnvReader::new(env);
        let addr = read_addr(&mut r, "MC_RELAY_ADDR", "127.0.0.1:8001");
        let common = CommonConfig::read(&mut r);
        let auth = AuthConfig::read(&mut r);
        let ws = WsConfig::read(&mut r);
        let gateways = GatewayConfig::read(&mut r);
        let chat = ChatConfig::read(&mut r);
        let api_url: String = r.or_default(
            "MC_RELAY_API_URL",
            "http://127.0.0.1:8000".to_owned(),
            "an http(s) URL",
        );
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            r.problem("MC_RELAY_API_URL must start with http:// or https://");
        }
        r.finish(Self::SERVICE)?;
        Ok(Self {
            addr,
            common: common.expect("finish() reports missing values"),
            auth: auth.expect("finish() reports missing values"),
            ws,
            gateways,
            api_url: api_url.trim_end_matches('/').to_owned(),
            chat,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
/// Proactivity settings shared by the API, the rule engine and the worker (seed 000 §7).
pub fn read_proactivity(r: &mut EnvReader<'_>) -> crate::proactivity::ProactivityConfig {
    let expiry_hours: u64 = r.or_default("PROACTIVITY_SUGGESTION_EXPIRY_HOURS", 168, "hours");
    if !(1..=8760).contains(&expiry_hours) {
        r.problem("PROACTIVITY_SUGGESTION_EXPIRY_HOURS must be 1-8760");
    }
    let cooldown: i32 = r.or_default("PROACTIVITY_RULE_COOLDOWN_SECONDS", 3600, "seconds");
    if !(0..=2_592_000).contains(&cooldown) {
        r.problem("PROACTIVITY_RULE_COOLDOWN_SECONDS must be 0-2592000");
    }
    crate::proactivity::ProactivityConfig {
        suggestion_expiry: Duration::from_secs(expiry_hours.clamp(1, 8760) * 3600),
        default_cooldown_seconds: cooldown.clamp(0, 2_592_000),
    }
}

/// Configuration of `mc-rules` (rule-engine consumer; the address serves health and metrics).
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// `MC_RULES_ADDR`: listen address (default 127.0.0.1:9102).
    pub addr: SocketAddr,
    /// Shared settings.
    pub common: CommonConfig,
    /// Suggestion expiry and default cooldown.
    pub proactivity: crate::proactivity::ProactivityConfig,
    /// `RULES_BATCH_SIZE`: stream entries read and evaluated per transaction (default 1024).
    pub batch_size: usize,
    /// `RULES_RECLAIM_IDLE_MS`: how long an entry stays unacknowledged before another
    /// consumer takes it over (default 15000).
    pub reclaim_idle: Duration,
    /// `RULES_MAX_DELIVERIES`: deliveries after which an event that keeps failing is
    /// recorded as poison and skipped (default 5).
    pub max_deliveries: u64,
    /// `RULES_CATCHUP_INTERVAL_SECONDS`: how often the event log is scanned for events the
    /// stream did not deliver (default 5).
    pub catchup_interval: Duration,
    /// `RULES_CATCHUP_MAX_AGE_HOURS`: older events found by the scan are not evaluated
    /// (default 24).
    pub catchup_max_age: Duration,
    /// `RULES_CRON_MINUTELY`: also tick `cron.minutely` (default false; for tests).
    pub cron_minutely: bool,
}

impl ServiceConfig for RulesConfig {
    const SERVICE: &'static str = "mc-rules";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut r = EnvReader::new(env);
        let addr = read_addr(&mut r, "MC_RULES_ADDR", "127.0.0.1:9102");
        let common = CommonConfig::read(&mut r);
        let proactivity = read_proactivity(&mut r);
        let batch_size: usize = r.or_default("RULES_BATCH_SIZE", 1024, "a number of events");
        if !(1..=10_000).contains(&batch_size) {
            r.problem("RULES_BATCH_SIZE must be 1-10000");
        }
        let reclaim_ms: u64 = r.or_default("RULES_RECLAIM_IDLE_MS", 15_000, "milliseconds");
        if reclaim_ms < 100 {
            r.problem("RULES_RECLAIM_IDLE_MS must be at least 100");
        }
        let max_deliveries: u64 = r.or_default("RULES_MAX_DELIVERIES", 5, "a number of deliveries");
        if max_deliveries == 0 {
            r.problem("RULES_MAX_DELIVERIES must be at least 1");
        }
        let catchup_interval = r.seconds("RULES_CATCHUP_INTERVAL_SECONDS", 5, 1);
        let max_age_hours: u64 = r.or_default("RULES_CATCHUP_MAX_AGE_HOURS", 24, "hours");
        let cron_minutely = r.or_default("RULES_CRON_MINUTELY", false, "true or false");
        r.finish(Self::SERVICE)?;
        Ok(Self {
            addr,
            common: common.expect("finish() reports missing values"),
            proactivity,
            batch_size: batch_size.clamp(1, 10_000),
            reclaim_idle: Duration::from_millis(reclaim_ms.max(100)),
            max_deliveries: max_deliveries.max(1),
            catchup_interval,
            catchup_max_age: Duration::from_secs(max_age_hours * 3600),
            cron_minutely,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
/// Configuration of `mc-worker` (job worker; the address serves health and metrics).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `MC_WORKER_ADDR`: listen address (default 127.0.0.1:9103).
    pub addr: SocketAddr,
    /// Shared settings.
    pub common: CommonConfig,
    /// `MC_WORKER_CONCURRENCY`: jobs run at once (default 8).
    pub concurrency: usize,
    /// `MC_WORKER_QUEUES`: comma-separated queues served (default `default`).
    pub queues: Vec<String>,
    /// `MC_WORKER_POLL_INTERVAL_MS`: polling period without notifications; also how
    /// often lapsed leases are reclaimed and schedules fire (default 1000).
    pub poll_interval: Duration,
    /// `PROACTIVITY_EVENT_TTL_DAYS`: event-log retention (default 90).
    pub event_ttl_days: u32,
    /// `GATEWAY_OFFLINE_THRESHOLD_SECONDS`: silence after which a gateway is marked
    /// offline (default 90).
    pub gateway_offline_threshold: Duration,
}

impl ServiceConfig for WorkerConfig {
    const SERVICE: &'static str = "mc-worker";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut r = EnvReader::new(env);
        let addr = read_addr(&mut r, "MC_WORKER_ADDR", "127.0.0.1:9103");
        let common = CommonConfig::read(&mut r);
        let concurrency: usize = r.or_default("MC_WORKER_CONCURRENCY", 8, "a number of jobs");
        if !(1..=1024).contains(&concurrency) {
            r.problem("MC_WORKER_CONCURRENCY must be 1-1024");
        }
        let queues_raw: String =
            r.or_default("MC_WORKER_QUEUES", "default".to_owned(), "queue names");
        let queues: Vec<String> = queues_raw
            .split(',')
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned)
            .collect();
        if queues.is_empty() {
            r.problem("MC_WORKER_QUEUES must name at least one queue");
        }
        let poll_ms: u64 = r.or_default("MC_WORKER_POLL_INTERVAL_MS", 1000, "milliseconds");
        if !(10..=60_000).contains(&poll_ms) {
            r.problem("MC_WORKER_POLL_INTERVAL_MS must be 10-60000");
        }
        let event_ttl_days: u32 = r.or_default("PROACTIVITY_EVENT_TTL_DAYS", 90, "days");
        if event_ttl_days < 31 {
            r.problem("PROACTIVITY_EVENT_TTL_DAYS must be at least 31 (partitions are monthly)");
        }
        let gateway_offline_threshold = r.seconds("GATEWAY_OFFLINE_THRESHOLD_SECONDS", 90, 1);
        r.finish(Self::SERVICE)?;
        Ok(Self {
            addr,
            common: common.expect("finish() reports missing values"),
            concurrency: concurrency.clamp(1, 1024),
            queues,
            poll_interval: Duration::from_millis(poll_ms.clamp(10, 60_000)),
            event_ttl_days,
            gateway_offline_threshold,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Env {
        Env::from_pairs([
            ("DATABASE_URL", "postgres://mc_app:pw@127.0.0.1:5433/mc"),
            ("REDIS_URL", "redis://127.0.0.1:6380"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef-admin"),
            ("H5_JWT_SECRET", "0123456789abcdef0123456789abcdef-h5"),
        ])
    }

    #[test]
    fn defaults_apply_when_only_required_vars_are_set() {
        let cfg = ApiConfig::from_env(&valid()).expect("valid");
        assert_eq!(cfg.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(cfg.common.database.max_connections, 10);
        assert_eq!(cfg.common.redis.key_prefix, "mc:");
        assert_eq!(cfg.common.telemetry.log_format, LogFormat::Json);
        assert_eq!(cfg.common.shutdown_grace, Duration::from_secs(20));
        let relay = RelayConfig::from_env(&valid()).unwrap();
        assert_eq!(relay.addr.port(), 8001);
        assert_eq!(RulesConfig::from_env(&valid()).unwrap().addr.port(), 9102);
        assert_eq!(WorkerConfig::from_env(&valid()).unwrap().addr.port(), 9103);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = Env::from_pairs([
            ("MC_API_ADDR", "not-an-address"),
            ("DATABASE_MAX_CONNECTIONS", "many"),
            ("LOG_FORMAT", "xml"),
        ]);
        let err = ApiConfig::from_env(&env).unwrap_err();
        let text = err.to_string();
        for var in [
            "MC_API_ADDR",
            "DATABASE_URL",
            "REDIS_URL",
            "DATABASE_MAX_CONNECTIONS",
            "LOG_FORMAT",
        ] {
            assert!(text.contains(var), "{var} missing from:\n{text}");
        }
        assert!(
            text.contains("JWT_SECRET") && text.contains("H5_JWT_SECRET"),
            "{text}"
        );
        assert_eq!(err.problems.len(), 7, "{text}");
        assert!(text.starts_with("mc-api cannot start: 7 configuration problems"));
    }

    #[test]
    fn wrong_schemes_are_rejected() {
        let env = Env::from_pairs([
            ("DATABASE_URL", "mysql://root@localhost/db"),
            ("REDIS_URL", "http://localhost"),
        ]);
        let err = WorkerConfig::from_env(&env).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn secrets_are_not_echoed_in_errors_or_debug() {
        let mut env = valid();
        env.set("DATABASE_URL", "postgres://mc_app:topsecret@[::1");
        let err = ApiConfig::from_env(&env).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");

        let cfg = ApiConfig::from_env(&valid()).unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("pw@"), "{debug}");
        assert_eq!(
            cfg.common.database.redacted_url(),
            "postgres://mc_app:***@127.0.0.1:5433/mc"
        );
    }

    #[test]
    fn jwt_secrets_must_be_long_and_distinct() {
        let mut env = valid();
        env.set("JWT_SECRET", "short");
        let err = ApiConfig::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET is too short"), "{err}");
        let mut env = valid();
        env.set("H5_JWT_SECRET", env.get("JWT_SECRET").unwrap().to_owned());
        let err = ApiConfig::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("must differ"), "{err}");
    }

    #[test]
    fn rate_limits_have_godel_defaults() {
        let cfg = ApiConfig::from_env(&valid()).unwrap();
        assert_eq!(
            cfg.rate_limits.free,
            Quota {
                per_minute: 60,
                burst: 10
            }
        );
        assert_eq!(
            cfg.rate_limits.pro,
            Quota {
                per_minute: 600,
                burst: 100
            }
        );
        assert_eq!(
            cfg.rate_limits.enterprise,
            Quota {
                per_minute: 6000,
                burst: 1000
            }
        );
        let mut env = valid();
        env.set("RATE_LIMIT_FREE_BURST", "0");
        assert!(ApiConfig::from_env(&env).is_err());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let mut env = valid();
        env.set("MC_API_ADDR", "   ");
        assert_eq!(ApiConfig::from_env(&env).unwrap().addr.port(), 8000);
    }
}
