//! Retention (AU-4), erasure (AU-5), encrypted payloads (AU-2) and memory-off connectors (AU-7):
//! each leaves `verify` green.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use portcullis_audit::verify::{ProblemKind, VerifyOptions, verify_config};
use portcullis_audit::{AuditConfig, AuditLog, EventFilter};
use portcullis_core::EventSink;

fn opts(cfg: &AuditConfig) -> VerifyOptions {
    VerifyOptions {
        head_path: cfg.head_path.clone(),
        ..Default::default()
    }
}

#[tokio::test]
async fn retention_removes_expired_content_per_class_and_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.connector_classes
        .insert("crm".into(), "personal".into());
    cfg.retention_days.insert("personal".into(), 30);
    cfg.default_retention_days = None; // other classes are kept
    let (manual, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    for i in 0..10 {
        log.record(event(i)); // connector crm: class personal, at t0
    }
    for i in 10..15 {
        let mut e = event(i);
        e.connector = Some("wiki".into()); // default class, kept forever
        log.record(e);
    }
    log.flush().await;
    manual.advance(std::time::Duration::from_secs(31 * 86_400));
    for i in 15..20 {
        let mut e = event(i);
        e.time = manual_now(&manual);
        log.record(e); // personal, but young
    }
    let receipt = log.apply_retention("tester").await.unwrap();
    assert_eq!(receipt.removed, 10, "{receipt:?}");
    assert!(receipt.classes.contains(&("personal".into(), 30, 10)));
    let left = log.events(&EventFilter::default()).await.unwrap();
    // 5 wiki + 5 young personal + the admin event of the run itself.
    assert_eq!(left.len(), 11);
    let admin = left.last().unwrap();
    assert_eq!(admin.method.as_deref(), Some("audit/retention"));
    assert_eq!(admin.target.as_deref(), Some(receipt.id.as_str()));
    log.shutdown().await;
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.redacted, 10);
    assert_eq!(r.events_checked, 21);
    let receipts = log.store().receipts().await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].kind, "retention");
}

fn manual_now(c: &portcullis_core::clock::ManualClock) -> chrono::DateTime<chrono::Utc> {
    use portcullis_core::Clock;
    c.now()
}

