//! Anomaly detection and rate limits through the real binary (issue 8, MON-1, MON-2, MON-4): twenty
//! failed authentications from one address give one alert at a webhook receiver on loopback (and
//! by email at an SMTP receiver on loopback) and block that address; a spent rate limit answers
//! 429 with `Retry-After`; a user's leak report over HTTP, or through the CLI, becomes an incident
//! linked to the call whose answer held the text, and the text is not stored; with an OTLP
//! endpoint, request spans reach a collector on loopback as OTLP/HTTP protobuf (MON-5).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{Proc, http_post_json};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn serve(dir: &Path, config: &str, envs: &[(&str, &str)]) -> Proc {
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc::spawn_listening("portcullis serve", cmd)
}

/// An HTTP receiver on loopback: every POST body it gets, on a channel.
fn receiver() -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

/// Adds the local user `user` and issues them a `crm:read` token for the gateway's `crm`
/// endpoint; returns the `Authorization` header value.
fn bearer_for(data: &Path, gw: &Proc, user: &str) -> String {
    let add = Command::new(BIN)
        .args([
            "users",
            "add",
            user,
            "--role",
            "end_user",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"a-long-enough-password\n")?;
            c.wait()
        })
        .unwrap();
    assert!(add.success());
    let resource = format!("{}/mcp/crm", gw.url.trim_end_matches('/'));
    let out = Command::new(BIN)
        .args([
            "tokens",
            "issue",
            "--user",
            user,
            "--client",
            "e2e",
            "--scope",
            "crm:read",
            "--resource",
            &resource,
            "--data-dir",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs the CLI on the gateway's data directory; returns stdout, failing on a non-zero exit.
fn cli(args: &[&str], data: &Path, stdin: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "portcullis {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn twenty_failed_authentications_give_one_alert_and_block_the_source() {
    let (hook, alerts) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let gw = serve(
        dir.path(),
        "monitor:\n  webhook:\n    url: {env: PORTCULLIS_TEST_WEBHOOK}\nconnectors:\n  crm:\n    type: demo\n",
        &[("PORTCULLIS_TEST_WEBHOOK", &hook)],
    );
    let addr = gw.authority();
    for i in 0..20 {
        let (status, _, _) = http_post_json(
            &addr,
            "/mcp/crm",
            &[("Authorization", &format!("Bearer forged-{i}"))],
            INIT,
        )
        .unwrap();
        assert_eq!(status, 401, "attempt {i}");
    }
    let body = alerts
        .recv_timeout(Duration::from_secs(60))
        .expect("the webhook got no alert");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["text"].as_str().is_some(),
        "not a Slack-compatible payload: {v}"
    );
    assert!(
        body.contains("127.0.0.1"),
        "the alert does not name the source: {body}"
    );
    // The source is blocked now: even a request that would otherwise get a 401.
    let (status, _, b) = http_post_json(&addr, "/mcp/crm", &[], INIT).unwrap();
    assert_eq!(status, 403, "{b}");
    assert!(b.contains("blocked"), "{b}");
    let (status, _, _) = http_post_json(&addr, "/oauth/token", &[], "{}").unwrap();
    assert_eq!(status, 403, "the authorization server is blocked too");
    // One alert, stored, listed by the CLI; no second one reached the webhook.
    assert!(alerts.recv_timeout(Duration::from_millis(200)).is_err());
    let out = Command::new(BIN)
        .args(["alerts", "list", "--json", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

#[test]
fn a_spent_rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let gw = serve(
        dir.path(),
        "monitor:\n  rate_limits:\n    per_principal: {per_minute: 2, burst: 2}\nconnectors:\n  crm:\n    type: demo\n",
        &[],
    );
    let data = dir.path().join("data");
    let bearer = bearer_for(&data, &gw, "alice");
    let addr = gw.authority();
    let (status, headers, body) =
        http_post_json(&addr, "/mcp/crm", &[("Authorization", &bearer)], INIT).unwrap();
    assert_eq!(status, 200, "{body}");
    let sid = headers
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"cus_0001"}}}"#;
    let h = [
        ("Authorization", bearer.as_str()),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    for _ in 0..2 {
        let (status, _, body) = http_post_json(&addr, "/mcp/crm", &h, call).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = http_post_json(&addr, "/mcp/crm", &h, call).unwrap();
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(body.contains("rate limit"), "{body}");
}

#[test]
fn a_leak_report_becomes_an_incident_linked_to_the_call_and_keeps_no_text() {
    // MON-4.
    let dir = tempfile::tempdir().unwrap();
    let gw = serve(dir.path(), "connectors:\n  crm:\n    type: demo\n", &[]);
    let data = dir.path().join("data");
    let bearer = bearer_for(&data, &gw, "alice");
    let addr = gw.authority();
    let (status, headers, body) =
        http_post_json(&addr, "/mcp/crm", &[("Authorization", &bearer)], INIT).unwrap();
    assert_eq!(status, 200, "{body}");
    let sid = headers
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    let h = [
        ("Authorization", bearer.as_str()),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_customer","arguments":{"id":"cus_0001"}}}"#;
    let (status, headers, answer) = http_post_json(&addr, "/mcp/crm", &h, call).unwrap();
    assert_eq!(status, 200, "{answer}");
    let correlation = headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| v.clone())
        .expect("the call's correlation id (AU-1)");
    // What the user saw and pastes into the report: the customer's name, birth date and
    // address, which the gateway let through (the e-mail address it masked).
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let c = &answer["result"]["structuredContent"];
    let name = c["full_name"].as_str().unwrap().to_string();
    let text = format!(
        "The assistant told me about {name}, born {}, who lives at {}, {} {}",
        c["date_of_birth"].as_str().unwrap(),
        c["address"]["street"].as_str().unwrap(),
        c["address"]["postal_code"].as_str().unwrap(),
        c["address"]["city"].as_str().unwrap(),
    );
    // No token, or a forged one: 401, and nothing is recorded.
    let report =
        serde_json::json!({"text": text, "connector": "crm", "tool": "get_customer"}).to_string();
    let (status, headers, b) = http_post_json(&addr, "/leak-reports", &[], &report).unwrap();
    assert_eq!(status, 401, "{b}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")),
        "{headers:?}"
    );
    let (status, _, b) = http_post_json(
        &addr,
        "/leak-reports",
        &[("Authorization", "Bearer forged")],
        &report,
    )
    .unwrap();
    assert_eq!(status, 401, "{b}");
    assert!(!b.contains(&name), "errors never echo the text: {b}");
    // A connector the gateway does not have: the error says which ones it has.
    let bad = serde_json::json!({"text": text, "connector": "nope"}).to_string();
    let (status, _, b) =
        http_post_json(&addr, "/leak-reports", &[("Authorization", &bearer)], &bad).unwrap();
    assert_eq!(status, 400, "{b}");
    assert!(b.contains("crm"), "{b}");

    // The report, with the token of alice's MCP client.
    let (status, _, b) = http_post_json(
        &addr,
        "/leak-reports",
        &[("Authorization", &bearer)],
        &report,
    )
    .unwrap();
    assert_eq!(status, 201, "{b}");
    let created: serde_json::Value = serde_json::from_str(&b).unwrap();
    let id = created["incident"].as_str().unwrap().to_string();
    assert_eq!(created["correlation_ids"], serde_json::json!([correlation]));
    assert!(!b.contains(&name), "{b}");

    // `portcullis incidents show` has it, linked to the call, with the text's kinds and digest.
    let shown = cli(&["incidents", "show", &id], &data, None);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["reported_by"], v["principal"], "{shown}");
    assert_eq!(
        v["correlation_ids"],
        serde_json::json!([correlation]),
        "{shown}"
    );
    assert_eq!(v["leak_report"]["tool"], "get_customer", "{shown}");
    // The call's answer recorded only the e-mail and phone findings the gateway masked: what
    // got through was not detected, so the call is linked by principal, tool and time.
    assert_eq!(
        v["leak_report"]["matched_by"],
        "time",
        "{shown}\n{}",
        cli(&["audit", "search"], &data, None)
    );
    assert!(
        v["leak_report"]["finding_kinds"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("pii.date_of_birth")),
        "{shown}"
    );
    let digest = v["leak_report"]["text_sha256"].as_str().unwrap();
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{shown}"
    );
    assert!(!shown.contains(&name), "the text is not stored: {shown}");

    // Through the CLI, text on standard input, for a principal the operator names: an e-mail
    // address this time, a kind the call's answer recorded, so it is linked by findings.
    let email = "m.richter@wingtiptoys.example";
    let out = cli(
        &[
            "alerts",
            "report-leak",
            "--principal",
            v["principal"].as_str().unwrap(),
            "--connector",
            "crm",
            "--by",
            "secops",
        ],
        &data,
        Some(&format!("{name} <{email}>")),
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["correlation_ids"],
        serde_json::json!([correlation]),
        "{out}"
    );
    assert_eq!(r["leak_report"]["matched_by"], "findings", "{out}");
    assert_eq!(r["reported_by"], "secops", "{out}");
    assert!(!out.contains(email) && !out.contains(&name), "{out}");
    let listed = cli(&["incidents", "list"], &data, None);
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // AU-2: the reported text is in no file of the data directory (the audit log keeps
    // findings' kinds, the incidents keep digests).
    drop(gw);
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                for needle in [name.as_str(), email] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{} holds reported text",
                        p.display()
                    );
                }
            }
        }
    }
}

