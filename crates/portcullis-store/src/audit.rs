//! The audit log's tables (AU-1, AU-3, AU-5): rows as stored, and the queries on them. What the
//! rows mean (canonical encoding, chain, signatures) is `portcullis-audit`'s business; this module
//! only moves bytes, the same way on SQLite and PostgreSQL.

use sqlx::QueryBuilder;

pub mod scan;
pub(crate) mod sqlite_writer;

pub use scan::{EventChunk, EventRef, EventScan};

use crate::{Db, Store, StoreError, dispatch};

/// The columns of `audit_events`, in the order of [`EventRow`].
const EVENT_COLUMNS: &str = "seq, id, time_ns, correlation_id, kind, principal, client, source, session, connector, \
     method, target, decision, reasons, findings, outcome, upstream_status, request_bytes, response_bytes, latency_us, \
     data_class, subject, payload_digest, redacted, leaf, hash";

/// Rows per multi-row INSERT: 26 parameters each keeps one statement under SQLite's limit of
/// 32,766 bound parameters and PostgreSQL's 65,535.
const INSERT_CHUNK: usize = 1000;

/// One audit event as stored. Every text column holds exactly the bytes that were hashed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The event id (UUID text); empty once redacted.
    pub id: String,
    /// Event time, nanoseconds since the Unix epoch (exact round trip of the event's time).
    pub time_ns: i64,
    /// Correlation id.
    pub correlation_id: String,
    /// Event kind (snake case).
    pub kind: String,
    /// Principal.
    pub principal: Option<String>,
    /// OAuth client.
    pub client: Option<String>,
    /// Source address.
    pub source: Option<String>,
    /// Gateway session.
    pub session: Option<String>,
    /// Connector.
    pub connector: Option<String>,
    /// JSON-RPC method.
    pub method: Option<String>,
    /// Tool, resource or prompt.
    pub target: Option<String>,
    /// Decision (snake case).
    pub decision: String,
    /// Reasons, a JSON array.
    pub reasons: String,
    /// Findings, a JSON array.
    pub findings: String,
    /// Outcome, a JSON object.
    pub outcome: String,
    /// Upstream HTTP status.
    pub upstream_status: Option<i64>,
    /// Request size (a u64 stored bit for bit).
    pub request_bytes: i64,
    /// Response size (a u64 stored bit for bit).
    pub response_bytes: i64,
    /// Latency in microseconds (a u64 stored bit for bit).
    pub latency_us: i64,
    /// Data class the retention policy applies (AU-4).
    pub data_class: String,
    /// The data subject, for erasure (AU-5).
    pub subject: Option<String>,
    /// SHA-256 of the stored encrypted payload, when one was kept (AU-2).
    pub payload_digest: Option<Vec<u8>>,
    /// Why the content was removed (`retention:<class>` or `erasure:<receipt>`); `None` while intact.
    pub redacted: Option<String>,
    /// The leaf digest kept when the content was removed, so the chain still verifies.
    pub leaf: Option<Vec<u8>>,
    /// Chain hash up to and including this event.
    pub hash: Vec<u8>,
}

/// A signed checkpoint: the chain hash at `seq`, signed with the key kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckpointRow {
    /// Last event covered.
    pub seq: i64,
    /// Chain hash at `seq`.
    pub hash: Vec<u8>,
    /// When it was signed, microseconds since the epoch.
    pub time_us: i64,
    /// The Ed25519 public key that signed it.
    pub public_key: Vec<u8>,
    /// The Ed25519 signature.
    pub signature: Vec<u8>,
}

/// An encrypted payload kept by policy (AU-2), outside the chain but bound to it by digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayloadRow {
    /// The event it belongs to.
    pub seq: i64,
    /// Whose key encrypts it.
    pub subject: String,
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// AEAD ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// A per-subject payload key, wrapped by the master key (crypto-shredding, AU-5).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubjectKeyRow {
    /// The subject.
    pub subject: String,
    /// Nonce of the wrapping.
    pub nonce: Vec<u8>,
    /// The wrapped key.
    pub wrapped_key: Vec<u8>,
    /// When it was made.
    pub created_us: i64,
}

/// A receipt of an erasure or retention run (what, when, by whom).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceiptRow {
    /// Receipt id.
    pub id: String,
    /// `erasure` or `retention`.
    pub kind: String,
    /// When, microseconds since the epoch.
    pub time_us: i64,
    /// Who asked.
    pub actor: String,
    /// Details, a JSON object.
    pub details: String,
}

