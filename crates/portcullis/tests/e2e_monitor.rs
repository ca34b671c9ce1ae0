//! Anomaly detection and rate limits through the real binary (issue 8, MON-1, MON-2): twenty
//! failed authentications from one address give one alert at a webhook receiver on loopback and
//! block that address; a spent rate limit answers 429 with `Retry-After`.

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
    let add = Command::new(BIN)
        .args([
            "users",
            "add",
            "alice",
            "--role",
            "end_user",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
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
            "alice",
            "--client",
            "e2e",
            "--scope",
            "crm:read",
            "--resource",
            &resource,
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bearer = format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
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
