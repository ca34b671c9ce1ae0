//! Crash safety (AU-3, OPS-3): a writer answering calls under load is killed with SIGKILL; the log
//! then verifies and holds an event for every call that was answered. "Answered" means what the
//! gateway does: record the event, wait for `flush` (group commit), then reply.
//!
//! The writer is this test binary itself, re-run with `--ignored --exact crash_child_writer` and
//! the data directory in an environment variable.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use portcullis_audit::{AuditConfig, AuditLog, EventFilter};
use portcullis_core::{CorrelationId, Event, EventKind, EventSink, SystemClock};

const DIR_ENV: &str = "PORTCULLIS_CRASH_TEST_DIR";
/// Calls answered before the kill.
const ANSWERED_BEFORE_KILL: usize = 3000;

/// The child: 16 concurrent "calls" at a time, each recorded, flushed, then answered on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by kill_9_under_load_loses_no_answered_call as its child process"]
async fn crash_child_writer() {
    let dir = std::env::var(DIR_ENV).expect("only run as the crash test's child");
    let log = AuditLog::open(
        AuditConfig::embedded(std::path::Path::new(&dir)),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..1_000_000u64 {
                let id = format!("c{t}-{n}");
                let mut e = Event::new(
                    chrono::Utc::now(),
                    CorrelationId::from_request_id(&id).unwrap(),
                    EventKind::McpRequest,
                );
                e.principal = Some(format!("user{t}"));
                e.connector = Some("crm".into());
                e.target = Some("search_customers".into());
                log.record(e);
                log.flush().await;
                println!("answered {id}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn kill_9_under_load_loses_no_answered_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answered = HashSet::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while answered.len() < ANSWERED_BEFORE_KILL {
        let line = lines
            .next()
            .expect("the writer stopped before being killed")
            .unwrap();
        if let Some(id) = line.strip_prefix("answered ") {
            answered.insert(id.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
    child.wait().unwrap();
    // Lines already in the pipe were answered before the kill too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("answered ") {
            answered.insert(id.to_string());
        }
    }

    let verify = |strict: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        c.args(["audit", "verify", "--data-dir"]).arg(dir.path());
        if strict {
            c.arg("--strict");
        }
        c.output().unwrap()
    };
    let o = verify(false);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("intact: "), "{out}");

    // Restarting signs whatever tail the crash left unsigned; then even --strict passes.
    let log = AuditLog::open(AuditConfig::embedded(dir.path()), Arc::new(SystemClock))
        .await
        .unwrap();
    let stored: HashSet<String> = log
        .events(&EventFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.correlation_id.as_str().to_string())
        .collect();
    log.shutdown().await;
    log.store().close().await;
    let missing: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered calls have no event, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(stored.len() >= answered.len());
    let o = verify(true);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
