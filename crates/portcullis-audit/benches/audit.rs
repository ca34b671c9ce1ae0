//! Audit log throughput: events appended per second with chaining and signing (SQLite and
//! PostgreSQL), and events verified per second, each beside a baseline measured in the same run
//! (the machines are shared and noisy, so ratios are what to compare).
//!
//! Run: `cargo bench -p portcullis-audit --bench audit` (PostgreSQL on 127.0.0.1:5432 for the
//! `*_postgres` cases; they panic with a clear message when it is unreachable).

use std::sync::Arc;

use divan::Bencher;
use divan::counter::ItemsCount;
use portcullis_audit::canonical;
use portcullis_audit::verify::{VerifyOptions, verify_config};
use portcullis_audit::{AuditConfig, AuditLog};
use portcullis_core::clock::ManualClock;
use portcullis_core::{CorrelationId, Decision, Event, EventKind, EventSink, FindingSummary};
use portcullis_store::audit::{AppendBatch, EventRow};
use portcullis_store::{OpenMode, Store};

/// Events per append iteration.
const APPEND_N: usize = 50_000;
/// Events in the log that verification walks.
const VERIFY_N: usize = 200_000;

fn main() {
    divan::main();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap()
}

/// A realistic event: a tool call with one finding and every metadata field set.
fn event(i: usize) -> Event {
    let mut e = Event::new(
        t0() + chrono::Duration::microseconds(i as i64),
        CorrelationId::from_request_id(&format!("0af7651916cd43dd8448eb211c80319c-{i}")).unwrap(),
        EventKind::McpRequest,
    );
    e.principal = Some(format!("user{}@example.com", i % 100));
    e.client = Some("chatgpt-connector".into());
    e.source = Some("10.1.2.3:51234".into());
    e.session = Some("4f9c2a7e-8d7b-4a8e-9a0c-3b1d2e4f5a6b".into());
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some("search_customers".into());
    e.decision = if i.is_multiple_of(7) {
        Decision::Redact
    } else {
        Decision::Allow
    };
    if i.is_multiple_of(7) {
        e.reasons.push("dlp.redact:pii.email".into());
        e.findings.push(FindingSummary {
            kind: "pii.email".into(),
            category: "pii".into(),
            direction: "response".into(),
            pointer: Some("/structuredContent/customers/0/email".into()),
            action: "redact".into(),
            count: 1,
        });
    }
    e.upstream_status = Some(200);
    e.request_bytes = 180;
    e.response_bytes = 2400;
    e.latency_us = 3500;
    e
}

