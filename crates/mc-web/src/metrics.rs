//! The process-wide Prometheus recorder and the HTTP request metrics middleware.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds, from sub-millisecond internal hops to slow requests.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The recorder every `metrics::` macro in this process writes to; installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // In tests several services share a process; the first install wins and all
        // of them render the same registry.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "mc_http_requests_total",
        "HTTP requests served, by method, route and status"
    );
    metrics::describe_histogram!(
        "mc_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency, by method and route"
    );
    metrics::describe_gauge!(
        "mc_build_info",
        "Always 1; labels carry service and version"
    );
    metrics::describe_gauge!(
        "mc_ready",
        "1 when the last readiness check passed, 0 otherwise, by check"
    );
}

/// Records `mc_build_info` for this service.
pub fn record_build_info(service: &'static str) {
    prometheus();
    metrics::gauge!("mc_build_info", "service" => service, "version" => env!("CARGO_PKG_VERSION"))
        .set(1.0);
}

/// Middleware: counts and times every request by its route template (not raw path,
/// which would explode label cardinality).
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("mc_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("mc_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
