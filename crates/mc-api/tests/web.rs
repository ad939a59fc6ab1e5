//! The browser apps: console at `/`, H5 app at `/h5/`, client routes fall back to each
//! app's index.html, hashed assets are cached for a year, API paths stay JSON 404s, and
//! `/api/v1/client-config` tells browsers where the relay is.

mod common;

use common::start_with;
use std::path::Path;

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// Stands in for the gzip file (the server passes it through as it is).
const GZIPPED: &[u8] = b"\x1f\x8b precompressed bytes";

/// No redirects followed, so the test sees them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn build_dir() -> mc_testkit::ScratchDir {
    let scratch = mc_testkit::ScratchDir::new("mc-web");
    let dir = scratch.path();
    write(dir, "console/index.html", "<html>console</html>");
    write(
        dir,
        "console/assets/app-abc123.js",
        "console.log('console')",
    );
    write(dir, "h5/index.html", "<html>h5</html>");
    write(dir, "h5/assets/chat-def456.js", "console.log('h5')");
    // What frontend/scripts/compress.mjs writes beside an asset.
    std::fs::write(dir.join("h5/assets/chat-def456.js.gz"), GZIPPED).unwrap();
    write(
        dir,
        "h5/manifest.webmanifest",
        "{\"name\":\"Mission Control\"}",
    );
    write(dir, "h5/sw.js", "self.addEventListener('fetch', () => {})");
    scratch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_both_apps_with_fallbacks_and_cache_headers() {
    let dir = build_dir();
    let web_dir = dir.path().to_path_buf();
    let api = start_with(move |c| {
        c.web.dir = web_dir;
        c.web.relay_browser_url = "wss://relay.example.com".into();
    })
    .await;
    let http = client();
    let get = |path: &str| http.get(api.url(path)).send();

    // Pages and client-side routes: index.html, revalidated every time.
    for (path, body) in [
        ("/", "<html>console</html>"),
        ("/boards/123", "<html>console</html>"),
        ("/h5/", "<html>h5</html>"),
        ("/h5/chat/abc", "<html>h5</html>"),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("connect-src 'self' wss://relay.example.com"),
            "{csp}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(r.text().await.unwrap(), body, "{path}");
    }

    // Hashed assets: immutable for a year, right type.
    let r = get("/assets/app-abc123.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let r = get("/h5/assets/chat-def456.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.text().await.unwrap(), "console.log('h5')");

    // Precompressed when the browser accepts it, still immutable.
    let r = http
        .get(api.url("/h5/assets/chat-def456.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), GZIPPED);

    // The service worker and manifest must be revalidated, or an old shell sticks.
    for path in ["/h5/sw.js", "/h5/manifest.webmanifest"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
    }

    // `/h5` without the slash goes to the app.
    let r = get("/h5").await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/h5/");

    // API paths never fall back to a page.
    for path in ["/api/v1/no-such-thing", "/api", "/ws/h5/chat"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    // Writes to app paths are not pages either.
    let r = http.post(api.url("/boards")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let cfg: serde_json::Value = get("/api/v1/client-config")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"relay_url": "wss://relay.example.com"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_build_pages_are_404_and_the_api_still_works() {
    let api = start_with(|_| {}).await;
    let http = client();
    let r = http.get(api.url("/boards")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let cfg: serde_json::Value = http
        .get(api.url("/api/v1/client-config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["relay_url"], "");
}
