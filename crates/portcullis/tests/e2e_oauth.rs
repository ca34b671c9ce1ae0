//! OAuth 2.1 end to end through the real binary (issue 3): the embedded default requires a token
//! on every MCP endpoint and creates a demo user; the official TypeScript and Python MCP SDKs
//! each do the whole flow headlessly (401, discovery, dynamic registration, authorization code
//! with PKCE through the login and consent forms, token, tools, step-up, refresh, then an expired
//! token and a token for another resource refused); the MCP conformance suite's
//! authorization-server scenarios pass; `--no-auth` is refused in production.

mod common;

use std::path::Path;
use std::process::Command;

use common::{CLIENT_TIMEOUT, Clients, Proc, http_get, run_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis serve` on the embedded default (no config), in `cwd`, OAuth on.
fn embedded_default(cwd: &Path) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env("RUST_LOG", "info");
    Proc::spawn_listening("portcullis serve (embedded default)", cmd)
}

/// An access token for `resource` that expired an hour ago, signed by the gateway's own key:
/// minted through the authorization server's admin interface with a clock two hours behind.
fn expired_token(data_dir: &Path, resource: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "tokens",
            "issue",
            "--user",
            "demo",
            "--client",
            "e2e-expired",
        ])
        .args(["--resource", resource, "--scope", "crm:read"])
        .args(["--issued-ago-secs", "7200", "--ttl-secs", "3600"])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("portcullis tokens issue runs");
    assert!(
        out.status.success(),
        "tokens issue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `portcullis permissions unused --days 1 --json`, one value per consent.
fn unused_permissions(data_dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args([
            "permissions",
            "unused",
            "--days",
            "1",
            "--json",
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn embedded_default_requires_a_token_and_offers_the_demo_user() {
    let dir = tempfile::tempdir().unwrap();
    let gw = embedded_default(dir.path());
    let addr = gw.authority();
    // An MCP call without a token: 401 with the RFC 9728 pointer.
    let (status, headers, _) = common::http_post_json(
        &addr,
        "/mcp/crm",
        &[],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    )
    .unwrap();
    assert_eq!(status, 401);
    let challenge = headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.clone())
        .expect("a WWW-Authenticate challenge");
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource/mcp/crm\", scope=\"crm:read\""
        )
    );
    // Discovery documents are public.
    let (status, body) = http_get(&addr, "/.well-known/oauth-protected-resource/mcp/crm").unwrap();
    assert_eq!(status, 200, "{body}");
    let prm: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(prm["authorization_servers"][0], format!("http://{addr}"));
    let (status, body) = http_get(&addr, "/.well-known/oauth-authorization-server").unwrap();
    assert_eq!(status, 200, "{body}");
    let asm: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(asm["issuer"], format!("http://{addr}"));
    assert_eq!(
        asm["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    // The demo user's password is in the data directory, readable by its owner only.
    let pw = dir.path().join("portcullis-data/demo-password");
    let meta = std::fs::metadata(&pw).expect("the demo password file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        gw.stderr_tail().contains("sign in as `demo`"),
        "{}",
        gw.stderr_tail()
    );
}

#[test]
fn typescript_and_python_sdk_clients_do_the_whole_flow() {
    let c = Clients::locate();
    let dir = tempfile::tempdir().unwrap();
    let gw = embedded_default(dir.path());
    let data = dir.path().join("portcullis-data");
    let password = std::fs::read_to_string(data.join("demo-password"))
        .unwrap()
        .trim()
        .to_string();
    let url = format!("{}/mcp/crm", gw.url.trim_end_matches('/'));
    let expired = expired_token(&data, &url);

    let mut ts = Command::new(&c.node22);
    ts.arg(&c.tsx)
        .args(["oauth-flow.ts", &url, "demo", &password])
        .env("EXPIRED_TOKEN", &expired)
        .current_dir(&c.dir);
    let ts =
        std::thread::spawn(move || run_bounded("TypeScript SDK OAuth flow", ts, CLIENT_TIMEOUT));
    let mut py = Command::new(&c.python);
    py.args(["oauth_flow.py", &url, "demo", &password])
        .env("EXPIRED_TOKEN", &expired)
        .current_dir(&c.dir);
    let py = run_bounded("Python SDK OAuth flow", py, CLIENT_TIMEOUT);
    let ts = ts.join().unwrap();
    for run in [&ts, &py] {
        run.assert_ok(&format!("gateway stderr:\n{}", gw.stderr_tail()));
        let report = run.json();
        let checks = report["checks"].as_array().expect("a report of checks");
        assert!(checks.len() >= 5, "{report}");
        assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
    }
    // AZ-7: both clients used every scope they were granted (read to search, admin to delete).
    let lines = unused_permissions(&data);
    assert_eq!(lines.len(), 2, "one consent per client: {lines:?}");
    for l in &lines {
        assert_eq!(
            l["used"],
            serde_json::json!(["crm:admin", "crm:read"]),
            "{l}"
        );
        assert_eq!(l["unused_scopes"], serde_json::json!([]), "{l}");
    }
}

#[test]
fn the_conformance_suites_authorization_server_scenarios_pass() {
    let c = Clients::locate();
    let dir = tempfile::tempdir().unwrap();
    let gw = embedded_default(dir.path());
    let data = dir.path().join("portcullis-data");
    let password = std::fs::read_to_string(data.join("demo-password"))
        .unwrap()
        .trim()
        .to_string();
    let issuer = gw.url.trim_end_matches('/').to_string();
    let resource = format!("{issuer}/mcp/crm");
    let mut cmd = Command::new(&c.node22);
    cmd.args([
        "conformance-auth.mjs",
        &issuer,
        &resource,
        "demo",
        &password,
    ])
    .current_dir(&c.dir);
    let run = run_bounded("conformance authorization", cmd, CLIENT_TIMEOUT);
    let report = run.json();
    assert!(
        run.ok,
        "conformance authorization failed: {report}\nstderr: {}\ngateway: {}",
        run.stderr,
        gw.stderr_tail()
    );
    let passed: Vec<&str> = report["passed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for scenario in [
        "authorization-server-metadata-endpoint",
        "authorization-code-grant",
    ] {
        assert!(
            passed.contains(&scenario),
            "{scenario} did not pass: {report}"
        );
    }
    // AZ-7: the suite's client was granted crm:read and never called anything with it.
    let lines = unused_permissions(&data);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["user"], "demo");
    assert_eq!(
        lines[0]["unused_scopes"],
        serde_json::json!(["crm:read"]),
        "{lines:?}"
    );
}

#[test]
fn no_auth_is_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prod.yaml");
    std::fs::write(
        &config,
        "environment: prod\nconnectors:\n  crm:\n    type: demo\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-auth is refused"), "{err}");
}
