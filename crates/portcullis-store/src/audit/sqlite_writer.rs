//! The audit log's group commit on SQLite, on a connection of its own (AU-1, OPS-2).
//!
//! Through sqlx's SQLite driver every statement of a commit (`BEGIN IMMEDIATE`, reading the head,
//! the insert, `COMMIT`) is a message to the driver's worker thread and a wake-up back: four
//! round trips between threads per batch, which on a loaded two-core machine cost more than the
//! SQLite work itself and sat on the path of every call that waits for its event's commit. Here
//! one thread owns one read-write connection (rusqlite, over the same bundled library sqlx links)
//! and runs a whole commit per request: one hand-over in, one answer out. The SQL, the locking
//! (`BEGIN IMMEDIATE`, so several processes can append without forking the chain) and the stored
//! types are those of the sqlx path, which PostgreSQL still uses.
//!
//! The WAL checkpoint is off the commit path too. With `synchronous = NORMAL` a WAL commit does
//! not sync the disk; the checkpoint that copies the WAL back into the database does, and SQLite
//! runs it inside whichever commit crosses 1,000 pages of WAL, so every few hundred commits one
//! waiting call also waited for two `fsync`s. This connection does not checkpoint; a second
//! thread runs a passive checkpoint (which never blocks the writer) after commits, at most
//! every [`CHECKPOINT_EVERY`].
//!
//! A passive checkpoint alone does not bound the WAL. SQLite starts the WAL over only when a
//! write transaction begins after a checkpoint copied *every* frame; under steady load a commit
//! always lands while the checkpoint thread copies, so that moment never came, the WAL grew
//! without end (545 MB after 14 s of the pipeline benchmark: a disk filled in hours, and the
//! audit log with it, AU-1). So when the checkpoint thread finds the WAL past [`WAL_RESTART_BYTES`]
//! after a pass, it asks the writer to catch up: after its next commit the writer runs a passive
//! checkpoint itself, between two of its own transactions, so nothing is appended meanwhile and
//! it copies only what was committed during the checkpoint thread's pass (a short pause, not
//! the whole WAL); its next transaction starts the WAL over, and `journal_size_limit` cuts the
//! file back to that size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{AppendBatch, EVENT_COLUMNS, Head};

/// The least time between two WAL checkpoints of the checkpoint thread.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The WAL size past which the writer is asked to catch the checkpoint up so the WAL starts
/// over, and to which SQLite truncates the file when it does (`journal_size_limit`). SQLite's
/// default automatic checkpoint keeps about 4 MB; this allows a few times that between two
/// catch-ups, so under full load about one commit in a thousand pays for one.
const WAL_RESTART_BYTES: u64 = 16 << 20;

/// What the writer thread runs: one commit on its connection, opened on first use.
type Job = Box<dyn FnOnce(&mut Option<Connection>) + Send>;

/// A dedicated writer thread for one SQLite file. Dropping it (or [`SqliteWriter::stop`]) ends
/// the thread after the jobs already handed over, and closes the connection.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// The writer thread, then the checkpoint thread.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Why a commit failed: the message of SQLite (or of opening the file, or why no thread took it).
#[derive(Debug)]
pub(crate) struct WriteError {
    pub message: String,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError {
            message: e.to_string(),
        }
    }
}

