//! Upstream resilience and egress at connect time (EG-1, EG-2), over real HTTP on loopback:
//! read-only requests retried after failures that left no answer, writes never retried, the
//! circuit breaker on an injected clock, connector names that resolve to the cloud metadata
//! service refused at connect time, and certificates that do not verify.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::response::IntoResponse;
use parking_lot::Mutex;
use portcullis_core::clock::ManualClock;
use portcullis_core::{Clock, Event, MemorySink, SystemClock};
use portcullis_gateway::Gateway;
use portcullis_gateway::upstream::resilience::StaticResolver;
use serde_json::{Value, json};

struct Running {
    base: String,
    sink: Arc<MemorySink>,
    gateway: Gateway,
    client: reqwest::Client,
}

async fn start(yaml: &str, clock: Arc<dyn Clock>, resolver: Option<StaticResolver>) -> Running {
    let config = portcullis_config::load_str(yaml, "test.yaml").expect("valid test config");
    let sink = Arc::new(MemorySink::default());
    let mut gateway = Gateway::new(config, sink.clone(), clock);
    if let Some(r) = resolver {
        gateway = gateway.with_resolver(Arc::new(r));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running {
        base: format!("http://{addr}"),
        sink,
        gateway,
        client: reqwest::Client::new(),
    }
}

impl Running {
    async fn post(&self, path: &str, session: Option<&str>, msg: Value) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(msg.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        let v = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, v)
    }

    /// Initializes a session; the answer's error, when there is one.
    async fn try_initialize(&self, path: &str) -> Result<String, Value> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_string());
        let v: Value = resp.json().await.unwrap();
        let Some(sid) = sid.filter(|_| v.get("result").is_some()) else {
            return Err(v);
        };
        let (status, _) = self
            .post(
                path,
                Some(&sid),
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await;
        assert_eq!(status, 202);
        Ok(sid)
    }

    async fn initialize(&self, path: &str) -> String {
        match self.try_initialize(path).await {
            Ok(sid) => sid,
            Err(v) => panic!("initialize failed: {v}"),
        }
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The recorded events of `method` on `target`, after a shutdown that flushes them.
    async fn events(&self, method: &str, target: Option<&str>) -> Vec<Event> {
        self.gateway.shutdown().await;
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.method.as_deref() == Some(method) && e.target.as_deref() == target)
            .collect()
    }
}

fn call(id: i64, name: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":{}}})
}

/// What a scripted connector does with one request instead of answering it.
#[derive(Clone, Copy)]
enum Failure {
    /// An HTTP status with a plain-text body, and a `Retry-After` in seconds.
    Status(u16, Option<u64>),
    /// No answer at all.
    Hang,
}

/// A Streamable HTTP MCP connector whose failures are scripted per tool (or per method),
/// counting what reaches it.
#[derive(Default)]
struct Script {
    /// Failures still to come, by tool name (tools/call) or method.
    failures: Mutex<HashMap<String, VecDeque<Failure>>>,
    /// While set, every request but initialize and notifications gets a 503.
    down: AtomicBool,
    /// Requests that reached it, by tool name or method.
    hits: Mutex<HashMap<String, u32>>,
}

impl Script {
    fn fail(&self, key: &str, failures: &[Failure]) {
        self.failures
            .lock()
            .entry(key.to_string())
            .or_default()
            .extend(failures.iter().copied());
    }

    fn hits(&self, key: &str) -> u32 {
        self.hits.lock().get(key).copied().unwrap_or(0)
    }
}

const TOOLS: &str = r#"[
  {"name":"lookup","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}},
  {"name":"write","inputSchema":{"type":"object"}},
  {"name":"undo","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":false,"destructiveHint":false,"idempotentHint":true}}
]"#;

