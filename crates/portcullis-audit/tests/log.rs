//! The audit log end to end on both backends: group commit, read-back, and every tamper case
//! `verify` must catch (AU-1, AU-3).

mod common;

use std::sync::Arc;

use common::*;
use portcullis_audit::verify::{ProblemKind, VerifyOptions, verify_config};
use portcullis_audit::{AuditConfig, AuditError, AuditLog, EventFilter};
use portcullis_core::{Decision, Event, EventSink};
use portcullis_store::{OpenMode, Store};

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Env {
    dir: tempfile::TempDir,
    cfg: AuditConfig,
    pg: Option<PgDb>,
}

impl Env {
    async fn new(b: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match b {
            Backend::Sqlite => {
                let cfg = AuditConfig::embedded(dir.path());
                Self { dir, cfg, pg: None }
            }
            Backend::Postgres => {
                let pg = PgDb::create().await;
                let cfg = pg_config(&pg.url, dir.path());
                Self {
                    dir,
                    cfg,
                    pg: Some(pg),
                }
            }
        }
    }

    fn opts(&self) -> VerifyOptions {
        VerifyOptions {
            head_path: self.cfg.head_path.clone(),
            ..Default::default()
        }
    }

    async fn store(&self) -> Store {
        Store::open(&self.cfg.database_url().unwrap(), OpenMode::MustExist)
            .await
            .unwrap()
    }

    async fn finish(self) {
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
        drop(self.dir);
    }
}

/// Writes `n` events in batches of `per_flush`, so with `checkpoint_every = per_flush` there is a
/// checkpoint at every multiple of it; returns what was recorded.
async fn write(cfg: &AuditConfig, n: u64, per_flush: u64) -> Vec<Event> {
    let (_, clock) = clock();
    let log = AuditLog::open(cfg.clone(), clock).await.unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let e = event(i);
        out.push(e.clone());
        log.record(e);
        if (i + 1).is_multiple_of(per_flush) {
            log.flush().await;
        }
    }
    log.shutdown().await;
    assert_eq!(
        log.metrics()
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // Close the pool now, so SQLite's last checkpoint of its WAL cannot race the test's edits.
    log.store().close().await;
    out
}

