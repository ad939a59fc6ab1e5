//! `/healthz`, `/readyz` and `/metrics`, served by every binary.

use crate::metrics::prometheus;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use mc_domain::health::ReadinessProbe;
use serde_json::json;

/// Routes for liveness, readiness and metrics.
pub fn routes<S: Clone + Send + Sync + 'static>(probe: ReadinessProbe) -> Router<S> {
    // Install the recorder now, so metrics recorded before the first scrape are kept.
    prometheus();
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(move || readyz(probe.clone())))
        .route("/metrics", get(metrics_text))
}

async fn readyz(probe: ReadinessProbe) -> impl IntoResponse {
    let readiness = probe.check().await;
    for (name, check) in &readiness.checks {
        metrics::gauge!("mc_ready", "check" => *name).set(if check.ok { 1.0 } else { 0.0 });
    }
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}