impl SqliteWriter {
    /// Starts the thread for the database file `path`. Nothing is opened until the first commit.
    pub(crate) fn start(path: PathBuf) -> std::io::Result<SqliteWriter> {
        let (tx, rx) = mpsc::channel::<Job>();
        // Capacity 1: a commit only has to say "there is WAL to copy back"; requests coalesce.
        let (ckpt_tx, ckpt_rx) = mpsc::sync_channel::<()>(1);
        // Dropped with the writer thread's closure: ends the checkpoint thread's pause at once.
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ckpt_path = path.clone();
        let catch_up = Arc::new(CatchUp::new(WAL_RESTART_BYTES));
        let asked = catch_up.clone();
        let checkpointer = std::thread::Builder::new()
            .name("audit-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&ckpt_path, &ckpt_rx, &stop_rx, &asked))?;
        let writer = std::thread::Builder::new()
            .name("audit-sqlite".into())
            .spawn(move || {
                let _stop = stop_tx;
                let mut conn: Option<Connection> = None;
                while let Ok(job) = rx.recv() {
                    if conn.is_none() {
                        match open(&path, WAL_RESTART_BYTES) {
                            Ok(c) => conn = Some(c),
                            Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot open the audit database for writing"),
                        }
                    }
                    job(&mut conn);
                    if let Some(c) = &conn {
                        catch_up.run_if_asked(c);
                    }
                    let _ = ckpt_tx.try_send(());
                }
                // `ckpt_tx` is dropped here, after the last commit: the checkpoint thread ends.
            })?;
        Ok(SqliteWriter {
            jobs: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, checkpointer]),
        })
    }

    /// Runs one commit (see [`commit`]) on the writer thread and waits for it without blocking
    /// the runtime. `Ok(Err(e))`: `build` refused, nothing was written.
    pub(crate) async fn append<E: Send + 'static>(
        &self,
        build: impl FnOnce(Option<Head>) -> Result<AppendBatch, E> + Send + 'static,
    ) -> Result<Result<Option<Head>, E>, WriteError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Option<Connection>| {
            let out = match conn {
                Some(c) => commit(c, build),
                None => Err(WriteError {
                    message: "the database could not be opened for writing".into(),
                }),
            };
            let _ = tx.send(out);
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|s| s.send(job).is_ok());
        if !sent {
            return Err(WriteError {
                message: "the store was closed".into(),
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(WriteError {
                message: "the audit writer thread stopped".into(),
            })
        })
    }

    /// Ends the thread once the jobs handed over are done, and waits for it (the connection is
    /// closed when it returns). Idempotent.
    pub(crate) fn stop(&self) {
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens the file read-write with the settings of the sqlx pool (`Store::open`): WAL (already
/// set on the file by the pool, and persistent), `synchronous = NORMAL`, a 10 s busy timeout,
/// foreign keys on; no automatic checkpoint (the checkpoint thread does it), and a WAL cut back
/// to `wal_limit` bytes when it starts over.
fn open(path: &std::path::Path, wal_limit: u64) -> Result<Connection, rusqlite::Error> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", true)?;
    c.pragma_update(None, "wal_autocheckpoint", 0)?;
    c.pragma_update(None, "journal_size_limit", wal_limit as i64)?;
    Ok(c)
}

/// The WAL file of the database at `path` (SQLite's naming).
fn wal_path(path: &std::path::Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// The checkpoint thread's request that the writer catch up (see the module's doc).
#[derive(Debug)]
struct CatchUp {
    /// The WAL size past which the writer is asked.
    limit: u64,
    asked: AtomicBool,
}

impl CatchUp {
    fn new(limit: u64) -> CatchUp {
        CatchUp {
            limit,
            asked: AtomicBool::new(false),
        }
    }

    /// On the checkpoint thread, after a pass: asks for a catch-up when the WAL at `wal` is
    /// past the limit.
    fn ask_if_needed(&self, wal: &std::path::Path) {
        if std::fs::metadata(wal).is_ok_and(|m| m.len() > self.limit) {
            self.asked.store(true, Ordering::Release);
        }
    }

    /// On the writer's connection, between two of its commits: when asked, checkpoints the WAL
    /// to its end so that the next commit starts it over. A checkpoint that cannot finish now (a
    /// reader pins old frames) leaves the WAL as it is; the checkpoint thread asks again.
    fn run_if_asked(&self, conn: &Connection) {
        if !self.asked.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "cannot checkpoint the audit WAL so that it starts over; asked again after the next checkpoint");
        }
    }
}

/// The checkpoint thread: after commits (coalesced, at most every [`CHECKPOINT_EVERY`]) copies
/// the WAL back into the database with a passive checkpoint, which waits for no reader or writer
/// (what it cannot copy yet it copies next time). Ends when the writer thread does (`stop`
/// disconnects), after a last checkpoint if a commit came since the previous one.
fn checkpoint_loop(
    path: &std::path::Path,
    commits: &mpsc::Receiver<()>,
    stop: &mpsc::Receiver<()>,
    catch_up: &CatchUp,
) {
    let mut conn: Option<Connection> = None;
    let wal = wal_path(path);
    loop {
        if commits.recv().is_err() {
            return;
        }
        checkpoint(path, &mut conn);
        catch_up.ask_if_needed(&wal);
        // The pause waits on `stop`, not on `commits`: a commit during it fills the commits
        // channel's one slot without waking this thread (a wait on it would be woken by every
        // commit under load, for nothing), and `recv` above takes it right after the pause.
        if let Err(mpsc::RecvTimeoutError::Disconnected) | Ok(()) =
            stop.recv_timeout(CHECKPOINT_EVERY)
        {
            if commits.try_recv().is_ok() {
                checkpoint(path, &mut conn);
            }
            return;
        }
    }
}

/// One passive checkpoint, opening the connection on first use.
fn checkpoint(path: &std::path::Path, conn: &mut Option<Connection>) {
    if conn.is_none() {
        *conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(Duration::from_secs(10)).map(|_| c))
        .inspect_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot open the audit database to checkpoint its WAL"))
        .ok();
    }
    if let Some(c) = conn.as_ref()
        && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    {
        tracing::warn!(path = %path.display(), error = %e, "WAL checkpoint of the audit database failed; retried after the next commit");
    }
}

