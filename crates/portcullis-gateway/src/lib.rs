//! The Portcullis MCP gateway: a Streamable HTTP endpoint per connector (`/mcp/{connector}`) and
//! a federated one (`/mcp`), sessions mapped between client and connectors, messages relayed
//! both ways, one event per message, health, readiness and metrics.
//!
//! The data path of DESIGN.md grows here: today it identifies the call (correlation id),
//! resolves its connector, validates the protocol, forwards and records; authorization,
//! inspection and confirmation stages plug in at [`handler`]'s request path.

mod access;
pub mod authorize;
pub mod confirm;
mod federation;
mod handler;
pub mod inspection;
pub mod jsonrpc;
pub mod metrics;
pub mod session;
pub mod transport;
pub mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use portcullis_config::{ConnectorKind, ValidConfig};
use portcullis_core::{Clock, EventSink};
use tokio::sync::mpsc;

use crate::handler::{DEFAULT_VERSION, Reply, RequestInfo, SUPPORTED_VERSIONS};
use crate::jsonrpc::{Id, Kind, Message, code, error_response, result_response};
use crate::session::{LiveSession, MemorySessionStore, Scope, SessionRecord, SessionStore};
use crate::upstream::http::{HttpClient, HttpUpstream, SharedHttpUpstream};
use crate::upstream::lines::{Launch, LineUpstream};
use crate::upstream::{RequestCtx, Upstream};

pub use crate::access::{CallGuard, GatewayAuth, connector_scopes};
pub use crate::authorize::GatewayPolicy;
pub use crate::metrics::Metrics;
pub use crate::transport::{ClientOrigin, ConnectionInfo, TransportPolicy};

/// The receiving end of a session's inbox of server messages.
type InboxReceiver = mpsc::Receiver<(usize, Bytes)>;

/// The gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ValidConfig,
    pub(crate) connector_names: Arc<Vec<String>>,
    pub(crate) http: HttpClient,
    pub(crate) sessions: dashmap::DashMap<String, Arc<LiveSession>>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    pub(crate) started: Instant,
    pub(crate) extra_metrics: std::sync::OnceLock<ExtraMetrics>,
    /// How callers are authenticated; unset means no authentication (`--no-auth`).
    pub(crate) auth: std::sync::OnceLock<GatewayAuth>,
    /// The scope each known tool needs (AUTH-5), by connector index and tool name, learned from
    /// every `tools/list` that passes.
    pub(crate) tool_scopes: dashmap::DashMap<(usize, String), String>,
    /// The gateway's own credential per connector index (AUTH-8), shared by all sessions so
    /// that fetched tokens are cached once.
    pub(crate) credentials: Vec<Option<Arc<upstream::credentials::CredentialProvider>>>,
    /// How calls are authorized (AZ-1); unset: no policy stage (`--no-auth`, nobody to decide
    /// about).
    pub(crate) policy: std::sync::OnceLock<GatewayPolicy>,
    /// Blocks and rate limits (MON-2), when the monitor runs.
    pub(crate) guard: std::sync::OnceLock<Arc<dyn CallGuard>>,
    /// Each connector's policy facts, by index.
    pub(crate) connector_facts: Vec<portcullis_policy::ConnectorFacts>,
    /// Listed tools' Cedar entities, by connector index and tool name.
    pub(crate) prepared_tools:
        dashmap::DashMap<(usize, String), Arc<portcullis_policy::PreparedResource>>,
    /// Retries, circuit breakers and the connect-time address checks (EG-1, EG-2), per
    /// connector index; shared by all sessions.
    pub(crate) resilience: upstream::resilience::Resilience,
    /// The inspection stages (issue 6); unset: none (tests of the bare relay).
    pub(crate) inspection: std::sync::OnceLock<Arc<inspection::GatewayInspection>>,
}

/// Renders more metrics (Prometheus text) for `/metrics`, from components beside the gateway.
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

impl Gateway {
    /// A gateway for `config`, recording events to `sink`, with sessions in memory.
    pub fn new(config: ValidConfig, sink: Arc<dyn EventSink>, clock: Arc<dyn Clock>) -> Self {
        Self::with_session_store(config, sink, clock, Arc::new(MemorySessionStore::default()))
    }

