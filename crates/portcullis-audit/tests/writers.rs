//! Several writers on one log (AU-1, AU-3): `portcullis serve` and CLI admin commands each open
//! their own `AuditLog` on the same database. Appends must never fork the chain; admin actions
//! are chained events; the lean verify reader refuses values it cannot read exactly.

mod common;

use common::*;
use portcullis_audit::admin::{AdminAction, CLI_CLIENT};
use portcullis_audit::verify::{VerifyOptions, verify_config};
use portcullis_audit::{AuditConfig, AuditLog, EventFilter};
use portcullis_core::{EventKind, EventSink, Outcome};
use portcullis_store::{OpenMode, Store};

fn opts(cfg: &AuditConfig) -> VerifyOptions {
    VerifyOptions {
        head_path: cfg.head_path.clone(),
        ..Default::default()
    }
}

/// Two logs on one database, writing in turns and then at the same time: the chain stays one
/// chain (seq 1..=n, each event once) and verifies intact, head record included.
async fn two_writers(cfg: AuditConfig) {
    let (_, clock_a) = clock();
    let (_, clock_b) = clock();
    let mut small = cfg.clone();
    // Checkpoints at different points in each writer, so both sign parts of the shared chain.
    small.checkpoint_every = 7;
    let a = AuditLog::open(small.clone(), clock_a).await.unwrap();
    small.checkpoint_every = 11;
    let b = AuditLog::open(small, clock_b).await.unwrap();
    let mut n = 0u64;
    // In turns: each writer's batch must start from the head the other one left.
    for round in 0..20 {
        let (w, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for _ in 0..(3 + round % 4) {
            w.record(event(n));
            n += 1;
        }
        w.flush().await;
        other.record(event(n));
        n += 1;
        other.flush().await;
    }
    // At once: both commit batches concurrently; the database's write lock orders them.
    for _ in 0..5 {
        for _ in 0..200 {
            a.record(event(n));
            n += 1;
            b.record(event(n));
            n += 1;
        }
        tokio::join!(a.flush(), b.flush());
    }
    a.shutdown().await;
    b.shutdown().await;
    for l in [&a, &b] {
        assert_eq!(
            l.metrics()
                .events_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{:?}", r.problem);
    assert_eq!(r.events_checked, n);
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(n as i64)));
    assert!(r.checkpoints_checked >= 2, "{r:?}");
    assert_eq!(r.unsigned_tail, 0, "both shut down with a final checkpoint");
    // Every event recorded exactly once.
    let events = a.events(&EventFilter::default()).await.unwrap();
    let mut ids: Vec<_> = events.iter().map(|e| e.correlation_id.clone()).collect();
    ids.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    ids.dedup();
    assert_eq!(ids.len() as u64, n);
    a.store().close().await;
    b.store().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_writers_never_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    two_writers(AuditConfig::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_writers_never_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgDb::create().await;
    two_writers(pg_config(&pg.url, dir.path())).await;
    pg.drop_db().await;
}

fn action(command: &str, target: &str, outcome: Result<(), String>) -> AdminAction {
    AdminAction {
        actor: "carol".into(),
        os_user: Some("ops".into()),
        client: CLI_CLIENT.into(),
        command: command.into(),
        target: target.into(),
        details: vec!["roles=end_user".into()],
        outcome,
    }
}

/// AU-1: an admin action is committed before `record_admin` returns, chained among the
/// server's events, and its outcome is kept.
#[tokio::test]
async fn admin_actions_are_committed_chained_events() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig::embedded(dir.path());
    let (_, c1) = clock();
    let (_, c2) = clock();
    let server = AuditLog::open(cfg.clone(), c1).await.unwrap();
    for i in 0..10 {
        server.record(event(i));
    }
    server.flush().await;
    let cli = AuditLog::open(cfg.clone(), c2).await.unwrap();
    let seq = cli
        .record_admin(&action("users/disable", "alice", Ok(())))
        .await
        .unwrap();
    assert_eq!(seq, 11, "appended after the server's events");
    let failed = cli
        .record_admin(&action(
            "users/disable",
            "nobody",
            Err("no user \"nobody\"".into()),
        ))
        .await
        .unwrap();
    assert_eq!(failed, 12);
    cli.shutdown().await;
    server.record(event(10));
    server.shutdown().await;

    let admin: Vec<_> = server
        .events(&EventFilter {
            principal: Some("carol".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(admin.len(), 2);
    assert!(admin.iter().all(|e| e.kind == EventKind::Admin));
    assert_eq!(admin[0].method.as_deref(), Some("users/disable"));
    assert_eq!(admin[0].target.as_deref(), Some("alice"));
    assert_eq!(admin[0].client.as_deref(), Some(CLI_CLIENT));
    assert_eq!(admin[0].outcome, Outcome::Ok { tool_error: false });
    assert!(matches!(admin[1].outcome, Outcome::Error { .. }));
    assert!(
        admin[1]
            .reasons
            .iter()
            .any(|r| r == "error=no user \"nobody\"")
    );
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{:?}", r.problem);
    assert_eq!(r.events_checked, 13);
    // A closed log refuses, it does not pretend.
    assert!(
        cli.record_admin(&action("users/enable", "alice", Ok(())))
            .await
            .is_err()
    );
}

/// The lean SQLite reader reads every column with the storage class the schema gives it: a
/// value of another class, put there by editing the file, is a read error, never a pass.
#[tokio::test]
async fn verify_refuses_values_of_the_wrong_type() {
    for tamper in [
        "UPDATE audit_events SET request_bytes = 'many' WHERE seq = 3",
        "UPDATE audit_events SET id = X'00ff' WHERE seq = 4",
        "UPDATE audit_events SET hash = 'not a blob' WHERE seq = 5",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig::embedded(dir.path());
        let (_, c) = clock();
        let log = AuditLog::open(cfg.clone(), c).await.unwrap();
        for i in 0..10 {
            log.record(event(i));
        }
        log.shutdown().await;
        log.store().close().await;
        let store = Store::open(&cfg.database_url().unwrap(), OpenMode::MustExist)
            .await
            .unwrap();
        store.execute_raw(tamper).await.unwrap();
        store.close().await;
        match verify_config(&cfg, &opts(&cfg)).await {
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("edited outside Portcullis"), "{tamper}: {m}");
            }
            Ok(r) => panic!("{tamper}: verify passed a value it could not read exactly: {r:?}"),
        }
    }
}

/// The lean reader and the sqlx read path see the same bytes: verification of a log with every
/// optional field set and unset agrees with the leaves the writer computed (any difference is a
/// "changed" problem).
#[tokio::test]
async fn lean_reader_matches_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig::embedded(dir.path());
    let (_, c) = clock();
    let log = AuditLog::open(cfg.clone(), c).await.unwrap();
    for i in 0..9000 {
        let mut e = event(i);
        if i % 3 == 0 {
            e.principal = None;
            e.upstream_status = Some(200);
            e.reasons = vec!["policy: rule ünïcødé 名前".into()];
        }
        log.record(e);
    }
    log.shutdown().await;
    let r = verify_config(&cfg, &opts(&cfg)).await.unwrap();
    assert!(r.intact(), "{:?}", r.problem);
    // More than two chunks of the reader, so hand-over between chunks is covered.
    assert_eq!(r.events_checked, 9000);
}

/// AU-1, AU-6: an admin action another process (the CLI) commits between the server's commits
/// reaches the server's live sinks too, in chain order, with the server's next commit.
#[tokio::test]
async fn admin_actions_of_another_process_reach_the_servers_live_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("audit.jsonl");
    let cfg = AuditConfig::embedded(dir.path());
    let mut server_cfg = cfg.clone();
    server_cfg.sinks = vec![portcullis_audit::sinks::SinkConfig::File {
        path: path.clone(),
        max_bytes: 1 << 20,
        keep: 1,
        format: portcullis_audit::sinks::LineFormat::Jsonl,
    }];
    let (_, c1) = clock();
    let (_, c2) = clock();
    let server = AuditLog::open(server_cfg, c1).await.unwrap();
    server.record(event(0));
    server.flush().await;
    let cli = AuditLog::open(cfg, c2).await.unwrap();
    cli.record_admin(&action("users/disable", "alice", Ok(())))
        .await
        .unwrap();
    cli.shutdown().await;
    server.record(event(2));
    server.shutdown().await; // drains the sinks

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let seqs: Vec<i64> = lines
        .iter()
        .map(|l| l["seq"].as_i64().unwrap_or_else(|| panic!("no seq in {l}")))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "{text}");
    assert!(
        text.lines().nth(1).unwrap().contains("users/disable"),
        "{text}"
    );
}