/// The end of the chain: the last event's position and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Last seq.
    pub seq: i64,
    /// Its chain hash.
    pub hash: Vec<u8>,
}

/// What one group commit writes, built by the caller once it knows the head.
#[derive(Debug, Default)]
pub struct AppendBatch {
    /// Events, with consecutive seqs after the head.
    pub events: Vec<EventRow>,
    /// Payloads of some of them.
    pub payloads: Vec<PayloadRow>,
    /// A checkpoint to write in the same transaction.
    pub checkpoint: Option<CheckpointRow>,
}

/// Filters for [`Store::search_events`]; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Events at or after this time (nanoseconds).
    pub from_ns: Option<i64>,
    /// Events at or before this time (nanoseconds).
    pub to_ns: Option<i64>,
    /// Principal, exact.
    pub principal: Option<String>,
    /// Connector, exact.
    pub connector: Option<String>,
    /// Tool (target), exact.
    pub target: Option<String>,
    /// Decision (snake case), exact.
    pub decision: Option<String>,
    /// Correlation id, exact.
    pub correlation_id: Option<String>,
    /// A finding kind, such as `pii.email`: events with at least one such finding.
    pub finding_kind: Option<String>,
    /// Only events after this seq (paging).
    pub after_seq: Option<i64>,
    /// At most this many rows.
    pub limit: Option<i64>,
}

impl Store {
    /// A value from `audit_meta`.
    pub async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar("SELECT value FROM audit_meta WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await)
        .map_err(self.err("reading audit metadata"))
    }