    /// A gateway whose session records live in `store` (shared between replicas).
    pub fn with_session_store(
        config: ValidConfig,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
        store: Arc<dyn SessionStore>,
    ) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let connector_names = Arc::new(config.connectors.iter().map(|c| c.name.clone()).collect());
        let connector_facts = config
            .connectors
            .iter()
            .map(authorize::connector_facts)
            .collect();
        let credentials = upstream::credentials::for_connectors(&config.connectors, clock.clone());
        let resilience = upstream::resilience::Resilience::new(&config.connectors, clock.clone());
        let http = upstream::http::client_with(resilience.resolver());
        let inner = Arc::new(Inner {
            config,
            connector_names,
            http,
            sessions: dashmap::DashMap::new(),
            store,
            sink,
            clock,
            metrics: Metrics::default(),
            started: Instant::now(),
            extra_metrics: std::sync::OnceLock::new(),
            auth: std::sync::OnceLock::new(),
            tool_scopes: dashmap::DashMap::new(),
            credentials,
            policy: std::sync::OnceLock::new(),
            guard: std::sync::OnceLock::new(),
            connector_facts,
            prepared_tools: dashmap::DashMap::new(),
            resilience,
            inspection: std::sync::OnceLock::new(),
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.reap_idle().await;
            }
        });
        Self { inner }
    }

    /// Adds metrics of another component to `/metrics` (call before [`Self::router`]).
    pub fn with_extra_metrics(self, extra: ExtraMetrics) -> Self {
        let _ = self.inner.extra_metrics.set(extra);
        self
    }

    /// Requires a valid bearer token on every MCP request (AUTH-4), checks scopes per tool
    /// (AUTH-5) and serves protected resource metadata (AUTH-3). Call before [`Self::router`].
    /// A gateway without it does not authenticate: that is the `--no-auth` development mode.
    pub fn with_auth(self, auth: GatewayAuth) -> Self {
        let _ = self.inner.auth.set(auth);
        self
    }

    /// Decides every call by policy before it is forwarded and filters listings (AZ-1, AZ-3),
    /// asking a person to confirm where policy says so (HC-1, HC-2). Applies to authenticated
    /// callers: call after [`Self::with_auth`] and before [`Self::router`].
    pub fn with_policy(self, policy: GatewayPolicy) -> Self {
        let _ = self.inner.policy.set(policy);
        self
    }

    /// Refuses calls of blocked callers and answers 429 when a rate limit is spent (MON-2).
    /// Call before [`Self::router`].
    pub fn with_guard(self, guard: Arc<dyn CallGuard>) -> Self {
        let _ = self.inner.guard.set(guard);
        self
    }

    /// Inspects every call's arguments and every result (issue 6: IV-1, IV-4, DLP-4, DLP-5,
    /// PI-1, PI-2, PI-3, EG-1, EG-3). Call before [`Self::router`].
    pub fn with_inspection(self, inspection: Arc<inspection::GatewayInspection>) -> Self {
        let _ = self.inner.inspection.set(inspection);
        self
    }

    /// Resolves connector host names with `resolver` instead of the system's (tests; custom
    /// DNS). Its answers are checked like any (EG-1). Call before [`Self::router`]; a second
    /// call changes nothing.
    pub fn with_resolver(self, resolver: Arc<dyn upstream::resilience::Resolve>) -> Self {
        if !self.inner.resilience.resolver().set(resolver) {
            tracing::warn!("a resolver was set already; the first one stays");
        }
        self
    }

    /// The HTTP routes: MCP endpoints, protected resource metadata, `/healthz`, `/readyz`,
    /// `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(handler::resource_metadata_federated),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(handler::resource_metadata_federated),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp/{connector}",
                get(handler::resource_metadata_connector),
            )
            .route(
                "/mcp",
                post(handler::post_federated)
                    .get(handler::get_stream)
                    .delete(handler::delete_session),
            )
            .route(
                "/mcp/{connector}",
                post(handler::post_connector)
                    .get(handler::get_stream)
                    .delete(handler::delete_session),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .with_state(self.inner.clone())
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Open sessions on this replica.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Closes every session (stopping child processes, ending upstream sessions) and flushes
    /// the event sink. Called after the server stopped accepting and drained (OPS-3).
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self
            .inner
            .sessions
            .iter()
            .map(|s| s.key().clone())
            .collect();
        for id in ids {
            if let Some((_, s)) = self.inner.sessions.remove(&id) {
                s.close().await;
            }
        }
        self.inner.metrics.sessions.set(0);
        self.inner.sink.flush().await;
    }
}

