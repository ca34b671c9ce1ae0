//! A lean, streaming reader of `audit_events` for verification (AU-3).
//!
//! `verify` reads every event once, in seq order, and only hashes what it reads. Through sqlx's
//! SQLite driver that read costs more than the hashing (every row is decoded into owned
//! `String`s on the driver's worker thread and handed over one at a time). Here, on SQLite, a
//! dedicated read-only connection on a blocking thread steps one prepared statement directly
//! (libsqlite3-sys, the same bundled library sqlx links) and copies the columns of a few thousand
//! rows at a time into one contiguous buffer, which it hands to the caller while it reads the
//! next: reading and hashing run on two threads. The caller sees each row as an [`EventRef`]
//! borrowed from that buffer. On PostgreSQL the rows come through sqlx in large pages.
//!
//! Every column is read with the storage class the schema gives it; a value of any other class
//! (written by hand into the file) is a read error, never silently converted, so a row the reader
//! could not read exactly never counts as verified.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;

use libsqlite3_sys as ffi;

use super::EventRow;
use crate::{Db, Store, StoreError};

/// Rows per chunk handed over from the reader thread.
const CHUNK_ROWS: usize = 4096;
/// Chunks in flight between the reader thread and the caller.
const CHUNKS_IN_FLIGHT: usize = 3;
/// Rows per page on PostgreSQL.
const PG_PAGE: i64 = 20_000;

/// Most bytes of the database file the reader maps into memory.
const MMAP_BYTES: i64 = 1 << 30;

/// Marks a NULL column in a chunk.
const NULL: u32 = u32::MAX;

/// One stored event, borrowed: the columns as stored (text as its UTF-8 bytes), exactly what the
/// chain hash covers. Field meanings are those of [`EventRow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct EventRef<'a> {
    pub seq: i64,
    pub id: &'a [u8],
    pub time_ns: i64,
    pub correlation_id: &'a [u8],
    pub kind: &'a [u8],
    pub principal: Option<&'a [u8]>,
    pub client: Option<&'a [u8]>,
    pub source: Option<&'a [u8]>,
    pub session: Option<&'a [u8]>,
    pub connector: Option<&'a [u8]>,
    pub method: Option<&'a [u8]>,
    pub target: Option<&'a [u8]>,
    pub decision: &'a [u8],
    pub reasons: &'a [u8],
    pub findings: &'a [u8],
    pub outcome: &'a [u8],
    pub upstream_status: Option<i64>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub latency_us: i64,
    pub data_class: &'a [u8],
    pub subject: Option<&'a [u8]>,
    pub payload_digest: Option<&'a [u8]>,
    pub redacted: Option<&'a [u8]>,
    pub leaf: Option<&'a [u8]>,
    pub hash: &'a [u8],
}

impl EventRow {
    /// This row as an [`EventRef`].
    pub fn borrowed(&self) -> EventRef<'_> {
        fn o(v: &Option<String>) -> Option<&[u8]> {
            v.as_deref().map(str::as_bytes)
        }
        EventRef {
            seq: self.seq,
            id: self.id.as_bytes(),
            time_ns: self.time_ns,
            correlation_id: self.correlation_id.as_bytes(),
            kind: self.kind.as_bytes(),
            principal: o(&self.principal),
            client: o(&self.client),
            source: o(&self.source),
            session: o(&self.session),
            connector: o(&self.connector),
            method: o(&self.method),
            target: o(&self.target),
            decision: self.decision.as_bytes(),
            reasons: self.reasons.as_bytes(),
            findings: self.findings.as_bytes(),
            outcome: self.outcome.as_bytes(),
            upstream_status: self.upstream_status,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            latency_us: self.latency_us,
            data_class: self.data_class.as_bytes(),
            subject: o(&self.subject),
            payload_digest: self.payload_digest.as_deref(),
            redacted: o(&self.redacted),
            leaf: self.leaf.as_deref(),
            hash: &self.hash,
        }
    }
}