struct Pg {
    name: String,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl Pg {
    async fn create() -> (Self, String) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(PG_ADMIN)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {PG_ADMIN} is unreachable ({e}); start it to run the *_postgres benchmarks"));
        let name = format!("portcullis_audit_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        (Self { name }, url)
    }
    async fn drop_db(&self) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
}

/// Records `APPEND_N` events through the public API (queue, group commit, chain, checkpoint
/// signing) and waits for the last commit.
async fn append_through_log(mut cfg: AuditConfig, events: Vec<Event>) {
    // The queue holds the whole burst: what is measured is how fast the writer drains it (the
    // sustained rate), not how fast a loop can call `record`.
    cfg.queue_capacity = events.len().max(1);
    let log = AuditLog::open(cfg, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    for e in events {
        log.record(e);
    }
    log.flush().await;
    log.shutdown().await;
    assert_eq!(
        log.metrics()
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    log.store().close().await;
}

/// Baseline: the same rows inserted by the same store code in batches of the same size, with
/// no hashing and no signing.
async fn append_plain(store: &Store, events: &[Event]) {
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| canonical::to_row(e, "default", e.principal.clone(), None))
        .collect();
    for chunk in rows.chunks(4096) {
        let chunk = chunk.to_vec();
        store
            .append(move |head| -> Result<AppendBatch, ()> {
                let mut seq = head.map(|h| h.seq).unwrap_or(0);
                let events = chunk
                    .iter()
                    .map(|r| {
                        seq += 1;
                        EventRow {
                            seq,
                            hash: vec![0; 32],
                            ..r.clone()
                        }
                    })
                    .collect();
                Ok(AppendBatch {
                    events,
                    payloads: Vec::new(),
                    checkpoint: None,
                })
            })
            .await
            .unwrap()
            .unwrap();
    }
}

/// Steady state: one log open for the whole benchmark (as in the gateway); each sample records
/// `APPEND_N` events and waits for their commit.
async fn append_steady(log: &AuditLog, events: Vec<Event>) {
    for e in events {
        log.record(e);
    }
    log.flush().await;
    assert_eq!(
        log.metrics()
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

fn open_log(rt: &tokio::runtime::Runtime, mut cfg: AuditConfig) -> Arc<AuditLog> {
    cfg.queue_capacity = APPEND_N;
    rt.block_on(AuditLog::open(cfg, Arc::new(ManualClock::new(t0()))))
        .unwrap()
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn append_sqlite(b: Bencher) {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&rt, AuditConfig::embedded(dir.path()));
    b.counter(ItemsCount::new(APPEND_N))
        .with_inputs(|| (0..APPEND_N).map(event).collect::<Vec<_>>())
        .bench_local_values(|events| rt.block_on(append_steady(&log, events)));
    rt.block_on(log.shutdown());
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn append_sqlite_baseline_unchained(b: Bencher) {
    let rt = rt();
    b.counter(ItemsCount::new(APPEND_N))
        .with_inputs(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = rt
                .block_on(Store::open(
                    &portcullis_store::DatabaseUrl::embedded(dir.path()),
                    OpenMode::CreateIfMissing,
                ))
                .unwrap();
            (dir, store, (0..APPEND_N).map(event).collect::<Vec<_>>())
        })
        .bench_local_values(|(dir, store, events)| {
            rt.block_on(async {
                append_plain(&store, &events).await;
                store.close().await;
            });
            dir
        });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn append_postgres(b: Bencher) {
    let rt = rt();
    let (pg, url) = rt.block_on(Pg::create());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.database = url;
    let log = open_log(&rt, cfg);
    b.counter(ItemsCount::new(APPEND_N))
        .with_inputs(|| (0..APPEND_N).map(event).collect::<Vec<_>>())
        .bench_local_values(|events| rt.block_on(append_steady(&log, events)));
    rt.block_on(log.shutdown());
    rt.block_on(log.store().close());
    rt.block_on(pg.drop_db());
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn append_postgres_baseline_unchained(b: Bencher) {
    let rt = rt();
    let (pg, url) = rt.block_on(Pg::create());
    let store = rt
        .block_on(Store::open(
            &url.parse().unwrap(),
            OpenMode::CreateIfMissing,
        ))
        .unwrap();
    b.counter(ItemsCount::new(APPEND_N))
        .with_inputs(|| (0..APPEND_N).map(event).collect::<Vec<_>>())
        .bench_local_values(|events| rt.block_on(append_plain(&store, &events)));
    rt.block_on(store.close());
    rt.block_on(pg.drop_db());
}

/// A log of `VERIFY_N` events on SQLite, written once.
fn verify_fixture(rt: &tokio::runtime::Runtime) -> (tempfile::TempDir, AuditConfig) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditConfig::embedded(dir.path());
    rt.block_on(append_through_log(
        cfg.clone(),
        (0..VERIFY_N).map(event).collect(),
    ));
    (dir, cfg)
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn verify_sqlite_end_to_end(b: Bencher) {
    let rt = rt();
    let (_dir, cfg) = verify_fixture(&rt);
    let opts = VerifyOptions {
        head_path: cfg.head_path.clone(),
        ..Default::default()
    };
    b.counter(ItemsCount::new(VERIFY_N)).bench_local(|| {
        let r = rt.block_on(verify_config(&cfg, &opts)).unwrap();
        assert!(r.intact() && r.events_checked == VERIFY_N as u64);
    });
}

/// Baseline for the end-to-end verification: reading the same rows through sqlx (the read path
/// `verify` used before its lean reader, and still the one search and export use), no hashing.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn verify_sqlite_baseline_read_only(b: Bencher) {
    let rt = rt();
    let (_dir, cfg) = verify_fixture(&rt);
    let store = rt
        .block_on(Store::open(
            &cfg.database_url().unwrap(),
            OpenMode::ReadOnly,
        ))
        .unwrap();
    b.counter(ItemsCount::new(VERIFY_N)).bench_local(|| {
        rt.block_on(async {
            let mut seq = 0;
            let mut n = 0;
            loop {
                let rows = store
                    .events_by_seq(seq + 1, i64::MAX, 50_000)
                    .await
                    .unwrap();
                let Some(last) = rows.last() else { break };
                seq = last.seq;
                n += rows.len();
            }
            assert_eq!(n, VERIFY_N);
        })
    });
}

/// What the verify path's lean reader costs alone: the same rows through
/// `Store::scan_events` (a prepared statement stepped directly, columns copied into chunks on a
/// reader thread), no hashing.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn verify_sqlite_lean_read_only(b: Bencher) {
    let rt = rt();
    let (_dir, cfg) = verify_fixture(&rt);
    let store = rt
        .block_on(Store::open(
            &cfg.database_url().unwrap(),
            OpenMode::ReadOnly,
        ))
        .unwrap();
    b.counter(ItemsCount::new(VERIFY_N)).bench_local(|| {
        rt.block_on(async {
            let mut scan = store.scan_events(1, i64::MAX);
            let mut n = 0;
            let mut bytes = 0;
            while let Some(chunk) = scan.next().await.unwrap() {
                n += chunk.len();
                bytes += chunk.iter().map(|r| r.hash.len()).sum::<usize>();
            }
            assert_eq!((n, bytes), (VERIFY_N, 32 * VERIFY_N));
        })
    });
}

/// The hashing work of verification alone, on rows already in memory: leaf digest plus chain
/// link per event.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn verify_chain_in_memory(b: Bencher) {
    let rows: Vec<EventRow> = (0..VERIFY_N)
        .map(|i| {
            let e = event(i);
            EventRow {
                seq: i as i64 + 1,
                ..canonical::to_row(&e, "default", e.principal.clone(), None)
            }
        })
        .collect();
    let genesis = canonical::genesis(b"bench-log");
    let mut prev = genesis;
    let mut buf = Vec::new();
    let hashes: Vec<[u8; 32]> = rows
        .iter()
        .map(|r| {
            prev = canonical::chain(&prev, r.seq, &canonical::leaf(r, &mut buf));
            prev
        })
        .collect();
    b.counter(ItemsCount::new(VERIFY_N)).bench_local(|| {
        let mut prev = genesis;
        let mut buf = Vec::with_capacity(1024);
        for (r, h) in rows.iter().zip(&hashes) {
            prev = canonical::chain(&prev, r.seq, &canonical::leaf(r, &mut buf));
            assert!(prev == *h);
        }
    });
}
