//! `portcullis audit` end to end: the real binary against a log written by the library (AU-3 to
//! AU-6). Exit codes: 0 intact or done, 1 tampered, 2 error.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis_audit::{AuditConfig, AuditLog};
use portcullis_core::clock::ManualClock;
use portcullis_core::{CorrelationId, Decision, Event, EventKind, EventSink, FindingSummary};
use portcullis_store::{DatabaseUrl, OpenMode, Store};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 0).unwrap()
}

fn event(i: u64) -> Event {
    let mut e = Event::new(
        t0() + chrono::Duration::seconds(i as i64),
        CorrelationId::from_request_id(&format!("req-{i}")).unwrap(),
        EventKind::McpRequest,
    );
    e.principal = Some(if i.is_multiple_of(2) { "alice" } else { "bob" }.into());
    e.client = Some("chatgpt".into());
    e.source = Some("127.0.0.1:40000".into());
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some("search_customers".into());
    if i.is_multiple_of(3) {
        e.decision = Decision::Redact;
        e.findings.push(FindingSummary {
            kind: "pii.email".into(),
            category: "pii".into(),
            direction: "response".into(),
            pointer: None,
            action: "redact".into(),
            count: 1,
        });
    }
    e.upstream_status = Some(200);
    e
}

async fn write_log(dir: &Path, n: u64) {
    let mut cfg = AuditConfig::embedded(dir);
    cfg.checkpoint_every = 10;
    cfg.payload_classes.insert("default".into());
    let log = AuditLog::open(cfg, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    for i in 0..n {
        log.record_with_payload(event(i), format!("redacted payload {i}").into_bytes());
        if i % 10 == 9 {
            log.flush().await;
        }
    }
    log.shutdown().await;
    log.store().close().await;
}

fn audit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn tamper(dir: &Path, sql: &'static str) {
    let s = Store::open(&DatabaseUrl::embedded(dir), OpenMode::MustExist)
        .await
        .unwrap();
    s.execute_raw(sql).await.unwrap();
    s.close().await;
}

#[tokio::test]
async fn verify_reports_intact_then_names_the_first_bad_event() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30).await;
    let o = audit(dir.path(), &["verify"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("intact: 30 events (seq 1 to 30), 3 signed checkpoints verified"),
        "{out}"
    );

    let o = audit(
        dir.path(),
        &[
            "verify",
            "--from",
            "2025-10-09T08:53:30Z",
            "--to",
            "2025-10-09T08:53:35Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    tamper(
        dir.path(),
        "UPDATE audit_events SET decision = 'allow' WHERE seq = 7",
    )
    .await;
    let o = audit(dir.path(), &["verify"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("TAMPERED: first bad event is seq 7 (id "),
        "{out}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_never_intact() {
    let dir = tempfile::tempdir().unwrap();
    let o = audit(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("does not exist; check --data-dir"),
        "{:?}",
        text(&o)
    );

    write_log(dir.path(), 5).await;
    for (args, needle) in [
        (
            vec!["verify", "--from", "yesterday"],
            "bad time range: --from \"yesterday\"",
        ),
        (
            vec!["verify", "--from", "2026-02-01", "--to", "2026-01-01"],
            "is after --to",
        ),
        (vec!["search", "--decision", "maybe"], "is not a decision"),
        (vec!["export", "--format", "xml"], "unknown export format"),
    ] {
        let o = audit(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).1.contains(needle), "{args:?}: {:?}", text(&o));
    }

    let key = dir.path().join("audit-signing.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let o = audit(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("audit-signing.key is missing"),
        "{:?}",
        text(&o)
    );
    std::fs::write(&key, saved).unwrap();

    for f in ["portcullis.db-wal", "portcullis.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(dir.path().join("portcullis.db"), vec![7u8; 4096]).unwrap();
    let o = audit(dir.path(), &["verify"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("corrupt") && !out.contains("intact"),
        "{out}{err}"
    );
}

#[tokio::test]
async fn export_ocsf_lines_carry_the_api_activity_fields() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12).await;
    let o = audit(dir.path(), &["export", "--format", "ocsf"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    for v in &lines {
        // OCSF API Activity (class 6003, category 6): required base and class attributes.
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["category_uid"], 6);
        let activity = v["activity_id"].as_u64().unwrap();
        assert_eq!(v["type_uid"].as_u64().unwrap(), 6003 * 100 + activity);
        assert!(v["time"].as_i64().unwrap() >= 1_760_000_000_000);
        assert!(v["severity_id"].is_u64());
        assert_eq!(v["metadata"]["product"]["name"], "Portcullis");
        assert!(v["metadata"]["version"].as_str().unwrap().starts_with("1."));
        assert!(v["actor"]["user"]["uid"].is_string());
        assert_eq!(v["api"]["operation"], "tools/call");
        assert_eq!(v["api"]["service"]["name"], "crm");
        assert_eq!(v["src_endpoint"]["ip"], "127.0.0.1");
        assert!(
            v["metadata"]["correlation_uid"]
                .as_str()
                .unwrap()
                .starts_with("req-")
        );
    }
    assert_eq!(lines[3]["disposition"], "Modified", "a redacted call");

    let o = audit(
        dir.path(),
        &["export", "--format", "csv", "--principal", "alice"],
    );
    let (out, _) = text(&o);
    assert!(out.starts_with("seq,time,id,correlation_id,"), "{out}");
    assert_eq!(out.lines().count(), 1 + 6);

    let o = audit(
        dir.path(),
        &[
            "search",
            "--json",
            "--finding",
            "pii.email",
            "--principal",
            "bob",
        ],
    );
    let (out, _) = text(&o);
    let seqs: Vec<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        vec![4, 10],
        "events 3 and 9: bob, with an email finding"
    );
    let o = audit(
        dir.path(),
        &["search", "--tool", "search_customers", "--limit", "2"],
    );
    assert_eq!(text(&o).0.lines().count(), 3, "header and two rows");
}

#[tokio::test]
async fn retention_text_and_erasure_leave_verify_green() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10).await;
    let policy = dir.path().join("audit.yaml");
    std::fs::write(
        &policy,
        "connector_classes: { crm: personal }\nretention_days: { personal: 30 }\ndefault_retention_days: 365\npayload_classes: [personal]\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let o = audit(dir.path(), &["retention", "--policy", p]);
    let (out, _) = text(&o);
    assert!(out.contains("- personal (crm): 30 days."), "{out}");

    let o = audit(
        dir.path(),
        &["erase", "--subject", "alice", "--actor", "dpo"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["payloads_deleted"], 5);
    assert_eq!(receipt["key_destroyed"], true);
    assert_eq!(receipt["actor"], "dpo");

    // The events are from 2025 and the policy keeps 30 days: all expire now.
    let o = audit(
        dir.path(),
        &["retention", "--policy", p, "--apply", "--actor", "ops"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["removed"], 10);

    let o = audit(dir.path(), &["verify", "--strict"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("10 removed by retention or erasure"), "{out}");
}