/// One group commit: in a `BEGIN IMMEDIATE` transaction (which excludes every other writer,
/// other processes included), reads the head of the chain, lets `build` make the rows that extend
/// it, writes them and commits. On any error the transaction is rolled back (dropped).
fn commit<E>(
    conn: &mut Connection,
    build: impl FnOnce(Option<Head>) -> Result<AppendBatch, E>,
) -> Result<Result<Option<Head>, E>, WriteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head = tx
        .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(Head {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        })
        .optional()?;
    let batch = match build(head) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let new_head = batch.events.last().map(|r| Head {
        seq: r.seq,
        hash: r.hash.clone(),
    });
    {
        let sql = format!(
            "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
             ?21, ?22, ?23, ?24, ?25, ?26)"
        );
        // One prepared statement, stepped once per row: in one transaction that is as fast as a
        // multi-row VALUES list and needs no statement per batch size.
        let mut insert = tx.prepare_cached(&sql)?;
        for r in &batch.events {
            insert.execute(params![
                r.seq,
                r.id,
                r.time_ns,
                r.correlation_id,
                r.kind,
                r.principal,
                r.client,
                r.source,
                r.session,
                r.connector,
                r.method,
                r.target,
                r.decision,
                r.reasons,
                r.findings,
                r.outcome,
                r.upstream_status,
                r.request_bytes,
                r.response_bytes,
                r.latency_us,
                r.data_class,
                r.subject,
                r.payload_digest,
                r.redacted,
                r.leaf,
                r.hash,
            ])?;
        }
    }
    if !batch.payloads.is_empty() {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_payloads (seq, subject, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for p in &batch.payloads {
            insert.execute(params![p.seq, p.subject, p.nonce, p.ciphertext])?;
        }
    }
    if let Some(c) = &batch.checkpoint {
        tx.prepare_cached(
            "INSERT INTO audit_checkpoints (seq, hash, time_us, public_key, signature) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (seq) DO NOTHING",
        )?
        .execute(params![c.seq, c.hash, c.time_us, c.public_key, c.signature])?;
    }
    tx.commit()?;
    Ok(Ok(new_head))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in WAL mode under `dir` with one table `t (x BLOB)`.
    fn wal_database(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("w.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute("CREATE TABLE t (x BLOB)", []).unwrap();
        path
    }

    /// The writer's connection leaves its WAL alone; one request to the checkpoint thread copies
    /// it back into the database file, and the thread ends (after that checkpoint) when the
    /// writer side goes away.
    #[test]
    fn the_checkpoint_thread_copies_the_wal_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = wal_database(dir.path());
        let c = open(&path, WAL_RESTART_BYTES).unwrap();
        let main_before = std::fs::metadata(&path).unwrap().len();
        // 1,500 rows of 8 KB are ~3,000 pages of WAL: a connection with SQLite's default
        // (checkpoint at 1,000 pages) would have copied them back by now.
        for _ in 0..1500 {
            c.execute("INSERT INTO t VALUES (zeroblob(8000))", [])
                .unwrap();
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            main_before,
            "no automatic checkpoint on the writer's connection"
        );
        let (tx, rx) = mpsc::sync_channel(1);
        tx.send(()).unwrap();
        drop(tx);
        let (stop_tx, stop_rx) = mpsc::channel();
        drop(stop_tx);
        checkpoint_loop(&path, &rx, &stop_rx, &CatchUp::new(WAL_RESTART_BYTES));
        assert!(
            std::fs::metadata(&path).unwrap().len() > main_before + 1500 * 8000,
            "the WAL was copied into the database file"
        );
    }

    /// A WAL past the limit after a checkpoint pass gets the writer asked to catch up; its
    /// catch-up lets the next commit start the WAL over, cut back to the limit. Without it, a
    /// pass that could not copy every frame (here a reader pins half, as a commit landing during
    /// a real pass does) leaves the WAL growing; a WAL under the limit asks for nothing.
    #[test]
    fn a_catch_up_lets_the_wal_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = wal_database(dir.path());
        let limit: u64 = 256 << 10;
        let c = open(&path, limit).unwrap();
        let wal = wal_path(&path);
        let size = || std::fs::metadata(&wal).unwrap().len();
        let insert = || {
            c.execute("INSERT INTO t VALUES (zeroblob(8000))", [])
                .unwrap()
        };
        let ask = CatchUp::new(limit);
        for _ in 0..100 {
            insert();
        }
        assert!(size() > limit, "100 rows of 8 KB are past 256 KB of WAL");
        // A pass that copies part of the WAL: a reader holds a snapshot of the first half, as a
        // transaction that began during a real pass would.
        let reader = open(&path, limit).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        for _ in 0..100 {
            insert();
        }
        let mut ckpt = None;
        checkpoint(&path, &mut ckpt);
        ask.ask_if_needed(&wal);
        assert!(
            ask.asked.load(Ordering::Acquire),
            "a WAL past the limit asks"
        );
        // The writer does not start over on its own while the WAL is not all copied.
        reader.execute_batch("COMMIT").unwrap();
        let grown = size();
        insert();
        assert!(size() >= grown, "no restart without a finished checkpoint");
        ask.run_if_asked(&c);
        assert!(!ask.asked.load(Ordering::Acquire), "the request is taken");
        insert();
        assert!(
            size() <= limit,
            "started over and cut back: {} bytes",
            size()
        );
        // Below the limit a pass asks for nothing.
        let small = CatchUp::new(u64::MAX);
        checkpoint(&path, &mut ckpt);
        small.ask_if_needed(&wal);
        assert!(!small.asked.load(Ordering::Acquire));
        let rows: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 202, "every commit is kept");
    }
}
