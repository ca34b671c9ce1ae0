//! Streamable HTTP upstreams: POST each message, read a JSON or SSE answer, keep the upstream's
//! `Mcp-Session-Id`, and hold a GET stream open for server-initiated messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::credentials::{Caller, CredentialHeaders, CredentialProvider};
use super::lines::MAX_LINE_BYTES;
use super::resilience::{GuardedConnector, ResolverSlot, find_blocked, parse_retry_after};
use super::{Exchange, Inbox, RequestCtx, UpMsg, Upstream, UpstreamError};
use crate::jsonrpc::{Kind, upstream_head, upstream_parsed};

/// The pooled HTTP client shared by all HTTP upstreams. TLS verification is always on (EG-2):
/// rustls with the webpki roots, and no code path builds a client without it. Every connection
/// goes through a [`GuardedConnector`], which refuses link-local and cloud metadata addresses
/// at connect time (EG-1).
pub type HttpClient = Client<hyper_rustls::HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// Builds a client resolving names with the system's resolver (see [`client_with`]).
pub fn client() -> HttpClient {
    client_with(Arc::new(ResolverSlot::default()))
}

/// Builds a client resolving names through `resolver`: HTTP/1.1 and HTTP/2, rustls with the
/// webpki roots, TCP_NODELAY, addresses checked after resolution.
pub fn client_with(resolver: Arc<ResolverSlot>) -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(GuardedConnector::new(resolver));
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// One MCP session with a Streamable HTTP connector.
pub struct HttpUpstream {
    connector: Arc<str>,
    index: usize,
    url: http::Uri,
    client: HttpClient,
    inbox: Inbox,
    session_id: Mutex<Option<HeaderValue>>,
    protocol_version: Mutex<Option<HeaderValue>>,
    get_stream: Mutex<Option<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
    /// The gateway's own credential for this connector (AUTH-8), if it has one.
    credentials: Option<Arc<CredentialProvider>>,
    /// The caller's token of the last request, for requests that carry no context of their own
    /// (the GET stream, DELETE) when the credential is a token exchange. One session has one
    /// caller.
    subject: Mutex<Option<(portcullis_core::Secret, Option<i64>)>>,
}