    /// Stores `value` under `key` unless one is there; returns what is stored afterwards (so two
    /// processes racing to initialise agree).
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO audit_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.err("initialising audit metadata"))?;
        self.meta_get(key).await?.ok_or_else(|| StoreError::Query {
            location: self.location().to_string(),
            doing: "initialising audit metadata",
            source: sqlx::Error::RowNotFound,
        })
    }

    /// One group commit. In one transaction that excludes every other writer (SQLite `BEGIN
    /// IMMEDIATE`, a PostgreSQL advisory lock), reads the head of the chain, lets `build` make the
    /// rows that extend it, and writes them. Several processes or replicas can append to one log
    /// without forking the chain (OPS-2). On SQLite the whole commit runs on the store's audit
    /// writer thread (one hand-over per batch instead of one per statement).
    pub async fn append<E: Send + 'static>(
        &self,
        build: impl FnOnce(Option<Head>) -> Result<AppendBatch, E> + Send + 'static,
    ) -> Result<Result<Option<Head>, E>, StoreError> {
        let doing = "appending audit events";
        if let Some(w) = &self.audit_writer {
            return w.append(build).await.map_err(|e| {
                if crate::is_sqlite_corruption(&e.message) {
                    StoreError::Corrupt {
                        location: self.location().to_string(),
                        detail: e.message,
                    }
                } else {
                    StoreError::Query {
                        location: self.location().to_string(),
                        doing,
                        source: sqlx::Error::Protocol(e.message),
                    }
                }
            });
        }
        macro_rules! body {
            ($tx:ident) => {{
                let head: Option<(i64, Vec<u8>)> =
                    sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut *$tx)
                        .await
                        .map_err(self.err(doing))?;
                let batch = match build(head.map(|(seq, hash)| Head { seq, hash })) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(e)),
                };
                let new_head = batch.events.last().map(|r| Head { seq: r.seq, hash: r.hash.clone() });
                for chunk in batch.events.chunks(INSERT_CHUNK) {
                    let mut qb = QueryBuilder::new(format!("INSERT INTO audit_events ({EVENT_COLUMNS}) "));
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.seq)
                            .push_bind(r.id.clone())
                            .push_bind(r.time_ns)
                            .push_bind(r.correlation_id.clone())
                            .push_bind(r.kind.clone())
                            .push_bind(r.principal.clone())
                            .push_bind(r.client.clone())
                            .push_bind(r.source.clone())
                            .push_bind(r.session.clone())
                            .push_bind(r.connector.clone())
                            .push_bind(r.method.clone())
                            .push_bind(r.target.clone())
                            .push_bind(r.decision.clone())
                            .push_bind(r.reasons.clone())
                            .push_bind(r.findings.clone())
                            .push_bind(r.outcome.clone())
                            .push_bind(r.upstream_status)
                            .push_bind(r.request_bytes)
                            .push_bind(r.response_bytes)
                            .push_bind(r.latency_us)
                            .push_bind(r.data_class.clone())
                            .push_bind(r.subject.clone())
                            .push_bind(r.payload_digest.clone())
                            .push_bind(r.redacted.clone())
                            .push_bind(r.leaf.clone())
                            .push_bind(r.hash.clone());
                    });
                    qb.build().execute(&mut *$tx).await.map_err(self.err(doing))?;
                }
                for p in &batch.payloads {
                    sqlx::query("INSERT INTO audit_payloads (seq, subject, nonce, ciphertext) VALUES ($1, $2, $3, $4)")
                        .bind(p.seq)
                        .bind(&p.subject)
                        .bind(&p.nonce)
                        .bind(&p.ciphertext)
                        .execute(&mut *$tx)
                        .await
                        .map_err(self.err(doing))?;
                }
                if let Some(c) = &batch.checkpoint {
                    insert_checkpoint!($tx, c);
                }
                $tx.commit().await.map_err(self.err(doing))?;
                Ok(Ok(new_head))
            }};
        }
        macro_rules! insert_checkpoint {
            ($tx:ident, $c:expr) => {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (seq, hash, time_us, public_key, signature) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (seq) DO NOTHING",
                )
                .bind($c.seq)
                .bind(&$c.hash)
                .bind($c.time_us)
                .bind(&$c.public_key)
                .bind(&$c.signature)
                .execute(&mut *$tx)
                .await
                .map_err(self.err(doing))?;
            };
        }
        match self.db() {
            Db::Sqlite(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(self.err(doing))?;
                body!(tx)
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(self.err(doing))?;
                sqlx::query("SELECT pg_advisory_xact_lock(7070707)")
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(doing))?;
                body!(tx)
            }
        }
    }

    /// Writes a checkpoint alone (recovery after a crash, shutdown with nothing queued).
    pub async fn insert_checkpoint(&self, c: &CheckpointRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time_us, public_key, signature) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING")
            .bind(c.seq)
            .bind(&c.hash)
            .bind(c.time_us)
            .bind(&c.public_key)
            .bind(&c.signature)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.err("writing an audit checkpoint"))
    }

    /// The last event's seq and hash, if any.
    pub async fn head(&self) -> Result<Option<Head>, StoreError> {
        let r: Option<(i64, Vec<u8>)> = dispatch!(self.db(), pool =>
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await)
        .map_err(self.err("reading the head of the audit chain"))?;
        Ok(r.map(|(seq, hash)| Head { seq, hash }))
    }

    /// Lowest and highest seq stored, and the number of rows.
    pub async fn event_bounds(&self) -> Result<(Option<i64>, Option<i64>, i64), StoreError> {
        dispatch!(self.db(), pool =>
            sqlx::query_as("SELECT min(seq), max(seq), count(*) FROM audit_events").fetch_one(pool).await)
        .map_err(self.err("reading the extent of the audit log"))
    }

    /// Events with `from_seq <= seq <= to_seq`, in seq order, at most `limit`.
    pub async fn events_by_seq(
        &self,
        from_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = "SELECT seq, id, time_ns, correlation_id, kind, principal, client, source, session, connector, \
                   method, target, decision, reasons, findings, outcome, upstream_status, request_bytes, response_bytes, \
                   latency_us, data_class, subject, payload_digest, redacted, leaf, hash FROM audit_events \
                   WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3";
        dispatch!(self.db(), pool => sqlx::query_as(sql).bind(from_seq).bind(to_seq).bind(limit).fetch_all(pool).await)
            .map_err(self.err("reading audit events"))
    }

    /// The seq range holding events whose time is within `[from_ns, to_ns]`.
    pub async fn seq_range_for_time(
        &self,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let r: (Option<i64>, Option<i64>) = dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT min(seq), max(seq) FROM audit_events WHERE time_ns >= $1 AND time_ns <= $2")
            .bind(from_ns)
            .bind(to_ns)
            .fetch_one(pool)
            .await)
        .map_err(self.err("finding events in a time range"))?;
        Ok(match r {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    /// Events matching `q`, in seq order. Redacted events are left out (they have no content).
    pub async fn search_events(&self, q: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        let sqlite = matches!(self.db(), Db::Sqlite(_));
        dispatch!(self.db(), pool => {
            let mut qb = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE redacted IS NULL"));
            if let Some(v) = q.from_ns { qb.push(" AND time_ns >= ").push_bind(v); }
            if let Some(v) = q.to_ns { qb.push(" AND time_ns <= ").push_bind(v); }
            if let Some(v) = &q.principal { qb.push(" AND principal = ").push_bind(v.clone()); }
            if let Some(v) = &q.connector { qb.push(" AND connector = ").push_bind(v.clone()); }
            if let Some(v) = &q.target { qb.push(" AND target = ").push_bind(v.clone()); }
            if let Some(v) = &q.decision { qb.push(" AND decision = ").push_bind(v.clone()); }
            if let Some(v) = &q.correlation_id { qb.push(" AND correlation_id = ").push_bind(v.clone()); }
            if let Some(v) = &q.finding_kind {
                // Findings are stored as compact JSON with `kind` first, so this needle matches
                // exactly one finding kind and never a prefix of another.
                let needle = format!("\"kind\":{}", serde_json::Value::String(v.clone()));
                qb.push(if sqlite { " AND instr(findings, " } else { " AND strpos(findings, " })
                    .push_bind(needle)
                    .push(") > 0");
            }
            if let Some(v) = q.after_seq { qb.push(" AND seq > ").push_bind(v); }
            qb.push(" ORDER BY seq");
            if let Some(v) = q.limit { qb.push(" LIMIT ").push_bind(v); }
            qb.build_query_as::<EventRow>().fetch_all(pool).await
        })
        .map_err(self.err("searching audit events"))
    }

    /// All checkpoints, in seq order.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT seq, hash, time_us, public_key, signature FROM audit_checkpoints ORDER BY seq").fetch_all(pool).await)
        .map_err(self.err("reading audit checkpoints"))
    }

    /// The latest checkpoint.
    pub async fn last_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT seq, hash, time_us, public_key, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool).await)
        .map_err(self.err("reading audit checkpoints"))
    }

    /// Blanks the content of events, keeping seq, time, data class, the leaf digest and the chain
    /// hash, so the chain still verifies (AU-4, AU-5). Payloads of those events are deleted too.
    /// `rows` are `(seq, leaf, reason)`; one transaction.
    pub async fn redact_events(&self, rows: &[(i64, Vec<u8>, String)]) -> Result<u64, StoreError> {
        let doing = "redacting audit events";
        let sql = "UPDATE audit_events SET id = '', correlation_id = '', kind = '', principal = NULL, client = NULL, \
                   source = NULL, session = NULL, connector = NULL, method = NULL, target = NULL, decision = '', \
                   reasons = '', findings = '', outcome = '', upstream_status = NULL, request_bytes = 0, \
                   response_bytes = 0, latency_us = 0, subject = NULL, payload_digest = NULL, redacted = $1, leaf = $2 \
                   WHERE seq = $3 AND redacted IS NULL";
        dispatch!(self.db(), pool => {
            let mut tx = pool.begin().await.map_err(self.err(doing))?;
            let mut n = 0;
            for (seq, leaf, reason) in rows {
                n += sqlx::query(sql).bind(reason).bind(leaf).bind(seq).execute(&mut *tx).await
                    .map_err(self.err(doing))?.rows_affected();
                sqlx::query("DELETE FROM audit_payloads WHERE seq = $1").bind(seq).execute(&mut *tx).await
                    .map_err(self.err(doing))?;
            }
            tx.commit().await.map_err(self.err(doing))?;
            Ok(n)
        })
    }

    /// Intact events older than `before_ns` in one data class, at most `limit`, in seq order.
    pub async fn expired_events(
        &self,
        data_class: &str,
        before_ns: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = "SELECT seq, id, time_ns, correlation_id, kind, principal, client, source, session, connector, \
                   method, target, decision, reasons, findings, outcome, upstream_status, request_bytes, response_bytes, \
                   latency_us, data_class, subject, payload_digest, redacted, leaf, hash FROM audit_events \
                   WHERE redacted IS NULL AND data_class = $1 AND time_ns < $2 ORDER BY seq LIMIT $3";
        dispatch!(self.db(), pool => sqlx::query_as(sql).bind(data_class).bind(before_ns).bind(limit).fetch_all(pool).await)
            .map_err(self.err("finding expired audit events"))
    }

    /// The distinct data classes of intact events.
    pub async fn data_classes(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar(
            "SELECT DISTINCT data_class FROM audit_events WHERE redacted IS NULL ORDER BY data_class").fetch_all(pool).await)
        .map_err(self.err("listing data classes"))
    }

    /// Payloads with `seq` in the range.
    pub async fn payloads_by_seq(
        &self,
        from_seq: i64,
        to_seq: i64,
    ) -> Result<Vec<PayloadRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT seq, subject, nonce, ciphertext FROM audit_payloads WHERE seq >= $1 AND seq <= $2 ORDER BY seq")
            .bind(from_seq).bind(to_seq).fetch_all(pool).await)
        .map_err(self.err("reading audit payloads"))
    }

    /// The wrapped payload key of a subject.
    pub async fn subject_key(&self, subject: &str) -> Result<Option<SubjectKeyRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT subject, nonce, wrapped_key, created_us FROM audit_subject_keys WHERE subject = $1")
            .bind(subject).fetch_optional(pool).await)
        .map_err(self.err("reading a subject key"))
    }

    /// Stores a subject key unless one exists; returns the stored one.
    pub async fn subject_key_init(&self, k: &SubjectKeyRow) -> Result<SubjectKeyRow, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO audit_subject_keys (subject, nonce, wrapped_key, created_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject) DO NOTHING")
            .bind(&k.subject).bind(&k.nonce).bind(&k.wrapped_key).bind(k.created_us).execute(pool).await.map(|_| ()))
        .map_err(self.err("storing a subject key"))?;
        self.subject_key(&k.subject)
            .await?
            .ok_or_else(|| StoreError::Query {
                location: self.location().to_string(),
                doing: "storing a subject key",
                source: sqlx::Error::RowNotFound,
            })
    }

    /// Erasure (AU-5): in one transaction, deletes the subject's key (crypto-shredding whatever
    /// copy of a payload survives in a backup), its payloads, and writes the receipt. Returns the
    /// number of payloads deleted and whether a key existed.
    pub async fn erase_subject(
        &self,
        subject: &str,
        receipt: &ReceiptRow,
    ) -> Result<(u64, bool), StoreError> {
        let doing = "erasing a subject's payloads";
        dispatch!(self.db(), pool => {
            let mut tx = pool.begin().await.map_err(self.err(doing))?;
            let key = sqlx::query("DELETE FROM audit_subject_keys WHERE subject = $1").bind(subject)
                .execute(&mut *tx).await.map_err(self.err(doing))?.rows_affected() > 0;
            let n = sqlx::query("DELETE FROM audit_payloads WHERE subject = $1").bind(subject)
                .execute(&mut *tx).await.map_err(self.err(doing))?.rows_affected();
            sqlx::query("INSERT INTO audit_receipts (id, kind, time_us, actor, details) VALUES ($1, $2, $3, $4, $5)")
                .bind(&receipt.id).bind(&receipt.kind).bind(receipt.time_us).bind(&receipt.actor).bind(&receipt.details)
                .execute(&mut *tx).await.map_err(self.err(doing))?;
            tx.commit().await.map_err(self.err(doing))?;
            Ok((n, key))
        })
    }

    /// Seqs of intact events of a subject.
    pub async fn subject_event_seqs(&self, subject: &str) -> Result<Vec<i64>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar(
            "SELECT seq FROM audit_events WHERE subject = $1 AND redacted IS NULL ORDER BY seq")
            .bind(subject).fetch_all(pool).await)
        .map_err(self.err("finding a subject's events"))
    }

    /// Writes a receipt.
    pub async fn insert_receipt(&self, r: &ReceiptRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO audit_receipts (id, kind, time_us, actor, details) VALUES ($1, $2, $3, $4, $5)")
            .bind(&r.id).bind(&r.kind).bind(r.time_us).bind(&r.actor).bind(&r.details).execute(pool).await.map(|_| ()))
        .map_err(self.err("writing a receipt"))
    }

    /// Rewrites a receipt's details.
    pub async fn update_receipt(&self, r: &ReceiptRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query("UPDATE audit_receipts SET details = $1 WHERE id = $2")
            .bind(&r.details).bind(&r.id).execute(pool).await.map(|_| ()))
        .map_err(self.err("updating a receipt"))
    }

    /// All receipts, oldest first.
    pub async fn receipts(&self) -> Result<Vec<ReceiptRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as(
            "SELECT id, kind, time_us, actor, details FROM audit_receipts ORDER BY time_us, id").fetch_all(pool).await)
        .map_err(self.err("reading receipts"))
    }

    /// Runs one statement with no parameters; for tests that tamper with the log on purpose.
    pub async fn execute_raw(&self, sql: &'static str) -> Result<u64, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(self.err("running a statement"))
    }
}
