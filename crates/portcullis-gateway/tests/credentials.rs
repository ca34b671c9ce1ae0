//! No token passthrough (AUTH-8): the gateway calls each connector with its own credential for
//! it, never the client's token. An in-process MCP upstream on loopback records the headers of
//! every request it gets; loopback token endpoints count and record token requests; time is a
//! `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::DateTime;
use parking_lot::Mutex;
use portcullis_core::clock::ManualClock;
use portcullis_core::{
    Clock, MemorySink, Principal, Secret, TokenRejection, TokenVerifier, VerifyFuture,
};
use portcullis_gateway::upstream::credentials::{Caller, CredentialProvider};
use portcullis_gateway::{Gateway, GatewayAuth};
use serde_json::{Value, json};

/// Every request an in-process server got: its headers and body.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(HeaderMap, String)>>>);

impl Recorder {
    fn push(&self, h: &HeaderMap, body: &str) {
        self.0.lock().push((h.clone(), body.to_string()));
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
    fn headers(&self) -> Vec<HeaderMap> {
        self.0.lock().iter().map(|(h, _)| h.clone()).collect()
    }
    fn bodies(&self) -> Vec<String> {
        self.0.lock().iter().map(|(_, b)| b.clone()).collect()
    }
    /// The `Authorization` values seen, one per request (`None` where there was none).
    fn authorizations(&self) -> Vec<Option<String>> {
        self.headers()
            .iter()
            .map(|h| {
                h.get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
            })
            .collect()
    }
    /// Whether any header value of any request holds `needle`.
    fn saw(&self, needle: &str) -> bool {
        self.headers().iter().any(|h| {
            h.values()
                .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(needle))
        })
    }
}

async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A Streamable HTTP MCP server that records every request and answers initialize, notifications
/// and tool calls with JSON; no GET stream (405).
async fn mcp_stub(rec: Recorder) -> String {
    let app = axum::Router::new().route(
        "/mcp",
        post({
            let rec = rec.clone();
            move |headers: HeaderMap, body: String| async move {
                rec.push(&headers, &body);
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let method = v["method"].as_str().unwrap_or("");
                if method.starts_with("notifications/") {
                    return StatusCode::ACCEPTED.into_response();
                }
                let result = if method == "initialize" {
                    json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"stub","version":"1"}})
                } else {
                    json!({"content":[{"type":"text","text":"done"}]})
                };
                (
                    [("content-type", "application/json")],
                    json!({"jsonrpc":"2.0","id":v["id"],"result":result}).to_string(),
                )
                    .into_response()
            }
        })
        .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
        .delete({
            let rec = rec.clone();
            move |headers: HeaderMap| async move {
                rec.push(&headers, "");
                StatusCode::OK
            }
        }),
    );
    format!("http://{}/mcp", serve(app).await)
}

/// A token endpoint that issues `{prefix}-{n}` tokens living `expires_in` seconds and records
/// each request.
async fn token_endpoint(rec: Recorder, prefix: &'static str, expires_in: u64) -> String {
    let app = axum::Router::new().route(
        "/token",
        post(move |headers: HeaderMap, body: String| async move {
            rec.push(&headers, &body);
            let n = rec.len();
            (
                [("content-type", "application/json")],
                json!({"access_token": format!("{prefix}-{n}"), "token_type": "Bearer", "expires_in": expires_in, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}).to_string(),
            )
        }),
    );
    format!("http://{}/token", serve(app).await)
}

/// A token endpoint that refuses the client (RFC 6749 §5.2).
async fn refusing_token_endpoint() -> String {
    let app = axum::Router::new().route(
        "/token",
        post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"error":"invalid_client","error_description":"unknown client"}"#,
            )
        }),
    );
    format!("http://{}/token", serve(app).await)
}

/// A loopback URL where nothing listens.
async fn closed_port_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/token")
}

/// Accepts exactly `caller-token`, as a principal whose token expires at `expires_at`.
struct OneToken {
    expires_at: i64,
}

impl TokenVerifier for OneToken {
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            if token != "caller-token" {
                return Err(TokenRejection::BadSignature);
            }
            Ok(Principal {
                subject: "alice".into(),
                display_name: None,
                groups: vec![],
                roles: vec![],
                client_id: "test-client".into(),
                scopes: vec!["api:admin".into()],
                audience: resource.into(),
                issuer: "https://issuer.test".into(),
                token_id: "jti-1".into(),
                expires_at: self.expires_at,
                environment: None,
            })
        })
    }
}