async fn scripted() -> (String, Arc<Script>) {
    use axum::routing::post;
    let script = Arc::new(Script::default());
    let s = script.clone();
    let app = axum::Router::new().route(
        "/mcp",
        post(move |body: String| {
            let s = s.clone();
            async move {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let method = v["method"].as_str().unwrap_or("").to_string();
                let json = |v: Value| {
                    ([("content-type", "application/json")], v.to_string()).into_response()
                };
                if method == "initialize" {
                    return json(
                        json!({"jsonrpc":"2.0","id":v["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{},"resources":{}},"serverInfo":{"name":"scripted","version":"1"}}}),
                    );
                }
                if method.starts_with("notifications/") {
                    return axum::http::StatusCode::ACCEPTED.into_response();
                }
                let key = match method.as_str() {
                    "tools/call" => v["params"]["name"].as_str().unwrap_or("").to_string(),
                    m => m.to_string(),
                };
                *s.hits.lock().entry(key.clone()).or_default() += 1;
                let failure = if s.down.load(Ordering::SeqCst) {
                    Some(Failure::Status(503, None))
                } else {
                    s.failures
                        .lock()
                        .get_mut(&key)
                        .and_then(|q| q.pop_front())
                };
                match failure {
                    Some(Failure::Hang) => {
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                    Some(Failure::Status(code, after)) => {
                        let mut r = (
                            axum::http::StatusCode::from_u16(code).unwrap(),
                            format!("scripted {code}"),
                        )
                            .into_response();
                        if let Some(a) = after {
                            r.headers_mut()
                                .insert("retry-after", a.to_string().parse().unwrap());
                        }
                        r
                    }
                    None => {
                        let result = match method.as_str() {
                            "tools/list" => {
                                json!({"tools": serde_json::from_str::<Value>(TOOLS).unwrap()})
                            }
                            "resources/read" => {
                                json!({"contents":[{"uri":"doc://a","text":"the document"}]})
                            }
                            _ => json!({"content":[{"type":"text","text":format!("done: {key}")}]}),
                        };
                        json(json!({"jsonrpc":"2.0","id":v["id"],"result":result}))
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/mcp"), script)
}

fn http_connector(url: &str, extra: &str) -> String {
    format!("connectors:\n  up:\n    type: http\n    url: {url}\n{extra}")
}

/// A session on the scripted connector whose tools the gateway has seen listed.
async fn listed_session(gw: &Running) -> String {
    let sid = gw.initialize("/mcp/up").await;
    let (_, v) = gw
        .post(
            "/mcp/up",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":100,"method":"tools/list"}),
        )
        .await;
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 3, "{v}");
    sid
}

#[tokio::test]
async fn a_read_only_call_is_retried_after_a_503_and_answered() {
    let (url, script) = scripted().await;
    let gw = start(&http_connector(&url, ""), Arc::new(SystemClock), None).await;
    let sid = listed_session(&gw).await;
    script.fail("lookup", &[Failure::Status(503, None)]);
    let (status, v) = gw.post("/mcp/up", Some(&sid), call(1, "lookup")).await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["content"][0]["text"], "done: lookup", "{v}");
    assert_eq!(script.hits("lookup"), 2);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"portcullis_upstream_retries_total{connector="up"} 1"#),
        "{metrics}"
    );
    let events = gw.events("tools/call", Some("lookup")).await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0].reasons.contains(&"retried:1".to_string()),
        "{:?}",
        events[0].reasons
    );
}

#[tokio::test]
async fn a_write_is_never_retried() {
    let (url, script) = scripted().await;
    let gw = start(&http_connector(&url, ""), Arc::new(SystemClock), None).await;
    let sid = listed_session(&gw).await;
    // Not read-only, even though idempotent and not destructive: a write applied twice may
    // still differ from one applied once.
    for (id, tool) in [(1, "write"), (2, "undo")] {
        script.fail(tool, &[Failure::Status(503, None)]);
        let (_, v) = gw.post("/mcp/up", Some(&sid), call(id, tool)).await;
        assert_eq!(v["error"]["code"], -32003, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("connector 'up'") && m.contains("HTTP 503"),
            "{m}"
        );
        assert_eq!(script.hits(tool), 1, "{tool} was sent again");
    }
    let events = gw.events("tools/call", Some("write")).await;
    assert!(
        !events[0].reasons.iter().any(|r| r.starts_with("retried")),
        "{:?}",
        events[0].reasons
    );
}

#[tokio::test]
async fn a_tool_the_gateway_has_not_seen_listed_is_not_retried() {
    let (url, script) = scripted().await;
    let gw = start(&http_connector(&url, ""), Arc::new(SystemClock), None).await;
    let sid = gw.initialize("/mcp/up").await;
    script.fail("lookup", &[Failure::Status(503, None)]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(1, "lookup")).await;
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert_eq!(script.hits("lookup"), 1);
}

#[tokio::test]
async fn protocol_reads_are_retried_and_retries_are_bounded() {
    let (url, script) = scripted().await;
    let gw = start(&http_connector(&url, ""), Arc::new(SystemClock), None).await;
    let sid = listed_session(&gw).await;
    let read = |id: i64| json!({"jsonrpc":"2.0","id":id,"method":"resources/read","params":{"uri":"doc://a"}});
    script.fail(
        "resources/read",
        &[Failure::Status(502, None), Failure::Status(504, None)],
    );
    let (_, v) = gw.post("/mcp/up", Some(&sid), read(1)).await;
    assert_eq!(v["result"]["contents"][0]["text"], "the document", "{v}");
    assert_eq!(script.hits("resources/read"), 3);
    // The default is two retries: the fourth failure reaches the client.
    script.fail("lookup", &[Failure::Status(503, None); 4]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(2, "lookup")).await;
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert_eq!(script.hits("lookup"), 3);
    let events = gw.events("resources/read", Some("doc://a")).await;
    assert!(events[0].reasons.contains(&"retried:2".to_string()));
}

#[tokio::test]
async fn retry_after_is_honoured_only_when_short_and_within_the_deadline() {
    let (url, script) = scripted().await;
    let gw = start(
        &http_connector(&url, "    timeout_ms: 1500\n"),
        Arc::new(SystemClock),
        None,
    )
    .await;
    let sid = listed_session(&gw).await;
    script.fail("lookup", &[Failure::Status(429, Some(0))]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(1, "lookup")).await;
    assert_eq!(v["result"]["content"][0]["text"], "done: lookup", "{v}");
    assert_eq!(script.hits("lookup"), 2);
    // Longer than a retry waits.
    script.fail("lookup", &[Failure::Status(429, Some(3))]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(2, "lookup")).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("HTTP 429"),
        "{v}"
    );
    assert_eq!(script.hits("lookup"), 3);
    // Short enough, but it would end after the request's 1.5 s deadline.
    script.fail("lookup", &[Failure::Status(503, Some(2))]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(3, "lookup")).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("HTTP 503"),
        "{v}"
    );
    assert_eq!(script.hits("lookup"), 4);
}

#[tokio::test]
async fn a_slow_read_only_call_times_out_with_a_clear_error_and_is_not_retried() {
    let (url, script) = scripted().await;
    let gw = start(
        &http_connector(&url, "    timeout_ms: 300\n"),
        Arc::new(SystemClock),
        None,
    )
    .await;
    let sid = listed_session(&gw).await;
    script.fail("lookup", &[Failure::Hang]);
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(1, "lookup")).await;
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert_eq!(
        v["error"]["message"],
        "connector 'up' did not answer within 300 ms"
    );
    assert_eq!(script.hits("lookup"), 1);
}

#[tokio::test]
async fn a_read_only_call_is_retried_after_the_connection_closed_without_an_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A connector speaking just enough HTTP/1.1 by hand, one request per connection, that
    // closes the connection of the first tools/call without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, len) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse::<usize>().unwrap())
                            .unwrap_or(0);
                        break (p + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if buf.starts_with(b"GET") {
                    let _ = sock
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let v: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or_default();
                let method = v["method"].as_str().unwrap_or("");
                let body = match method {
                    "initialize" => {
                        json!({"jsonrpc":"2.0","id":v["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"raw","version":"1"}}})
                    }
                    "tools/list" => {
                        json!({"jsonrpc":"2.0","id":v["id"],"result":{"tools": serde_json::from_str::<Value>(TOOLS).unwrap()}})
                    }
                    "tools/call" => {
                        let first = {
                            let mut n = c.lock();
                            *n += 1;
                            *n == 1
                        };
                        if first {
                            // Dropped unanswered: the client sees the connection close.
                            return;
                        }
                        json!({"jsonrpc":"2.0","id":v["id"],"result":{"content":[{"type":"text","text":"answered"}]}})
                    }
                    _ => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                };
                let body = body.to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    let gw = start(
        &http_connector(&format!("http://{addr}/mcp"), ""),
        Arc::new(SystemClock),
        None,
    )
    .await;
    let sid = listed_session(&gw).await;
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(1, "lookup")).await;
    assert_eq!(v["result"]["content"][0]["text"], "answered", "{v}");
    assert_eq!(*calls.lock(), 2);
    // The same for a write: the closed connection reaches the client as unavailability.
    *calls.lock() = 0;
    let (_, v) = gw.post("/mcp/up", Some(&sid), call(2, "write")).await;
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connector 'up' is unavailable"),
        "{v}"
    );
    assert_eq!(*calls.lock(), 1);
}

#[tokio::test]
async fn the_breaker_opens_refuses_half_opens_after_the_cooldown_and_closes() {
    let (url, script) = scripted().await;
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let gw = start(
        &http_connector(
            &url,
            "    egress:\n      retries: 0\n      breaker_failures: 2\n      breaker_cooldown_secs: 30\n",
        ),
        Arc::new(clock.clone()),
        None,
    )
    .await;
    let a = listed_session(&gw).await;
    script.down.store(true, Ordering::SeqCst);
    for id in 1..=2 {
        let (_, v) = gw.post("/mcp/up", Some(&a), call(id, "write")).await;
        assert_eq!(v["error"]["code"], -32003, "{v}");
    }
    assert_eq!(script.hits("write"), 2);
    // Open: refused at once, in every session of the connector, without reaching it.
    let b = gw.initialize("/mcp/up").await;
    for (sid, id) in [(&a, 3), (&b, 4)] {
        let (_, v) = gw.post("/mcp/up", Some(sid), call(id, "write")).await;
        assert_eq!(v["error"]["code"], -32002, "{v}");
        assert_eq!(
            v["error"]["message"],
            "connector 'up' is failing: 2 consecutive failures; calls are refused for the next 30 s"
        );
    }
    assert_eq!(script.hits("write"), 2);
    assert!(
        gw.metrics()
            .await
            .contains(r#"portcullis_circuit_breaker_state{connector="up"} 2"#)
    );
    // After the cool-down, one trial: it fails, and the breaker opens again.
    clock.advance(Duration::from_secs(30));
    assert!(
        gw.metrics()
            .await
            .contains(r#"portcullis_circuit_breaker_state{connector="up"} 1"#)
    );
    let (_, v) = gw.post("/mcp/up", Some(&a), call(5, "write")).await;
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert_eq!(script.hits("write"), 3);
    clock.advance(Duration::from_secs(10));
    let (_, v) = gw.post("/mcp/up", Some(&b), call(6, "write")).await;
    assert_eq!(
        v["error"]["message"],
        "connector 'up' is failing: 3 consecutive failures; calls are refused for the next 20 s"
    );
    // The connector recovers; the next trial succeeds and closes the breaker.
    script.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(20));
    let (_, v) = gw.post("/mcp/up", Some(&b), call(7, "write")).await;
    assert_eq!(v["result"]["content"][0]["text"], "done: write", "{v}");
    let (_, v) = gw.post("/mcp/up", Some(&a), call(8, "write")).await;
    assert_eq!(v["result"]["content"][0]["text"], "done: write", "{v}");
    assert!(
        gw.metrics()
            .await
            .contains(r#"portcullis_circuit_breaker_state{connector="up"} 0"#)
    );
    assert!(
        gw.metrics()
            .await
            .contains(r#"portcullis_circuit_breaker_refusals_total{connector="up"} 3"#)
    );
    let events = gw.events("tools/call", Some("write")).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.reasons.contains(&"circuit_open".to_string()))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_name_resolving_to_the_metadata_service_is_refused_at_connect_time() {
    let (url, _script) = scripted().await;
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp")
        .to_string();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let resolver = StaticResolver::new([
        ("fine.test".to_string(), vec![ip("127.0.0.1")]),
        ("metadata.test".to_string(), vec![ip("169.254.169.254")]),
        (
            "mapped.test".to_string(),
            vec![ip("127.0.0.1"), ip("::ffff:169.254.169.254")],
        ),
        ("alibaba.test".to_string(), vec![ip("100.100.100.200")]),
    ]);
    let yaml = format!(
        "connectors:\n  fine:\n    type: http\n    url: http://fine.test:{port}/mcp\n  \
         meta:\n    type: http\n    url: http://metadata.test:{port}/mcp\n  \
         mapped:\n    type: http\n    url: http://mapped.test:{port}/mcp\n  \
         alibaba:\n    type: http\n    url: http://alibaba.test:{port}/mcp\n  \
         literal:\n    type: http\n    url: http://[::ffff:169.254.169.254]:{port}/mcp\n"
    );
    let gw = start(&yaml, Arc::new(SystemClock), Some(resolver)).await;
    // The map is what the gateway resolves with: the name that maps to loopback works.
    gw.initialize("/mcp/fine").await;
    for (name, host, addr) in [
        ("meta", "metadata.test", "169.254.169.254"),
        ("mapped", "mapped.test", "::ffff:169.254.169.254"),
        ("alibaba", "alibaba.test", "100.100.100.200"),
        (
            "literal",
            "[::ffff:169.254.169.254]",
            "::ffff:169.254.169.254",
        ),
    ] {
        let v = gw
            .try_initialize(&format!("/mcp/{name}"))
            .await
            .expect_err("refused");
        assert_eq!(v["error"]["code"], -32002, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains(&format!("connector '{name}' is unavailable"))
                && m.contains(&format!("does not connect to {addr}"))
                && m.contains(&format!("host '{host}'"))
                && m.contains("EG-1"),
            "{m}"
        );
    }
}

#[tokio::test]
async fn a_connector_with_a_certificate_that_does_not_verify_is_refused_clearly() {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let pkey = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], pkey)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(Mutex::new(0u32));
    let h = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            *h.lock() += 1;
            // The client aborts the handshake; nothing more to serve.
            let _ = acceptor.accept(sock).await;
        }
    });
    let gw = start(
        &format!(
            "connectors:\n  tls:\n    type: http\n    url: https://127.0.0.1:{}/mcp\n",
            addr.port()
        ),
        Arc::new(SystemClock),
        None,
    )
    .await;
    let v = gw.try_initialize("/mcp/tls").await.expect_err("refused");
    assert_eq!(v["error"]["code"], -32002, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("connector 'tls' is unavailable")
            && m.contains("TLS certificate of '127.0.0.1' does not verify")
            && m.contains("EG-2"),
        "{m}"
    );
    assert_eq!(*handshakes.lock(), 1, "the handshake was reached, once");
}