/// The byte columns of `audit_events` in query order (after `seq`), with whether NULL is
/// allowed and whether they hold text (else blobs).
const BYTE_COLUMNS: [(&str, bool, bool); 20] = [
    ("id", false, true),
    ("correlation_id", false, true),
    ("kind", false, true),
    ("principal", true, true),
    ("client", true, true),
    ("source", true, true),
    ("session", true, true),
    ("connector", true, true),
    ("method", true, true),
    ("target", true, true),
    ("decision", false, true),
    ("reasons", false, true),
    ("findings", false, true),
    ("outcome", false, true),
    ("data_class", false, true),
    ("subject", true, true),
    ("payload_digest", true, false),
    ("redacted", true, true),
    ("leaf", true, false),
    ("hash", false, false),
];

/// The integer columns in query order, after the byte columns, with whether NULL is allowed.
const INT_COLUMNS: [(&str, bool); 5] = [
    ("time_ns", false),
    ("upstream_status", true),
    ("request_bytes", false),
    ("response_bytes", false),
    ("latency_us", false),
];

fn scan_sql() -> String {
    let mut cols = vec!["seq"];
    cols.extend(BYTE_COLUMNS.iter().map(|c| c.0));
    cols.extend(INT_COLUMNS.iter().map(|c| c.0));
    format!(
        "SELECT {} FROM audit_events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
        cols.join(", ")
    )
}

/// One row of a chunk: its integers, and where its byte columns are in the chunk's buffer.
#[derive(Debug, Clone, Copy)]
struct RawRow {
    seq: i64,
    /// `time_ns`, `upstream_status` (0 when NULL), sizes, latency.
    ints: [i64; 5],
    status_null: bool,
    /// (offset, length) of each byte column; length [`NULL`] when NULL.
    cols: [(u32, u32); 20],
}

/// Events read in one go, in seq order.
#[derive(Debug)]
pub struct EventChunk(ChunkData);

#[derive(Debug)]
enum ChunkData {
    Raw { bytes: Vec<u8>, rows: Vec<RawRow> },
    Rows(Vec<EventRow>),
}

impl EventChunk {
    /// How many events it holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            ChunkData::Raw { rows, .. } => rows.len(),
            ChunkData::Rows(r) => r.len(),
        }
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Event `i` (0-based), borrowed.
    pub fn get(&self, i: usize) -> EventRef<'_> {
        match &self.0 {
            ChunkData::Rows(r) => r[i].borrowed(),
            ChunkData::Raw { bytes, rows } => {
                let r = &rows[i];
                let opt = |k: usize| {
                    let (o, l) = r.cols[k];
                    (l != NULL).then(|| &bytes[o as usize..(o + l) as usize])
                };
                // NOT NULL columns were checked when read, so `unwrap_or_default` never applies.
                let req = |k: usize| opt(k).unwrap_or_default();
                EventRef {
                    seq: r.seq,
                    id: req(0),
                    correlation_id: req(1),
                    kind: req(2),
                    principal: opt(3),
                    client: opt(4),
                    source: opt(5),
                    session: opt(6),
                    connector: opt(7),
                    method: opt(8),
                    target: opt(9),
                    decision: req(10),
                    reasons: req(11),
                    findings: req(12),
                    outcome: req(13),
                    data_class: req(14),
                    subject: opt(15),
                    payload_digest: opt(16),
                    redacted: opt(17),
                    leaf: opt(18),
                    hash: req(19),
                    time_ns: r.ints[0],
                    upstream_status: (!r.status_null).then_some(r.ints[1]),
                    request_bytes: r.ints[2],
                    response_bytes: r.ints[3],
                    latency_us: r.ints[4],
                }
            }
        }
    }

    /// Its events in order.
    pub fn iter(&self) -> impl Iterator<Item = EventRef<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A stream of [`EventChunk`]s, from [`Store::scan_events`].
pub struct EventScan {
    inner: ScanInner,
}

enum ScanInner {
    Sqlite(tokio::sync::mpsc::Receiver<Result<EventChunk, StoreError>>),
    Postgres { store: Store, next: i64, to: i64 },
}

