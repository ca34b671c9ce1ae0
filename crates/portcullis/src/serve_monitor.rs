//! Anomaly detection for `portcullis serve` (issue 8): every event the gateway and the
//! authorization server record also goes to the monitor, whose alerts are stored and sent to
//! the configured sinks; its automatic blocks and rate limits are enforced before calls are
//! forwarded (MON-1, MON-2). Users report output they believe leaked at `POST /leak-reports`
//! (MON-4), with the same bearer tokens as their MCP calls.

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
use portcullis_monitor::sinks::{EmailSettings, SmtpTls};
use portcullis_monitor::{
    AlertSink, AlertStore, Counters, EmailSink, LocalCounters, Monitor, MonitorHandle,
    MonitorService, RateKey, RedisCounters, Settings, WebhookSink,
};

/// The running monitor.
pub struct ServeMonitor {
    /// The detectors, blocklist and rate limits.
    pub monitor: Arc<Monitor>,
    /// Where events are submitted.
    pub handle: MonitorHandle,
    /// The database alerts and incidents are stored in.
    pub store: portcullis_store::Store,
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
    if let Some(e) = &m.email {
        sinks.push(Arc::new(email_sink(e)?));
        tracing::info!(
            "alerts are emailed to {} recipient(s) through {}:{}",
            e.to.len(),
            e.host,
            e.port
        );
    }
    let alert_store: Arc<dyn AlertStore> = Arc::new(store.clone());
    let (handle, _task) = MonitorService::spawn(monitor.clone(), Some(alert_store), sinks, 100_000);
    tracing::info!("anomaly detection on: alerts in the database (`portcullis alerts list`)");
    Ok(ServeMonitor {
        monitor,
        handle,
        store,
    })
}

/// The email sink of `monitor.email` (MON-2); the SMTP password is resolved from its
/// reference now, so a missing one stops start-up instead of the first alert.
fn email_sink(e: &portcullis_config::ValidEmail) -> anyhow::Result<EmailSink> {
    let credentials = match &e.credentials {
        Some((user, src)) => Some((
            user.clone(),
            portcullis_config::resolve_secret("monitor.email.password", src)
                .map_err(|err| anyhow::anyhow!("{err}"))?,
        )),
        None => None,
    };
    let tls = match e.tls.as_str() {
        "implicit" => SmtpTls::Implicit,
        "none" => SmtpTls::None,
        _ => SmtpTls::StartTls,
    };
    EmailSink::new(EmailSettings {
        host: e.host.clone(),
        port: e.port,
        tls,
        credentials,
        from: e.from.clone(),
        to: e.to.clone(),
        timeout: Duration::from_secs(30),
    })
    .map_err(|err| anyhow::anyhow!("monitor.email: {err}"))
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

    fn committed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.audit.committed()
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

/// Largest `POST /leak-reports` body: the largest text accepted, JSON-escaped, and the rest.
const LEAK_BODY_LIMIT: usize = 3 * portcullis_monitor::incident::MAX_TEXT_BYTES;

/// What `POST /leak-reports` needs.
#[derive(Clone)]
pub struct LeakReports {
    store: portcullis_store::Store,
    monitor: Arc<Monitor>,
    detector: Arc<portcullis_detect::Detector>,
    auth: portcullis_gateway::GatewayAuth,
    /// Every MCP endpoint's resource URL: a token bound to any of them is accepted.
    resources: Arc<Vec<String>>,
    connectors: Arc<Vec<String>>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
}

/// The body of `POST /leak-reports`.
struct LeakReportBody {
    text: String,
    connector: Option<String>,
    tool: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

const LEAK_BODY_EXAMPLE: &str = r#"{"text": "...", "connector": "crm", "tool": "search_customers", "from": "2026-12-01T09:00:00Z", "to": "2026-12-01T10:00:00Z"}"#;

impl LeakReportBody {
    /// Parses the body; errors name the field, never echo a value (it may be the leak).
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "the body is not JSON (line {}, column {}); send an object like {LEAK_BODY_EXAMPLE}",
                e.line(),
                e.column()
            )
        })?;
        let serde_json::Value::Object(map) = v else {
            return Err(format!(
                "the body must be a JSON object like {LEAK_BODY_EXAMPLE}"
            ));
        };
        for k in map.keys() {
            if !matches!(k.as_str(), "text" | "connector" | "tool" | "from" | "to") {
                return Err(format!(
                    "unknown field {:?}; the fields are text, connector, tool, from and to",
                    k.chars().take(40).collect::<String>()
                ));
            }
        }
        let field = |k: &str| -> Result<Option<String>, String> {
            match map.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`{k}` must be a string")),
            }
        };
        Ok(Self {
            text: field("text")?.ok_or_else(|| {
                format!(
                    "`text` is missing: give the text you believe leaked, like {LEAK_BODY_EXAMPLE}"
                )
            })?,
            connector: field("connector")?,
            tool: field("tool")?,
            from: field("from")?,
            to: field("to")?,
        })
    }
}