async fn round_trip(b: Backend) {
    let env = Env::new(b).await;
    let (_, clock) = clock();
    let log = AuditLog::open(env.cfg.clone(), clock).await.unwrap();
    let recorded: Vec<Event> = (0..50).map(event).collect();
    for e in &recorded {
        log.record(e.clone());
    }
    log.flush().await;
    let all = log.events(&EventFilter::default()).await.unwrap();
    assert_eq!(all, recorded, "events read back exactly, in order (AU-1)");

    let alice = log
        .events(&EventFilter {
            principal: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 25);
    let emails = log
        .events(&EventFilter {
            finding_kind: Some("pii.email".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(emails.len(), 13);
    let emails_prefix = log
        .events(&EventFilter {
            finding_kind: Some("pii.e".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        emails_prefix.is_empty(),
        "finding kinds match exactly, not by prefix"
    );
    let deny = log
        .events(&EventFilter {
            decision: Some(Decision::Deny),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(deny.iter().all(|e| e.decision == Decision::Deny) && !deny.is_empty());
    let window = EventFilter {
        from: Some(t0() + chrono::Duration::milliseconds(10)),
        to: Some(t0() + chrono::Duration::milliseconds(19)),
        tool: Some("search_customers".into()),
        ..Default::default()
    };
    let w = log.events(&window).await.unwrap();
    assert_eq!(
        w.iter().map(|e| e.request_bytes - 100).collect::<Vec<_>>(),
        vec![10, 11, 13, 14, 16, 17, 19]
    );
    let backwards = EventFilter {
        from: Some(t0() + chrono::Duration::seconds(1)),
        to: Some(t0()),
        ..Default::default()
    };
    assert!(matches!(
        log.events(&backwards).await,
        Err(AuditError::BadTimeRange(_))
    ));

    log.shutdown().await;
    log.record(event(99));
    assert_eq!(
        log.metrics()
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "late events are counted"
    );
    let r = verify_config(&env.cfg, &env.opts()).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.events_checked, 50);
    assert_eq!(r.unsigned_tail, 0, "shutdown signs the tail");
    assert!(r.head_checked);

    // Reopening continues the same chain.
    let (_, clock) = common::clock();
    let log = AuditLog::open(env.cfg.clone(), clock).await.unwrap();
    log.record(event(50));
    log.shutdown().await;
    let r = verify_config(&env.cfg, &env.opts()).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.events_checked, 51);
    env.finish().await;
}

#[tokio::test]
async fn sqlite_round_trip_and_verify() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_round_trip_and_verify() {
    round_trip(Backend::Postgres).await;
}

/// Writes 30 events with checkpoints at 10, 20, 30, applies `tamper`, and expects verify to name
/// `seq` with `kind`.
async fn tamper_case(b: Backend, tamper: &[&'static str], kind: ProblemKind, seq: i64) {
    let mut env = Env::new(b).await;
    env.cfg.checkpoint_every = 10;
    write(&env.cfg, 30, 10).await;
    let before = verify_config(&env.cfg, &env.opts()).await.unwrap();
    assert!(before.intact(), "{before:?}");
    assert_eq!(before.checkpoints_checked, 3);
    let store = env.store().await;
    for sql in tamper {
        store.execute_raw(sql).await.unwrap();
    }
    store.close().await;
    let r = verify_config(&env.cfg, &env.opts()).await.unwrap();
    let p = r
        .problem
        .clone()
        .unwrap_or_else(|| panic!("tampering {tamper:?} not caught: {r:?}"));
    assert_eq!((p.kind, p.seq), (kind, seq), "{p:?}");
    env.finish().await;
}

const CHANGE: &[&str] = &["UPDATE audit_events SET principal = 'mallory' WHERE seq = 15"];
const DELETE: &[&str] = &["DELETE FROM audit_events WHERE seq = 15"];
const INSERT: &[&str] = &[
    "UPDATE audit_events SET seq = -seq - 1 WHERE seq >= 15",
    "UPDATE audit_events SET seq = -seq WHERE seq < 0",
    "INSERT INTO audit_events (seq, id, time_ns, correlation_id, kind, decision, reasons, findings, outcome, \
     request_bytes, response_bytes, latency_us, data_class, hash) SELECT 15, id, time_ns, 'forged', kind, decision, \
     reasons, findings, outcome, 0, 0, 0, data_class, hash FROM audit_events WHERE seq = 14",
];
const REORDER: &[&str] = &[
    "UPDATE audit_events SET seq = -1 WHERE seq = 15",
    "UPDATE audit_events SET seq = 15 WHERE seq = 16",
    "UPDATE audit_events SET seq = 16 WHERE seq = -1",
];
const TRUNCATE_COVERED: &[&str] = &["DELETE FROM audit_events WHERE seq > 25"];
const TRUNCATE_ALL_EVIDENCE: &[&str] = &[
    "DELETE FROM audit_events WHERE seq > 25",
    "DELETE FROM audit_checkpoints WHERE seq > 20",
];
const FORGE_CHECKPOINT: &[&str] =
    &["UPDATE audit_checkpoints SET time_us = time_us + 1 WHERE seq = 20"];
const HIDE_BEHIND_REDACTION: &[&str] = &[
    "UPDATE audit_events SET redacted = 'retention:default', leaf = hash, principal = 'mallory' WHERE seq = 15",
];

#[tokio::test]
async fn sqlite_catches_changed_field() {
    tamper_case(Backend::Sqlite, CHANGE, ProblemKind::Changed, 15).await;
}
#[tokio::test]
async fn sqlite_catches_deleted_event() {
    tamper_case(Backend::Sqlite, DELETE, ProblemKind::Missing, 15).await;
}
#[tokio::test]
async fn sqlite_catches_inserted_event() {
    tamper_case(Backend::Sqlite, INSERT, ProblemKind::Changed, 15).await;
}
#[tokio::test]
async fn sqlite_catches_reordered_events() {
    tamper_case(Backend::Sqlite, REORDER, ProblemKind::Changed, 15).await;
}
#[tokio::test]
async fn sqlite_catches_truncated_tail_under_checkpoint() {
    tamper_case(
        Backend::Sqlite,
        TRUNCATE_COVERED,
        ProblemKind::Truncated,
        26,
    )
    .await;
}
#[tokio::test]
async fn sqlite_catches_truncated_tail_after_last_checkpoint() {
    // The checkpoints were cut off too: only the head record outside the database remembers.
    tamper_case(
        Backend::Sqlite,
        TRUNCATE_ALL_EVIDENCE,
        ProblemKind::Truncated,
        26,
    )
    .await;
}
#[tokio::test]
async fn sqlite_catches_forged_checkpoint() {
    tamper_case(
        Backend::Sqlite,
        FORGE_CHECKPOINT,
        ProblemKind::BadCheckpoint,
        20,
    )
    .await;
}
#[tokio::test]
async fn sqlite_catches_content_hidden_behind_redaction_marker() {
    tamper_case(
        Backend::Sqlite,
        HIDE_BEHIND_REDACTION,
        ProblemKind::BadRedaction,
        15,
    )
    .await;
}
#[tokio::test]
async fn postgres_catches_changed_deleted_inserted_reordered_truncated() {
    tamper_case(Backend::Postgres, CHANGE, ProblemKind::Changed, 15).await;
    tamper_case(Backend::Postgres, DELETE, ProblemKind::Missing, 15).await;
    tamper_case(Backend::Postgres, INSERT, ProblemKind::Changed, 15).await;
    tamper_case(Backend::Postgres, REORDER, ProblemKind::Changed, 15).await;
    tamper_case(
        Backend::Postgres,
        TRUNCATE_ALL_EVIDENCE,
        ProblemKind::Truncated,
        26,
    )
    .await;
}

#[tokio::test]
async fn sqlite_catches_rehashed_chain_at_the_next_checkpoint() {
    // Someone who can write the database but lacks the key changes event 15 and recomputes every
    // hash after it: the chain is self-consistent, but no longer reaches the signed checkpoint.
    let mut env = Env::new(Backend::Sqlite).await;
    env.cfg.checkpoint_every = 10;
    env.cfg.head_path = None;
    write(&env.cfg, 30, 10).await;
    let store = env.store().await;
    let mut rows = store.events_by_seq(1, 30, 100).await.unwrap();
    rows[14].principal = Some("mallory".into());
    let mut prev: [u8; 32] = rows[13].hash.clone().try_into().unwrap();
    let mut buf = Vec::new();
    for r in rows.iter_mut().skip(14) {
        let leaf = portcullis_audit::canonical::leaf(r, &mut buf);
        prev = portcullis_audit::canonical::chain(&prev, r.seq, &leaf);
        r.hash = prev.to_vec();
    }
    portcullis_store::dispatch!(store.db(), pool => {
        for r in rows.iter().skip(14) {
            sqlx::query("UPDATE audit_events SET principal = $1, hash = $2 WHERE seq = $3")
                .bind(&r.principal).bind(&r.hash).bind(r.seq).execute(pool).await.unwrap();
        }
    });
    store.close().await;
    let r = verify_config(&env.cfg, &env.opts()).await.unwrap();
    let p = r.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::CheckpointMismatch, 11),
        "{}",
        p.detail
    );
    env.finish().await;
}

#[tokio::test]
async fn time_range_verification_anchors_on_checkpoints() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.cfg.checkpoint_every = 10;
    write(&env.cfg, 30, 10).await;
    let range = |a: i64, b: i64| VerifyOptions {
        from: Some(t0() + chrono::Duration::milliseconds(a)),
        to: Some(t0() + chrono::Duration::milliseconds(b)),
        head_path: env.cfg.head_path.clone(),
    };
    // Events 12..=18 (times 11..=17 ms) lie between checkpoints 10 and 20.
    let r = verify_config(&env.cfg, &range(11, 17)).await.unwrap();
    assert!(r.intact(), "{r:?}");
    assert_eq!((r.first_seq, r.last_seq), (Some(11), Some(20)));
    let store = env.store().await;
    store
        .execute_raw("UPDATE audit_events SET target = 'x' WHERE seq = 3")
        .await
        .unwrap();
    store.close().await;
    assert!(
        verify_config(&env.cfg, &range(11, 17))
            .await
            .unwrap()
            .intact(),
        "outside the range"
    );
    assert!(
        !verify_config(&env.cfg, &range(0, 17))
            .await
            .unwrap()
            .intact()
    );
    let bad = VerifyOptions {
        from: Some(t0() + chrono::Duration::seconds(5)),
        to: Some(t0()),
        head_path: None,
    };
    let e = verify_config(&env.cfg, &bad).await.unwrap_err();
    assert!(
        matches!(e, AuditError::BadTimeRange(_)) && e.to_string().contains("swap"),
        "{e}"
    );
    env.finish().await;
}

#[tokio::test]
async fn missing_or_wrong_key_is_refused() {
    let env = Env::new(Backend::Sqlite).await;
    write(&env.cfg, 5, 5).await;
    let key = env.cfg.signing_key_path.clone();
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let (_, clock) = clock();
    let e = AuditLog::open(env.cfg.clone(), clock.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, AuditError::KeyMissing { .. }), "{e}");
    assert!(!key.exists(), "a log with events never gets a fresh key");
    let e = verify_config(&env.cfg, &env.opts()).await.unwrap_err();
    assert!(e.to_string().contains("restore it from your backup"), "{e}");

    // Another log's key: open refuses, verify reports the checkpoints as not ours.
    let other = tempfile::tempdir().unwrap();
    let other_cfg = AuditConfig::embedded(other.path());
    write(&other_cfg, 1, 1).await;
    std::fs::copy(&other_cfg.signing_key_path, &key).unwrap();
    let e = AuditLog::open(env.cfg.clone(), clock.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, AuditError::Foreign { .. }), "{e}");
    let e = verify_config(&env.cfg, &VerifyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuditError::Foreign { .. }) && e.to_string().contains("check --data-dir"),
        "{e}"
    );
    std::fs::write(&key, saved).unwrap();
    assert!(verify_config(&env.cfg, &env.opts()).await.unwrap().intact());
    env.finish().await;
}

#[tokio::test]
async fn corrupt_or_foreign_database_is_an_error_not_a_pass() {
    let env = Env::new(Backend::Sqlite).await;
    write(&env.cfg, 3, 3).await;
    let db = env.dir.path().join("portcullis.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(env.dir.path().join(format!("portcullis.db{suffix}")));
    }
    std::fs::write(
        &db,
        b"this is not a database at all, just text that someone put here..........",
    )
    .unwrap();
    let e = verify_config(&env.cfg, &env.opts()).await.unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");

    let foreign = tempfile::tempdir().unwrap();
    let fdb = foreign.path().join("portcullis.db");
    {
        use sqlx::Connection;
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", fdb.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE customers (id INTEGER)")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let mut fcfg = AuditConfig::embedded(foreign.path());
    fcfg.signing_key_path = env.cfg.signing_key_path.clone();
    let e = verify_config(&fcfg, &VerifyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuditError::Store(portcullis_store::StoreError::Foreign { .. })
        ),
        "{e}"
    );
    env.finish().await;
}