const START: i64 = 1_800_000_000;

fn clock() -> ManualClock {
    ManualClock::new(DateTime::from_timestamp(START, 0).unwrap())
}

struct Running {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A gateway with one http connector `api` at `url` and the given credential block (already
/// indented under `credential:`), secrets in `dir`.
async fn gateway(
    url: &str,
    credential: Option<&str>,
    dir: tempfile::TempDir,
    clock: &ManualClock,
    auth: Option<i64>,
) -> Running {
    gateway_with_timeout(url, credential, dir, clock, auth, 10_000).await
}

/// [`gateway`] with the connector's request time limit.
async fn gateway_with_timeout(
    url: &str,
    credential: Option<&str>,
    dir: tempfile::TempDir,
    clock: &ManualClock,
    auth: Option<i64>,
    timeout_ms: u64,
) -> Running {
    let cred = credential
        .map(|c| format!("    credential:\n{c}"))
        .unwrap_or_default();
    // A token endpoint that hangs must cost a caller this connector's limit, not more.
    let yaml = format!(
        "connectors:\n  api:\n    type: http\n    url: {url}\n    timeout_ms: {timeout_ms}\n{cred}"
    );
    let config = portcullis_config::load_str(&yaml, "test.yaml").expect("valid test config");
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let mut gw = Gateway::new(config, Arc::new(MemorySink::default()), clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    if let Some(expires_at) = auth {
        gw = gw.with_auth(GatewayAuth {
            verifier: Arc::new(OneToken { expires_at }),
            public_url: base.clone(),
            authorization_servers: vec!["https://issuer.test".into()],
            environment: "dev".into(),
        });
    }
    let router = gw.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running {
        base,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    /// One JSON-RPC POST to `/mcp/api` with the client's `Authorization: Bearer <token>`.
    async fn rpc(
        &self,
        session: Option<&str>,
        token: &str,
        msg: Value,
    ) -> (u16, Option<String>, Value) {
        let mut req = self
            .client
            .post(format!("{}/mcp/api", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .header("cookie", "client-session=client-cookie")
            .body(msg.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_string());
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else if ct.starts_with("text/event-stream") {
            let last = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            serde_json::from_str(last).unwrap()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, sid, v)
    }

    /// initialize + initialized; the session id.
    async fn open(&self, token: &str) -> String {
        let (_, sid, v) = self
            .rpc(None, token, json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
            .await;
        assert!(v.get("result").is_some(), "initialize failed: {v}");
        let sid = sid.expect("a session id");
        let (status, _, _) = self
            .rpc(
                Some(&sid),
                token,
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await;
        assert_eq!(status, 202);
        sid
    }

    async fn call(&self, sid: &str, token: &str, id: i64) -> Value {
        self.rpc(
            Some(sid),
            token,
            json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"do","arguments":{}}}),
        )
        .await
        .2
    }
}

fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, value).unwrap();
    p.display().to_string()
}

/// (a) AUTH-8: the upstream sees the connector's credential and never the client's token or
/// cookies; a rotated secret file takes effect without a restart.
#[tokio::test]
async fn the_connector_sees_its_own_credential_never_the_clients_token() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(&dir, "token", "connector-token-1\n");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: bearer\n      token: {{file: {token}}}\n"
        )),
        dir,
        &clock,
        None,
    )
    .await;
    let sid = gw.open("client-token").await;
    let v = gw.call(&sid, "client-token", 1).await;
    assert_eq!(v["result"]["content"][0]["text"], "done", "{v}");
    assert_eq!(up.len(), 3, "initialize, initialized, call");
    for a in up.authorizations() {
        assert_eq!(a.as_deref(), Some("Bearer connector-token-1"));
    }
    assert!(
        !up.saw("client-token"),
        "the client's token reached the connector"
    );
    assert!(
        !up.saw("client-cookie"),
        "the client's cookie reached the connector"
    );

    // Rotation: the file changes, the next request carries the new token.
    std::fs::write(dir_path(&token), "connector-token-2-rotated").unwrap();
    let v = gw.call(&sid, "client-token", 2).await;
    assert!(v.get("result").is_some(), "{v}");
    assert_eq!(
        up.authorizations().last().unwrap().as_deref(),
        Some("Bearer connector-token-2-rotated")
    );
}