/// The `/leak-reports` route (MON-4): users report output they believe leaked; it becomes an
/// incident linked to the matching events. Authenticated by any valid access token of this
/// gateway; the reporter is the token's subject and the report concerns their own calls.
pub fn leak_report_router(
    m: &ServeMonitor,
    auth: &portcullis_gateway::GatewayAuth,
    connectors: Vec<String>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<axum::Router> {
    let detector = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
        .map_err(|e| anyhow::anyhow!("cannot build the detector for leak reports: {e}"))?;
    let mut resources: Vec<String> = connectors
        .iter()
        .map(|c| format!("{}/mcp/{c}", auth.public_url))
        .collect();
    resources.push(format!("{}/mcp", auth.public_url));
    let state = LeakReports {
        store: m.store.clone(),
        monitor: m.monitor.clone(),
        detector: Arc::new(detector),
        auth: auth.clone(),
        resources: Arc::new(resources),
        connectors: Arc::new(connectors),
        sink,
        clock,
    };
    Ok(axum::Router::new()
        .route("/leak-reports", axum::routing::post(report_leak))
        .layer(axum::extract::DefaultBodyLimit::max(LEAK_BODY_LIMIT))
        .with_state(state))
}

fn leak_error(status: http::StatusCode, code: &str, description: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// Quotes an auth-param value (RFC 9110 quoted-string).
fn quoted(v: &str) -> String {
    let escaped: String = v
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The bearer token of a request, or why there is none.
fn bearer(headers: &http::HeaderMap) -> Result<&str, portcullis_core::TokenRejection> {
    use portcullis_core::TokenRejection;
    let v = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(TokenRejection::Missing)?
        .to_str()
        .map_err(|_| TokenRejection::Malformed("the Authorization header is not ASCII".into()))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer")
                && !token.trim().is_empty()
                && token.len() <= 16 * 1024 =>
        {
            Ok(token.trim())
        }
        _ => Err(TokenRejection::Malformed(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

impl LeakReports {
    /// The token's principal: the first of this gateway's resources it is bound to. Any other
    /// rejection than the audience is final at once.
    async fn verify(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<portcullis_core::Principal, portcullis_core::TokenRejection> {
        use portcullis_core::TokenRejection;
        let token = bearer(headers)?;
        let mut last = TokenRejection::Missing;
        for resource in self.resources.iter() {
            match self.auth.verifier.verify(token, resource).await {
                Ok(p) => {
                    // AZ-4: a token of another environment is refused here too.
                    return match &p.environment {
                        Some(env) if *env != self.auth.environment => {
                            Err(TokenRejection::WrongEnvironment)
                        }
                        _ => Ok(p),
                    };
                }
                Err(e @ TokenRejection::WrongAudience(_)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            TokenRejection::WrongAudience(_) => {
                TokenRejection::WrongAudience("any MCP endpoint of this gateway".into())
            }
            other => other,
        })
    }

    fn event(&self, kind: portcullis_core::EventKind, source: Option<String>) -> Event {
        let mut ev = Event::new(
            self.clock.now(),
            portcullis_core::CorrelationId::generate(&mut rand::rng()),
            kind,
        );
        ev.source = source;
        ev.method = Some("leak_report".into());
        ev
    }
}

fn source_of(req: &axum::http::Extensions) -> Option<String> {
    req.get::<portcullis_gateway::transport::ClientOrigin>()
        .map(|o| o.addr.to_string())
        .or_else(|| {
            req.get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })
}

fn parse_time(v: &Option<String>, field: &str) -> Result<Option<i64>, String> {
    v.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_micros())
                .map_err(|e| {
                    format!(
                        "`{field}` {s:?} is not an RFC 3339 time like 2026-12-01T10:00:00Z ({e})"
                    )
                })
        })
        .transpose()
}

/// `POST /leak-reports`.
async fn report_leak(State(st): State<LeakReports>, req: Request) -> Response {
    use http::StatusCode;
    use portcullis_core::{Decision, EventKind, Outcome};
    let source = source_of(req.extensions());
    let (parts, body) = req.into_parts();
    let principal = match st.verify(&parts.headers).await {
        Ok(p) => p,
        Err(rejection) => {
            // AUTH-4, MON-1: the refusal is an auth event like any other, so repeated bad
            // tokens here count towards brute-force detection too.
            let mut ev = st.event(EventKind::Auth, source);
            ev.decision = Decision::Deny;
            ev.reasons.push(rejection.reason().to_string());
            let status = if matches!(rejection, portcullis_core::TokenRejection::Unavailable(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            ev.outcome = Outcome::HttpError {
                status: status.as_u16(),
            };
            st.sink.record(ev);
            let mut challenge = "Bearer".to_string();
            if !matches!(rejection, portcullis_core::TokenRejection::Missing) {
                challenge.push_str(&format!(
                    " error=\"invalid_token\", error_description={}",
                    quoted(&rejection.to_string())
                ));
            }
            let mut r = leak_error(
                status,
                if status == StatusCode::UNAUTHORIZED {
                    "invalid_token"
                } else {
                    "temporarily_unavailable"
                },
                format!(
                    "{rejection}; send a valid access token of this gateway, the one your MCP client uses"
                ),
            );
            if let Ok(v) = http::HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    };
    let who = principal.subject.clone();
    // MON-2: a blocked principal or client is blocked here too, and reports spend the
    // principal's rate limit, so the endpoint cannot be used to flood the incident table.
    if let Some(b) =
        st.monitor
            .blocklist()
            .blocked(Some(&who), Some(&principal.client_id), source.as_deref())
    {
        return leak_error(
            StatusCode::FORBIDDEN,
            "blocked",
            format!(
                "blocked until {} ({}); ask an administrator",
                b.until.to_rfc3339(),
                b.reason
            ),
        );
    }
    if let Err(r) = st.monitor.check_rate(&RateKey::Principal(who.clone())) {
        let mut resp = leak_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "the {} rate limit is spent; retry after {} s",
                r.scope,
                r.header_value()
            ),
        );
        if let Ok(v) = http::HeaderValue::from_str(&r.header_value()) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return resp;
    }
    let bytes = match axum::body::to_bytes(body, LEAK_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return leak_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!(
                    "the body is over {LEAK_BODY_LIMIT} bytes; report the part of the text that leaked"
                ),
            );
        }
    };
    let body = match LeakReportBody::parse(&bytes) {
        Ok(b) => b,
        Err(m) => return leak_error(StatusCode::BAD_REQUEST, "invalid_request", m),
    };
    if let Some(c) = &body.connector
        && !st.connectors.contains(c)
    {
        return leak_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "`connector` {c:?} is not a connector of this gateway; use one of: {}",
                st.connectors.join(", ")
            ),
        );
    }
    let (from_us, to_us) = match (parse_time(&body.from, "from"), parse_time(&body.to, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            return leak_error(StatusCode::BAD_REQUEST, "invalid_request", e);
        }
    };
    let report = portcullis_monitor::incident::TextLeakReport {
        reported_by: who.clone(),
        principal: who.clone(),
        connector: body.connector,
        tool: body.tool,
        from_us,
        to_us,
        text: body.text,
    };
    let now = st.clock.now();
    let result = portcullis_monitor::incident::report_leaked_text(
        &st.store,
        &st.detector,
        &report,
        portcullis_monitor::incident::new_id(now),
        now.timestamp_micros(),
    )
    .await;
    drop(report);
    match result {
        Ok((incident, leak)) => {
            // AU-1: the report is an interaction like any other: metadata only.
            let mut ev = st.event(EventKind::Http, source);
            ev.principal = Some(who);
            ev.client = Some(principal.client_id.clone());
            ev.connector = incident.connector.clone();
            ev.target = Some(incident.id.clone());
            ev.reasons.push("leak_reported".into());
            st.sink.record(ev);
            tracing::warn!(incident = %incident.id, "a user reported a leak: see `portcullis incidents show {}`", incident.id);
            let body = serde_json::json!({
                "incident": incident.id,
                "correlation_ids": serde_json::from_str::<serde_json::Value>(&incident.correlation_ids).unwrap_or_default(),
                "finding_kinds": serde_json::from_str::<serde_json::Value>(&leak.finding_kinds).unwrap_or_default(),
                "matched_by": leak.matched_by,
                "text_sha256": leak.text_sha256,
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(portcullis_monitor::incident::ReportError::Invalid(m)) => {
            leak_error(StatusCode::BAD_REQUEST, "invalid_request", m)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a leak report");
            leak_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the report could not be stored; try again, or report it to your security team"
                    .into(),
            )
        }
    }
}

/// One span per HTTP request (MON-5), the root the gateway's stage spans nest under; a caller's
/// W3C `traceparent` makes it part of the caller's trace. Only the method, the path (never the
/// query, which can carry authorization codes) and the status are recorded.
pub async fn trace_requests(req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{} {}", req.method(), req.uri().path()),
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&crate::logging::HeaderCarrier(req.headers()))
    });
    // Without a `traceparent` the extracted context is empty and the span starts a new trace.
    let _ = span.set_parent(parent);
    let resp = next.run(req).instrument(span.clone()).await;
    span.record("http.response.status_code", resp.status().as_u16());
    resp
}
