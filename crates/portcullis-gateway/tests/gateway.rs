//! The gateway over real HTTP on loopback: the demo connector, bad input of every kind (IV-2),
//! connectors that are down, slow or answer garbage, sessions rebuilt from a shared store, and a
//! supervised stdio child that crashes and is restarted.

use std::sync::Arc;

use portcullis_core::{EventSink, MemorySink, Outcome, SystemClock};
use portcullis_gateway::Gateway;
use portcullis_gateway::session::{MemorySessionStore, SessionStore};
use serde_json::{Value, json};

struct Running {
    base: String,
    sink: Arc<MemorySink>,
    gateway: Gateway,
    client: reqwest::Client,
}

async fn start_with(yaml: &str, store: Option<Arc<dyn SessionStore>>) -> Running {
    let config = portcullis_config::load_str(yaml, "test.yaml").expect("valid test config");
    let sink = Arc::new(MemorySink::default());
    let gateway = match store {
        Some(s) => Gateway::with_session_store(config, sink.clone(), Arc::new(SystemClock), s),
        None => Gateway::new(config, sink.clone(), Arc::new(SystemClock)),
    };
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

async fn start(yaml: &str) -> Running {
    start_with(yaml, None).await
}

const DEMO: &str = "connectors:\n  crm:\n    type: demo\n";

impl Running {
    async fn post_raw(
        &self,
        path: &str,
        session: Option<&str>,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    async fn post(&self, path: &str, session: Option<&str>, msg: Value) -> (u16, Value) {
        let (status, headers, body) = self
            .post_raw(
                path,
                session,
                msg.to_string().into_bytes(),
                "application/json",
            )
            .await;
        let ct = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let v = if body.is_empty() {
            Value::Null
        } else if ct.starts_with("text/event-stream") {
            // The last event of the stream is the response.
            let text = String::from_utf8(body).unwrap();
            let last = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap()
                .to_string();
            serde_json::from_str(&last).unwrap()
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, v)
    }

    async fn initialize(&self, path: &str) -> String {
        let (_, headers, body) = self
            .post_raw(
                path,
                None,
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}})
                    .to_string()
                    .into_bytes(),
                "application/json",
            )
            .await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("result").is_some(), "initialize failed: {v}");
        let sid = headers
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_string();
        let (status, _) = self
            .post(
                path,
                Some(&sid),
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await;
        assert_eq!(status, 202);
        sid
    }
}

fn call(id: i64, name: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}})
}

#[tokio::test]
async fn demo_connector_lists_and_calls_tools_and_records_events() {
    let gw = start(DEMO).await;
    let sid = gw.initialize("/mcp/crm").await;
    let (status, v) = gw
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "search_customers",
        "get_customer",
        "delete_customer",
        "fetch_url",
        "export_customers",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    // A caller's X-Request-Id is the correlation id: returned, and recorded with the event (AU-1).
    let resp = gw
        .client
        .post(format!("{}/mcp/crm", gw.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("x-request-id", "req-42")
        .body(call(2, "get_customer", json!({"id": "cus_0001"})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cus_0001")
    );
    gw.gateway.shutdown().await;
    let events = gw.sink.events();
    let e = events
        .iter()
        .find(|e| e.correlation_id.as_str() == "req-42")
        .expect("event for the call");
    assert_eq!(e.connector.as_deref(), Some("crm"));
    assert_eq!(e.method.as_deref(), Some("tools/call"));
    assert_eq!(e.target.as_deref(), Some("get_customer"));
    assert_eq!(e.outcome, Outcome::Ok { tool_error: false });
    assert!(e.response_bytes > 0 && e.request_bytes > 0);
    assert_eq!(e.session.as_deref(), Some(sid.as_str()));
}

#[tokio::test]
async fn federated_endpoint_namespaces_and_routes() {
    let gw = start("connectors:\n  crm:\n    type: demo\n  crm-two:\n    type: demo\n").await;
    let sid = gw.initialize("/mcp").await;
    let (_, v) = gw
        .post(
            "/mcp",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"crm__get_customer") && names.contains(&"crm-two__get_customer"),
        "{names:?}"
    );
    let (_, v) = gw
        .post(
            "/mcp",
            Some(&sid),
            call(2, "crm-two__get_customer", json!({"id": "cus_0003"})),
        )
        .await;
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cus_0003"),
        "{v}"
    );
    let (_, v) = gw.post("/mcp", Some(&sid), json!({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"crm+crm://schema"}})).await;
    assert_eq!(v["result"]["contents"][0]["uri"], "crm+crm://schema", "{v}");
    let (_, v) = gw
        .post("/mcp", Some(&sid), call(4, "nobody__x", json!({})))
        .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no known connector"),
        "{v}"
    );
    // A session belongs to its endpoint.
    let (status, _) = gw
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":5,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_never_reaches_the_connector() {
    let gw = start(
        "limits:\n  max_body_bytes: 2048\n  max_batch: 2\nconnectors:\n  crm:\n    type: demo\n",
    )
    .await;
    let sid = gw.initialize("/mcp/crm").await;

    let (status, _, body) = gw
        .post_raw(
            "/mcp/crm",
            Some(&sid),
            b"{\"jsonrpc\":".to_vec(),
            "application/json",
        )
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (400, Some(-32700)),
        "{v}"
    );

    let (status, v) = gw
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (400, Some(-32600)),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("jsonrpc"),
        "{v}"
    );

    let (status, v) = gw
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"admin/drop_tables"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (200, Some(-32601)),
        "{v}"
    );

    let (status, v) = gw
        .post(
            "/mcp/nope",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown connector \"nope\""),
        "{v}"
    );

    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_customers","arguments":{"query":"x".repeat(4096)}}});
    let (status, v) = gw.post("/mcp/crm", Some(&sid), big).await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (413, Some(-32005)),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048 bytes"),
        "{v}"
    );

    let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"ping"}]);
    let (status, v) = gw.post("/mcp/crm", Some(&sid), batch).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch of 3 messages exceeds the limit of 2"),
        "{v}"
    );

    let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]);
    let (status, v) = gw.post("/mcp/crm", Some(&sid), batch).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    let (status, v) = gw
        .post(
            "/mcp/crm",
            None,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mcp-Session-Id"),
        "{v}"
    );

    let (status, _) = gw
        .post(
            "/mcp/crm",
            Some("0000"),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 404);

    let resp = gw
        .client
        .post(format!("{}/mcp/crm", gw.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "1999-01-01")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("unsupported MCP-Protocol-Version") && text.contains("1999-01-01"),
        "{text}"
    );

    let (status, _, _) = gw
        .post_raw("/mcp/crm", Some(&sid), b"{}".to_vec(), "text/plain")
        .await;
    assert_eq!(status, 415);

    // The gateway is still fine.
    let (status, v) = gw
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":9,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(v["result"]["tools"].is_array());
}

