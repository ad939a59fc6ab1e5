//! An in-process `mc-api` with its own database and Redis prefix, and a small HTTP client
//! for talking to it the way real callers do.

use crate::{Spawned, TestDb, api_config, common_config, http_client, redis_config, spawn_service};
use mc_domain::config::{ApiConfig, RedisConfig};
use mc_domain::identity::model::UserStatus;
use mc_domain::identity::password::PasswordHasher;
use mc_domain::identity::repo;
use mc_domain::ids::{OrgId, UserId};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Parsed body (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status, showing the body on failure.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user_id: UserId,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh: String,
    /// Organization the token acts in.
    pub org_id: Option<OrgId>,
}

/// A running API and everything it talks to.
pub struct TestApi {
    /// Its database.
    pub db: TestDb,
    /// Its Redis settings (prefix unique to this test).
    pub redis: RedisConfig,
    /// The service.
    pub svc: Spawned,
    /// The configuration it runs with.
    pub config: ApiConfig,
    http: reqwest::Client,
    hasher: PasswordHasher,
    run: RunFn,
}

/// How to start the API: `|c, l, s| Box::pin(mc_api::run(c, l, s))`. (mc-testkit cannot
/// depend on mc-api, whose tests depend on mc-testkit.)
pub type RunFn = fn(
    ApiConfig,
    tokio::net::TcpListener,
    tokio_util::sync::CancellationToken,
) -> futures::future::BoxFuture<'static, anyhow::Result<()>>;

impl TestApi {
    /// Starts the API with test defaults.
    pub async fn start(run: RunFn) -> Self {
        Self::start_with(run, |_| {}).await
    }

    /// Starts the API, letting the test adjust the configuration first.
    pub async fn start_with(run: RunFn, adjust: impl FnOnce(&mut ApiConfig)) -> Self {
        let db = TestDb::migrated().await;
        let redis = redis_config();
        let mut config = api_config(common_config(db.config(), redis.clone()));
        adjust(&mut config);
        let svc = Self::spawn(run, &config).await;
        let hasher = PasswordHasher::new(
            config.auth.password_memory_kib,
            config.auth.password_iterations,
        )
        .expect("hasher");
        Self {
            db,
            redis,
            svc,
            config,
            http: http_client(),
            hasher,
            run,
        }
    }

    /// Starts another instance of the API on the same database and Redis.
    pub async fn spawn_instance(&self) -> Spawned {
        Self::spawn(self.run, &self.config).await
    }

    async fn spawn(run: RunFn, config: &ApiConfig) -> Spawned {
        let config = config.clone();
        let svc = spawn_service(move |listener, shutdown| run(config, listener, shutdown)).await;
        svc.wait_ready().await;
        svc
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        self.svc.url(path)
    }

    /// Settings for a relay beside this API: its database and Redis, and its address for
    /// tunnelled agent calls.
    pub fn relay_config(&self) -> mc_domain::config::RelayConfig {
        let mut config =
            crate::relay_config(crate::common_config(self.db.config(), self.redis.clone()));
        config.api_url = self.url("");
        config
    }

    /// POSTs `body` to `path` as `token`, expects 201, and returns the answer's string
    /// `field` (an id, a token, a secret).
    pub async fn create(&self, token: &str, path: &str, body: Value, field: &str) -> String {
        let created = self.post(Some(token), path, body).await.expect(201);
        created.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field} in {}", created.body))
            .to_owned()
    }

    /// A new gateway registration token (`gw_reg_…`) in the admin's organization.
    pub async fn registration_token(&self, admin: &Session) -> String {
        self.create(
            &admin.token,
            "/api/v1/gateway-registry/tokens",
            serde_json::json!({}),
            "token",
        )
        .await
    }

    /// Sends a request to this instance.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        send(&self.http, &self.url(path), method, token, body, headers).await
    }

    /// `GET` with a token.
    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    /// `POST` JSON with an optional token.
    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body), &[]).await
    }

    /// `PATCH` JSON with a token.
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    /// `DELETE` with a token.
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// Creates an active console user directly in the database (there is no public
    /// sign-up; real users arrive by invitation or by the admin bootstrap).
    pub async fn create_user(&self, email: &str, password: &str) -> UserId {
        let hash = self.hasher.hash(password).await.expect("hash");
        repo::insert_user(
            self.db.pool(),
            email,
            Some(email),
            Some(&hash),
            UserStatus::Active,
            None,
        )
        .await
        .expect("insert user")
        .id
    }

    /// Logs in over HTTP.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let resp = self
            .post(
                None,
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await
            .expect(200);
        session_from(&resp.body, email, password)
    }

    /// A new user who creates organization `slug` and holds a token acting in it.
    pub async fn org_admin(&self, slug: &str) -> Session {
        let email = format!("admin-{}@{slug}.test", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery";
        self.create_user(&email, password).await;
        let session = self.login(&email, password).await;
        let created = self
            .post(
                Some(&session.token),
                "/api/v1/organizations",
                json!({"name": slug, "slug": slug}),
            )
            .await
            .expect(201);
        let org: OrgId = created.body["id"].as_str().unwrap().parse().unwrap();
        self.switch_org(&session, org).await
    }

    /// New tokens acting in `org`.
    pub async fn switch_org(&self, session: &Session, org: OrgId) -> Session {
        let resp = self
            .post(
                Some(&session.token),
                "/api/v1/auth/switch-org",
                json!({"organization_id": org}),
            )
            .await
            .expect(200);
        session_from(&resp.body, &session.email, &session.password)
    }

    /// A new user added by `admin` to the admin's organization with `role`, logged in.
    pub async fn member(&self, admin: &Session, role: &str) -> Session {
        let email = format!("{role}-{}@example.test", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery";
        self.create_user(&email, password).await;
        self.post(
            Some(&admin.token),
            "/api/v1/members",
            json!({"email": email, "role": role}),
        )
        .await
        .expect(201);
        let session = self.login(&email, password).await;
        self.switch_org(&session, admin.org_id.expect("admin acts in an org"))
            .await
    }

    /// An agent named `name` working on `board` in the admin's organization (inserted
    /// directly: gateways normally create agents) and a developer API key for it.
    pub async fn agent_with_key(&self, admin: &Session, board: &str, name: &str) -> (Uuid, String) {
        let agent = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO agents (id, organization_id, name, board_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(agent)
        .bind(admin.org_id.expect("admin acts in an org"))
        .bind(name)
        .bind(board.parse::<Uuid>().expect("a board id"))
        .execute(&self.db.admin_pool().await)
        .await
        .expect("insert an agent");
        let key = self
            .post(
                Some(&admin.token),
                "/api/v1/api-keys",
                json!({"name": format!("{name} key"), "role": "developer", "agent_id": agent}),
            )
            .await
            .expect(201)
            .body["secret"]
            .as_str()
            .expect("the key's secret")
            .to_owned();
        (agent, key)
    }
}

fn session_from(body: &Value, email: &str, password: &str) -> Session {
    Session {
        user_id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
        email: email.to_owned(),
        password: password.to_owned(),
        token: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        org_id: body["organization_id"].as_str().map(|s| s.parse().unwrap()),
    }
}

/// Sends one request and parses the response.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    method: Method,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    Resp {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    }
}