impl EventScan {
    /// The next chunk; `None` after the last. Stop calling after an error.
    pub async fn next(&mut self) -> Result<Option<EventChunk>, StoreError> {
        match &mut self.inner {
            ScanInner::Sqlite(rx) => rx.recv().await.transpose(),
            ScanInner::Postgres { store, next, to } => {
                if *next > *to {
                    return Ok(None);
                }
                let rows = store.events_by_seq(*next, *to, PG_PAGE).await?;
                match rows.last() {
                    None => {
                        *next = *to + 1;
                        Ok(None)
                    }
                    Some(last) => {
                        *next = last.seq.saturating_add(1);
                        Ok(Some(EventChunk(ChunkData::Rows(rows))))
                    }
                }
            }
        }
    }
}

impl Store {
    /// Streams the events with `from_seq <= seq <= to_seq`, in seq order, for verification. On
    /// SQLite the rows are read on a blocking thread inside one read transaction (one consistent
    /// snapshot) while the caller works on the previous chunk.
    pub fn scan_events(&self, from_seq: i64, to_seq: i64) -> EventScan {
        match self.db() {
            Db::Postgres(_) => EventScan {
                inner: ScanInner::Postgres {
                    store: self.clone(),
                    next: from_seq,
                    to: to_seq,
                },
            },
            Db::Sqlite(pool) => {
                let path = pool.connect_options().get_filename().to_path_buf();
                let location = self.location().to_string();
                let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = read_sqlite(&path, from_seq, to_seq, &tx) {
                        let err = match &e {
                            sqlx::Error::Protocol(m) if crate::is_sqlite_corruption(m) => {
                                StoreError::Corrupt {
                                    location,
                                    detail: m.clone(),
                                }
                            }
                            _ => StoreError::Query {
                                location,
                                doing: "reading audit events",
                                source: e,
                            },
                        };
                        let _ = tx.blocking_send(Err(err));
                    }
                });
                EventScan {
                    inner: ScanInner::Sqlite(rx),
                }
            }
        }
    }
}

/// An open read-only connection with one prepared statement; closes both when dropped.
struct RawReader {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
}

impl Drop for RawReader {
    fn drop(&mut self) {
        // SAFETY: `stmt` and `db` were created by this reader, are used by this thread only and
        // are finalized/closed exactly once, here, the statement first (so the close succeeds).
        // Both calls accept null.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
            ffi::sqlite3_close(self.db);
        }
    }
}

impl RawReader {
    fn error(&self, doing: &str) -> sqlx::Error {
        // SAFETY: `db` is an open connection (or null, for which sqlite returns a static
        // message); the message is copied before any other call on the connection.
        let msg = unsafe {
            let m = ffi::sqlite3_errmsg(self.db);
            if m.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(m).to_string_lossy().into_owned()
            }
        };
        sqlx::Error::Protocol(format!("{doing}: {msg}"))
    }

    fn open(path: &Path, from_seq: i64, to_seq: i64) -> Result<Self, sqlx::Error> {
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| sqlx::Error::Protocol("the database path contains a NUL byte".into()))?;
        let mut r = RawReader {
            db: std::ptr::null_mut(),
            stmt: std::ptr::null_mut(),
        };
        let sql = CString::new(scan_sql()).expect("no NUL in the query");
        // SAFETY: valid NUL-terminated strings and out-pointers owned by `r`; on any failure `r`
        // is dropped, which closes what was opened.
        unsafe {
            let rc = ffi::sqlite3_open_v2(
                cpath.as_ptr(),
                &mut r.db,
                ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            );
            if rc != ffi::SQLITE_OK {
                return Err(r.error("opening the database read-only"));
            }
            ffi::sqlite3_busy_timeout(r.db, 10_000);
            // Map the file instead of reading it page by page through the page cache: the scan
            // touches every page once, and copying each through `pread` costs more than
            // decoding it. Read-only, so a mapping cannot be written through. Best effort: a
            // build or platform without mmap reads as before.
            let pragma = CString::new(format!("PRAGMA mmap_size = {MMAP_BYTES}")).expect("no NUL");
            ffi::sqlite3_exec(
                r.db,
                pragma.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            let rc =
                ffi::sqlite3_prepare_v2(r.db, sql.as_ptr(), -1, &mut r.stmt, std::ptr::null_mut());
            if rc != ffi::SQLITE_OK {
                return Err(r.error("preparing the event query"));
            }
            if ffi::sqlite3_bind_int64(r.stmt, 1, from_seq) != ffi::SQLITE_OK
                || ffi::sqlite3_bind_int64(r.stmt, 2, to_seq) != ffi::SQLITE_OK
            {
                return Err(r.error("binding the seq range"));
            }
        }
        Ok(r)
    }
}

