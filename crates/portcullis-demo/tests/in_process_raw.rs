//! The in-process pipe speaks newline-delimited JSON-RPC exactly as a stdio child does: this test
//! drives it by hand, the way the gateway does, with no MCP client library in between.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn send(w: &mut (impl AsyncWriteExt + Unpin), msg: Value) {
    let mut line = serde_json::to_vec(&msg).unwrap();
    line.push(b'\n');
    w.write_all(&line).await.unwrap();
}

async fn recv(r: &mut (impl AsyncBufReadExt + Unpin)) -> Value {
    let mut line = String::new();
    let n = r.read_line(&mut line).await.unwrap();
    assert!(n > 0, "server closed the pipe");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn raw_json_rpc_over_the_in_process_pipe() {
    let pipe = portcullis_demo::serve_in_process();
    let (r, mut w) = tokio::io::split(pipe);
    let mut r = BufReader::new(r);

    send(
        &mut w,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"}}}),
    )
    .await;
    let init = recv(&mut r).await;
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "portcullis-demo-crm");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    for cap in ["tools", "resources", "prompts"] {
        assert!(
            init["result"]["capabilities"][cap].is_object(),
            "{cap}: {init}"
        );
    }
    send(
        &mut w,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;

    send(
        &mut w,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let list = recv(&mut r).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "delete_customer",
            "export_customers",
            "fetch_url",
            "get_customer",
            "search_customers"
        ]
    );

    send(
        &mut w,
        json!({"jsonrpc": "2.0", "id": "c-3", "method": "tools/call",
        "params": {"name": "get_customer", "arguments": {"id": "cus_0002"}}}),
    )
    .await;
    let call = recv(&mut r).await;
    assert_eq!(call["id"], "c-3");
    assert_eq!(call["result"]["structuredContent"]["id"], "cus_0002");
    assert_eq!(call["result"]["isError"], false);
    // A peer on a pre-2026 protocol version gets no `resultType` field.
    assert!(call["result"].get("resultType").is_none(), "{call}");
}
