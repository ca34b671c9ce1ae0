//! The MCP Streamable HTTP endpoints: POST (messages), GET (server stream), DELETE (end session),
//! for `/mcp/{connector}` and the federated `/mcp`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use portcullis_core::{
    CorrelationId, Decision, Event, EventKind, Outcome, Principal, Secret, TokenRejection,
};
use portcullis_policy::{Action, ResourceItem, Verdict};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::Inner;
use crate::access;
use crate::authorize;
use crate::confirm;
use crate::federation;
use crate::inspection;
use crate::jsonrpc::{
    self, Body as RpcBody, Id, Kind, Message, code, error_response, result_response,
};
use crate::session::{LiveSession, Scope};
use crate::upstream::resilience::{self, BreakerOpen, CallOutcome, Permit};
use crate::upstream::{Exchange, RequestCtx, UpMsg, UpstreamError};

/// Protocol revisions the gateway speaks with clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// What we answer when a client asks for a version we do not know.
pub const DEFAULT_VERSION: &str = "2025-11-25";

/// What one HTTP request carries besides its body.
pub struct RequestInfo {
    /// The client's `MCP-Protocol-Version` header.
    pub protocol_version: Option<String>,
    pub correlation: CorrelationId,
    pub traceparent: String,
    pub session_id: Option<String>,
    pub accept_sse: bool,
    pub accept_json: bool,
    pub protocol_headers: Vec<(http::HeaderName, HeaderValue)>,
    pub source: Option<String>,
    pub started: Instant,
    /// The caller, once its bearer token is verified (AUTH-4).
    pub principal: Option<Arc<Principal>>,
    /// The caller's bearer token: used only for token exchange at a connector's STS (RFC 8693),
    /// never sent to a connector (AUTH-8).
    pub bearer: Option<Secret>,
}

/// The answer to one client message.
pub enum Reply {
    Json(StatusCode, Bytes),
    /// A refusal with a `WWW-Authenticate` challenge (401, 403 or 503) and a JSON-RPC error.
    Challenge(StatusCode, String, Bytes),
    /// 429: a rate limit is spent; `Retry-After` seconds and a JSON-RPC error.
    Limited(String, Bytes),
    Sse(mpsc::Receiver<Bytes>),
    Accepted,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Inner {
    fn request_info(&self, headers: &HeaderMap, source: Option<String>) -> RequestInfo {
        let correlation = header_str(headers, "traceparent")
            .and_then(CorrelationId::from_traceparent)
            .or_else(|| {
                header_str(headers, "x-request-id").and_then(CorrelationId::from_request_id)
            })
            .unwrap_or_else(|| CorrelationId::generate(&mut rand::rng()));
        let traceparent = correlation.to_traceparent(&mut rand::rng());
        let accept = header_str(headers, "accept")
            .unwrap_or("*/*")
            .to_ascii_lowercase();
        let any = accept.contains("*/*");
        let mut protocol_headers = Vec::new();
        for name in ["mcp-method", "mcp-name", "mcp-protocol-version"] {
            if let Some(v) = headers.get(name) {
                protocol_headers.push((http::HeaderName::from_static(name), v.clone()));
            }
        }
        RequestInfo {
            protocol_version: header_str(headers, "mcp-protocol-version").map(str::to_string),
            correlation,
            traceparent,
            session_id: header_str(headers, "mcp-session-id").map(str::to_string),
            accept_sse: any || accept.contains("text/event-stream"),
            accept_json: any || accept.contains("application/json"),
            protocol_headers,
            source,
            started: Instant::now(),
            principal: None,
            bearer: None,
        }
    }

    /// Identifies the caller of a request to `endpoint` (AUTH-4): without authentication
    /// configured, nobody; otherwise the principal of a bearer token bound to exactly this
    /// endpoint, or the challenge to answer with. A refusal is recorded as an auth event.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        endpoint: &Scope,
        info: &mut RequestInfo,
    ) -> Result<(), Reply> {
        let Some(auth) = self.auth.get() else {
            return Ok(());
        };
        let resource = auth.resource_url(endpoint);
        let verified = match access::bearer_of(headers) {
            Ok(None) => Err(TokenRejection::Missing),
            Err(e) => Err(e),
            Ok(Some(token)) => match auth.verifier.verify(token.expose(), &resource).await {
                Ok(p) => match &p.environment {
                    Some(env) if *env != auth.environment => Err(TokenRejection::WrongEnvironment),
                    _ => {
                        info.bearer = Some(token);
                        Ok(p)
                    }
                },
                Err(e) => Err(e),
            },
        };
        match verified {
            Ok(p) => {
                info.principal = Some(Arc::new(p));
                Ok(())
            }
            Err(rejection) => {
                self.metrics.rejected.inc();
                let challenge = access::Challenge::unauthorized(
                    auth,
                    endpoint,
                    &rejection,
                    &access::scope_hint(self, endpoint),
                );
                let connector = match endpoint {
                    Scope::Connector(c) => Some(c.as_str()),
                    Scope::Federated => None,
                };
                let mut ev = self.event(info, EventKind::Auth, connector, None);
                ev.decision = Decision::Deny;
                ev.reasons.push(challenge.reason.to_string());
                ev.outcome = Outcome::HttpError {
                    status: challenge.status.as_u16(),
                };
                self.finish_event(ev, info, 0);
                Err(challenge_reply(challenge, &Id::null()))
            }
        }
    }

    pub(crate) fn ctx_pub(&self, info: &RequestInfo) -> RequestCtx {
        self.ctx(info, self.config.request_timeout)
    }

    fn ctx(&self, info: &RequestInfo, timeout: Duration) -> RequestCtx {
        RequestCtx {
            traceparent: Some(info.traceparent.clone()),
            request_id: Some(info.correlation.to_string()),
            protocol_headers: info.protocol_headers.clone(),
            timeout,
            initialize: false,
            // AUTH-8: only for a token exchange at the connector's STS, never to the connector.
            subject_token: info.bearer.clone(),
            subject_expires_at: info.principal.as_ref().map(|p| p.expires_at),
            parse_result: false,
        }
    }

    fn event(
        &self,
        info: &RequestInfo,
        kind: EventKind,
        connector: Option<&str>,
        method: Option<&str>,
    ) -> Event {
        let mut e = Event::new(self.clock.now(), info.correlation.clone(), kind);
        e.source = info.source.clone();
        e.session = info.session_id.clone();
        e.connector = connector.map(str::to_string);
        e.method = method.map(str::to_string);
        if let Some(p) = &info.principal {
            e.principal = Some(p.subject.clone());
            e.client = Some(p.client_id.clone());
        }
        e
    }

    /// Records the event of one message and its metrics.
    pub(crate) fn finish_event(&self, mut e: Event, info: &RequestInfo, response_bytes: usize) {
        e.latency_us = info.started.elapsed().as_micros() as u64;
        e.response_bytes = response_bytes as u64;
        let outcome = match &e.outcome {
            Outcome::Ok { tool_error: false } => "ok",
            Outcome::Ok { tool_error: true } => "tool_error",
            _ => "error",
        };
        if matches!(e.kind, EventKind::McpRequest) {
            self.metrics.observe(
                e.connector.as_deref().unwrap_or("federated"),
                e.method.as_deref().unwrap_or(""),
                e.target.as_deref(),
                outcome,
                e.latency_us as f64 / 1e6,
            );
        }
        self.sink.record(e);
    }

    fn connector_index(&self, name: &str) -> Option<usize> {
        self.connector_names.iter().position(|n| n == name)
    }

    fn timeout_of(&self, index: usize) -> Duration {
        self.config
            .connectors
            .get(index)
            .map(|c| c.timeout)
            .unwrap_or(self.config.request_timeout)
    }
}

/// The answer carrying a challenge: its status, `WWW-Authenticate` and a JSON-RPC error.
fn challenge_reply(c: access::Challenge, id: &Id) -> Reply {
    let code = if c.status == StatusCode::FORBIDDEN {
        code::FORBIDDEN
    } else {
        code::UNAUTHORIZED
    };
    Reply::Challenge(
        c.status,
        c.www_authenticate,
        error_response(id, code, &c.message),
    )
}

/// An HTTP error with a JSON-RPC error body (id null).
fn http_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(status, error_response(&Id::null(), code, message))
}

fn outcome_of(head: &jsonrpc::UpstreamHead, method: Option<&str>) -> Outcome {
    match head.error_code {
        Some(code) => Outcome::Error {
            code,
            origin: "upstream".into(),
        },
        None => Outcome::Ok {
            tool_error: method == Some("tools/call") && head.tool_error,
        },
    }
}

#[derive(Deserialize)]
struct Target<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<std::borrow::Cow<'a, str>>,
}

fn target_of(params: Option<&RawValue>) -> Option<String> {
    let t: Target = serde_json::from_str(params?.get()).ok()?;
    t.name.or(t.uri).map(|c| c.into_owned())
}