/// Headers a client request may carry that must never reach a connector (AUTH-8): its token,
/// its cookies. The request builder copies only named protocol headers, and drops these even if
/// they are named by mistake.
const NEVER_FORWARDED: &[header::HeaderName] = &[
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

impl HttpUpstream {
    /// A session with the connector at `url`.
    pub fn new(
        connector: &str,
        index: usize,
        url: http::Uri,
        client: HttpClient,
        inbox: Inbox,
    ) -> Self {
        Self {
            connector: connector.into(),
            index,
            url,
            client,
            inbox,
            session_id: Mutex::new(None),
            protocol_version: Mutex::new(None),
            get_stream: Mutex::new(None),
            closed: AtomicBool::new(false),
            credentials: None,
            subject: Mutex::new(None),
        }
    }

    /// Sends `provider`'s credential with every request to the connector (AUTH-8).
    pub fn with_credentials(mut self, provider: Option<Arc<CredentialProvider>>) -> Self {
        self.credentials = provider;
        self
    }

    /// The credential headers for one request; remembers the caller for requests without one.
    async fn credential_headers(
        &self,
        ctx: &RequestCtx,
    ) -> Result<CredentialHeaders, UpstreamError> {
        let Some(p) = &self.credentials else {
            return Ok(Vec::new());
        };
        let remembered;
        let caller = match &ctx.subject_token {
            Some(t) => {
                *self.subject.lock() = Some((t.clone(), ctx.subject_expires_at));
                Caller {
                    token: Some(t),
                    expires_at: ctx.subject_expires_at,
                }
            }
            None => {
                remembered = self.subject.lock().clone();
                Caller {
                    token: remembered.as_ref().map(|(t, _)| t),
                    expires_at: remembered.as_ref().and_then(|(_, e)| *e),
                }
            }
        };
        p.headers(caller).await
    }

    /// After the connector refused our credential: drop the cached token, so the next request
    /// gets a new one.
    fn credential_refused(&self, ctx: &RequestCtx) {
        if let Some(p) = &self.credentials {
            let remembered = self.subject.lock().clone();
            let token = ctx
                .subject_token
                .as_ref()
                .or(remembered.as_ref().map(|(t, _)| t));
            p.invalidate(Caller {
                token,
                expires_at: None,
            });
        }
    }

    fn unavailable(&self, detail: impl Into<String>) -> UpstreamError {
        UpstreamError::Unavailable {
            connector: self.connector.to_string(),
            detail: detail.into(),
        }
    }

    fn protocol(&self, detail: impl Into<String>, status: Option<u16>) -> UpstreamError {
        UpstreamError::Protocol {
            connector: self.connector.to_string(),
            detail: detail.into(),
            status,
            retry_after: None,
        }
    }

    /// What a failed connection attempt means for the client: refused by the gateway (blocked
    /// address, certificate that does not verify) with the reason, or the connector
    /// unavailable.
    fn connect_failure(&self, e: &hyper_util::client::legacy::Error) -> UpstreamError {
        if let Some(b) = find_blocked(e) {
            return UpstreamError::Blocked {
                connector: self.connector.to_string(),
                detail: b.to_string(),
            };
        }
        if let Some(tls) = find_certificate_error(e) {
            let host = self.url.host().unwrap_or("");
            return UpstreamError::Blocked {
                connector: self.connector.to_string(),
                detail: format!(
                    "the TLS certificate of '{host}' does not verify ({tls}); the gateway \
                     always verifies connector certificates against the public web PKI roots \
                     (EG-2): serve the connector with a certificate for this host name from a \
                     publicly trusted CA"
                ),
            };
        }
        self.unavailable(describe_client_error(e))
    }

    fn build(
        &self,
        method: Method,
        body: Bytes,
        ctx: &RequestCtx,
        credential: &CredentialHeaders,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(self.url.clone());
        let h = b.headers_mut().expect("builder has headers");
        if method == Method::POST {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(
                header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            );
        } else {
            h.insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        for (k, v) in &ctx.protocol_headers {
            if !NEVER_FORWARDED.contains(k) {
                h.insert(k.clone(), v.clone());
            }
        }
        // AUTH-8: the only credential upstream is the gateway's own for this connector.
        for (k, v) in credential {
            h.insert(k.clone(), v.clone());
        }
        if let Some(v) = self.protocol_version.lock().clone() {
            h.insert("mcp-protocol-version", v);
        }
        if let Some(v) = self.session_id.lock().clone() {
            h.insert("mcp-session-id", v);
        }
        if let Some(tp) = ctx
            .traceparent
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("traceparent", tp);
        }
        if let Some(id) = ctx
            .request_id
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("x-request-id", id);
        }
        b.body(Full::new(body)).expect("request parts are valid")
    }

    async fn post(
        &self,
        body: Bytes,
        ctx: &RequestCtx,
    ) -> Result<http::Response<hyper::body::Incoming>, UpstreamError> {
        // One time limit for the whole request, a token fetch included.
        let deadline = tokio::time::Instant::now() + ctx.timeout;
        let credential = match tokio::time::timeout_at(deadline, self.credential_headers(ctx)).await
        {
            Ok(c) => c?,
            Err(_) => {
                return Err(UpstreamError::Credential {
                    connector: self.connector.to_string(),
                    detail: format!(
                        "no token within the request's time limit of {} ms",
                        ctx.timeout.as_millis()
                    ),
                });
            }
        };
        let req = self.build(Method::POST, body, ctx, &credential);
        let resp = match tokio::time::timeout_at(deadline, self.client.request(req)).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    connector: self.connector.to_string(),
                    after: ctx.timeout,
                });
            }
            Ok(Err(e)) => return Err(self.connect_failure(&e)),
            Ok(Ok(r)) => r,
        };
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.credential_refused(ctx);
        }
        if resp.status() == StatusCode::NOT_FOUND && self.session_id.lock().is_some() {
            return Err(UpstreamError::SessionGone {
                connector: self.connector.to_string(),
            });
        }
        Ok(resp)
    }

    /// Opens the GET stream for server-initiated messages, reconnecting with backoff while the
    /// session lives. A 405 means the server has none.
    fn open_get_stream(self: &Arc<Self>) {
        if self.session_id.lock().is_none() {
            return;
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            while !this.closed.load(Ordering::SeqCst) && failures < 8 {
                let ctx = RequestCtx {
                    timeout: Duration::from_secs(30),
                    ..Default::default()
                };
                let credential = match this.credential_headers(&ctx).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(connector = %this.connector, "GET stream not opened: {e}");
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(100u64 << failures.min(6))).await;
                        continue;
                    }
                };
                let req = this.build(Method::GET, Bytes::new(), &ctx, &credential);
                match this.client.request(req).await {
                    Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                    Ok(resp) if resp.status().is_success() && is_sse(&resp) => {
                        failures = 0;
                        let mut events = sse_stream::SseStream::new(resp.into_body());
                        while let Some(ev) = events.next().await {
                            let Ok(ev) = ev else { break };
                            if let Some(data) = ev.data.filter(|d| !d.is_empty()) {
                                let _ = this.inbox.send((this.index, Bytes::from(data))).await;
                            }
                        }
                    }
                    Ok(resp) => {
                        tracing::debug!(connector = %this.connector, status = %resp.status(), "GET stream refused");
                        failures += 1;
                    }
                    Err(e) => {
                        tracing::debug!(connector = %this.connector, "GET stream failed: {}", describe_client_error(&e));
                        failures += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100u64 << failures.min(6))).await;
            }
        });
        if let Some(old) = self.get_stream.lock().replace(task) {
            old.abort();
        }
    }
}

