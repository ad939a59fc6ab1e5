//! One Postgres database per test, cloned from a template that holds the migrated schema.

use crate::test_env;
use mc_domain::config::DatabaseConfig;
use mc_domain::db::MIGRATOR;
use mc_domain::secret::Secret;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Advisory-lock key serialising role and template creation across test processes.
const SETUP_LOCK: i64 = 0x6d63_7465_7374; // "mctest"

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    /// Database name (`t_<uuid>`).
    pub name: String,
    admin_url: String,
    app_url: String,
    pool: PgPool,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl TestDb {
    /// A database with every migration applied.
    pub async fn migrated() -> Self {
        let admin = admin_pool("postgres").await;
        let template = ensure_template(&admin).await;
        Self::create(&admin, Some(&template)).await
    }

    /// A database with the extensions but no migrations (for migration tests).
    pub async fn empty() -> Self {
        let admin = admin_pool("postgres").await;
        ensure_roles(&admin).await;
        let db = Self::create(&admin, None).await;
        create_extensions(&db.name).await;
        db
    }

    async fn create(admin: &PgPool, template: Option<&str>) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\" OWNER mc_app"),
            None => format!("CREATE DATABASE \"{name}\" OWNER mc_app"),
        };
        sqlx::query(AssertSqlSafe(sql))
            .execute(admin)
            .await
            .expect("create test database");
        let app_url = app_url(&name);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(&app_url)
            .await
            .expect("connect to test database as mc_app");
        Self {
            admin_url: with_database(&test_env("MC_TEST_PG_ADMIN_URL"), &name),
            name,
            app_url,
            pool,
        }
    }

    /// Pool connected as the application role (RLS applies).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// URL of the application role for this database.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// A superuser pool on this database, for inspecting what RLS hides.
    pub async fn admin_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.admin_url)
            .await
            .expect("connect to test database as superuser")
    }

    /// Service configuration pointing at this database, optionally through another
    /// host:port (a [`crate::TcpProxy`]).
    pub fn config(&self) -> DatabaseConfig {
        self.config_via(None)
    }

    /// Like [`TestDb::config`], but connecting through `host_port`.
    pub fn config_via(&self, host_port: Option<&str>) -> DatabaseConfig {
        let url = match host_port {
            Some(hp) => self.app_url.replacen(&self.server_addr(), hp, 1),
            None => self.app_url.clone(),
        };
        DatabaseConfig {
            url: Secret::new(url),
            max_connections: 5,
            acquire_timeout: Duration::from_secs(2),
        }
    }

    /// Host and port of the server, for pointing a proxy at it.
    pub fn server_addr(&self) -> String {
        host_port_of(&self.app_url)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let pool = self.pool.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
        // thread with its own runtime removes the database before the process exits.
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                pool.close().await;
                let admin = admin_pool("postgres").await;
                let _ = sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
                admin.close().await;
            });
        });
        let _ = dropper.join();
    }
}

fn host_port_of(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("valid url");
    format!(
        "{}:{}",
        parsed.host_str().expect("url has a host"),
        parsed.port().unwrap_or(5432)
    )
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("MC_TEST_PG_ADMIN_URL is a valid URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

fn app_url(database: &str) -> String {
    let mut parsed = url::Url::parse(&test_env("MC_TEST_PG_ADMIN_URL"))
        .expect("MC_TEST_PG_ADMIN_URL is a valid URL");
    let password = std::env::var("MC_TEST_PG_APP_PASSWORD").unwrap_or_else(|_| "mc_app".to_owned());
    parsed.set_username("mc_app").expect("url takes a user");
    parsed
        .set_password(Some(&password))
        .expect("url takes a password");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

async fn admin_pool(database: &str) -> PgPool {
    let url = with_database(&test_env("MC_TEST_PG_ADMIN_URL"), database);
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to the test Postgres as superuser: {err}"))
}

/// Creates `mc_app` and `mc_system` like `deploy/sql/bootstrap.sql` does.
async fn ensure_roles(admin: &PgPool) {
    let mut conn = admin.acquire().await.expect("admin connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await
        .expect("setup lock");
    let password = std::env::var("MC_TEST_PG_APP_PASSWORD").unwrap_or_else(|_| "mc_app".to_owned());
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_app')")
            .fetch_one(&mut *conn)
            .await
            .expect("role lookup");
    if !exists {
        let quoted = password.replace('\'', "''");
        sqlx::query(AssertSqlSafe(format!(
            "CREATE ROLE mc_app LOGIN PASSWORD '{quoted}'"
        )))
        .execute(&mut *conn)
        .await
        .expect("create mc_app");
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_system')")
            .fetch_one(&mut *conn)
            .await
            .expect("role lookup");
    if !exists {
        sqlx::query("CREATE ROLE mc_system NOLOGIN BYPASSRLS")
            .execute(&mut *conn)
            .await
            .expect("create mc_system");
    }
    sqlx::query("GRANT mc_system TO mc_app")
        .execute(&mut *conn)
        .await
        .expect("grant mc_system");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await
        .expect("setup unlock");
}

async fn create_extensions(database: &str) {
    let pool = admin_pool(database).await;
    for ext in ["vector", "pg_trgm"] {
        sqlx::query(AssertSqlSafe(format!(
            "CREATE EXTENSION IF NOT EXISTS {ext}"
        )))
        .execute(&pool)
        .await
        .expect("create extension");
    }
    pool.close().await;
}

/// Name of the template for the current set of migrations.
fn template_name() -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in MIGRATOR.iter() {
        migration.version.hash(&mut hasher);
        migration.checksum.hash(&mut hasher);
    }
    format!("mc_tpl_{:016x}", hasher.finish())
}

/// Creates the migrated template once per migration set, across all test processes.
async fn ensure_template(admin: &PgPool) -> String {
    ensure_roles(admin).await;
    let template = template_name();
    let mut conn = admin.acquire().await.expect("admin connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await
        .expect("setup lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut *conn)
            .await
            .expect("template lookup");
    if !exists {
        let building = format!("{template}_build");
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await
        .expect("drop stale template build");
        sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE \"{building}\" OWNER mc_app"
        )))
        .execute(&mut *conn)
        .await
        .expect("create template build");
        create_extensions(&building).await;
        let app = PgPoolOptions::new()
            .max_connections(1)
            .connect(&app_url(&building))
            .await
            .expect("connect to template as mc_app");
        MIGRATOR.run(&app).await.expect("migrate template");
        app.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
        )))
        .execute(&mut *conn)
        .await
        .expect("publish template");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await
        .expect("setup unlock");
    template
}