fn dir_path(p: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(p)
}

/// (a) with authentication on: the verified caller token is still not forwarded.
#[tokio::test]
async fn a_verified_caller_token_is_not_forwarded_either() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(&dir, "key", "api-key-1");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: api_key\n      header: X-Api-Key\n      value: {{file: {key}}}\n"
        )),
        dir,
        &clock,
        Some(START + 3600),
    )
    .await;
    let sid = gw.open("caller-token").await;
    let v = gw.call(&sid, "caller-token", 1).await;
    assert!(v.get("result").is_some(), "{v}");
    assert!(up.len() >= 3);
    for h in up.headers() {
        assert_eq!(h.get("x-api-key").unwrap(), "api-key-1");
        assert!(h.get("authorization").is_none(), "{h:?}");
    }
    assert!(!up.saw("caller-token"));
}

/// (b) No credential configured: no `Authorization` header upstream at all.
#[tokio::test]
async fn without_a_credential_no_authorization_goes_upstream() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let clock = clock();
    let gw = gateway(&url, None, tempfile::tempdir().unwrap(), &clock, None).await;
    let sid = gw.open("client-token").await;
    let v = gw.call(&sid, "client-token", 1).await;
    assert!(v.get("result").is_some(), "{v}");
    assert_eq!(up.authorizations(), vec![None, None, None]);
    assert!(!up.saw("client-token"));
}

/// (c) Client credentials: one token request for many calls, a new one after expiry.
#[tokio::test]
async fn client_credentials_are_fetched_once_and_refreshed_after_expiry() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let tokens = Recorder::default();
    let token_url = token_endpoint(tokens.clone(), "cc", 60).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "s3cret");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: client_credentials\n      token_url: {token_url}\n      client_id: gateway\n      client_secret: {{file: {secret}}}\n      scope: api.read\n      resource: {url}\n"
        )),
        dir,
        &clock,
        None,
    )
    .await;
    let sid = gw.open("client-token").await;
    for id in 1..=5 {
        let v = gw.call(&sid, "client-token", id).await;
        assert!(v.get("result").is_some(), "{v}");
    }
    assert_eq!(tokens.len(), 1, "one token request for many calls");
    assert!(
        up.authorizations()
            .iter()
            .all(|a| a.as_deref() == Some("Bearer cc-1"))
    );
    // The token request: client_secret_basic, the grant, scope and resource (RFC 8707).
    let t = &tokens.headers()[0];
    let basic = t.get("authorization").unwrap().to_str().unwrap();
    assert_eq!(
        basic, "Basic Z2F0ZXdheTpzM2NyZXQ=",
        "base64 of gateway:s3cret"
    );
    let form = &tokens.bodies()[0];
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(form.contains("scope=api.read"), "{form}");
    assert!(form.contains("resource=http%3A%2F%2F127.0.0.1"), "{form}");
    assert!(
        !form.contains("s3cret"),
        "basic auth keeps the secret out of the body"
    );

    // Still fresh 50 s later; refreshed once past the early-refresh point (60 s less 6 s).
    clock.advance(Duration::from_secs(50));
    gw.call(&sid, "client-token", 6).await;
    assert_eq!(tokens.len(), 1);
    clock.advance(Duration::from_secs(5));
    let v = gw.call(&sid, "client-token", 7).await;
    assert!(v.get("result").is_some(), "{v}");
    assert_eq!(tokens.len(), 2, "a new token after expiry");
    assert_eq!(
        up.authorizations().last().unwrap().as_deref(),
        Some("Bearer cc-2")
    );
    assert!(!up.saw("client-token"));
}

/// (c) A token endpoint that is down: a clear -32002 error, and the connector is never called.
#[tokio::test]
async fn a_token_endpoint_that_is_down_is_a_clear_error() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let token_url = closed_port_url().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "s3cret");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: client_credentials\n      token_url: {token_url}\n      client_id: gateway\n      client_secret: {{file: {secret}}}\n"
        )),
        dir,
        &clock,
        None,
    )
    .await;
    let (_, _, v) = gw
        .rpc(None, "client-token", json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    let text = v.to_string();
    assert!(
        text.contains("could not obtain a credential for connector 'api'"),
        "{v}"
    );
    assert!(text.contains("is unreachable"), "{v}");
    assert!(text.contains("-32002"), "{v}");
    assert!(!text.contains("s3cret"), "{v}");
    assert_eq!(up.len(), 0, "fail closed: nothing reached the connector");
}