fn is_sse(resp: &http::Response<hyper::body::Incoming>) -> bool {
    content_type(resp).starts_with("text/event-stream")
}

fn content_type(resp: &http::Response<hyper::body::Incoming>) -> String {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The rustls certificate error somewhere in a connection error's causes. tokio-rustls wraps it
/// in an `io::Error`, which hyper-rustls wraps in another, and `io::Error::source()` skips what
/// it wraps: so each `io::Error` is opened as well as each cause followed.
fn find_certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut todo = vec![e];
    // A bound, in case some error's causes loop.
    for _ in 0..32 {
        let err = todo.pop()?;
        if let Some(
            t @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented),
        ) = err.downcast_ref::<rustls::Error>()
        {
            return Some(t.clone());
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            todo.push(inner as &(dyn std::error::Error + 'static));
        }
        if let Some(src) = err.source() {
            todo.push(src);
        }
    }
    None
}

fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// An Arc-wrapped [`HttpUpstream`] (the GET stream task holds a reference).
pub struct SharedHttpUpstream(pub Arc<HttpUpstream>);

impl Upstream for SharedHttpUpstream {
    fn request<'a>(
        &'a self,
        id: &'a str,
        message: Bytes,
        ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<Exchange, UpstreamError>> {
        let this = &self.0;
        Box::pin(async move {
            let is_init = ctx.initialize && this.session_id.lock().is_none();
            let resp = this.post(message, ctx).await?;
            let status = resp.status();
            if is_init && let Some(sid) = resp.headers().get("mcp-session-id") {
                *this.session_id.lock() = Some(sid.clone());
            }
            if !status.is_success() {
                let retry_after = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(parse_retry_after);
                let body = Limited::new(resp.into_body(), 4096)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                // A JSON-RPC error body is the upstream's answer: relay it as such.
                if let Some(head) = upstream_head(&body).filter(|h| h.kind == Kind::Response) {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(Ok(UpMsg::new(body, head)));
                    return Ok(rx);
                }
                let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                return Err(UpstreamError::Protocol {
                    connector: this.connector.to_string(),
                    detail: format!("HTTP {status}: {text}"),
                    status: Some(status.as_u16()),
                    retry_after,
                });
            }
            let ct = content_type(&resp);
            let (tx, rx) = mpsc::channel(64);
            if ct.starts_with("application/json") {
                let body = Limited::new(resp.into_body(), MAX_LINE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| {
                        this.protocol(format!("reading the body: {e}"), Some(status.as_u16()))
                    })?
                    .to_bytes();
                // Read whole when the result is inspected (parsed once); otherwise only the
                // head is read and the result skipped.
                let (head, parsed) =
                    match ctx.parse_result.then(|| upstream_parsed(&body)).flatten() {
                        Some((head, map)) => (Some(head), Some(Box::new(map))),
                        None => (upstream_head(&body), None),
                    };
                match head {
                    Some(head) if head.kind == Kind::Response => {
                        let _ = tx.try_send(Ok(UpMsg {
                            bytes: body,
                            head,
                            parsed,
                        }));
                    }
                    _ => {
                        return Err(this.protocol(
                            "the JSON body is not a JSON-RPC response",
                            Some(status.as_u16()),
                        ));
                    }
                }
            } else if ct.starts_with("text/event-stream") {
                let connector = this.connector.clone();
                let want: Box<str> = id.into();
                let timeout = ctx.timeout;
                tokio::spawn(async move {
                    let mut events = sse_stream::SseStream::new(resp.into_body());
                    let deadline = tokio::time::Instant::now() + timeout;
                    loop {
                        let ev = match tokio::time::timeout_at(deadline, events.next()).await {
                            Err(_) => {
                                let _ = tx
                                    .send(Err(UpstreamError::Timeout {
                                        connector: connector.to_string(),
                                        after: timeout,
                                    }))
                                    .await;
                                return;
                            }
                            Ok(None) => {
                                let _ = tx
                                    .send(Err(UpstreamError::Protocol {
                                        connector: connector.to_string(),
                                        detail: "the event stream ended before the response".into(),
                                        status: Some(status.as_u16()),
                                        retry_after: None,
                                    }))
                                    .await;
                                return;
                            }
                            Ok(Some(Err(e))) => {
                                let _ = tx
                                    .send(Err(UpstreamError::Protocol {
                                        connector: connector.to_string(),
                                        detail: format!("broken event stream: {e}"),
                                        status: Some(status.as_u16()),
                                        retry_after: None,
                                    }))
                                    .await;
                                return;
                            }
                            Ok(Some(Ok(ev))) => ev,
                        };
                        let Some(data) = ev.data.filter(|d| !d.is_empty()) else {
                            continue;
                        };
                        let data = Bytes::from(data);
                        let Some(head) = upstream_head(&data) else {
                            let _ = tx
                                .send(Err(UpstreamError::Protocol {
                                    connector: connector.to_string(),
                                    detail: "an event that is not JSON-RPC".into(),
                                    status: Some(status.as_u16()),
                                    retry_after: None,
                                }))
                                .await;
                            return;
                        };
                        let done = head.kind == Kind::Response
                            && head.id.as_ref().map(|i| i.json()) == Some(&*want);
                        if tx.send(Ok(UpMsg::new(data, head))).await.is_err() || done {
                            return;
                        }
                    }
                });
            } else if status == StatusCode::ACCEPTED {
                return Err(this.protocol(
                    "202 Accepted to a request (a response was expected)",
                    Some(202),
                ));
            } else {
                return Err(this.protocol(
                    format!("unexpected content type {ct:?}"),
                    Some(status.as_u16()),
                ));
            }
            Ok(rx)
        })
    }

    fn send<'a>(
        &'a self,
        message: Bytes,
        ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<(), UpstreamError>> {
        let this = &self.0;
        Box::pin(async move {
            let resp = this.post(message, ctx).await?;
            let status = resp.status();
            // Drain, so the connection goes back to the pool.
            let _ = Limited::new(resp.into_body(), 64 * 1024).collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(this.protocol(
                    format!("HTTP {status} to a notification"),
                    Some(status.as_u16()),
                ))
            }
        })
    }

    fn initialized(&self) {
        self.0.open_get_stream();
    }

    fn set_protocol_version(&self, version: &str) {
        *self.0.protocol_version.lock() = HeaderValue::from_str(version).ok();
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let this = &self.0;
        Box::pin(async move {
            this.closed.store(true, Ordering::SeqCst);
            if let Some(t) = this.get_stream.lock().take() {
                t.abort();
            }
            if this.session_id.lock().is_some() {
                let ctx = RequestCtx {
                    timeout: Duration::from_secs(5),
                    ..Default::default()
                };
                // Without a credential the connector would refuse the DELETE anyway; its session
                // then ends when it expires there.
                let Ok(credential) = this.credential_headers(&ctx).await else {
                    return;
                };
                let req = this.build(Method::DELETE, Bytes::new(), &ctx, &credential);
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), this.client.request(req)).await;
            }
        })
    }
}
