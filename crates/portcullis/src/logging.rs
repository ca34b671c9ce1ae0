//! Logs go to stderr (stdout carries machine-readable output), filtered by `RUST_LOG`
//! (default `info`). With an OTLP endpoint (`monitor.otlp_endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are also
//! exported as OpenTelemetry traces over OTLP/HTTP in protobuf (MON-5): each request's span (see
//! `serve_monitor::trace_requests`) and the stage spans under it.
//!
//! The exporter runs on the SDK's own batch thread with the blocking HTTP client: the async
//! client panics there and drops spans. Set it up before the tokio runtime starts.

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"))
}

fn fmt_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
}

/// Sets up logging once, without traces.
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(fmt_layer())
        .try_init();
}

/// Flushes and stops the trace exporter when dropped (at the end of `serve`), so the spans of
/// the last requests are sent.
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: the last OpenTelemetry spans could not be sent: {e}");
        }
    }
}

/// Whether the standard OpenTelemetry variables name an endpoint.
fn endpoint_from_env() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// Sets up logging once and, when `traces_url` is given or the standard variables name an
/// endpoint, the OTLP/HTTP trace exporter (MON-5). Keep the returned guard for as long as
/// spans should be exported.
pub fn init_with_traces(traces_url: Option<&str>) -> anyhow::Result<Telemetry> {
    if traces_url.is_none() && !endpoint_from_env() {
        init();
        return Ok(Telemetry { provider: None });
    }
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(std::time::Duration::from_secs(10));
    if let Some(url) = traces_url {
        // The config's URL wins over the environment (already `/v1/traces`).
        builder = builder.with_endpoint(url);
    }
    // The blocking client is built on a thread of its own: building (or dropping) one inside a
    // tokio runtime panics.
    let client = std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the OpenTelemetry HTTP client panicked"))?
    .map_err(|e| anyhow::anyhow!("cannot build the OpenTelemetry HTTP client: {e}"))?;
    let exporter = builder.with_http_client(client).build().map_err(|e| {
        anyhow::anyhow!(
            "cannot set up the OpenTelemetry trace exporter ({e}); check monitor.otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT"
        )
    })?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("portcullis")
                .build(),
        )
        .build();
    // W3C trace context: a caller's `traceparent` continues its trace (AU-1 passes it upstream).
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("portcullis"));
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(fmt_layer())
        .with(otel)
        .try_init();
    tracing::info!(
        "exporting OpenTelemetry traces over OTLP/HTTP to {}",
        traces_url.unwrap_or("the endpoint in OTEL_EXPORTER_OTLP_*")
    );
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// A request's headers as an OpenTelemetry carrier, to read `traceparent` from.
pub struct HeaderCarrier<'a>(pub &'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
