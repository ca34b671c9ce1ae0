//! A connector's JSON-RPC error answers are inspected like its results (DLP-2, DLP-4): a
//! credential in an error message or its `data` is redacted before the client (and the model)
//! sees it, and the finding is recorded with the error's pointer; an answer that is not JSON
//! is refused with the client's own request id, so the client can match the refusal.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::IntoResponse;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use portcullis_core::{Decision, Event, MemorySink, SystemClock};
use portcullis_gateway::Gateway;
use portcullis_gateway::inspection::{GatewayInspection, PinBook, PinRecord};
use serde_json::{Value, json};

/// Pins in memory: every first definition approved, as a clean first sight is in `serve`.
#[derive(Default)]
struct MemoryPins(Mutex<BTreeMap<(String, String), PinRecord>>);

impl PinBook for MemoryPins {
    fn list(&self, connector: &str) -> BoxFuture<'_, Result<BTreeMap<String, PinRecord>, String>> {
        let rows = self
            .0
            .lock()
            .iter()
            .filter(|((c, _), _)| c == connector)
            .map(|((_, t), r)| (t.clone(), r.clone()))
            .collect();
        Box::pin(async move { Ok(rows) })
    }

    fn observe(
        &self,
        connector: &str,
        tool: &str,
        hash: &str,
        _definition: &Value,
        approve_if_first: bool,
    ) -> BoxFuture<'_, Result<PinRecord, String>> {
        let mut pins = self.0.lock();
        let r = pins
            .entry((connector.to_string(), tool.to_string()))
            .or_default();
        match &r.approved_hash {
            None if approve_if_first => r.approved_hash = Some(hash.to_string()),
            Some(h) if h == hash => {}
            _ => r.pending_hash = Some(hash.to_string()),
        }
        let r = r.clone();
        Box::pin(async move { Ok(r) })
    }
}

/// A credential as an application would leak it in a failed connection's error message.
const LEAKED_URL: &str = "postgres://crm_app:Zq8vX2mN4pL7wR1t@db-primary.corp.internal:5432/crm";
const LEAKED_KEY: &str = "AKIAZ7QK3LMN4PQR5STU";

