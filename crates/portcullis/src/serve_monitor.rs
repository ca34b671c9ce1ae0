//! Anomaly detection for `portcullis serve` (issue 8): every event the gateway and the
//! authorization server record also goes to the monitor, whose alerts are stored and sent to
//! the configured sinks; its automatic blocks and rate limits are enforced before calls are
//! forwarded (MON-1, MON-2).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_config::ValidConfig;
use portcullis_core::{Clock, Event, EventSink};
use portcullis_gateway::CallGuard;
use portcullis_monitor::{
    AlertSink, AlertStore, Counters, LocalCounters, Monitor, MonitorHandle, MonitorService,
    RateKey, RedisCounters, Settings, WebhookSink,
};

/// The running monitor.
pub struct ServeMonitor {
    /// The detectors, blocklist and rate limits.
    pub monitor: Arc<Monitor>,
    /// Where events are submitted.
    pub handle: MonitorHandle,
}

/// Starts the monitor on `database` (alerts are stored there) with the configured sinks.
pub async fn start(
    config: &ValidConfig,
    database: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ServeMonitor> {
    let m = &config.monitor;
    let counters: Arc<dyn Counters> = match &m.redis_url {
        Some(src) => {
            let url = portcullis_config::resolve_secret("monitor.redis_url", src)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Arc::new(
                RedisCounters::new(url.expose(), "portcullis", Duration::from_secs(2))
                    .map_err(|e| anyhow::anyhow!("monitor.redis_url: {e}"))?,
            )
        }
        None => Arc::new(LocalCounters::new()),
    };
    let monitor = Arc::new(Monitor::new(Settings::from_config(m), clock, counters));
    let url: portcullis_store::DatabaseUrl = database.parse()?;
    let store = portcullis_store::Store::open(&url, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .with_context(|| format!("cannot open {} for alerts", url.redacted()))?;
    let mut sinks: Vec<Arc<dyn AlertSink>> = Vec::new();
    if let Some(src) = &m.webhook_url {
        let url = portcullis_config::resolve_secret("monitor.webhook.url", src)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        sinks.push(Arc::new(
            WebhookSink::new("webhook", url, Duration::from_secs(10))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    if m.email.is_some() {
        tracing::warn!(
            "monitor.email is configured but not yet sent from `serve` (the email sink exists in portcullis-monitor): alerts go to the store and the webhook"
        );
    }
    let store: Arc<dyn AlertStore> = Arc::new(store);
    let (handle, _task) = MonitorService::spawn(monitor.clone(), Some(store), sinks, 100_000);
    tracing::info!("anomaly detection on: alerts in the database (`portcullis alerts list`)");
    Ok(ServeMonitor { monitor, handle })
}

/// Events to the audit log first (they must be committed), and to the monitor (never waits).
pub struct TeeSink {
    /// The audit log.
    pub audit: Arc<dyn EventSink>,
    /// The monitor.
    pub monitor: MonitorHandle,
}

impl EventSink for TeeSink {
    fn record(&self, event: Event) {
        self.monitor.submit(event.clone());
        self.audit.record(event);
    }

    fn flush(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.audit.flush()
    }
}

/// The monitor as the gateway's guard.
pub struct Guard(pub Arc<Monitor>);

impl CallGuard for Guard {
    fn blocked(
        &self,
        principal: Option<&str>,
        client: Option<&str>,
        source: Option<&str>,
    ) -> Option<String> {
        self.0
            .blocklist()
            .blocked(principal, client, source)
            .map(|b| format!("{} until {}", b.reason, b.until.to_rfc3339()))
    }

    fn admit(&self, principal: &str, client: &str, tool: &str) -> Result<(), (String, String)> {
        let mut keys = vec![
            RateKey::Principal(principal.to_string()),
            RateKey::Client(client.to_string()),
        ];
        if !tool.is_empty() {
            keys.push(RateKey::Tool(tool.to_string()));
        }
        for k in &keys {
            self.0
                .check_rate(k)
                .map_err(|r| (r.scope.to_string(), r.header_value()))?;
        }
        Ok(())
    }
}

/// Refuses every request (MCP endpoints, sign-in, tokens) from a blocked source address, except
/// liveness probes (MON-2's automatic response).
pub async fn block_sources(
    State(monitor): State<Arc<Monitor>>,
    req: Request,
    next: Next,
) -> Response {
    let source = req
        .extensions()
        .get::<portcullis_gateway::transport::ClientOrigin>()
        .map(|o| o.addr.to_string())
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        });
    if req.uri().path() != "/healthz"
        && let Some(b) = monitor.blocklist().blocked(None, None, source.as_deref())
    {
        let body = serde_json::json!({
            "error": "blocked",
            "error_description": format!("requests from this address are blocked until {} ({}); ask an administrator", b.until.to_rfc3339(), b.reason),
        });
        return (http::StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(req).await
}
