//! Logging (JSON lines by default) and optional OTLP trace export.

use mc_domain::config::{LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes exported traces when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {err}");
        }
    }
}

/// Installs the global subscriber. Safe to call more than once per process (tests
/// start several services); only the first call takes effect.
pub fn init(service: &'static str, config: &TelemetryConfig) -> TelemetryGuard {
    // Both TLS users (OTLP over https, sqlx, outbound WSS) need a process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|err| {
        eprintln!("RUST_LOG is invalid ({err}); using \"info\"");
        EnvFilter::new("info")
    });
    let json = (config.log_format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
    });
    let pretty = (config.log_format == LogFormat::Pretty).then(tracing_subscriber::fmt::layer);

    let provider = config.otlp_endpoint.as_deref().and_then(|endpoint| {
        match otlp_provider(service, endpoint) {
            Ok(provider) => Some(provider),
            Err(err) => {
                eprintln!("OTLP export disabled: {err}");
                None
            }
        }
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }

    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(pretty)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        crate::metrics::record_build_info(service);
    }
    TelemetryGuard { provider }
}

fn otlp_provider(service: &'static str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_headers(Default::default())
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}
