//! `portcullis serve` as a user runs it: the embedded default, config errors with positions,
//! and graceful shutdown that drains a call in flight and flushes its audit event (OPS-1, OPS-3).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str], cwd: &Path) -> Serve {
    // The lifecycle under test does not depend on OAuth, which e2e_oauth.rs covers.
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--no-auth")
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("portcullis starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Serve { child, addr }
}

/// One HTTP/1.1 POST with a JSON body; returns status, headers (lowercased names) and body.
fn post(
    addr: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let sid = session
        .map(|s| format!("mcp-session-id: {s}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n{sid}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"lifecycle-test","version":"1"}}}"#;

fn initialize(addr: &str, path: &str) -> String {
    let (status, h, body) = post(addr, path, None, INIT);
    assert_eq!(status, 200, "{body}");
    let sid = header(&h, "mcp-session-id")
        .expect("session id")
        .to_string();
    let (status, _, _) = post(
        addr,
        path,
        Some(&sid),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    sid
}

fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            start.elapsed() < limit,
            "portcullis did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn embedded_default_serves_the_demo_connector() {
    let dir = tempfile::tempdir().unwrap();
    // No config and no --data-dir: state goes to ./portcullis-data of the working directory.
    let mut gw = serve(&["--listen", "127.0.0.1:0"], dir.path());
    let sid = initialize(&gw.addr, "/mcp/crm");
    let (status, h, body) = post(
        &gw.addr,
        "/mcp/crm",
        Some(&sid),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_customers","arguments":{"query":"a","limit":2}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(header(&h, "x-request-id").is_some_and(|v| !v.is_empty()));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["result"]["structuredContent"]["customers"]
            .as_array()
            .map(|a| a.len()),
        Some(2),
        "{v}"
    );
    terminate(&gw.child);
    assert!(wait_exit(&mut gw.child, Duration::from_secs(30)).success());
    assert!(dir.path().join("portcullis-data/portcullis.db").is_file());
}

/// A stdio MCP server whose `hold` tool answers only once a release file exists, after writing a
/// marker file saying the call arrived: the test knows the call is in flight without sleeping.
const HOLD_SERVER: &str = r#"
import json, os, sys, time
marker, release = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    m = json.loads(line)
    meth, mid = m.get("method"), m.get("id")
    if meth == "initialize":
        r = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "hold", "version": "1"}}
    elif meth == "tools/list":
        r = {"tools": [{"name": "hold", "inputSchema": {"type": "object"}}]}
    elif meth == "tools/call":
        open(marker, "w").close()
        deadline = time.time() + 60
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.01)
        r = {"content": [{"type": "text", "text": "released"}]}
    else:
        continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": r}) + "\n")
    sys.stdout.flush()
"#;

#[test]
fn graceful_shutdown_drains_the_call_in_flight_and_flushes_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hold.py");
    std::fs::write(&script, HOLD_SERVER).unwrap();
    let marker = dir.path().join("arrived");
    let release = dir.path().join("release");
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(
        &config,
        format!(
            "connectors:\n  hold:\n    type: stdio\n    command: python3\n    args: [{:?}, {:?}, {:?}]\n",
            script.display().to_string(),
            marker.display().to_string(),
            release.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("state");
    let mut gw = serve(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let sid = initialize(&gw.addr, "/mcp/hold");
    let addr = gw.addr.clone();
    let call = std::thread::spawn(move || {
        post(
            &addr,
            "/mcp/hold",
            Some(&sid),
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hold","arguments":{}}}"#,
        )
    });
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the call never reached the connector"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The call is in flight: stop the gateway, then let the connector answer.
    terminate(&gw.child);
    std::fs::write(&release, b"").unwrap();
    let (status, _, body) = call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("released"),
        "the call in flight was not drained: {body}"
    );
    assert!(wait_exit(&mut gw.child, Duration::from_secs(30)).success());

    // Its event was flushed to the audit log before exit, and the log verifies.
    let out = Command::new(BIN)
        .args([
            "audit",
            "search",
            "--data-dir",
            data.to_str().unwrap(),
            "--connector",
            "hold",
            "--tool",
            "hold",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tools/call"),
        "no event for the drained call: {text}"
    );
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn config_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "connectors:\n  crm:\n    type: demo\n    colour: red\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:4:5: unknown field `colour`"),
        "{err}"
    );

    // serve refuses to start on it, with the same message.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--config",
            bad.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:4:5"));

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "connectors:\n  crm:\n    type: demo\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 connector: crm)"));

    let out = Command::new(BIN)
        .args(["config", "schema"])
        .output()
        .unwrap();
    let schema: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    assert!(schema["properties"]["connectors"].is_object(), "{schema}");
}