#[tokio::test]
async fn payloads_are_encrypted_per_subject_and_erasure_shreds_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.connector_classes
        .insert("crm".into(), "personal".into());
    cfg.payload_classes.insert("personal".into());
    cfg.memory_off_connectors.insert("hr".into());
    let (_, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    for i in 0..6 {
        log.record_with_payload(
            event(i),
            format!("payload of call {i} [EMAIL]").into_bytes(),
        );
    }
    let mut hr = event(6);
    hr.connector = Some("hr".into());
    log.record_with_payload(hr, b"salary details".to_vec());
    let mut other = event(7);
    other.connector = Some("wiki".into());
    log.record_with_payload(other, b"not a payload class".to_vec());
    log.flush().await;
    assert_eq!(
        log.metrics().payloads_suppressed.load(Ordering::Relaxed),
        2,
        "memory-off and unlisted class keep nothing"
    );
    assert_eq!(
        log.payload(1).await.unwrap().as_deref(),
        Some(&b"payload of call 0 [EMAIL]"[..])
    );
    assert_eq!(
        log.payload(7).await.unwrap(),
        None,
        "memory-off connector (AU-7)"
    );
    assert_eq!(log.payload(8).await.unwrap(), None);
    let raw = log.store().payloads_by_seq(1, 1).await.unwrap();
    assert!(
        !raw[0].ciphertext.windows(7).any(|w| w == b"payload"),
        "payloads are encrypted at rest (AU-2)"
    );
    // The hr event's metadata is still there (AU-7 keeps metadata).
    assert_eq!(
        log.events(&EventFilter {
            connector: Some("hr".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        1
    );

    // alice is the principal of events 0, 2, 4.
    let receipt = log
        .erase_subject("alice", "dpo@example.com", false)
        .await
        .unwrap();
    assert_eq!(receipt.payloads_deleted, 3);
    assert!(receipt.key_destroyed);
    assert!(
        !serde_json::to_string(&receipt).unwrap().contains("alice"),
        "the receipt keeps no raw subject id"
    );
    assert_eq!(log.payload(1).await.unwrap(), None);
    assert!(
        log.payload(2).await.unwrap().is_some(),
        "bob's payloads stay"
    );
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{r:?}");

    // Erasing with --redact-events removes the metadata of the subject's events as well.
    let receipt = log
        .erase_subject("bob", "dpo@example.com", true)
        .await
        .unwrap();
    assert_eq!(receipt.payloads_deleted, 3);
    assert!(receipt.events_redacted >= 3);
    assert!(
        log.events(&EventFilter {
            principal: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
    log.shutdown().await;
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.redacted, receipt.events_redacted);
    let kinds: Vec<String> = log
        .store()
        .receipts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, vec!["erasure", "erasure"]);
}

#[tokio::test]
async fn a_swapped_payload_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.payload_classes.insert("default".into());
    let (_, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    log.record_with_payload(event(0), b"one".to_vec());
    log.record_with_payload(event(2), b"two".to_vec());
    log.shutdown().await;
    log.store()
        .execute_raw("UPDATE audit_payloads SET ciphertext = ciphertext || x'00' WHERE seq = 2")
        .await
        .unwrap();
    log.store().close().await;
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    let p = r.problem.unwrap();
    assert_eq!((p.kind, p.seq), (ProblemKind::PayloadMismatch, 2));
}

#[tokio::test]
async fn policy_file_is_parsed_and_bad_values_are_named() {
    let p = std::path::Path::new("audit.yaml");
    let pol = portcullis_audit::AuditPolicy::from_yaml(
        "connector_classes: { crm: personal }\nretention_days: { personal: 30 }\npayload_classes: [personal]\n",
        p,
    )
    .unwrap();
    let mut cfg = AuditConfig::embedded(std::path::Path::new("/tmp"));
    pol.apply(&mut cfg);
    assert_eq!(cfg.retention_for("personal"), Some(30));
    let e = portcullis_audit::AuditPolicy::from_yaml("retention_dayz: {}\n", p).unwrap_err();
    assert!(e.to_string().contains("audit.yaml"), "{e}");
    cfg.retention_days.insert("x".into(), 0);
    assert!(
        cfg.validate()
            .unwrap_err()
            .to_string()
            .contains("retention_days for class \"x\" is 0")
    );
}

#[tokio::test]
async fn postgres_retention_erasure_and_payloads_keep_verify_green() {
    let pg = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = pg_config(&pg.url, dir.path());
    cfg.payload_classes.insert("default".into());
    cfg.default_retention_days = Some(1);
    let (manual, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    for i in 0..8 {
        log.record_with_payload(event(i), format!("p{i}").into_bytes());
    }
    log.flush().await;
    assert_eq!(log.payload(3).await.unwrap().as_deref(), Some(&b"p2"[..]));
    let erased = log.erase_subject("alice", "dpo", false).await.unwrap();
    assert_eq!((erased.payloads_deleted, erased.key_destroyed), (4, true));
    manual.advance(std::time::Duration::from_secs(2 * 86_400));
    let kept = log.apply_retention("ops").await.unwrap();
    assert_eq!(kept.removed, 9, "8 calls and the erasure's admin event");
    log.shutdown().await;
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.redacted, 9);
    log.store().close().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn background_retention_job_runs_and_stops_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.default_retention_days = Some(1);
    let (manual, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    log.record(event(0));
    log.flush().await;
    manual.advance(std::time::Duration::from_secs(3 * 86_400));
    let job = log.spawn_retention(); // the first run starts at once
    // Wait for the run's receipt (polling the store, bounded; no sleeping).
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while log.store().receipts().await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the retention job did not run");
    log.shutdown().await;
    tokio::time::timeout(std::time::Duration::from_secs(30), job)
        .await
        .expect("the retention job must stop when the log shuts down")
        .unwrap();
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.redacted, 1);
}