/// A minimal SMTP receiver on loopback: every message's DATA, on a channel.
fn smtp_receiver() -> (u16, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut out) = stream else { return };
            let mut r = BufReader::new(out.try_clone().unwrap());
            let _ = out.write_all(b"220 localhost ESMTP test\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let cmd = line.to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                    b"250-localhost\r\n250 8BITMIME\r\n"
                } else if cmd.starts_with("DATA") {
                    let _ = out.write_all(b"354 go ahead\r\n");
                    let mut msg = String::new();
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                            break;
                        }
                        msg.push_str(&l);
                    }
                    let _ = tx.send(msg);
                    b"250 queued\r\n"
                } else if cmd.starts_with("QUIT") {
                    let _ = out.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = out.write_all(reply);
            }
        }
    });
    (port, rx)
}

#[test]
fn alerts_are_emailed_through_the_configured_smtp_relay() {
    // MON-2: the email sink of `monitor.email`, wired in `serve`.
    let (port, mails) = smtp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let gw = serve(
        dir.path(),
        &format!(
            "monitor:\n  email:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    from: portcullis@example.com\n    to: [secops@example.com]\nconnectors:\n  crm:\n    type: demo\n"
        ),
        &[],
    );
    let addr = gw.authority();
    for i in 0..20 {
        let (status, _, _) = http_post_json(
            &addr,
            "/mcp/crm",
            &[("Authorization", &format!("Bearer forged-{i}"))],
            INIT,
        )
        .unwrap();
        assert_eq!(status, 401, "attempt {i}");
    }
    let mail = mails
        .recv_timeout(Duration::from_secs(60))
        .expect("the SMTP receiver got no alert");
    assert!(mail.contains("Subject: [high] auth.brute_force"), "{mail}");
    assert!(mail.contains("To: secops@example.com"), "{mail}");
    assert!(
        mail.contains("127.0.0.1"),
        "the alert names the source: {mail}"
    );
    // One alert, one mail.
    assert!(mails.recv_timeout(Duration::from_millis(300)).is_err());
}