#[tokio::test]
async fn record_never_blocks_and_counts_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.queue_capacity = 4;
    let (_, clock) = clock();
    let log: Arc<AuditLog> = AuditLog::open(cfg.clone(), clock).await.unwrap();
    // On a current-thread runtime the writer cannot run until we yield, so the queue fills.
    for i in 0..10 {
        log.record(event(i));
    }
    let dropped = log
        .metrics()
        .events_dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(dropped, 6);
    log.shutdown().await;
    assert_eq!(log.events(&EventFilter::default()).await.unwrap().len(), 4);
}

/// `committed` (the data path's per-call wait, AU-1) returns only once every event recorded
/// before it is in the database, on both backends; like `flush`, but without waiting for the
/// head record, which `flush` still brings up to date.
async fn committed_means_in_the_database(b: Backend) {
    let env = Env::new(b).await;
    let (_, clock) = clock();
    let log = AuditLog::open(env.cfg.clone(), clock).await.unwrap();
    let store = env.store().await;
    for round in 0..20u64 {
        let batch: Vec<Event> = (round * 7..round * 7 + 7).map(event).collect();
        for e in &batch {
            log.record(e.clone());
        }
        log.committed().await;
        let head = store.head().await.unwrap().expect("events committed");
        assert_eq!(
            head.seq,
            (round * 7 + 7) as i64,
            "every event recorded before `committed` is in the database (round {round})"
        );
    }
    log.flush().await;
    let rec = portcullis_audit::keys::HeadRecord::read(env.cfg.head_path.as_deref().unwrap())
        .unwrap()
        .expect("a head record after flush");
    assert_eq!(
        rec.seq, 140,
        "flush brings the head record up to the last commit"
    );
    log.shutdown().await;
    store.close().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_committed_means_in_the_database() {
    committed_means_in_the_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_committed_means_in_the_database() {
    committed_means_in_the_database(Backend::Postgres).await;
}