/// (c) A token endpoint that never answers: the call gets a credential error within the
/// connector's time limit, not a hang.
#[tokio::test]
async fn a_token_endpoint_that_hangs_is_bounded_by_the_request_timeout() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let app = axum::Router::new().route(
        "/token",
        post(|| async {
            std::future::pending::<()>().await;
            ""
        }),
    );
    let token_url = format!("http://{}/token", serve(app).await);
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "s");
    let clock = clock();
    let gw = gateway_with_timeout(
        &url,
        Some(&format!(
            "      type: client_credentials\n      token_url: {token_url}\n      client_id: gateway\n      client_secret: {{file: {secret}}}\n"
        )),
        dir,
        &clock,
        None,
        300,
    )
    .await;
    let (_, _, v) = gw
        .rpc(None, "client-token", json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    let text = v.to_string();
    assert!(
        text.contains("could not obtain a credential for connector 'api'"),
        "{v}"
    );
    assert!(
        text.contains("no token within the request's time limit of 300 ms"),
        "{v}"
    );
    assert_eq!(up.len(), 0);
}

/// (d) Token exchange: the STS gets the caller's token as `subject_token`; the connector gets
/// only the exchanged token. Cached per caller.
#[tokio::test]
async fn token_exchange_sends_the_caller_token_to_the_sts_only() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let sts = Recorder::default();
    let sts_url = token_endpoint(sts.clone(), "xchg", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "sts-secret");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: token_exchange\n      token_url: {sts_url}\n      client_id: gateway\n      client_secret: {{file: {secret}}}\n      audience: api-backend\n      auth_method: client_secret_post\n"
        )),
        dir,
        &clock,
        Some(START + 3600),
    )
    .await;
    let sid = gw.open("caller-token").await;
    for id in 1..=3 {
        let v = gw.call(&sid, "caller-token", id).await;
        assert!(v.get("result").is_some(), "{v}");
    }
    assert_eq!(sts.len(), 1, "cached for this caller");
    let form = &sts.bodies()[0];
    for want in [
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange",
        "subject_token=caller-token",
        "subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
        "audience=api-backend",
        "client_id=gateway",
        "client_secret=sts-secret",
    ] {
        assert!(form.contains(want), "{want} missing from {form}");
    }
    assert!(
        up.authorizations()
            .iter()
            .all(|a| a.as_deref() == Some("Bearer xchg-1"))
    );
    assert!(
        !up.saw("caller-token"),
        "the caller's token reached the connector"
    );
}

/// (d) Token exchange without a caller token (no authentication configured) fails closed.
#[tokio::test]
async fn token_exchange_without_a_caller_token_fails_closed() {
    let up = Recorder::default();
    let url = mcp_stub(up.clone()).await;
    let sts = Recorder::default();
    let sts_url = token_endpoint(sts.clone(), "xchg", 300).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "secret", "s");
    let clock = clock();
    let gw = gateway(
        &url,
        Some(&format!(
            "      type: token_exchange\n      token_url: {sts_url}\n      client_id: gateway\n      client_secret: {{file: {secret}}}\n"
        )),
        dir,
        &clock,
        None,
    )
    .await;
    let (_, _, v) = gw
        .rpc(None, "client-token", json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    assert!(
        v.to_string()
            .contains("token exchange needs the caller's verified access token"),
        "{v}"
    );
    assert_eq!(up.len(), 0);
    assert_eq!(sts.len(), 0);
}

fn provider(
    yaml_credential: &str,
    dir: &tempfile::TempDir,
    clock: &ManualClock,
) -> CredentialProvider {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = dir;
    let yaml = format!(
        "connectors:\n  api:\n    type: http\n    url: http://127.0.0.1:1/mcp\n    credential:\n{yaml_credential}"
    );
    let config = portcullis_config::load_str(&yaml, "t.yaml").unwrap();
    CredentialProvider::new(
        "api",
        config.connectors[0].credential.as_ref().unwrap(),
        portcullis_gateway::upstream::http::client(),
        Arc::new(clock.clone()),
    )
}