/// An OTLP/HTTP collector on loopback: every POST as (path, content type, body), on a channel.
fn otlp_receiver() -> (String, mpsc::Receiver<(String, String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let (mut len, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = lower.strip_prefix("content-type:") {
                    content_type = v.trim().to_string();
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send((path, content_type, body));
        }
    });
    (url, rx)
}

#[test]
fn request_spans_are_exported_over_otlp_http() {
    // MON-5.
    let (collector, posts) = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let gw = serve(
        dir.path(),
        &format!("monitor:\n  otlp_endpoint: {collector}\nconnectors:\n  crm:\n    type: demo\n"),
        // The batch exporter's delay, so the test does not wait the default 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let addr = gw.authority();
    // A caller's W3C trace context: the request's span joins that trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, _) = http_post_json(
        &addr,
        "/mcp/crm",
        &[("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01"))],
        INIT,
    )
    .unwrap();
    assert_eq!(status, 401, "no token: refused, and traced all the same");
    let (path, content_type, body) = posts
        .recv_timeout(Duration::from_secs(60))
        .expect("the collector got no spans");
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    assert!(!body.is_empty());
    // Protobuf keeps strings and the 16-byte trace id as they are.
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"POST /mcp/crm"), "the request's span is in the export");
    assert!(has(b"portcullis"), "the service name is in the export");
    let raw_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(has(&raw_id), "the span continues the caller's trace");
}