async fn metrics_text(State(inner): State<Arc<Inner>>) -> Response {
    // Prometheus text format: the gateway's families, then those of other components (the audit
    // log's written/dropped/sink-failure counters).
    let mut text = inner.metrics.render();
    if let Some(i) = text.find("# EOF") {
        text.truncate(i);
    }
    text.push_str(&inner.resilience.render_metrics());
    if let Some(extra) = inner.extra_metrics.get() {
        text.push_str(&extra());
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Readiness (OPS-3): every connector reachable (HTTP: answers at all; stdio: the program exists;
/// demo: always).
async fn readyz(State(inner): State<Arc<Inner>>) -> Response {
    let checks = inner.config.connectors.iter().map(|c| {
        let inner = inner.clone();
        async move {
            let ok: Result<(), String> = match &c.kind {
                ConnectorKind::Demo => Ok(()),
                ConnectorKind::Stdio { command, .. } => which(command)
                    .map(|_| ())
                    .ok_or_else(|| format!("program {command:?} not found")),
                ConnectorKind::Http { url } => {
                    let req = http::Request::get(url.clone())
                        .body(http_body_util::Full::new(Bytes::new()))
                        .expect("valid request");
                    match tokio::time::timeout(Duration::from_secs(2), inner.http.request(req))
                        .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("unreachable: {e}")),
                        Err(_) => Err("no answer within 2 s".into()),
                    }
                }
            };
            (c.name.clone(), ok)
        }
    });
    let results = futures::future::join_all(checks).await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let body = serde_json::json!({
        "ready": ready,
        "connectors": results.iter().map(|(n, r)| (n.clone(), match r { Ok(()) => serde_json::json!({"ok": true}), Err(e) => serde_json::json!({"ok": false, "error": e}) })).collect::<serde_json::Map<_, _>>(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

fn which(command: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(command);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(command))
            .find(|c| c.is_file())
    })
}

/// A random 128-bit session id: unguessable, since it is the only thing naming a session.
fn new_session_id() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

impl Inner {
    fn make_upstream(&self, index: usize, inbox: upstream::Inbox) -> Arc<dyn Upstream> {
        let c = &self.config.connectors[index];
        match &c.kind {
            ConnectorKind::Http { url } => Arc::new(SharedHttpUpstream(Arc::new(
                HttpUpstream::new(&c.name, index, url.clone(), self.http.clone(), inbox)
                    .with_credentials(self.credentials[index].clone()),
            ))),
            ConnectorKind::Stdio {
                command,
                args,
                env,
                cwd,
            } => Arc::new(LineUpstream::new(
                &c.name,
                index,
                Launch::Process {
                    command: command.clone(),
                    args: args.clone(),
                    env: env.clone(),
                    cwd: cwd.clone(),
                },
                inbox,
            )),
            ConnectorKind::Demo => Arc::new(LineUpstream::new(&c.name, index, Launch::Demo, inbox)),
        }
    }

    pub(crate) fn upstreams_for_pub(
        &self,
        scope: &Scope,
    ) -> (Vec<Option<Arc<dyn Upstream>>>, InboxReceiver) {
        self.upstreams_for(scope)
    }

    /// Upstreams for a scope, each wired to the session's inbox.
    fn upstreams_for(&self, scope: &Scope) -> (Vec<Option<Arc<dyn Upstream>>>, InboxReceiver) {
        let (tx, rx) = mpsc::channel(1024);
        let ups = (0..self.connector_names.len())
            .map(|i| match scope {
                Scope::Federated => Some(self.make_upstream(i, tx.clone())),
                Scope::Connector(name) if *name == self.connector_names[i] => {
                    Some(self.make_upstream(i, tx.clone()))
                }
                Scope::Connector(_) => None,
            })
            .collect();
        (ups, rx)
    }

    fn install(self: &Arc<Self>, session: Arc<LiveSession>, mut inbox: InboxReceiver) {
        let id = session.id();
        let weak = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some((i, msg)) = inbox.recv().await {
                let Some(s) = weak.upgrade() else { return };
                let m = s.to_client(i, msg);
                s.deliver(m);
            }
        });
        session.last_used.store(
            self.started.elapsed().as_secs(),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.sessions.insert(id, session);
        self.metrics.sessions.set(self.sessions.len() as i64);
    }

    pub(crate) async fn remove_session(&self, id: &str) {
        if let Some((_, s)) = self.sessions.remove(id) {
            s.close().await;
        }
        self.store.remove(id).await;
        self.metrics.sessions.set(self.sessions.len() as i64);
    }

    async fn reap_idle(&self) {
        let now = self.started.elapsed().as_secs();
        let idle = self.config.session_idle_timeout.as_secs();
        let stale: Vec<String> = self
            .sessions
            .iter()
            .filter(|s| {
                now.saturating_sub(s.last_used.load(std::sync::atomic::Ordering::Relaxed)) > idle
            })
            .map(|s| s.key().clone())
            .collect();
        for id in stale {
            tracing::info!("closing idle session");
            self.remove_session(&id).await;
        }
    }

    /// Sends the client's `initialize` to every upstream of the scope and waits for their answers.
    async fn initialize_upstreams(
        &self,
        ups: &[Option<Arc<dyn Upstream>>],
        raw: &Bytes,
        id: &str,
        info_ctx: &RequestCtx,
    ) -> Vec<Option<Result<Bytes, String>>> {
        let futs = ups.iter().enumerate().map(|(i, u)| {
            let raw = raw.clone();
            async move {
                let u = u.as_ref()?;
                let ctx = RequestCtx {
                    timeout: self.timeout_of_index(i),
                    ..info_ctx.clone()
                };
                let r = async {
                    let mut rx = u.request(id, raw, &ctx).await.map_err(|e| e.to_string())?;
                    loop {
                        match tokio::time::timeout(ctx.timeout, rx.recv()).await {
                            Err(_) => {
                                return Err(format!(
                                    "connector '{}' did not answer initialize in time",
                                    self.connector_names[i]
                                ));
                            }
                            Ok(None) => {
                                return Err(format!(
                                    "connector '{}' closed before answering initialize",
                                    self.connector_names[i]
                                ));
                            }
                            Ok(Some(Err(e))) => return Err(e.to_string()),
                            Ok(Some(Ok(m))) => {
                                if m.head.kind == Kind::Response {
                                    return Ok(m.bytes);
                                }
                            }
                        }
                    }
                }
                .await;
                Some(r)
            }
        });
        futures::future::join_all(futs).await
    }

    fn timeout_of_index(&self, i: usize) -> Duration {
        self.config
            .connectors
            .get(i)
            .map(|c| c.timeout)
            .unwrap_or(self.config.request_timeout)
    }

    pub(crate) async fn initialize(
        self: &Arc<Self>,
        scope: &Scope,
        index: Option<usize>,
        info: &RequestInfo,
        msg: Message,
    ) -> (Reply, Option<String>) {
        let id = msg.id.clone().unwrap_or_else(Id::null);
        let mut ev = portcullis_core::Event::new(
            self.clock.now(),
            info.correlation.clone(),
            portcullis_core::EventKind::McpRequest,
        );
        ev.method = Some("initialize".into());
        ev.source = info.source.clone();
        ev.request_bytes = msg.raw.len() as u64;
        ev.connector = index.map(|i| self.connector_names[i].clone());
        if let Some(p) = &info.principal {
            ev.principal = Some(p.subject.clone());
            ev.client = Some(p.client_id.clone());
        }
        let fail = |mut ev: portcullis_core::Event, c: i64, m: &str| {
            ev.outcome = portcullis_core::Outcome::Error {
                code: c,
                origin: "gateway".into(),
            };
            let body = error_response(&id, c, m);
            self.finish_pub(ev, info, body.len());
            (Reply::Json(StatusCode::OK, body), None)
        };
        if self.sessions.len() >= self.config.max_sessions {
            return fail(
                ev,
                code::LIMIT,
                &format!(
                    "the gateway holds its maximum of {} sessions; try again later",
                    self.config.max_sessions
                ),
            );
        }
        let requested = msg
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
            .and_then(|p| {
                p.get("protocolVersion")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            });
        let (ups, inbox) = self.upstreams_for(scope);
        let ctx = RequestCtx {
            traceparent: Some(info.traceparent.clone()),
            request_id: Some(info.correlation.to_string()),
            protocol_headers: Vec::new(),
            timeout: self.config.request_timeout,
            initialize: true,
            subject_token: info.bearer.clone(),
            subject_expires_at: info.principal.as_ref().map(|p| p.expires_at),
            parse_result: false,
        };
        let answers = self
            .initialize_upstreams(&ups, &msg.raw, id.json(), &ctx)
            .await;
        let mut ups = ups;
        let mut results: Vec<(usize, serde_json::Value)> = Vec::new();
        let mut errors = Vec::new();
        let mut single_body = None;
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                None => {}
                Some(Ok(body)) => {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if let Some(result) = v.get("result") {
                        if let (Some(u), Some(pv)) = (
                            &ups[i],
                            result.get("protocolVersion").and_then(|p| p.as_str()),
                        ) {
                            u.set_protocol_version(pv);
                        }
                        results.push((i, result.clone()));
                        single_body = Some(body);
                    } else {
                        errors.push(format!(
                            "{}: {}",
                            self.connector_names[i],
                            v.get("error").map(|e| e.to_string()).unwrap_or_default()
                        ));
                        if matches!(scope, Scope::Connector(_)) {
                            // The connector's own refusal goes back to the client as it is.
                            if let Some(u) = ups[i].take() {
                                u.close().await;
                            }
                            ev.outcome = portcullis_core::Outcome::Error {
                                code: v
                                    .pointer("/error/code")
                                    .and_then(|c| c.as_i64())
                                    .unwrap_or(0),
                                origin: "upstream".into(),
                            };
                            self.finish_pub(ev, info, body.len());
                            return (Reply::Json(StatusCode::OK, body), None);
                        }
                        if let Some(u) = ups[i].take() {
                            u.close().await;
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(correlation_id = %info.correlation, "initialize failed: {e}");
                    errors.push(e);
                    if let Some(u) = ups[i].take() {
                        u.close().await;
                    }
                }
            }
        }
        if results.is_empty() {
            return fail(
                ev,
                code::UPSTREAM_UNAVAILABLE,
                &format!("no connector could be initialized: {}", errors.join("; ")),
            );
        }
        let (body, version) = match scope {
            Scope::Connector(_) => {
                let body = single_body.expect("one result");
                let version = results[0]
                    .1
                    .get("protocolVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or(DEFAULT_VERSION)
                    .to_string();
                (body, version)
            }
            Scope::Federated => {
                let version = requested
                    .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
                    .unwrap_or_else(|| DEFAULT_VERSION.to_string());
                let merged = merge_initialize(&self.connector_names, &results, &version);
                (result_response(&id, &merged.to_string()), version)
            }
        };
        let sid = new_session_id();
        let record = SessionRecord {
            id: sid.clone(),
            scope: scope.clone(),
            protocol_version: version,
            initialize: String::from_utf8_lossy(&msg.raw).into_owned(),
            initialized: false,
            owner: info.principal.as_deref().map(session::owner_of),
        };
        self.store.put(record.clone()).await;
        let session = Arc::new(LiveSession::new(record, self.connector_names.clone(), ups));
        self.install(session, inbox);
        ev.session = Some(sid.clone());
        self.finish_pub(ev, info, body.len());
        (Reply::Json(StatusCode::OK, body), Some(sid))
    }

    pub(crate) fn finish_pub(&self, ev: portcullis_core::Event, info: &RequestInfo, n: usize) {
        self.finish_event(ev, info, n)
    }

    /// Rebuilds a session this replica does not hold from its record (another replica made it,
    /// or this one restarted): new upstream sessions, initialized with the client's own
    /// `initialize`.
    pub(crate) async fn rebuild_session(
        self: &Arc<Self>,
        id: &str,
        info: &RequestInfo,
    ) -> Option<Arc<LiveSession>> {
        let record = self.store.get(id).await?;
        let (ups, inbox) = self.upstreams_for(&record.scope);
        // The client's own initialize, under a gateway id (the upstream answers to that id).
        let mut init: serde_json::Value = serde_json::from_str(&record.initialize).ok()?;
        init["id"] = serde_json::Value::String("portcullis:init".into());
        let raw = Bytes::from(init.to_string());
        let ctx = RequestCtx {
            timeout: self.config.request_timeout,
            initialize: true,
            subject_token: info.bearer.clone(),
            subject_expires_at: info.principal.as_ref().map(|p| p.expires_at),
            ..Default::default()
        };
        let answers = self
            .initialize_upstreams(&ups, &raw, "\"portcullis:init\"", &ctx)
            .await;
        let mut ups = ups;
        for (i, a) in answers.into_iter().enumerate() {
            let ok = matches!(&a, Some(Ok(b)) if serde_json::from_slice::<serde_json::Value>(b).ok().and_then(|v| v.get("result").cloned()).is_some());
            if !ok {
                ups[i] = None;
            }
        }
        // The reinit used a gateway id; the client's handshake is complete, so say so upstream.
        let replayed = record.initialized;
        let session = Arc::new(LiveSession::new(record, self.connector_names.clone(), ups));
        if replayed {
            let note =
                Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
            for u in session.upstreams.iter().flatten() {
                let _ = u.send(note.clone(), &ctx).await;
                u.initialized();
            }
        }
        tracing::info!("rebuilt a session from the session store");
        self.install(session.clone(), inbox);
        Some(session)
    }

    /// Merges one list method across the session's connectors, names namespaced. Every page of
    /// each connector is fetched (up to 100 pages), so the merged list has no cursor.
    pub(crate) async fn federated_list(
        &self,
        session: &Arc<LiveSession>,
        method: &str,
        id: &Id,
        info: &RequestInfo,
    ) -> Result<Bytes, String> {
        let (key, field, is_uri) = federation::list_shape(method).ok_or("not a list method")?;
        let futs = session.upstreams.iter().enumerate().map(|(i, u)| async move {
            let u = u.as_ref()?;
            let ctx = RequestCtx { timeout: self.timeout_of_index(i), ..self.ctx_pub(info) };
            let mut items = Vec::new();
            let mut cursor: Option<serde_json::Value> = None;
            for page in 0..100 {
                let params = match &cursor {
                    Some(c) => serde_json::json!({ "cursor": c }),
                    None => serde_json::json!({}),
                };
                let rid = format!("\"portcullis:list-{page}\"");
                let req = serde_json::json!({"jsonrpc": "2.0", "id": format!("portcullis:list-{page}"), "method": method, "params": params});
                let answer = async {
                    let mut rx = u.request(&rid, Bytes::from(req.to_string()), &ctx).await.ok()?;
                    loop {
                        let m = tokio::time::timeout(ctx.timeout, rx.recv()).await.ok()??.ok()?;
                        if m.head.kind == Kind::Response {
                            return serde_json::from_slice::<serde_json::Value>(&m.bytes).ok();
                        }
                        session.deliver(session.to_client(i, m.bytes));
                    }
                }
                .await;
                let Some(mut v) = answer else {
                    tracing::warn!(connector = %self.connector_names[i], "{method} failed; its items are left out");
                    return None;
                };
                let Some(result) = v.get_mut("result") else {
                    // A connector without this capability answers method-not-found: no items.
                    return Some(items);
                };
                if let Some(arr) = result.get_mut(key).and_then(|a| a.as_array_mut()) {
                    // AZ-3: only what the caller may use is listed.
                    if method == "tools/list" {
                        handler::learn_and_filter_tools(self, i, Some(info), arr);
                    } else if let Some(p) = info.principal.as_deref()
                        && !p.has_scope(&format!("{}:read", self.connector_names[i]))
                    {
                        arr.clear();
                    } else {
                        handler::filter_listed(self, i, method, info, arr);
                    }
                    federation::namespace_items(&self.connector_names[i], arr, field, is_uri);
                    items.append(arr);
                }
                cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
                if cursor.is_none() {
                    break;
                }
            }
            Some(items)
        });
        let lists: Vec<Option<Vec<serde_json::Value>>> = futures::future::join_all(futs).await;
        if lists.iter().all(|l| l.is_none()) {
            return Err(format!("no connector answered {method}"));
        }
        let all: Vec<serde_json::Value> = lists.into_iter().flatten().flatten().collect();
        let result = serde_json::json!({ key: all });
        Ok(result_response(id, &result.to_string()))
    }

    /// Sends a request to every connector of the session (gateway ids), ignoring answers.
    pub(crate) async fn broadcast_request(
        &self,
        session: &Arc<LiveSession>,
        msg: &Message,
        info: &RequestInfo,
    ) {
        let mut v: serde_json::Value = serde_json::from_slice(&msg.raw).unwrap_or_default();
        v["id"] = serde_json::Value::String("portcullis:broadcast".into());
        let raw = Bytes::from(v.to_string());
        let futs = session.upstreams.iter().enumerate().map(|(i, u)| {
            let raw = raw.clone();
            async move {
                let u = u.as_ref()?;
                let ctx = RequestCtx {
                    timeout: self.timeout_of_index(i),
                    ..self.ctx_pub(info)
                };
                let mut rx = u
                    .request("\"portcullis:broadcast\"", raw, &ctx)
                    .await
                    .ok()?;
                tokio::time::timeout(ctx.timeout, rx.recv()).await.ok()
            }
        });
        futures::future::join_all(futs).await;
    }
}

/// The federated `initialize` result: the union of the connectors' capabilities, the gateway as
/// server, and each connector's instructions under its name.
fn merge_initialize(
    names: &[String],
    results: &[(usize, serde_json::Value)],
    version: &str,
) -> serde_json::Value {
    let mut caps = serde_json::Map::new();
    let mut instructions = Vec::new();
    for (i, r) in results {
        if let Some(c) = r.get("capabilities").and_then(|c| c.as_object()) {
            for key in ["tools", "resources", "prompts", "logging", "completions"] {
                if let Some(v) = c.get(key) {
                    let entry = caps
                        .entry(key.to_string())
                        .or_insert_with(|| serde_json::json!({}));
                    if let (Some(dst), Some(src)) = (entry.as_object_mut(), v.as_object()) {
                        for (k, flag) in src {
                            if flag.as_bool() == Some(true) {
                                dst.insert(k.clone(), serde_json::Value::Bool(true));
                            }
                        }
                    }
                }
            }
        }
        if let Some(text) = r.get("instructions").and_then(|t| t.as_str()) {
            instructions.push(format!("[{}] {}", names[*i], text));
        }
    }
    let mut out = serde_json::json!({
        "protocolVersion": version,
        "capabilities": caps,
        "serverInfo": { "name": "portcullis", "title": "Portcullis federated MCP gateway", "version": env!("CARGO_PKG_VERSION") },
    });
    let mut text = format!(
        "Tools and prompts of several connectors, named connector{}name; resources named connector{}uri.",
        federation::NAME_SEP,
        federation::URI_SEP
    );
    if !instructions.is_empty() {
        text.push('\n');
        text.push_str(&instructions.join("\n"));
    }
    out["instructions"] = serde_json::Value::String(text);
    out
}