fn storage_class(t: c_int) -> &'static str {
    match t {
        ffi::SQLITE_INTEGER => "an integer",
        ffi::SQLITE_FLOAT => "a real number",
        ffi::SQLITE_TEXT => "text",
        ffi::SQLITE_BLOB => "a blob",
        _ => "NULL",
    }
}

fn read_sqlite(
    path: &Path,
    from_seq: i64,
    to_seq: i64,
    tx: &tokio::sync::mpsc::Sender<Result<EventChunk, StoreError>>,
) -> Result<(), sqlx::Error> {
    let r = RawReader::open(path, from_seq, to_seq)?;
    let bad = |seq: i64, col: &str, found: c_int, want: &str| {
        sqlx::Error::Decode(
            format!(
                "event seq {seq}: column {col} holds {}, where Portcullis stores {want}; the database was edited outside Portcullis",
                storage_class(found)
            )
            .into(),
        )
    };
    let mut bytes: Vec<u8> = Vec::with_capacity(CHUNK_ROWS * 640);
    let mut rows: Vec<RawRow> = Vec::with_capacity(CHUNK_ROWS);
    loop {
        // SAFETY: `r.stmt` is a prepared statement of this thread's own connection. Column
        // pointers are read right after `sqlite3_column_type` / before the next step, and copied
        // into `bytes` before the next call that could invalidate them.
        let rc = unsafe { ffi::sqlite3_step(r.stmt) };
        if rc == ffi::SQLITE_DONE {
            break;
        }
        if rc != ffi::SQLITE_ROW {
            return Err(r.error("reading audit events"));
        }
        let mut row = RawRow {
            seq: 0,
            ints: [0; 5],
            status_null: false,
            cols: [(0, NULL); 20],
        };
        // SAFETY: the statement has a current row (SQLITE_ROW); column indexes are within the
        // query's 26 columns; each pointer is used with its length before the next column call.
        unsafe {
            let t = ffi::sqlite3_column_type(r.stmt, 0);
            if t != ffi::SQLITE_INTEGER {
                return Err(bad(0, "seq", t, "an integer"));
            }
            row.seq = ffi::sqlite3_column_int64(r.stmt, 0);
            for (k, (name, nullable, text)) in BYTE_COLUMNS.iter().enumerate() {
                let i = (k + 1) as c_int;
                let t = ffi::sqlite3_column_type(r.stmt, i);
                if t == ffi::SQLITE_NULL {
                    if !nullable {
                        return Err(bad(row.seq, name, t, "a value"));
                    }
                    continue;
                }
                let want = if *text {
                    ffi::SQLITE_TEXT
                } else {
                    ffi::SQLITE_BLOB
                };
                if t != want {
                    return Err(bad(row.seq, name, t, storage_class(want)));
                }
                // Text is taken as its stored UTF-8 bytes; `_text` before `_bytes`, as sqlite
                // documents, so the length is that of the returned form.
                let p: *const u8 = if *text {
                    ffi::sqlite3_column_text(r.stmt, i)
                } else {
                    ffi::sqlite3_column_blob(r.stmt, i).cast()
                };
                let n = ffi::sqlite3_column_bytes(r.stmt, i).max(0) as usize;
                let off = bytes.len();
                if off + n > NULL as usize - 1 {
                    return Err(sqlx::Error::Decode(
                        format!(
                            "event seq {}: column {name} is too large to verify",
                            row.seq
                        )
                        .into(),
                    ));
                }
                if n > 0 {
                    if p.is_null() {
                        return Err(r.error("reading a column"));
                    }
                    bytes.extend_from_slice(std::slice::from_raw_parts(p, n));
                }
                row.cols[k] = (off as u32, n as u32);
            }
            for (k, (name, nullable)) in INT_COLUMNS.iter().enumerate() {
                let i = (1 + BYTE_COLUMNS.len() + k) as c_int;
                let t = ffi::sqlite3_column_type(r.stmt, i);
                if t == ffi::SQLITE_NULL && *nullable {
                    row.status_null = true;
                    continue;
                }
                if t != ffi::SQLITE_INTEGER {
                    return Err(bad(row.seq, name, t, "an integer"));
                }
                row.ints[k] = ffi::sqlite3_column_int64(r.stmt, i);
            }
        }
        rows.push(row);
        // Offsets are u32: hand the chunk over well before 4 GiB.
        if rows.len() >= CHUNK_ROWS || bytes.len() >= 1 << 30 {
            let chunk = EventChunk(ChunkData::Raw {
                bytes: std::mem::replace(&mut bytes, Vec::with_capacity(CHUNK_ROWS * 640)),
                rows: std::mem::replace(&mut rows, Vec::with_capacity(CHUNK_ROWS)),
            });
            if tx.blocking_send(Ok(chunk)).is_err() {
                // The caller stopped reading (it found a problem): nothing more to do.
                return Ok(());
            }
        }
    }
    if !rows.is_empty() {
        let _ = tx.blocking_send(Ok(EventChunk(ChunkData::Raw { bytes, rows })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AppendBatch;
    use crate::{DatabaseUrl, OpenMode};

    fn row(seq: i64) -> EventRow {
        let some = |s: &str| (seq % 3 != 0).then(|| format!("{s}-{seq}"));
        EventRow {
            seq,
            id: format!("id-{seq}"),
            time_ns: -5 + seq * 1_000_000_007,
            correlation_id: format!("corr-{seq}"),
            kind: "mcp_request".into(),
            principal: some("ålice"),
            client: some("client"),
            source: some("10.0.0.1"),
            session: some("sess"),
            connector: some("crm"),
            method: some("tools/call"),
            target: some("名前"),
            decision: "allow".into(),
            reasons: if seq % 5 == 0 {
                String::new()
            } else {
                "[\"r\"]".into()
            },
            findings: "[]".into(),
            outcome: "{}".into(),
            upstream_status: (seq % 2 == 0).then_some(200 + seq),
            request_bytes: i64::MIN + seq,
            response_bytes: seq,
            latency_us: -1,
            data_class: "default".into(),
            subject: some("subject"),
            payload_digest: (seq % 4 == 0).then(|| vec![seq as u8; 32]),
            redacted: (seq % 7 == 0).then(|| "retention:default".into()),
            leaf: (seq % 7 == 0).then(|| vec![7; 32]),
            // An empty blob and a long one: both must come back exactly.
            hash: if seq == 2 {
                Vec::new()
            } else {
                vec![seq as u8; 32 + (seq % 3) as usize]
            },
        }
    }

    /// Every column comes back exactly as sqlx reads it, NULLs and empty values included, across
    /// chunk boundaries, and only the asked range.
    #[tokio::test]
    async fn lean_reader_reads_what_sqlx_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &DatabaseUrl::Sqlite(dir.path().join("t.db")),
            OpenMode::CreateIfMissing,
        )
        .await
        .unwrap();
        let n = (CHUNK_ROWS * 2 + 17) as i64;
        store
            .append(move |_| -> Result<AppendBatch, ()> {
                Ok(AppendBatch {
                    events: (1..=n).map(row).collect(),
                    ..Default::default()
                })
            })
            .await
            .unwrap()
            .unwrap();
        let want = store.events_by_seq(3, n - 1, i64::MAX).await.unwrap();
        let mut scan = store.scan_events(3, n - 1);
        let mut i = 0;
        let mut chunks = 0;
        while let Some(chunk) = scan.next().await.unwrap() {
            chunks += 1;
            for r in chunk.iter() {
                assert_eq!(r, want[i].borrowed(), "seq {}", want[i].seq);
                i += 1;
            }
        }
        assert_eq!(i, want.len());
        assert!(chunks >= 3, "{chunks}");
    }

    #[tokio::test]
    async fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(
            &DatabaseUrl::Sqlite(path.clone()),
            OpenMode::CreateIfMissing,
        )
        .await
        .unwrap();
        store.close().await;
        std::fs::remove_file(&path).unwrap();
        let mut scan = store.scan_events(1, 10);
        assert!(scan.next().await.is_err());
    }
}