/// Single flight: a burst of concurrent requests costs one token request.
#[tokio::test]
async fn concurrent_requests_share_one_token_fetch() {
    let tokens = Recorder::default();
    let token_url = token_endpoint(tokens.clone(), "cc", 600).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "s", "x");
    let clock = clock();
    let p = provider(
        &format!(
            "      type: client_credentials\n      token_url: {token_url}\n      client_id: gw\n      client_secret: {{file: {secret}}}\n"
        ),
        &dir,
        &clock,
    );
    let all = futures::future::join_all((0..20).map(|_| p.headers(Caller::default()))).await;
    for h in all {
        let h = h.unwrap();
        assert_eq!(h[0].1, "Bearer cc-1");
        assert!(
            h[0].1.is_sensitive(),
            "kept out of HPACK tables and Debug output"
        );
    }
    assert_eq!(tokens.len(), 1);
}

/// A token endpoint's OAuth error is relayed in words; after a 401 from the connector the cached
/// token is dropped.
#[tokio::test]
async fn oauth_errors_are_relayed_and_refused_tokens_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "s", "x");
    let clock = clock();
    let bad = refusing_token_endpoint().await;
    let p = provider(
        &format!(
            "      type: client_credentials\n      token_url: {bad}\n      client_id: gw\n      client_secret: {{file: {secret}}}\n"
        ),
        &dir,
        &clock,
    );
    let e = p.headers(Caller::default()).await.unwrap_err();
    assert_eq!(e.code(), -32002);
    let msg = e.to_string();
    assert!(
        msg.starts_with("could not obtain a credential for connector 'api': "),
        "{msg}"
    );
    assert!(
        msg.contains("HTTP 401 Unauthorized (invalid_client: unknown client)"),
        "{msg}"
    );

    let tokens = Recorder::default();
    let good = token_endpoint(tokens.clone(), "cc", 600).await;
    let p = provider(
        &format!(
            "      type: client_credentials\n      token_url: {good}\n      client_id: gw\n      client_secret: {{file: {secret}}}\n"
        ),
        &dir,
        &clock,
    );
    p.headers(Caller::default()).await.unwrap();
    p.invalidate(Caller::default());
    let h = p.headers(Caller::default()).await.unwrap();
    assert_eq!(h[0].1, "Bearer cc-2");
    assert_eq!(tokens.len(), 2);
}

/// Exchanged tokens are cached per caller and never past the caller's own expiry.
#[tokio::test]
async fn exchanged_tokens_are_per_caller_and_bounded_by_its_expiry() {
    let sts = Recorder::default();
    let sts_url = token_endpoint(sts.clone(), "xchg", 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir, "s", "x");
    let clock = clock();
    let p = provider(
        &format!(
            "      type: token_exchange\n      token_url: {sts_url}\n      client_id: gw\n      client_secret: {{file: {secret}}}\n"
        ),
        &dir,
        &clock,
    );
    let alice = Secret::new("alice-token");
    let bob = Secret::new("bob-token");
    let caller = |t| Caller {
        token: Some(t),
        expires_at: Some(START + 30),
    };
    assert_eq!(
        p.headers(caller(&alice)).await.unwrap()[0].1,
        "Bearer xchg-1"
    );
    assert_eq!(
        p.headers(caller(&alice)).await.unwrap()[0].1,
        "Bearer xchg-1"
    );
    assert_eq!(p.headers(caller(&bob)).await.unwrap()[0].1, "Bearer xchg-2");
    assert_eq!(sts.len(), 2);
    // Past the caller's expiry: refused, and no new exchange is attempted.
    clock.advance(Duration::from_secs(31));
    let e = p.headers(caller(&alice)).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("the caller's access token has expired"),
        "{e}"
    );
    assert_eq!(sts.len(), 2);
    // The same caller with a longer-lived token: the old cache entry ended at its expiry.
    let later = Caller {
        token: Some(&alice),
        expires_at: Some(START + 3600),
    };
    assert_eq!(p.headers(later).await.unwrap()[0].1, "Bearer xchg-3");
    assert!(!format!("{p:?}").contains("alice-token"));
}
