//! The browser apps from the frontend build: the console at `/` and the H5 app at
//! `/h5/`. Unknown paths inside an app get its `index.html` (client-side routes);
//! `/api/…` and `/ws/…` never do, so a wrong API path is still a JSON 404.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_domain::config::WebConfig;
use std::path::Path;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Hashed build output never changes under its name; everything else is revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Serves the two apps from `config.dir` (`console/` and `h5/` inside it).
#[derive(Clone, Debug)]
pub struct WebApps {
    console: Option<ServeDir<ServeFile>>,
    h5: Option<ServeDir<ServeFile>>,
    csp: HeaderValue,
}

fn app_dir(root: &Path, name: &str) -> Option<ServeDir<ServeFile>> {
    let dir = root.join(name);
    let index = dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(dir = %dir.display(), "frontend build not found; `npm run build` in frontend/ (scripts/dev does)");
        return None;
    }
    // The build writes .br and .gz beside each asset (frontend/scripts/compress.mjs).
    Some(
        ServeDir::new(&dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(
                ServeFile::new(index)
                    .precompressed_br()
                    .precompressed_gzip(),
            ),
    )
}

/// The Content-Security-Policy of the apps: our own origin, plus the relay's when it is
/// elsewhere.
fn content_security_policy(relay: &str) -> HeaderValue {
    let relay = relay.trim_end_matches('/');
    let connect = if relay.is_empty() {
        "'self' ws: wss:".to_owned()
    } else {
        format!("'self' {relay}")
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src {connect}; worker-src 'self'; \
         manifest-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

impl WebApps {
    /// Finds the builds; a missing one is logged and answered with 404.
    pub fn new(config: &WebConfig) -> Self {
        Self {
            console: app_dir(&config.dir, "console"),
            h5: app_dir(&config.dir, "h5"),
            csp: content_security_policy(&config.relay_browser_url),
        }
    }

    /// Answers a request the API routes did not match.
    pub async fn serve(&self, request: Request) -> Response {
        let path = request.uri().path();
        let is_api = path == "/api" || path.starts_with("/api/") || path.starts_with("/ws/");
        if is_api
            || !matches!(
                *request.method(),
                axum::http::Method::GET | axum::http::Method::HEAD
            )
        {
            return crate::not_found().await.into_response();
        }
        let (service, strip, assets) = if path == "/h5" {
            return (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/h5/")]).into_response();
        } else if path.starts_with("/h5/") {
            (self.h5.clone(), "/h5", "/h5/assets/")
        } else {
            (self.console.clone(), "", "/assets/")
        };
        let Some(service) = service else {
            return crate::not_found().await.into_response();
        };
        let immutable = path.starts_with(assets);
        let request = strip_prefix(request, strip);
        let response = match service.oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        self.with_headers(response, immutable)
    }

    fn with_headers(&self, mut response: Response, immutable: bool) -> Response {
        let cache = if immutable && response.status().is_success() {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        );
        response
    }
}

/// `/h5/assets/x.js` → `/assets/x.js` for the H5 directory.
fn strip_prefix(mut request: Request, prefix: &str) -> Request {
    if prefix.is_empty() {
        return request;
    }
    let uri = request.uri();
    let rest = uri.path().strip_prefix(prefix).unwrap_or("/");
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    if let Ok(pq) = path_and_query.parse() {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
        }
    }
    request
}