/// A connector whose `failing` tool answers with a JSON-RPC error that leaks a connection
/// string and a cloud key, and whose `garbled` tool answers with a body that is not JSON.
async fn leaky_connector() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/mcp",
        post(|body: String| async move {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let method = v["method"].as_str().unwrap_or("");
            let json =
                |v: Value| ([("content-type", "application/json")], v.to_string()).into_response();
            match method {
                "initialize" => json(json!({"jsonrpc":"2.0","id":v["id"],"result":{
                    "protocolVersion":"2025-11-25","capabilities":{"tools":{}},
                    "serverInfo":{"name":"leaky","version":"1"}}})),
                m if m.starts_with("notifications/") => {
                    axum::http::StatusCode::ACCEPTED.into_response()
                }
                "tools/list" => json(json!({"jsonrpc":"2.0","id":v["id"],"result":{"tools":[
                    {"name":"failing","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}},
                    {"name":"garbled","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}
                ]}})),
                "tools/call" if v["params"]["name"] == "garbled" => (
                    [("content-type", "application/json")],
                    "{\"jsonrpc\":\"2.0\",\"id\":",
                )
                    .into_response(),
                _ => json(json!({"jsonrpc":"2.0","id":v["id"],"error":{
                    "code":-32000,
                    "message": format!("could not connect to {LEAKED_URL}: timeout"),
                    "data": {"aws_access_key_id": LEAKED_KEY, "retry": false}}})),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

struct Running {
    base: String,
    sink: Arc<MemorySink>,
    gateway: Gateway,
    client: reqwest::Client,
    session: String,
}

impl Running {
    async fn start() -> Running {
        let url = leaky_connector().await;
        let yaml = format!("connectors:\n  up:\n    type: http\n    url: {url}\n");
        let config = portcullis_config::load_str(&yaml, "test.yaml").expect("valid test config");
        let detector =
            portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
                .expect("detector");
        let inspection = GatewayInspection::new(
            &config,
            Arc::new(detector),
            Arc::new(portcullis_inspect::egress::SystemResolver),
            Arc::new(MemoryPins::default()),
            vec![7; 32],
        );
        let sink = Arc::new(MemorySink::default());
        let gateway = Gateway::new(config, sink.clone(), Arc::new(SystemClock))
            .with_inspection(Arc::new(inspection));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = gateway.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let mut gw = Running {
            base: format!("http://{addr}"),
            sink,
            gateway,
            client: reqwest::Client::new(),
            session: String::new(),
        };
        let init = gw
            .client
            .post(format!("{}/mcp/up", gw.base))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-11-25","capabilities":{},
                "clientInfo":{"name":"test","version":"1"}}}),
            )
            .send()
            .await
            .unwrap();
        gw.session = init
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_string();
        let (_, listed) = gw
            .post(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
            .await;
        assert_eq!(
            listed["result"]["tools"].as_array().unwrap().len(),
            2,
            "{listed}"
        );
        gw
    }

    async fn post(&self, msg: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/mcp/up", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .json(&msg)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, id: i64, tool: &str) -> Value {
        let (status, v) = self
            .post(json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                "params":{"name":tool,"arguments":{}}}))
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    async fn event(&self, tool: &str) -> Event {
        // a shutdown flushes the recorded events
        self.gateway.shutdown().await;
        let events: Vec<Event> = self
            .sink
            .events()
            .into_iter()
            .filter(|e| {
                e.method.as_deref() == Some("tools/call") && e.target.as_deref() == Some(tool)
            })
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        events.into_iter().next().unwrap()
    }
}

#[tokio::test]
async fn credentials_in_an_upstream_error_are_redacted_and_recorded() {
    let gw = Running::start().await;
    let v = gw.call(5, "failing").await;
    assert_eq!(v["id"], 5, "{v}");
    // the error stays an error, with the connector's code
    assert_eq!(v["error"]["code"], -32000, "{v}");
    let text = v.to_string();
    assert!(
        !text.contains("Zq8vX2mN4pL7wR1t"),
        "the password passed: {text}"
    );
    assert!(!text.contains(LEAKED_KEY), "the cloud key passed: {text}");
    let message = v["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("could not connect to "), "{message}");
    assert!(message.ends_with(": timeout"), "{message}");
    assert_eq!(v["error"]["data"]["retry"], false, "{v}");

    let ev = gw.event("failing").await;
    assert_eq!(ev.decision, Decision::Redact, "{ev:?}");
    let pointers: Vec<&str> = ev
        .findings
        .iter()
        .filter(|f| f.category == "secret")
        .filter_map(|f| f.pointer.as_deref())
        .collect();
    assert!(pointers.contains(&"/error/message"), "{:?}", ev.findings);
    assert!(
        pointers.iter().any(|p| p.starts_with("/error/data")),
        "{:?}",
        ev.findings
    );
    assert!(
        ev.findings.iter().all(|f| f.direction == "response"),
        "{:?}",
        ev.findings
    );
}

#[tokio::test]
async fn an_unreadable_answer_is_refused_with_the_clients_request_id() {
    let gw = Running::start().await;
    let v = gw.call(42, "garbled").await;
    assert_eq!(v["id"], 42, "{v}");
    assert_eq!(v["error"]["code"], -32003, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("connector 'up'"), "{message}");
    assert!(
        !v.to_string().contains("\"jsonrpc\":\"2.0\",\"id\":\""),
        "{v}"
    );
    let ev = gw.event("garbled").await;
    assert!(
        matches!(
            ev.outcome,
            portcullis_core::Outcome::Error { code: -32003, .. }
        ),
        "{ev:?}"
    );
}
