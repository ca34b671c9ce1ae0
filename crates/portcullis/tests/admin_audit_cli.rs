//! Administrative CLI commands as audit events (AU-1), end to end with the real binary: each
//! change is a chained admin event (who, what, target, outcome, never a secret) that
//! `portcullis audit search`/`export` show and `audit verify` proves intact, while another
//! process (here: this test, as `portcullis serve` would) keeps appending to the same log.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use portcullis_audit::{AuditConfig, AuditLog};
use portcullis_core::clock::ManualClock;
use portcullis_core::{CorrelationId, Event, EventKind, EventSink};

const PASSWORD: &str = "correct-horse-battery-staple-42";

fn portcullis(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("USER", "opsuser")
        .env_remove("PORTCULLIS_ACTOR")
        .env_remove("PORTCULLIS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn server_event(i: u64) -> Event {
    let mut e = Event::new(
        chrono::Utc::now(),
        CorrelationId::from_request_id(&format!("srv-{i}")).unwrap(),
        EventKind::McpRequest,
    );
    e.principal = Some("alice".into());
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some("search_customers".into());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_are_chained_audit_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The "server": its own AuditLog on the same database, writing before, between and after
    // the CLI's appends.
    let server = AuditLog::open(
        AuditConfig::embedded(d),
        Arc::new(ManualClock::new(chrono::Utc::now())),
    )
    .await
    .unwrap();
    let mut n = 0;
    let mut serve = |count: u64| {
        for _ in 0..count {
            server.record(server_event(n));
            n += 1;
        }
    };
    serve(5);
    server.flush().await;

    let o = portcullis(
        d,
        &[
            "users",
            "add",
            "alice",
            "--role",
            "end_user",
            "--password-stdin",
            "--actor",
            "carol",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(o.status.success(), "{}", out(&o));
    serve(5);
    server.flush().await;
    let o = portcullis(d, &["users", "disable", "alice"], None);
    assert!(o.status.success(), "{}", out(&o));
    let o = portcullis(d, &["users", "disable", "nobody"], None);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let o = portcullis(
        d,
        &[
            "tokens",
            "issue",
            "--user",
            "alice",
            "--client",
            "script",
            "--resource",
            "http://127.0.0.1:8080/mcp/crm",
            "--scope",
            "crm:read",
        ],
        None,
    );
    // alice is disabled: refused, and the refusal is on the record too.
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    serve(5);
    server.shutdown().await;
    server.store().close().await;

    // Search: the admin events by who made them.
    let o = portcullis(
        d,
        &["audit", "search", "--principal", "carol", "--json"],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let carol: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(carol.len(), 1, "{}", out(&o));
    assert_eq!(carol[0]["kind"], "admin");
    assert_eq!(carol[0]["method"], "users/add");
    assert_eq!(carol[0]["target"], "alice");
    assert_eq!(carol[0]["client"], "portcullis-cli");
    let reasons = carol[0]["reasons"].to_string();
    assert!(reasons.contains("roles=end_user"), "{reasons}");
    assert!(reasons.contains("os_user=opsuser"), "{reasons}");

    // Export: every admin event, with its outcome; never the password.
    let o = portcullis(d, &["audit", "export", "--format", "jsonl"], None);
    assert!(o.status.success(), "{}", out(&o));
    let all = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !all.contains(PASSWORD),
        "the password reached the audit log"
    );
    let admin: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "admin")
        .collect();
    let summary: Vec<(String, String, String)> = admin
        .iter()
        .map(|v| {
            (
                v["method"].as_str().unwrap_or("").to_string(),
                v["target"].as_str().unwrap_or("").to_string(),
                v["principal"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("users/add".into(), "alice".into(), "carol".into()),
            ("users/disable".into(), "alice".into(), "opsuser".into()),
            ("users/disable".into(), "nobody".into(), "opsuser".into()),
            ("tokens/issue".into(), "alice".into(), "opsuser".into()),
        ],
        "{all}"
    );
    let ok = |v: &serde_json::Value| !v["reasons"].to_string().contains("error=");
    assert!(ok(&admin[0]) && ok(&admin[1]));
    assert!(!ok(&admin[2]) && !ok(&admin[3]), "{:?}", admin[2]);
    assert_ne!(admin[0]["outcome"], admin[2]["outcome"]);
    assert!(admin[3]["reasons"].to_string().contains("scopes=crm:read"));
    // 15 server events and 4 admin events, one chain.
    assert_eq!(all.lines().count(), 19, "{all}");

    let o = portcullis(d, &["audit", "verify", "--strict"], None);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("intact: 19 events"), "{text}");
    assert!(text.contains("head record matches"), "{text}");
}

/// Fail closed: when the audit log cannot be opened (here: its signing key is gone), the change
/// is refused before anything is done.
#[tokio::test]
async fn no_change_without_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = portcullis(
        d,
        &["users", "add", "bob", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(o.status.success(), "{}", out(&o));
    std::fs::remove_file(d.join("audit-signing.key")).unwrap();
    let o = portcullis(d, &["users", "disable", "bob"], None);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(err.contains("audit signing key"), "{err}");
    let o = portcullis(d, &["users", "list", "--json"], None);
    assert!(o.status.success(), "{}", out(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("\"disabled\":false"), "{list}");
}