/// POST with an `X-Request-Id`, so the call can be found in the audit log.
fn post_with_id(
    addr: &str,
    path: &str,
    session: &str,
    request_id: &str,
    body: &str,
) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\nx-request-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Only a complete answer counts as answered.
    Ok(if raw.contains("\"result\"") {
        status
    } else {
        0
    })
}

#[test]
fn after_kill_9_every_answered_call_has_a_verified_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let mut gw = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let sid = initialize(&gw.addr, "/mcp/crm");
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"cus_0001"}}}"#;
    // Four clients call in parallel; the gateway is killed without warning after 300 answers.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, sid, answered, stop) =
                (gw.addr.clone(), sid.clone(), answered.clone(), stop.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let rid = format!("crash-{w}-{n}");
                    // JSON-RPC ids are unique among a session's requests in flight.
                    let call = call.replace("\"id\":1", &format!("\"id\":\"{rid}\""));
                    match post_with_id(&addr, "/mcp/crm", &sid, &rid, &call) {
                        Ok(200) => answered.lock().unwrap().push(rid),
                        other => {
                            eprintln!("worker {w} stopped at {n}: {other:?}");
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    while answered.lock().unwrap().len() < 300 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "too slow to reach 300 answers"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    gw.child.kill().unwrap(); // SIGKILL
    gw.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    let verify = Command::new(BIN)
        .args(["audit", "verify", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify after kill -9: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let out = Command::new(BIN)
        .args([
            "audit",
            "search",
            "--data-dir",
            data.to_str().unwrap(),
            "--tool",
            "get_customer",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&String> = answered
        .iter()
        .filter(|rid| !text.contains(&format!("\"{rid}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no event, e.g. {:?}",
        missing.len(),
        answered.len(),
        missing.first()
    );
}

#[test]
fn audit_policy_from_the_config_drives_live_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("audit.jsonl");
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(
        &policy,
        format!("connector_classes: {{ crm: personal }}\nretention_days: {{ personal: 30 }}\nsinks:\n  - {{ type: file, path: {:?} }}\n", sink.display().to_string()),
    )
    .unwrap();
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(
        &config,
        format!(
            "audit:\n  policy: {:?}\nconnectors:\n  crm:\n    type: demo\n",
            policy.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("state");
    let mut gw = serve(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let sid = initialize(&gw.addr, "/mcp/crm");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"cus_0002"}}}"#;
    assert_eq!(
        post_with_id(&gw.addr, "/mcp/crm", &sid, "sink-check-1", body).unwrap(),
        200
    );
    terminate(&gw.child);
    assert!(wait_exit(&mut gw.child, Duration::from_secs(30)).success());
    let lines = std::fs::read_to_string(&sink).expect("the file sink was written");
    assert!(lines.contains("sink-check-1"), "{lines}");
    // The retention text is generated from the same policy.
    let out = Command::new(BIN)
        .args([
            "audit",
            "retention",
            "--data-dir",
            data.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("30"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A policy file that does not parse stops start-up with a clear error.
    std::fs::write(&policy, "sinks: [ { type: carrier-pigeon } ]\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit-policy.yaml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