/// Methods forwarded on `/mcp/{connector}`; anything else is refused without reaching the
/// connector (fail closed).
const FORWARDED_METHODS: &[&str] = &[
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

const FORWARDED_NOTIFICATIONS: &[&str] = &[
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/roots/list_changed",
    "notifications/progress",
];

// ---------------------------------------------------------------------------------------------
// HTTP entry points

/// The client's address: as the transport layer resolved it (trusted proxies), else the peer.
fn source_of(ext: &http::Extensions) -> Option<String> {
    if let Some(o) = ext.get::<crate::transport::ClientOrigin>() {
        return Some(o.addr.to_string());
    }
    ext.get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// POST `/mcp/{connector}`.
pub(crate) async fn post_connector(
    State(inner): State<Arc<Inner>>,
    Path(connector): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let info = inner.request_info(&headers, source_of(&parts.extensions));
    let Some(index) = inner.connector_index(&connector) else {
        inner.metrics.rejected.inc();
        let msg = format!(
            "unknown connector {connector:?}; the connectors are: {}",
            inner.connector_names.join(", ")
        );
        return respond(
            &info,
            http_error(StatusCode::NOT_FOUND, code::INVALID_REQUEST, &msg),
            None,
        );
    };
    let scope = Scope::Connector(connector);
    let mut info = info;
    if let Err(reply) = inner.authenticate(&headers, &scope, &mut info).await {
        return respond(&info, reply, None);
    }
    post(inner, scope, Some(index), info, headers, body).await
}

/// POST `/mcp`.
pub(crate) async fn post_federated(
    State(inner): State<Arc<Inner>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let mut info = inner.request_info(&headers, source_of(&parts.extensions));
    if let Err(reply) = inner
        .authenticate(&headers, &Scope::Federated, &mut info)
        .await
    {
        return respond(&info, reply, None);
    }
    post(inner, Scope::Federated, None, info, headers, body).await
}

/// GET `/.well-known/oauth-protected-resource/mcp/{connector}` (RFC 9728, AUTH-3).
pub(crate) async fn resource_metadata_connector(
    State(inner): State<Arc<Inner>>,
    Path(connector): Path<String>,
) -> Response {
    match inner.auth.get() {
        Some(auth) if inner.connector_index(&connector).is_some() => {
            access::resource_metadata(&inner, auth, &Scope::Connector(connector))
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// GET `/.well-known/oauth-protected-resource[/mcp]`: the federated endpoint's metadata.
pub(crate) async fn resource_metadata_federated(State(inner): State<Arc<Inner>>) -> Response {
    match inner.auth.get() {
        Some(auth) => access::resource_metadata(&inner, auth, &Scope::Federated),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Every POST: content type, size and JSON-RPC shape are checked before any connector is
/// involved (IV-2).
async fn post(
    inner: Arc<Inner>,
    scope: Scope,
    index: Option<usize>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(reply) = check_origin(&inner, &headers) {
        return respond(&info, reply, None);
    }
    let ct = header_str(&headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/json") {
        inner.metrics.rejected.inc();
        let msg = format!("Content-Type must be application/json, found {ct:?}");
        return respond(
            &info,
            http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_REQUEST,
                &msg,
            ),
            None,
        );
    }
    if !info.accept_json && !info.accept_sse {
        inner.metrics.rejected.inc();
        let msg = "Accept must include application/json and text/event-stream";
        return respond(
            &info,
            http_error(StatusCode::NOT_ACCEPTABLE, code::INVALID_REQUEST, msg),
            None,
        );
    }
    let limit = inner.config.max_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            inner.metrics.rejected.inc();
            let reply = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                http_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::LIMIT,
                    &format!(
                        "the request body exceeds the limit of {limit} bytes (limits.max_body_bytes)"
                    ),
                )
            } else {
                http_error(
                    StatusCode::BAD_REQUEST,
                    code::PARSE_ERROR,
                    &format!("could not read the body: {e}"),
                )
            };
            return respond(&info, reply, None);
        }
    };
    let parsed = match jsonrpc::parse_body(&bytes, inner.config.max_batch) {
        Ok(p) => p,
        Err(e) => {
            inner.metrics.rejected.inc();
            let (c, m) = e.to_error();
            let mut ev = inner.event(
                &info,
                EventKind::Http,
                index.map(|i| inner.connector_names[i].as_str()),
                None,
            );
            ev.decision = Decision::Deny;
            ev.reasons.push("invalid_body".into());
            ev.outcome = Outcome::Error {
                code: c,
                origin: "gateway".into(),
            };
            ev.request_bytes = bytes.len() as u64;
            inner.finish_event(ev, &info, 0);
            return respond(&info, http_error(StatusCode::BAD_REQUEST, c, &m), None);
        }
    };
    match parsed {
        RpcBody::Single(Err(invalid)) => {
            inner.metrics.rejected.inc();
            let reply = Reply::Json(
                StatusCode::BAD_REQUEST,
                error_response(&invalid.id, invalid.code, &invalid.message),
            );
            respond(&info, reply, None)
        }
        RpcBody::Single(Ok(msg)) => {
            let (reply, new_session) = handle(&inner, &scope, index, &info, msg).await;
            respond(&info, reply, new_session.as_deref())
        }
        RpcBody::Batch(items) => {
            if items
                .iter()
                .any(|m| matches!(m, Ok(m) if m.method.as_deref() == Some("initialize")))
            {
                let reply = http_error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    "initialize must not be part of a batch",
                );
                return respond(&info, reply, None);
            }
            let mut out = Vec::new();
            for item in items {
                match item {
                    Err(invalid) => {
                        out.push(error_response(&invalid.id, invalid.code, &invalid.message))
                    }
                    Ok(msg) => {
                        let (reply, _) = handle(&inner, &scope, index, &info, msg).await;
                        match reply {
                            Reply::Json(_, b)
                            | Reply::Challenge(_, _, b)
                            | Reply::Limited(_, b) => out.push(b),
                            Reply::Sse(mut rx) => {
                                // In a batch the answers come back together as JSON; the last
                                // message of the stream is the response.
                                let mut last = None;
                                while let Some(m) = rx.recv().await {
                                    last = Some(m);
                                }
                                out.extend(last);
                            }
                            Reply::Accepted => {}
                        }
                    }
                }
            }
            if out.is_empty() {
                return respond(&info, Reply::Accepted, None);
            }
            let mut body = Vec::with_capacity(out.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
            body.push(b'[');
            for (i, b) in out.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(b);
            }
            body.push(b']');
            respond(&info, Reply::Json(StatusCode::OK, Bytes::from(body)), None)
        }
    }
}

/// DNS-rebinding defence: a browser page on another origin must not drive the gateway.
fn check_origin(inner: &Inner, headers: &HeaderMap) -> Option<Reply> {
    let origin = header_str(headers, "origin")?;
    let host = origin
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let hostname = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    let loopback = matches!(hostname, "localhost" | "127.0.0.1" | "::1");
    if loopback {
        return None;
    }
    inner.metrics.rejected.inc();
    Some(http_error(
        StatusCode::FORBIDDEN,
        code::INVALID_REQUEST,
        &format!("requests from origin {origin:?} are not allowed"),
    ))
}

fn respond(info: &RequestInfo, reply: Reply, new_session: Option<&str>) -> Response {
    let mut resp = match reply {
        Reply::Json(status, body) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Reply::Accepted => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Reply::Limited(retry_after, body) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Reply::Challenge(status, challenge, body) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
        Reply::Sse(rx) => sse_response(rx, None),
    };
    if let Ok(v) = HeaderValue::from_str(info.correlation.as_str()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if let Some(sid) = new_session.and_then(|s| HeaderValue::from_str(s).ok()) {
        resp.headers_mut().insert("mcp-session-id", sid);
    }
    resp
}

fn sse_frame(msg: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(msg.len() + 24);
    b.extend_from_slice(b"event: message\ndata: ");
    b.extend_from_slice(msg);
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

fn sse_response(rx: mpsc::Receiver<Bytes>, keep_alive: Option<Duration>) -> Response {
    let messages = tokio_stream_from(rx).map(|m| Ok::<_, Infallible>(sse_frame(&m)));
    let body = match keep_alive {
        None => Body::from_stream(messages),
        Some(every) => {
            let pings = futures::stream::unfold((), move |_| async move {
                tokio::time::sleep(every).await;
                Some((
                    Ok::<_, Infallible>(Bytes::from_static(b": keep-alive\n\n")),
                    (),
                ))
            });
            // End when the message stream ends, not when the pings would.
            let merged = futures::stream::select(
                messages
                    .map(Some)
                    .chain(futures::stream::once(async { None })),
                pings.map(Some),
            )
            .take_while(|m| futures::future::ready(m.is_some()))
            .filter_map(futures::future::ready);
            Body::from_stream(merged)
        }
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The endpoint a GET or DELETE addresses, after the Origin check.
fn endpoint_scope(
    inner: &Inner,
    headers: &HeaderMap,
    path: Option<&Path<String>>,
) -> Result<Scope, Reply> {
    if let Some(reply) = check_origin(inner, headers) {
        return Err(reply);
    }
    match path {
        Some(Path(c)) if inner.connector_index(c).is_none() => Err(http_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            &format!("unknown connector {c:?}"),
        )),
        Some(Path(c)) => Ok(Scope::Connector(c.clone())),
        None => Ok(Scope::Federated),
    }
}

/// GET `/mcp/{connector}` and `/mcp`: the server-to-client stream of a session.
pub(crate) async fn get_stream(
    State(inner): State<Arc<Inner>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
) -> Response {
    let mut info = inner.request_info(&headers, None);
    let scope = match endpoint_scope(&inner, &headers, path.as_ref()) {
        Ok(s) => s,
        Err(reply) => return respond(&info, reply, None),
    };
    if let Err(reply) = inner.authenticate(&headers, &scope, &mut info).await {
        return respond(&info, reply, None);
    }
    if !header_str(&headers, "accept")
        .unwrap_or("")
        .contains("text/event-stream")
    {
        return respond(
            &info,
            http_error(
                StatusCode::NOT_ACCEPTABLE,
                code::INVALID_REQUEST,
                "GET needs Accept: text/event-stream",
            ),
            None,
        );
    }
    let session = match session_for(&inner, &scope, &info).await {
        Ok(s) => s,
        Err(reply) => return respond(&info, reply, None),
    };
    let (tx, rx) = mpsc::channel(256);
    session.open_get(tx);
    let mut r = sse_response(rx, Some(Duration::from_secs(25)));
    if let Ok(v) = HeaderValue::from_str(info.correlation.as_str()) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

/// DELETE: ends a session.
pub(crate) async fn delete_session(
    State(inner): State<Arc<Inner>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
) -> Response {
    let mut info = inner.request_info(&headers, None);
    let scope = match endpoint_scope(&inner, &headers, path.as_ref()) {
        Ok(s) => s,
        Err(reply) => return respond(&info, reply, None),
    };
    if let Err(reply) = inner.authenticate(&headers, &scope, &mut info).await {
        return respond(&info, reply, None);
    }
    let session = match session_for(&inner, &scope, &info).await {
        Ok(s) => s,
        Err(reply) => return respond(&info, reply, None),
    };
    let id = session.id();
    inner.remove_session(&id).await;
    let mut ev = inner.event(&info, EventKind::Http, None, Some("DELETE"));
    ev.reasons.push("session_closed".into());
    inner.finish_event(ev, &info, 0);
    respond(
        &info,
        Reply::Json(StatusCode::OK, Bytes::from_static(b"{}")),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn session_for(
    inner: &Arc<Inner>,
    scope: &Scope,
    info: &RequestInfo,
) -> Result<Arc<LiveSession>, Reply> {
    let Some(sid) = info.session_id.as_deref() else {
        return Err(http_error(
            StatusCode::BAD_REQUEST,
            code::SESSION,
            "missing Mcp-Session-Id header: send initialize first, then the session id it returns with every request",
        ));
    };
    let gone = || {
        http_error(
            StatusCode::NOT_FOUND,
            code::SESSION,
            "unknown or expired session: initialize again to start a new one",
        )
    };
    let session = match inner.sessions.get(sid).map(|s| s.clone()) {
        Some(s) => {
            if inner.store.shared() && inner.store.get(sid).await.is_none() {
                // Ended on another replica: drop our live copy too.
                inner.remove_session(sid).await;
                return Err(gone());
            }
            s
        }
        None => inner.rebuild_session(sid, info).await.ok_or_else(gone)?,
    };
    let (same_scope, owner) = {
        let r = session.record.lock();
        (r.scope == *scope, r.owner.clone())
    };
    if !same_scope {
        return Err(gone());
    }
    // A session belongs to whoever opened it: a session id alone is no credential.
    let caller = info.principal.as_deref().map(crate::session::owner_of);
    if owner != caller {
        inner.metrics.rejected.inc();
        return Err(http_error(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "this session was opened by another user or client: initialize a session of your own",
        ));
    }
    session.last_used.store(
        inner.started.elapsed().as_secs(),
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(session)
}

async fn handle(
    inner: &Arc<Inner>,
    scope: &Scope,
    index: Option<usize>,
    info: &RequestInfo,
    msg: Message,
) -> (Reply, Option<String>) {
    if msg.kind == Kind::Request && msg.method.as_deref() == Some("initialize") {
        return inner.initialize(scope, index, info, msg).await;
    }
    if let Some(v) = &info.protocol_version
        && !SUPPORTED_VERSIONS.contains(&v.as_str())
        && v.as_str() != STATELESS_REVISION
    {
        let mut known: Vec<&str> = SUPPORTED_VERSIONS.to_vec();
        known.insert(0, STATELESS_REVISION);
        let m = format!(
            "unsupported MCP-Protocol-Version {v:?}; this gateway speaks {}",
            known.join(", ")
        );
        return (
            http_error(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, &m),
            None,
        );
    }
    if info.session_id.is_none() && is_stateless_revision(info, &msg) {
        return (stateless(inner, index, info, msg).await, None);
    }
    let session = match session_for(inner, scope, info).await {
        Ok(s) => s,
        Err(reply) => return (reply, None),
    };
    let reply = match msg.kind {
        Kind::Request => {
            let reply = request(inner, &session, index, info, msg).await;
            if inner.config.audit_wait_for_commit && matches!(reply, Reply::Json(..)) {
                // AU-1: the answer leaves only once its event is committed (a streamed answer
                // waits the same way before its last message).
                inner.sink.committed().await;
            }
            reply
        }
        Kind::Notification => notification(inner, &session, info, msg).await,
        Kind::Response => client_response(inner, &session, info, msg).await,
    };
    (reply, None)
}

// ---------------------------------------------------------------------------------------------
// The stateless revision (2026-07-28): no initialize, no session; each request carries its
// protocol version and client capabilities in `_meta`.

/// The first revision without sessions.
pub const STATELESS_REVISION: &str = "2026-07-28";

#[derive(Deserialize)]
struct MetaVersion {
    #[serde(rename = "_meta")]
    meta: Option<MetaVersionInner>,
}

#[derive(Deserialize)]
struct MetaVersionInner {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<String>,
}

/// Whether a sessionless message speaks the stateless revision (dates compare as text).
fn is_stateless_revision(info: &RequestInfo, msg: &Message) -> bool {
    if let Some(v) = &info.protocol_version {
        return v.as_str() >= STATELESS_REVISION;
    }
    msg.params
        .as_deref()
        .and_then(|p| serde_json::from_str::<MetaVersion>(p.get()).ok())
        .and_then(|m| m.meta?.version)
        .is_some_and(|v| v.as_str() >= STATELESS_REVISION)
}

/// Relays one stateless request. Each gets its own upstream exchange: for an HTTP connector a
/// sessionless POST over the pooled client; for the demo or a stdio connector a fresh server
/// instance, so requests of different clients never share state or ids.
async fn stateless(
    inner: &Arc<Inner>,
    index: Option<usize>,
    info: &RequestInfo,
    msg: Message,
) -> Reply {
    let Some(i) = index else {
        return http_error(
            StatusCode::BAD_REQUEST,
            code::METHOD_NOT_FOUND,
            "the federated endpoint /mcp speaks the session-based revisions (2025-11-25 and earlier); use /mcp/{connector} for 2026-07-28",
        );
    };
    let name = inner.connector_names[i].clone();
    match msg.kind {
        Kind::Response => http_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "there are no server requests to answer in the stateless revision",
        ),
        Kind::Notification => {
            let mut ev = inner.event(
                info,
                EventKind::McpNotification,
                Some(&name),
                msg.method.as_deref(),
            );
            ev.request_bytes = msg.raw.len() as u64;
            ev.reasons
                .push("stateless_notification_not_forwarded".into());
            inner.finish_event(ev, info, 0);
            Reply::Accepted
        }
        Kind::Request => {
            let method = msg.method.clone().unwrap_or_default();
            let id = msg.id.clone().unwrap_or_else(Id::null);
            let mut ev = inner.event(info, EventKind::McpRequest, Some(&name), Some(&method));
            ev.request_bytes = msg.raw.len() as u64;
            ev.target = target_of(msg.params.as_deref());
            if method != "server/discover" && !FORWARDED_METHODS.contains(&method.as_str()) {
                ev.decision = Decision::Deny;
                ev.outcome = Outcome::Error {
                    code: code::METHOD_NOT_FOUND,
                    origin: "gateway".into(),
                };
                let body = error_response(
                    &id,
                    code::METHOD_NOT_FOUND,
                    &format!("method {method:?} is not an MCP method the gateway forwards"),
                );
                inner.finish_event(ev, info, body.len());
                return Reply::Json(StatusCode::OK, body);
            }
            let scope = Scope::Connector(name);
            let (ups, _inbox) = inner.upstreams_for_pub(&scope);
            let record = crate::session::SessionRecord {
                id: String::new(),
                scope,
                protocol_version: info
                    .protocol_version
                    .clone()
                    .unwrap_or_else(|| STATELESS_REVISION.into()),
                initialize: String::new(),
                initialized: true,
                owner: None,
            };
            let session = Arc::new(LiveSession::new(record, inner.connector_names.clone(), ups));
            let target = ev.target.clone();
            // No session to carry an elicitation: a confirmation goes to the approval queue.
            gate_and_forward(
                inner, &session, i, id, msg.raw, &method, target, info, ev, false,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client requests

async fn request(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    index: Option<usize>,
    info: &RequestInfo,
    msg: Message,
) -> Reply {
    let method = msg.method.clone().unwrap_or_default();
    let id = msg.id.clone().unwrap_or_else(Id::null);
    let connector_name = index.map(|i| inner.connector_names[i].clone());
    let mut ev = inner.event(
        info,
        EventKind::McpRequest,
        connector_name.as_deref(),
        Some(&method),
    );
    ev.request_bytes = msg.raw.len() as u64;
    ev.target = target_of(msg.params.as_deref());

    let local = |ev: Event, body: Bytes| {
        inner.finish_event(ev, info, body.len());
        Reply::Json(StatusCode::OK, body)
    };
    let refuse = |mut ev: Event, c: i64, m: &str| {
        ev.decision = Decision::Deny;
        ev.outcome = Outcome::Error {
            code: c,
            origin: "gateway".into(),
        };
        let body = error_response(&id, c, m);
        inner.finish_event(ev, info, body.len());
        Reply::Json(StatusCode::OK, body)
    };

    if method == "ping" {
        return local(ev, result_response(&id, "{}"));
    }
    match index {
        Some(i) => {
            if !FORWARDED_METHODS.contains(&method.as_str()) {
                return refuse(
                    ev,
                    code::METHOD_NOT_FOUND,
                    &format!("method {method:?} is not an MCP method the gateway forwards"),
                );
            }
            let target = ev.target.clone();
            gate_and_forward(
                inner, session, i, id, msg.raw, &method, target, info, ev, true,
            )
            .await
        }
        None => {
            if federation::list_shape(&method).is_some() {
                return match inner.federated_list(session, &method, &id, info).await {
                    Ok(body) => local(ev, body),
                    Err(e) => refuse(ev, code::UPSTREAM_UNAVAILABLE, &e),
                };
            }
            if method == "logging/setLevel" {
                inner.broadcast_request(session, &msg, info).await;
                return local(ev, result_response(&id, "{}"));
            }
            let routed = match route_federated(inner, &method, &msg) {
                Ok(r) => r,
                Err((c, m)) => return refuse(ev, c, &m),
            };
            let (i, raw) = routed;
            ev.connector = Some(inner.connector_names[i].clone());

            ev.target = target_of(msg.params.as_deref()).map(|t| {
                match t.split_once("__").or_else(|| t.split_once('+')) {
                    Some((_, rest)) => rest.to_string(),
                    None => t,
                }
            });
            let target = ev.target.clone();
            gate_and_forward(inner, session, i, id, raw, &method, target, info, ev, true).await
        }
    }
}

/// Finds the connector of a federated request and rewrites its name or URI to the connector's own.
fn route_federated(
    inner: &Inner,
    method: &str,
    msg: &Message,
) -> Result<(usize, Bytes), (i64, String)> {
    const ROUTED: &[&str] = &[
        "tools/call",
        "prompts/get",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
    ];
    if !ROUTED.contains(&method) {
        return Err((
            code::METHOD_NOT_FOUND,
            format!(
                "method {method:?} is not available on the federated endpoint /mcp; use /mcp/{{connector}}"
            ),
        ));
    }
    let mut v: serde_json::Value =
        serde_json::from_slice(&msg.raw).map_err(|e| (code::INVALID_REQUEST, e.to_string()))?;
    let params = v
        .get_mut("params")
        .ok_or((code::INVALID_PARAMS, format!("{method} needs params")))?;
    let (field_path, is_uri): (&[&str], bool) = match method {
        "tools/call" | "prompts/get" => (&["name"], false),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => (&["uri"], true),
        "completion/complete" => match params.pointer("/ref/type").and_then(|t| t.as_str()) {
            Some("ref/prompt") => (&["ref", "name"], false),
            Some("ref/resource") => (&["ref", "uri"], true),
            _ => {
                return Err((
                    code::INVALID_PARAMS,
                    "completion/complete needs ref.type ref/prompt or ref/resource".into(),
                ));
            }
        },
        _ => {
            return Err((
                code::METHOD_NOT_FOUND,
                format!(
                    "method {method:?} is not available on the federated endpoint /mcp; use /mcp/{{connector}}"
                ),
            ));
        }
    };
    let mut slot = &mut *params;
    for key in field_path {
        slot = slot.get_mut(*key).ok_or((
            code::INVALID_PARAMS,
            format!("{method} needs params.{}", field_path.join(".")),
        ))?;
    }
    let full = slot.as_str().ok_or((
        code::INVALID_PARAMS,
        format!("params.{} must be a string", field_path.join(".")),
    ))?;
    let split = if is_uri {
        federation::split_uri(full)
    } else {
        federation::split_name(full)
    };
    let hint = if is_uri {
        "connector+uri"
    } else {
        "connector__name"
    };
    let (connector, rest) = split.ok_or((
        code::INVALID_PARAMS,
        format!("{full:?} is not a federated name ({hint})"),
    ))?;
    let i = inner.connector_index(connector).ok_or((
        code::INVALID_PARAMS,
        format!("{full:?} names no known connector ({connector:?})"),
    ))?;
    *slot = serde_json::Value::String(rest.to_string());
    Ok((i, Bytes::from(serde_json::to_vec(&v).unwrap_or_default())))
}

/// Sends a request to connector `i` and relays what comes back: JSON when the response is the
/// only message, otherwise an SSE stream with the related messages first.
async fn forward(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    i: usize,
    id: Id,
    raw: Bytes,
    info: &RequestInfo,
    mut ev: Event,
) -> Reply {
    let Some(up) = session.upstream(i).cloned() else {
        let m = format!(
            "connector '{}' is not available in this session",
            inner.connector_names[i]
        );
        ev.outcome = Outcome::Error {
            code: code::UPSTREAM_UNAVAILABLE,
            origin: "gateway".into(),
        };
        let body = error_response(&id, code::UPSTREAM_UNAVAILABLE, &m);
        inner.finish_event(ev, info, body.len());
        return Reply::Json(StatusCode::OK, body);
    };
    // EG-2: a connector that keeps failing is refused at once until its cool-down ends.
    let mut permit = match inner.resilience.admit(i) {
        Ok(p) => p,
        Err(open) => return breaker_refusal(inner, &id, &open, info, ev),
    };
    let timeout = inner.timeout_of(i);
    let ctx = RequestCtx {
        parse_result: result_inspected(inner, ev.method.as_deref()),
        ..inner.ctx(info, timeout)
    };
    let deadline = tokio::time::Instant::now() + timeout;
    if !session.begin(id.json(), i) {
        let m = format!(
            "a request with id {} is already in flight in this session; use a new id per request",
            id.json()
        );
        ev.decision = Decision::Deny;
        ev.reasons.push("duplicate_request_id".into());
        ev.outcome = Outcome::Error {
            code: code::INVALID_REQUEST,
            origin: "gateway".into(),
        };
        let body = error_response(&id, code::INVALID_REQUEST, &m);
        inner.finish_event(ev, info, body.len());
        return Reply::Json(StatusCode::OK, body);
    }
    let read_only = is_read_only_request(inner, i, &ev);
    let rx = match send_resilient(inner, i, &up, &id, raw, &ctx, deadline, read_only, &mut ev).await
    {
        Ok(rx) => rx,
        Err(e) => {
            session.end(id.json());
            settle(&mut permit, CallOutcome::of(&e));
            return upstream_failure(inner, &id, e, info, ev);
        }
    };
    let method = ev.method.clone();
    let mut rx = rx;
    // Wait for the first message: if it is the response, answer with plain JSON.
    loop {
        let first = next(&mut rx, deadline, inner, i).await;
        // The breaker learns from the first message: the connector answers, or it does not.
        match &first {
            Err(e) => settle(&mut permit, CallOutcome::of(e)),
            Ok(_) => settle(&mut permit, CallOutcome::Answered),
        }
        match first {
            Err(e) => {
                session.end(id.json());
                cancel_upstream(&up, &id, &ctx, &e).await;
                return upstream_failure(inner, &id, e, info, ev);
            }
            Ok(m) if is_final(&m.head, &id) => {
                session.end(id.json());
                ev.outcome = outcome_of(&m.head, method.as_deref());
                let body = shape_result(inner, session, i, &mut ev, info, &id, m.bytes, m.parsed);
                inner.finish_event(ev, info, body.len());
                return Reply::Json(StatusCode::OK, body);
            }
            Ok(m) => {
                let m = session.to_client(i, m.bytes);
                if !info.accept_sse {
                    session.deliver(m);
                    continue;
                }
                // Related messages first: switch to a stream.
                let (tx, out) = mpsc::channel(64);
                let _ = tx.try_send(m);
                let key = session.register_post(tx.clone());
                let (inner, session, info) = (inner.clone(), session.clone(), clone_info(info));
                tokio::spawn(async move {
                    let mut sent = 0usize;
                    let mut final_message = None;
                    loop {
                        match next(&mut rx, deadline, &inner, i).await {
                            Err(e) => {
                                cancel_upstream(&up, &id, &ctx, &e).await;
                                ev.outcome = Outcome::Error {
                                    code: e.code(),
                                    origin: "gateway".into(),
                                };
                                ev.upstream_status = e.status();
                                let body = error_response(&id, e.code(), &e.to_string());
                                sent += body.len();
                                final_message = Some(body);
                                break;
                            }
                            Ok(m) if is_final(&m.head, &id) => {
                                ev.outcome = outcome_of(&m.head, method.as_deref());
                                let body = shape_result(
                                    &inner, &session, i, &mut ev, &info, &id, m.bytes, m.parsed,
                                );
                                sent += body.len();
                                final_message = Some(body);
                                break;
                            }
                            Ok(m) => {
                                let m = session.to_client(i, m.bytes);
                                sent += m.len();
                                if tx.send(m).await.is_err() {
                                    ev.outcome = Outcome::Cancelled;
                                    break;
                                }
                            }
                        }
                    }
                    session.unregister_post(key);
                    session.end(id.json());
                    inner.finish_event(ev, &info, sent);
                    if let Some(last) = final_message {
                        if inner.config.audit_wait_for_commit {
                            inner.sink.committed().await;
                        }
                        let _ = tx.send(last).await;
                    }
                });
                return Reply::Sse(out);
            }
        }
    }
}

/// Settles a breaker permit once; later outcomes of the same call are not the breaker's.
fn settle(permit: &mut Option<Permit>, outcome: CallOutcome) {
    if let Some(p) = permit.take() {
        p.settle(outcome);
    }
}

/// Whether sending this request twice is harmless, so that it may be retried (EG-2): a
/// protocol read, or a call of a tool whose listing said `readOnlyHint: true` and that the
/// config does not mark destructive. A tool the gateway has not seen listed is not read-only:
/// a write must never be applied twice.
fn is_read_only_request(inner: &Inner, i: usize, ev: &Event) -> bool {
    match ev.method.as_deref() {
        Some("tools/call") => ev
            .target
            .as_deref()
            .and_then(|t| authorize::prepared_tool(inner, i, t))
            .is_some_and(|p| {
                matches!(&p.facts().item, ResourceItem::Tool(f) if f.read_only && !f.destructive)
            }),
        Some(m) => resilience::is_protocol_read(m),
        None => false,
    }
}

/// Sends one request to connector `i`; a read-only one is sent again, with backoff and jitter,
/// after a failure that left nothing of an answer (connection refused or reset, HTTP 429, 502,
/// 503, 504), as often as the connector's `egress.retries` says and only while the wait ends
/// before `deadline`. The retries are recorded in the event (`retried:N`) and the metrics.
#[allow(clippy::too_many_arguments)]
async fn send_resilient(
    inner: &Inner,
    i: usize,
    up: &Arc<dyn crate::upstream::Upstream>,
    id: &Id,
    raw: Bytes,
    ctx: &RequestCtx,
    deadline: tokio::time::Instant,
    read_only: bool,
    ev: &mut Event,
) -> Result<Exchange, UpstreamError> {
    let first = up.request(id.json(), raw.clone(), ctx).await;
    if !read_only {
        return first;
    }
    let policy = inner.resilience.retry_policy(i);
    let mut result = first;
    let mut retries = 0u32;
    while let Err(e) = &result {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        // The thread's generator, dropped before the wait (it stays on its thread).
        let wait = policy.wait_before(retries + 1, e, remaining, &mut rand::rng());
        let Some(wait) = wait else { break };
        retries += 1;
        tracing::debug!(connector = %inner.connector_names[i], retry = retries, "retrying a read-only request: {e}");
        up.forget(id.json());
        tokio::time::sleep(wait).await;
        // Each attempt gets what is left of the one deadline.
        let attempt = RequestCtx {
            timeout: deadline.saturating_duration_since(tokio::time::Instant::now()),
            ..ctx.clone()
        };
        result = up.request(id.json(), raw.clone(), &attempt).await;
    }
    if retries > 0 {
        ev.reasons.push(format!("retried:{retries}"));
        inner.resilience.count_retries(i, retries);
    }
    // A later attempt's timeout is the request's, not what was left of it.
    result.map_err(|e| match e {
        UpstreamError::Timeout { connector, .. } => UpstreamError::Timeout {
            connector,
            after: ctx.timeout,
        },
        e => e,
    })
}

/// The answer when connector `i`'s circuit breaker is open: a JSON-RPC error saying for how
/// long calls are refused, recorded.
fn breaker_refusal(
    inner: &Inner,
    id: &Id,
    open: &BreakerOpen,
    info: &RequestInfo,
    mut ev: Event,
) -> Reply {
    ev.reasons.push("circuit_open".into());
    ev.outcome = Outcome::Error {
        code: code::UPSTREAM_UNAVAILABLE,
        origin: "gateway".into(),
    };
    let body = error_response(id, code::UPSTREAM_UNAVAILABLE, &open.to_string());
    inner.finish_event(ev, info, body.len());
    Reply::Json(StatusCode::OK, body)
}

/// Whether the answer to `method` goes through the result inspection (so its upstream reads it
/// whole, once: [`RequestCtx::parse_result`]).
fn result_inspected(inner: &Inner, method: Option<&str>) -> bool {
    matches!(method, Some("tools/call") | Some("resources/read"))
        && inner.inspection.get().is_some_and(|i| i.enabled())
}

/// What the client gets of a connector's final answer: a `tools/list` teaches the gateway each
/// tool's scope and shows only the tools the caller may use (AZ-3, AUTH-5); on the federated
/// endpoint, URIs in a `resources/read` result are namespaced like the listing. `parsed` is
/// the message already read whole by its upstream, if it was.
#[allow(clippy::too_many_arguments)]
fn shape_result(
    inner: &Inner,
    session: &LiveSession,
    i: usize,
    ev: &mut Event,
    info: &RequestInfo,
    id: &Id,
    body: Bytes,
    parsed: Option<Box<serde_json::Map<String, serde_json::Value>>>,
) -> Bytes {
    let method = ev.method.clone();
    let method = method.as_deref();
    if matches!(method, Some("tools/call") | Some("resources/read"))
        && let Some(inspection) = inner.inspection.get()
    {
        // MON-5: each stage is a span, so a trace shows where a call spent its time.
        let _stage = tracing::info_span!("portcullis.inspect_response").entered();
        let body = inspection::inspect_result(inner, inspection, session, i, ev, id, body, parsed);
        return federated_result(session, i, method, body);
    }
    if method == Some("tools/list") {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return body;
        };
        if let Some(tools) = v
            .pointer_mut("/result/tools")
            .and_then(|t| t.as_array_mut())
        {
            learn_and_filter_tools(inner, i, Some(info), tools);
            if let Some(inspection) = inner.inspection.get() {
                inspection::note_listing(inspection, i, ev);
            }
            return serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body);
        }
        return body;
    }
    let listed = match method {
        Some("resources/list") => Some("resources"),
        Some("resources/templates/list") => Some("resourceTemplates"),
        Some("prompts/list") => Some("prompts"),
        _ => None,
    };
    if let Some(key) = listed
        && inner.policy.get().is_some()
        && info.principal.is_some()
    {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return body;
        };
        if let Some(items) = v
            .get_mut("result")
            .and_then(|r| r.get_mut(key))
            .and_then(|t| t.as_array_mut())
        {
            filter_listed(inner, i, method.unwrap_or(""), info, items);
            return serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body);
        }
        return body;
    }
    federated_result(session, i, method, body)
}

/// Records the scope and policy facts of each listed tool of connector `i` and drops those the
/// caller may not call: by scope (AUTH-5) and by policy (AZ-3). No caller (authentication off,
/// or the gateway's own listing): nothing is dropped.
pub(crate) fn learn_and_filter_tools(
    inner: &Inner,
    i: usize,
    info: Option<&RequestInfo>,
    tools: &mut Vec<serde_json::Value>,
) {
    let c = &inner.config.connectors[i];
    let principal = info.and_then(|i| i.principal.as_deref());
    tools.retain(|t| {
        let Some((name, scope)) = access::tool_scope(&c.name, &c.tool_scopes, t) else {
            return false;
        };
        authorize::remember_tool(inner, i, t);
        // PI-3: a drifted or flagged definition is not offered to anyone.
        let pinned = inspection::observe_tool(inner, i, t);
        let allowed = pinned && principal.is_none_or(|p| p.has_scope(&scope));
        inner.tool_scopes.insert((i, name), scope);
        allowed
    });
    if let (Some(policy), Some(p), Some(info)) = (inner.policy.get(), principal, info) {
        let prepared = tools
            .iter()
            .map(|t| {
                let name = t.get("name").and_then(|n| n.as_str()).unwrap_or("");
                authorize::prepared_tool(inner, i, name)
            })
            .collect();
        authorize::filter_usable(inner, policy, p, info.source.as_deref(), tools, prepared);
    }
}

/// Drops the listed resources or prompts of connector `i` that policy does not let the caller
/// use (AZ-3).
pub(crate) fn filter_listed(
    inner: &Inner,
    i: usize,
    method: &str,
    info: &RequestInfo,
    items: &mut Vec<serde_json::Value>,
) {
    let (Some(policy), Some(p)) = (inner.policy.get(), info.principal.as_deref()) else {
        return;
    };
    let prepared = items
        .iter()
        .map(|item| {
            let it = match method {
                "prompts/list" => ResourceItem::Prompt {
                    name: item.get("name")?.as_str()?.to_string(),
                },
                "resources/templates/list" => ResourceItem::Resource {
                    uri: item.get("uriTemplate")?.as_str()?.to_string(),
                    classification: None,
                },
                _ => ResourceItem::Resource {
                    uri: item.get("uri")?.as_str()?.to_string(),
                    classification: None,
                },
            };
            authorize::prepare(inner, i, it)
        })
        .collect();
    authorize::filter_usable(inner, policy, p, info.source.as_deref(), items, prepared);
}

/// Records a refused request (the challenge already chosen) and answers with it.
fn refused(inner: &Inner, mut ev: Event, reply: Reply, info: &RequestInfo) -> Reply {
    ev.decision = Decision::Deny;
    if let Reply::Challenge(status, _, body) = &reply {
        ev.reasons.push("insufficient_scope".into());
        ev.outcome = Outcome::HttpError {
            status: status.as_u16(),
        };
        inner.finish_event(ev, info, body.len());
    } else {
        inner.finish_event(ev, info, 0);
    }
    reply
}

/// The stages between resolving a call and forwarding it: its scope (AUTH-5), the policy
/// (AZ-1) and, where the policy asks for it, a person's confirmation (HC-1, HC-2, HC-3).
#[allow(clippy::too_many_arguments)]
async fn gate_and_forward(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    i: usize,
    id: Id,
    raw: Bytes,
    method: &str,
    target: Option<String>,
    info: &RequestInfo,
    mut ev: Event,
    can_elicit: bool,
) -> Reply {
    if let (Some(guard), Some(p)) = (inner.guard.get(), info.principal.as_deref()) {
        // MON-2: automatic responses and rate limits come before anything else is spent.
        if let Some(why) =
            guard.blocked(Some(&p.subject), Some(&p.client_id), info.source.as_deref())
        {
            ev.reasons.push("blocked".into());
            let m = format!("this caller is blocked for now: {why}");
            return policy_refusal(inner, ev, &id, &m, info);
        }
        let tool = match (method, target.as_deref()) {
            ("tools/call", Some(t)) => format!("{}/{t}", inner.connector_names[i]),
            _ => String::new(),
        };
        if let Err((scope, retry)) = guard.admit(&p.subject, &p.client_id, &tool) {
            ev.decision = Decision::Deny;
            ev.reasons.push(format!("rate_limited:{scope}"));
            ev.outcome = Outcome::HttpError { status: 429 };
            let m = format!("the {scope} rate limit is spent: retry after {retry} s");
            let body = error_response(&id, code::LIMIT, &m);
            inner.finish_event(ev, info, body.len());
            return Reply::Limited(retry, body);
        }
    }
    match check_scope(inner, session, i, &id, method, target.as_deref(), info).await {
        Err(reply) => return refused(inner, ev, reply, info),
        // Which scope a call needed, for least-privilege reviews (AZ-7).
        Ok(Some(needed)) => ev.reasons.push(format!("scope:{needed}")),
        Ok(None) => {}
    }
    if method == "tools/list" {
        inspection::before_listing(inner, i).await;
    }
    // Stage 2, resolve (PI-3): the tool's definition as approved; a drifted one is refused.
    let known = if method == "tools/call"
        && let Some(insp) = inner.inspection.get()
    {
        let tool = target.as_deref().unwrap_or("");
        match inspection::resolve_tool(inner, insp, session, i, tool, info, &mut ev)
            .instrument(tracing::info_span!("portcullis.resolve", tool = tool))
            .await
        {
            Ok(k) => Some(k),
            Err(m) => return policy_refusal(inner, ev, &id, &m, info),
        }
    } else {
        None
    };
    let (Some(policy), Some(p)) = (inner.policy.get(), info.principal.clone()) else {
        let raw = match inspection::check_call(inner, i, known.as_deref(), &id, raw, &mut ev)
            .instrument(tracing::info_span!("portcullis.validate_and_inspect"))
            .await
        {
            Ok(raw) => raw,
            Err(reply) => return finish_refusal(inner, ev, reply, info),
        };
        return forward(inner, session, i, id, raw, info, ev).await;
    };
    let name = target.clone().unwrap_or_default();
    let connector = &inner.connector_names[i];
    let (action, resource, what) = match method {
        "tools/call" => {
            let prepared = authorize::prepared_tool(inner, i, &name).or_else(|| {
                // Not listed by the connector: described at its most dangerous.
                let facts = portcullis_policy::ToolFacts {
                    name: name.clone(),
                    destructive: true,
                    open_world: true,
                    ..Default::default()
                };
                authorize::prepare(inner, i, ResourceItem::Tool(facts))
            });
            (
                Action::CallTool,
                prepared,
                format!("the tool {name:?} of connector {connector:?}"),
            )
        }
        "resources/read" | "resources/subscribe" => (
            Action::ReadResource,
            authorize::prepare(
                inner,
                i,
                ResourceItem::Resource {
                    uri: name.clone(),
                    classification: None,
                },
            ),
            format!("the resource {name:?} of connector {connector:?}"),
        ),
        "prompts/get" => (
            Action::GetPrompt,
            authorize::prepare(inner, i, ResourceItem::Prompt { name: name.clone() }),
            format!("the prompt {name:?} of connector {connector:?}"),
        ),
        _ => return forward(inner, session, i, id, raw, info, ev).await,
    };
    let authorize_span = tracing::info_span!("portcullis.authorize").entered();
    let d = authorize::decide(
        inner,
        policy,
        &p,
        info.source.as_deref(),
        action,
        resource.clone(),
        false,
    );
    ev.reasons.extend(authorize::event_reasons(&d));
    drop(authorize_span);
    // Stages 4 and 5 (IV-1, IV-4, PI-2): only a call policy lets through (or would, once
    // confirmed) is validated and inspected; nobody is asked to confirm an invalid call.
    let raw = match d.verdict {
        Verdict::Deny => raw,
        _ => match inspection::check_call(inner, i, known.as_deref(), &id, raw, &mut ev)
            .instrument(tracing::info_span!("portcullis.validate_and_inspect"))
            .await
        {
            Ok(raw) => raw,
            Err(reply) => return finish_refusal(inner, ev, reply, info),
        },
    };
    match d.verdict {
        Verdict::Allow => {
            forward(inner, session, i, id, raw, info, ev)
                .instrument(tracing::info_span!("portcullis.forward"))
                .await
        }
        Verdict::Deny => {
            policy_refusal(inner, ev, &id, &authorize::refusal_message(&what, &d), info)
        }
        Verdict::Confirm => {
            let pending = PendingConfirmation {
                inner: inner.clone(),
                session: session.clone(),
                i,
                id,
                raw,
                info: clone_info(info),
                ev,
                principal: p,
                action,
                resource,
                what,
            };
            pending.run(can_elicit).await
        }
    }
}

/// A refusal by an inspection stage: `reply` is the JSON-RPC error body, the event already says
/// why; recorded, then answered.
fn finish_refusal(inner: &Inner, mut ev: Event, body: Bytes, info: &RequestInfo) -> Reply {
    ev.decision = Decision::Deny;
    inner.finish_event(ev, info, body.len());
    Reply::Json(StatusCode::OK, body)
}

/// A refusal by the policy or for want of a confirmation: recorded, answered as a JSON-RPC error.
fn policy_refusal(
    inner: &Inner,
    mut ev: Event,
    id: &Id,
    message: &str,
    info: &RequestInfo,
) -> Reply {
    ev.decision = Decision::Deny;
    ev.outcome = Outcome::Error {
        code: code::FORBIDDEN,
        origin: "gateway".into(),
    };
    let body = error_response(id, code::FORBIDDEN, message);
    inner.finish_event(ev, info, body.len());
    Reply::Json(StatusCode::OK, body)
}

/// A call that policy lets through once a person confirms it (HC-1).
struct PendingConfirmation {
    inner: Arc<Inner>,
    session: Arc<LiveSession>,
    i: usize,
    id: Id,
    raw: Bytes,
    info: RequestInfo,
    ev: Event,
    principal: Arc<Principal>,
    action: Action,
    resource: Option<portcullis_policy::PreparedResource>,
    what: String,
}

impl PendingConfirmation {
    /// Asks by elicitation when the client can answer one (HC-2), else parks the call in the
    /// approval queue; forwards only after a confirmation of exactly this call.
    async fn run(mut self, can_elicit: bool) -> Reply {
        let Some(policy) = self.inner.policy.get().cloned() else {
            let (inner, ev, id, info) = (self.inner.clone(), self.ev, self.id, self.info);
            return policy_refusal(&inner, ev, &id, "no policy to confirm against", &info);
        };
        let connector = self.inner.connector_names[self.i].clone();
        let args = serde_json::from_slice::<serde_json::Value>(&self.raw)
            .ok()
            .and_then(|v| v.pointer("/params/arguments").cloned())
            .unwrap_or_else(|| serde_json::json!({}));
        let target = self.ev.target.clone().unwrap_or_default();
        let hash = confirm::call_hash(&connector, &target, &args);
        let description = confirm::describe_call(&connector, &target, &args);
        self.ev.decision = Decision::Confirm;
        if can_elicit && self.info.accept_sse && self.session.client_can_elicit() {
            let (tx, out) = mpsc::channel(64);
            tokio::spawn(async move {
                let who = self
                    .principal
                    .display_name
                    .clone()
                    .unwrap_or_else(|| self.principal.subject.clone());
                let outcome = confirm::elicit(
                    &self.session,
                    &tx,
                    &who,
                    &description,
                    policy.elicitation_timeout,
                )
                .await;
                let inner = self.inner.clone();
                let reply = self.finish(&policy, outcome, "elicitation").await;
                pipe(&inner, reply, &tx).await;
            });
            return Reply::Sse(out);
        }
        let Some(queue) = policy.approvals.clone() else {
            let m = format!(
                "{} needs a person's confirmation, but this client cannot be asked (it did not declare elicitation) and no approval queue is configured",
                self.what
            );
            self.ev.reasons.push("confirmation_unavailable".into());
            return policy_refusal(&self.inner, self.ev, &self.id, &m, &self.info);
        };
        let parked = confirm::ParkedCall {
            principal: &self.principal.subject,
            client: &self.principal.client_id,
            connector: &connector,
            tool: &target,
            call_hash: &hash,
            summary: &description,
            correlation_id: self.info.correlation.as_str(),
        };
        let approval = match queue.park(&parked).await {
            Ok(a) => a,
            Err(e) => {
                self.ev.reasons.push("confirmation_failed".into());
                let m = format!(
                    "{} needs an approval, which could not be requested: {e}",
                    self.what
                );
                return policy_refusal(&self.inner, self.ev, &self.id, &m, &self.info);
            }
        };
        self.ev.reasons.push(format!("approval:{approval}"));
        tracing::info!(correlation_id = %self.info.correlation, "call parked for approval {approval}");
        if let Some(hook) = &queue.webhook {
            notify_webhook(
                &self.inner,
                hook.clone(),
                &approval,
                &self.principal,
                &description,
            );
        }
        if self.info.accept_sse {
            let (tx, out) = mpsc::channel(64);
            let notice = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {
                    "level": "notice",
                    "logger": "portcullis",
                    "data": format!("This call waits for an approver: approval {approval}. An approver runs `portcullis approvals approve {approval}` (or deny)."),
                },
            });
            let _ = tx.try_send(Bytes::from(notice.to_string()));
            tokio::spawn(async move {
                let outcome = queue.wait(&approval, &hash).await;
                let inner = self.inner.clone();
                let reply = self.finish(&policy, outcome, "approval").await;
                pipe(&inner, reply, &tx).await;
            });
            return Reply::Sse(out);
        }
        let outcome = queue.wait(&approval, &hash).await;
        self.finish(&policy, outcome, "approval").await
    }

    /// After the person answered: forwards a confirmed call (decided again, confirmed), denies
    /// anything else. Who confirmed is recorded with the call (HC-3).
    async fn finish(
        mut self,
        policy: &authorize::GatewayPolicy,
        outcome: confirm::Confirmation,
        how: &str,
    ) -> Reply {
        use confirm::Confirmation;
        let refuse = |mut ev: Event, reason: &str, m: String| {
            ev.reasons.push(reason.to_string());
            policy_refusal(&self.inner, ev, &self.id, &m, &self.info)
        };
        match outcome {
            Confirmation::Confirmed { by } => {
                let d = authorize::decide(
                    &self.inner,
                    policy,
                    &self.principal,
                    self.info.source.as_deref(),
                    self.action,
                    self.resource.clone(),
                    true,
                );
                if d.verdict != Verdict::Allow {
                    let m = authorize::refusal_message(&self.what, &d);
                    return refuse(self.ev, "policy_after_confirmation", m);
                }
                self.ev.reasons.push(format!("confirmed_by:{by}"));
                self.ev.reasons.push(format!("confirmed_via:{how}"));
                let Self {
                    inner,
                    session,
                    i,
                    id,
                    raw,
                    info,
                    ev,
                    ..
                } = self;
                forward(&inner, &session, i, id, raw, &info, ev).await
            }
            Confirmation::Refused { detail } => {
                let m = format!("{} was not confirmed: {detail}", self.what);
                refuse(self.ev, "confirmation_refused", m)
            }
            Confirmation::TimedOut => {
                let m = format!(
                    "{} was not confirmed in time, so it is denied; ask again when someone can confirm it",
                    self.what
                );
                refuse(self.ev, "confirmation_timeout", m)
            }
            Confirmation::Failed(e) => {
                let m = format!(
                    "{} could not be confirmed ({e}), so it is denied",
                    self.what
                );
                refuse(self.ev, "confirmation_failed", m)
            }
        }
    }
}

/// Sends what a reply holds down an SSE stream already open to the client.
async fn pipe(inner: &Inner, reply: Reply, tx: &mpsc::Sender<Bytes>) {
    match reply {
        Reply::Json(_, body) | Reply::Challenge(_, _, body) | Reply::Limited(_, body) => {
            if inner.config.audit_wait_for_commit {
                inner.sink.committed().await;
            }
            let _ = tx.send(body).await;
        }
        Reply::Sse(mut rx) => {
            while let Some(m) = rx.recv().await {
                if tx.send(m).await.is_err() {
                    break;
                }
            }
        }
        Reply::Accepted => {}
    }
}

/// Tells the approval webhook of a parked call (best effort; the queue is the record).
fn notify_webhook(
    inner: &Arc<Inner>,
    hook: http::Uri,
    approval: &str,
    p: &Principal,
    description: &str,
) {
    let body = serde_json::json!({
        "type": "portcullis.approval.pending",
        "approval": approval,
        "principal": p.subject,
        "client": p.client_id,
        "summary": description,
        "text": format!("Approval needed ({approval}): {} asks to {description}", p.subject),
    });
    let http = inner.http.clone();
    tokio::spawn(async move {
        let req = http::Request::post(hook)
            .header(header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(Bytes::from(body.to_string())));
        let Ok(req) = req else { return };
        match tokio::time::timeout(Duration::from_secs(10), http.request(req)).await {
            Ok(Ok(r)) if r.status().is_success() => {}
            Ok(Ok(r)) => tracing::warn!("approval webhook answered {}", r.status()),
            Ok(Err(e)) => tracing::warn!("approval webhook failed: {e}"),
            Err(_) => tracing::warn!("approval webhook did not answer within 10 s"),
        }
    });
}

/// Methods that read a connector's resources or prompts: they need `{connector}:read`.
const READ_METHODS: &[&str] = &[
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// AUTH-5: the scope this request needs, checked on every call, not only at session start;
/// the scope it needed when the token has it.
async fn check_scope(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    i: usize,
    id: &Id,
    method: &str,
    target: Option<&str>,
    info: &RequestInfo,
) -> Result<Option<String>, Reply> {
    let (Some(auth), Some(p)) = (inner.auth.get(), info.principal.as_deref()) else {
        return Ok(None);
    };
    let c = &inner.connector_names[i];
    let (needed, what) = if method == "tools/call" {
        let tool = target.unwrap_or("");
        (
            required_tool_scope(inner, session, i, tool, info).await,
            format!("the tool {tool:?} of connector {c:?}"),
        )
    } else if READ_METHODS.contains(&method) {
        (format!("{c}:read"), format!("{method} on connector {c:?}"))
    } else {
        return Ok(None);
    };
    if p.has_scope(&needed) {
        return Ok(Some(needed));
    }
    let endpoint = session.record.lock().scope.clone();
    Err(challenge_reply(
        access::Challenge::insufficient_scope(auth, &endpoint, p, &needed, &what),
        id,
    ))
}

/// The scope a tool needs: learned from listings; on a miss the gateway lists the connector's
/// tools itself; a tool the connector does not list needs its admin scope (fail closed).
async fn required_tool_scope(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    i: usize,
    tool: &str,
    info: &RequestInfo,
) -> String {
    let key = (i, tool.to_string());
    if let Some(s) = inner.tool_scopes.get(&key) {
        return s.clone();
    }
    list_upstream_tools(inner, session, i, tool, info).await;
    match inner.tool_scopes.get(&key) {
        Some(s) => s.clone(),
        None => format!("{}:admin", inner.connector_names[i]),
    }
}

/// Lists connector `i`'s tools on the gateway's own behalf (page by page, until `tool` is seen),
/// so that the gateway learns their scopes, policy facts and definitions as from any listing.
pub(crate) async fn list_upstream_tools(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    i: usize,
    tool: &str,
    info: &RequestInfo,
) {
    let key = (i, tool.to_string());
    if let Some(up) = session.upstream(i).cloned() {
        let ctx = RequestCtx {
            timeout: inner.timeout_of(i),
            ..inner.ctx_pub(info)
        };
        let mut cursor: Option<serde_json::Value> = None;
        for page in 0..100 {
            let params = match &cursor {
                Some(c) => serde_json::json!({ "cursor": c }),
                None => serde_json::json!({}),
            };
            let rid = format!("portcullis:tools-{page}");
            let req = serde_json::json!({"jsonrpc": "2.0", "id": rid, "method": "tools/list", "params": params});
            let answer = async {
                let mut rx = up
                    .request(&format!("\"{rid}\""), Bytes::from(req.to_string()), &ctx)
                    .await
                    .ok()?;
                loop {
                    let m = tokio::time::timeout(ctx.timeout, rx.recv())
                        .await
                        .ok()??
                        .ok()?;
                    if m.head.kind == Kind::Response {
                        return serde_json::from_slice::<serde_json::Value>(&m.bytes).ok();
                    }
                    session.deliver(session.to_client(i, m.bytes));
                }
            }
            .await;
            let Some(mut v) = answer else { break };
            if let Some(tools) = v
                .pointer_mut("/result/tools")
                .and_then(|t| t.as_array_mut())
            {
                learn_and_filter_tools(inner, i, None, tools);
            }
            cursor = v
                .pointer("/result/nextCursor")
                .filter(|c| !c.is_null())
                .cloned();
            if cursor.is_none() || inner.tool_scopes.contains_key(&key) {
                break;
            }
        }
    }
}

/// On the federated endpoint, URIs in a `resources/read` result are namespaced like the listing,
/// so what the client reads matches what it asked for.
fn federated_result(session: &LiveSession, i: usize, method: Option<&str>, body: Bytes) -> Bytes {
    if method != Some("resources/read") || !session.federated() {
        return body;
    }
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let name = session
        .connector_names
        .get(i)
        .map(String::as_str)
        .unwrap_or("");
    if let Some(contents) = v
        .pointer_mut("/result/contents")
        .and_then(|c| c.as_array_mut())
    {
        for c in contents {
            if let Some(uri) = c.get_mut("uri")
                && let Some(u) = uri.as_str()
            {
                *uri = serde_json::Value::String(federation::namespace_uri(name, u));
            }
        }
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

fn is_final(h: &jsonrpc::UpstreamHead, id: &Id) -> bool {
    h.kind == Kind::Response && h.id.as_ref() == Some(id)
}

fn clone_info(info: &RequestInfo) -> RequestInfo {
    RequestInfo {
        protocol_version: info.protocol_version.clone(),
        correlation: info.correlation.clone(),
        traceparent: info.traceparent.clone(),
        session_id: info.session_id.clone(),
        accept_sse: info.accept_sse,
        accept_json: info.accept_json,
        protocol_headers: info.protocol_headers.clone(),
        source: info.source.clone(),
        started: info.started,
        principal: info.principal.clone(),
        bearer: info.bearer.clone(),
    }
}

async fn next(
    rx: &mut Exchange,
    deadline: tokio::time::Instant,
    inner: &Inner,
    i: usize,
) -> Result<UpMsg, UpstreamError> {
    match tokio::time::timeout_at(deadline, rx.recv()).await {
        Err(_) => Err(UpstreamError::Timeout {
            connector: inner.connector_names[i].clone(),
            after: inner.timeout_of(i),
        }),
        Ok(None) => Err(UpstreamError::Unavailable {
            connector: inner.connector_names[i].clone(),
            detail: "the connection closed before the response".into(),
        }),
        Ok(Some(r)) => r,
    }
}

/// Tells the connector to stop working on a request the client will no longer get an answer to.
async fn cancel_upstream(
    up: &Arc<dyn crate::upstream::Upstream>,
    id: &Id,
    ctx: &RequestCtx,
    e: &UpstreamError,
) {
    // Its answer, if it ever comes, has nobody to go to.
    up.forget(id.json());
    if matches!(e, UpstreamError::Timeout { .. }) {
        let note = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{},"reason":"timed out at the gateway"}}}}"#,
            id.json()
        );
        let ctx = RequestCtx {
            timeout: Duration::from_secs(5),
            ..ctx.clone()
        };
        let _ = up.send(Bytes::from(note), &ctx).await;
    }
}

fn upstream_failure(
    inner: &Inner,
    id: &Id,
    e: UpstreamError,
    info: &RequestInfo,
    mut ev: Event,
) -> Reply {
    tracing::warn!(correlation_id = %info.correlation, "{e}");
    ev.outcome = Outcome::Error {
        code: e.code(),
        origin: "gateway".into(),
    };
    ev.upstream_status = e.status();
    ev.reasons.push("upstream_failure".into());
    let body = error_response(id, e.code(), &e.to_string());
    inner.finish_event(ev, info, body.len());
    Reply::Json(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------------------------
// Client notifications and responses

#[derive(Deserialize)]
struct CancelParams<'a> {
    #[serde(rename = "requestId", borrow)]
    request_id: Option<&'a RawValue>,
}

async fn notification(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    info: &RequestInfo,
    msg: Message,
) -> Reply {
    let method = msg.method.clone().unwrap_or_default();
    let mut ev = inner.event(info, EventKind::McpNotification, None, Some(&method));
    ev.request_bytes = msg.raw.len() as u64;
    if !FORWARDED_NOTIFICATIONS.contains(&method.as_str()) {
        // Not forwarded (fail closed), and a notification gets no answer: record and accept.
        ev.decision = Decision::Deny;
        ev.reasons.push("unknown_notification".into());
        inner.finish_event(ev, info, 0);
        return Reply::Accepted;
    }
    let ctx = inner.ctx(info, inner.config.request_timeout);
    let targets: Vec<usize> = match method.as_str() {
        "notifications/cancelled" => {
            let rid = msg
                .params
                .as_deref()
                .and_then(|p| serde_json::from_str::<CancelParams>(p.get()).ok())
                .and_then(|p| p.request_id.map(|r| r.get().to_string()));
            rid.and_then(|r| session.inflight_connector(&r))
                .into_iter()
                .collect()
        }
        "notifications/initialized" => {
            let record = {
                let mut r = session.record.lock();
                r.initialized = true;
                r.clone()
            };
            inner.store.put(record).await;
            (0..session.upstreams.len())
                .filter(|i| session.upstream(*i).is_some())
                .collect()
        }
        _ => (0..session.upstreams.len())
            .filter(|i| session.upstream(*i).is_some())
            .collect(),
    };
    for i in targets {
        if let Some(up) = session.upstream(i) {
            if let Err(e) = up.send(msg.raw.clone(), &ctx).await {
                tracing::warn!(correlation_id = %info.correlation, "{e}");
                ev.reasons
                    .push(format!("not_delivered:{}", inner.connector_names[i]));
            }
            if method == "notifications/initialized" {
                up.initialized();
            }
        }
    }
    inner.finish_event(ev, info, 0);
    Reply::Accepted
}

async fn client_response(
    inner: &Arc<Inner>,
    session: &Arc<LiveSession>,
    info: &RequestInfo,
    msg: Message,
) -> Reply {
    let mut ev = inner.event(info, EventKind::ServerRequest, None, None);
    ev.request_bytes = msg.raw.len() as u64;
    let id = msg.id.clone().unwrap_or_else(Id::null);
    // The answer to a request of the gateway's own (a confirmation, HC-2) stays here.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&msg.raw)
        && session.answer_gateway_request(id.json(), v)
    {
        ev.reasons.push("confirmation_answer".into());
        inner.finish_event(ev, info, 0);
        return Reply::Accepted;
    }
    let Some((i, orig)) = session.take_server_request(id.json()) else {
        ev.decision = Decision::Deny;
        ev.reasons.push("unknown_response_id".into());
        ev.outcome = Outcome::Error {
            code: code::INVALID_REQUEST,
            origin: "gateway".into(),
        };
        inner.finish_event(ev, info, 0);
        return http_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            &format!(
                "no server request with id {} is waiting for an answer",
                id.json()
            ),
        );
    };
    ev.connector = Some(inner.connector_names[i].clone());
    let mut v: serde_json::Value = match serde_json::from_slice(&msg.raw) {
        Ok(v) => v,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, code::PARSE_ERROR, &e.to_string()),
    };
    v["id"] = serde_json::from_str(&orig).unwrap_or(serde_json::Value::Null);
    let raw = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
    let ctx = inner.ctx(info, inner.timeout_of(i));
    if let Some(up) = session.upstream(i)
        && let Err(e) = up.send(raw, &ctx).await
    {
        ev.outcome = Outcome::Error {
            code: e.code(),
            origin: "gateway".into(),
        };
        inner.finish_event(ev, info, 0);
        return http_error(StatusCode::BAD_GATEWAY, e.code(), &e.to_string());
    }
    inner.finish_event(ev, info, 0);
    Reply::Accepted
}