/// A scripted Streamable HTTP MCP upstream for failure cases.
async fn fake_upstream(mode: &'static str) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/mcp",
        post(move |body: String| async move {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let method = v["method"].as_str().unwrap_or("").to_string();
            let json = |v: Value| ([("content-type", "application/json")], v.to_string()).into_response_parts();
            match (mode, method.as_str()) {
                (_, "initialize") => json(json!({"jsonrpc":"2.0","id":v["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}})),
                (_, m) if m.starts_with("notifications/") => (axum::http::StatusCode::ACCEPTED, String::new()).into_response_parts(),
                ("slow", _) => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                ("garbage", _) => ([("content-type", "text/html")], "<html>oops</html>".to_string()).into_response_parts(),
                _ => json(json!({"jsonrpc":"2.0","id":v["id"],"result":{}})),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}

#[tokio::test]
async fn slow_connector_times_out_with_a_clear_error() {
    let url = fake_upstream("slow").await;
    let gw = start(&format!(
        "connectors:\n  slow:\n    type: http\n    url: {url}\n    timeout_ms: 300\n"
    ))
    .await;
    let sid = gw.initialize("/mcp/slow").await;
    let (status, v) = gw
        .post("/mcp/slow", Some(&sid), call(1, "anything", json!({})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert_eq!(
        v["error"]["message"],
        "connector 'slow' did not answer within 300 ms"
    );
}

#[tokio::test]
async fn garbage_from_a_connector_is_a_protocol_error() {
    let url = fake_upstream("garbage").await;
    let gw = start(&format!(
        "connectors:\n  junk:\n    type: http\n    url: {url}\n"
    ))
    .await;
    let sid = gw.initialize("/mcp/junk").await;
    let (_, v) = gw
        .post("/mcp/junk", Some(&sid), call(1, "anything", json!({})))
        .await;
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("not MCP"),
        "{v}"
    );
}

#[tokio::test]
async fn connector_that_is_down_is_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = start(&format!(
        "connectors:\n  down:\n    type: http\n    url: http://127.0.0.1:{port}/mcp\n"
    ))
    .await;
    let (status, _, body) = gw
        .post_raw(
            "/mcp/down",
            None,
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string().into_bytes(),
            "application/json",
        )
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connector 'down' is unavailable"),
        "{v}"
    );
    let ready = gw
        .client
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
}

#[tokio::test]
// OPS-2: a session survives being routed to another replica.
async fn a_session_survives_moving_to_another_replica() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::shared());
    let a = start_with(DEMO, Some(store.clone())).await;
    let b = start_with(DEMO, Some(store.clone())).await;
    let sid = a.initialize("/mcp/crm").await;
    assert_eq!(b.gateway.session_count(), 0);
    let (status, v) = b
        .post(
            "/mcp/crm",
            Some(&sid),
            call(1, "get_customer", json!({"id": "cus_0004"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cus_0004"),
        "{v}"
    );
    assert_eq!(b.gateway.session_count(), 1);
    // DELETE on either replica ends it everywhere.
    let resp = b
        .client
        .delete(format!("{}/mcp/crm", b.base))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, _) = a
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        )
        .await;
    assert_eq!(
        status, 404,
        "replica a must not keep serving a deleted session"
    );
    let c = start_with(DEMO, Some(store)).await;
    let (status_c, _) = c
        .post(
            "/mcp/crm",
            Some(&sid),
            json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status_c, 404);
}

/// A minimal stdio MCP server in Python: answers initialize, tools/list and tools/call; the tool
/// `crash` makes it exit, to exercise supervision.
const STDIO_SERVER: &str = r#"
import json, sys, os
for line in sys.stdin:
    m = json.loads(line)
    mid = m.get("id")
    meth = m.get("method")
    if meth == "initialize":
        r = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "py", "version": str(os.getpid())}}
    elif meth == "tools/list":
        r = {"tools": [{"name": "pid", "inputSchema": {"type": "object"}}, {"name": "crash", "inputSchema": {"type": "object"}}]}
    elif meth == "tools/call":
        if m["params"]["name"] == "crash":
            sys.stderr.write("crashing on purpose\n"); sys.stderr.flush()
            sys.exit(3)
        r = {"content": [{"type": "text", "text": str(os.getpid())}]}
    else:
        continue
    if mid is not None:
        print("this banner is not JSON-RPC", flush=True) if meth == "initialize" else None
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": r}) + "\n")
        sys.stdout.flush()
"#;

#[tokio::test]
async fn stdio_child_is_restarted_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("server.py");
    std::fs::write(&script, STDIO_SERVER).unwrap();
    let gw = start(&format!(
        "connectors:\n  py:\n    type: stdio\n    command: python3\n    args: [\"{}\"]\n",
        script.display()
    ))
    .await;
    let sid = gw.initialize("/mcp/py").await;
    let (_, v) = gw
        .post("/mcp/py", Some(&sid), call(1, "pid", json!({})))
        .await;
    let pid1 = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = gw
        .post("/mcp/py", Some(&sid), call(2, "crash", json!({})))
        .await;
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the process exited"),
        "{v}"
    );
    // The next call starts it again (initialize replayed) and succeeds in a new process.
    let (_, v) = gw
        .post("/mcp/py", Some(&sid), call(3, "pid", json!({})))
        .await;
    let pid2 = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();
    assert_ne!(pid1, pid2);
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn metrics_and_health() {
    let gw = start(DEMO).await;
    let sid = gw.initialize("/mcp/crm").await;
    gw.post(
        "/mcp/crm",
        Some(&sid),
        call(1, "get_customer", json!({"id": "cus_0001"})),
    )
    .await;
    let text = gw
        .client
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"portcullis_requests_total{connector="crm",method="tools/call",tool="get_customer",outcome="ok"} 1"#), "{text}");
    assert!(text.contains("portcullis_sessions 1"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");
    assert_eq!(
        gw.client
            .get(format!("{}/healthz", gw.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let ready: Value = gw
        .client
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true);
    gw.sink.flush().await;
}

fn modern(id: i64, method: &str, params: Value) -> Value {
    let mut p = params;
    p["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    json!({"jsonrpc":"2.0","id":id,"method":method,"params":p})
}

#[tokio::test]
async fn stateless_revision_requests_need_no_session() {
    let gw = start(DEMO).await;
    let (status, v) = gw
        .post("/mcp/crm", None, modern(1, "server/discover", json!({})))
        .await;
    assert_eq!(status, 200, "{v}");
    let versions = v["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(versions.iter().any(|x| x == "2026-07-28"), "{v}");
    let (_, v) = gw
        .post(
            "/mcp/crm",
            None,
            modern(
                2,
                "tools/call",
                json!({"name": "get_customer", "arguments": {"id": "cus_0005"}}),
            ),
        )
        .await;
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .contains("cus_0005")
    );
    // Still fail closed on methods the gateway does not forward.
    let (_, v) = gw
        .post("/mcp/crm", None, modern(3, "admin/wipe", json!({})))
        .await;
    assert_eq!(v["error"]["code"], -32601, "{v}");
    // The federated endpoint says where to go instead.
    let (status, v) = gw
        .post("/mcp", None, modern(4, "tools/list", json!({})))
        .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/mcp/{connector}"),
        "{v}"
    );
    assert_eq!(gw.gateway.session_count(), 0);
}

#[tokio::test]
async fn a_request_id_already_in_flight_is_refused() {
    let url = fake_upstream("slow").await;
    let gw = start(&format!(
        "connectors:\n  slow:\n    type: http\n    url: {url}\n    timeout_ms: 1000\n"
    ))
    .await;
    let sid = gw.initialize("/mcp/slow").await;
    // Two requests with the same id at once; the upstream never answers, so the first is still in
    // flight when the second arrives, whichever that is.
    let (a, b) = tokio::join!(
        gw.post("/mcp/slow", Some(&sid), call(5, "anything", json!({}))),
        gw.post("/mcp/slow", Some(&sid), call(5, "anything", json!({})))
    );
    let mut codes = [
        a.1["error"]["code"].as_i64().unwrap(),
        b.1["error"]["code"].as_i64().unwrap(),
    ];
    codes.sort();
    assert_eq!(codes, [-32600, -32001], "{} / {}", a.1, b.1);
    let refused = if a.1["error"]["code"] == -32600 {
        &a.1
    } else {
        &b.1
    };
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in flight"),
        "{refused}"
    );
}
