//! The Streamable HTTP server (`serve_http` / `http_router`) on a loopback port chosen by the OS,
//! driven by rmcp's own Streamable HTTP client.

use std::net::SocketAddr;

use portcullis_demo::rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use portcullis_demo::rmcp::service::{RoleClient, RunningService};
use portcullis_demo::rmcp::transport::StreamableHttpClientTransport;
use portcullis_demo::rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use portcullis_demo::{CustomerList, customers, http_router, serve_http};
use serde_json::{Value, json};
use tokio::sync::oneshot;

async fn start() -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_http(listener, http_router(), async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs until stopped");
    });
    (addr, stop, task)
}

type Client = RunningService<RoleClient, ClientConfig>;

/// Connects with `version`: up to 2025-11-25 through `initialize` and an `Mcp-Session-Id`
/// session; from 2026-07-28 through `server/discover`, each request served statelessly.
async fn connect_with(addr: SocketAddr, version: ProtocolVersion) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let config = ClientConfig::default().with_protocol_version(version.clone());
    let client = if version.has_initialize() {
        config.serve(transport).await
    } else {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![version.clone()],
        };
        config.serve_with_lifecycle(transport, lifecycle).await
    }
    .expect("client connects over HTTP");
    assert_eq!(client.peer_info().unwrap().protocol_version, version);
    client
}

async fn connect(addr: SocketAddr) -> Client {
    connect_with(addr, ProtocolVersion::LATEST).await
}

async fn call(client: &Client, tool: &'static str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("object")
    };
    let r = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap();
    serde_json::to_value(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_sessions_list_and_call_tools_and_share_one_table() {
    list_call_and_share(ProtocolVersion::V_2025_11_25).await;
    list_call_and_share(ProtocolVersion::V_2025_03_26).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_requests_list_and_call_tools_and_share_one_table() {
    list_call_and_share(ProtocolVersion::V_2026_07_28).await;
}

async fn list_call_and_share(version: ProtocolVersion) {
    let (addr, stop, task) = start().await;
    let a = connect_with(addr, version.clone()).await;
    let info = a.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().unwrap().name,
        "portcullis-demo-crm"
    );
    let tools = a.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 5);
    let delete = tools.iter().find(|t| t.name == "delete_customer").unwrap();
    assert_eq!(
        delete.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );

    let found = call(
        &a,
        "search_customers",
        json!({"query": customers()[0].full_name}),
    )
    .await;
    let list: CustomerList = serde_json::from_value(found["structuredContent"].clone()).unwrap();
    assert!(list.customers.iter().any(|c| c.id == "cus_0001"));

    // A deletion in one session is visible to another session of the same listener.
    let b = connect_with(addr, version).await;
    let deleted = call(&a, "delete_customer", json!({"id": "cus_0005"})).await;
    assert_eq!(deleted["structuredContent"]["deleted"]["id"], "cus_0005");
    let gone = call(&b, "get_customer", json!({"id": "cus_0005"})).await;
    assert_eq!(gone["isError"], true, "{gone}");
    let all = call(&b, "export_customers", json!({})).await;
    assert_eq!(
        all["structuredContent"]["customers"]
            .as_array()
            .unwrap()
            .len(),
        customers().len() - 1
    );

    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_starts_from_the_full_table() {
    let (addr1, stop1, task1) = start().await;
    let c1 = connect(addr1).await;
    call(&c1, "delete_customer", json!({"id": "cus_0010"})).await;

    let (addr2, stop2, task2) = start().await;
    let c2 = connect(addr2).await;
    let got = call(&c2, "get_customer", json!({"id": "cus_0010"})).await;
    assert_eq!(got["isError"], false, "{got}");

    for (c, stop, task) in [(c1, stop1, task1), (c2, stop2, task2)] {
        c.cancel().await.unwrap();
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}

/// Status of a `ping` POSTed to `addr` with the given `Host` header.
async fn status_for_host(addr: SocketAddr, host: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let resp = String::from_utf8_lossy(&resp);
    resp.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_must_be_loopback_or_explicitly_allowed() {
    for (router, host, want) in [
        (http_router(), "127.0.0.1", 200),
        (http_router(), "localhost:9", 200),
        (http_router(), "crm.test", 403),
        (
            portcullis_demo::http_router_allowing_hosts(&["crm.test".to_owned()]),
            "crm.test",
            200,
        ),
        (
            portcullis_demo::http_router_allowing_hosts(&["crm.test".to_owned()]),
            "evil.test",
            403,
        ),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_http(listener, router, async {
            let _ = stopped.await;
        }));
        assert_eq!(status_for_host(addr, host).await, want, "Host: {host}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
