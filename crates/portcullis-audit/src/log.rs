//! The audit log: a non-blocking queue in front of a group-committing writer (AU-1, AU-3).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_core::{Clock, Decision, Event, EventSink};
use portcullis_store::audit::{AppendBatch, EventQuery, EventRow, Head, PayloadRow};
use portcullis_store::{OpenMode, Store};
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use crate::canonical::{self, Hash};
use crate::keys::{HeadRecord, Signer};
use crate::{AuditConfig, AuditError, AuditMetrics};

/// Most attempts to commit one batch before its events are counted as dropped. With the backoff
/// below this rides out about half a minute of database outage.
const MAX_WRITE_ATTEMPTS: u32 = 10;

/// Told the seq an event was committed at, or `None` when it could not be committed.
type Ack = oneshot::Sender<Option<i64>>;

enum Msg {
    Event(Box<(Event, Option<Vec<u8>>)>),
    /// An event whose recorder waits for its commit (admin actions, AU-1).
    Acked(Box<(Event, Option<Vec<u8>>)>, Ack),
    Flush(oneshot::Sender<()>),
    /// Answered once everything queued before it is committed; unlike `Flush` it does not wait
    /// for the head record (the per-call wait of the data path).
    Committed(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Filters for [`AuditLog::events`]; unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Events at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Principal, exact.
    pub principal: Option<String>,
    /// Connector, exact.
    pub connector: Option<String>,
    /// Tool (the event's `target`), exact.
    pub tool: Option<String>,
    /// Decision.
    pub decision: Option<Decision>,
    /// Correlation id, exact.
    pub correlation_id: Option<String>,
    /// Events with at least one finding of this kind (`pii.email`...).
    pub finding_kind: Option<String>,
    /// At most this many events (oldest first).
    pub limit: Option<usize>,
}

impl EventFilter {
    /// The storage query for this filter; rejects a backwards time range.
    pub fn to_query(&self) -> Result<EventQuery, AuditError> {
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(AuditError::BadTimeRange(format!(
                "from ({}) is after to ({}); swap them",
                f.to_rfc3339(),
                t.to_rfc3339()
            )));
        }
        Ok(EventQuery {
            from_ns: self.from.as_ref().map(canonical::time_ns),
            to_ns: self.to.as_ref().map(canonical::time_ns),
            principal: self.principal.clone(),
            connector: self.connector.clone(),
            target: self.tool.clone(),
            decision: self
                .decision
                .map(|d| canonical::decision_str(d).to_string()),
            correlation_id: self.correlation_id.clone(),
            finding_kind: self.finding_kind.clone(),
            after_seq: None,
            limit: self.limit.map(|l| l.min(i64::MAX as usize) as i64),
        })
    }
}

/// The tamper-evident audit log. Open it once per process and share the `Arc`.
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    store: Store,
    cfg: AuditConfig,
    clock: Arc<dyn Clock>,
    master: Arc<std::sync::OnceLock<crate::payload::MasterKey>>,
    signer: Arc<Signer>,
    log_id: Vec<u8>,
    metrics: Arc<AuditMetrics>,
    closed: AtomicBool,
    /// Tells background jobs (retention) that the log is shutting down.
    closing: tokio::sync::watch::Sender<bool>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("database", &self.store.location())
            .finish_non_exhaustive()
    }
}

/// Everything `open` learns about an existing log before writing to it.
pub(crate) struct Opened {
    pub store: Store,
    pub signer: Signer,
    pub log_id: Vec<u8>,
}

/// Opens the store and the key and checks that they belong together; shared by the server and
/// the CLI commands that change the log.
pub(crate) async fn open_parts(cfg: &AuditConfig, mode: OpenMode) -> Result<Opened, AuditError> {
    cfg.validate()?;
    let url = cfg.database_url()?;
    let store = Store::open(&url, mode).await?;
    let last_cp = store.last_checkpoint().await?;
    let (_, max_seq, _) = store.event_bounds().await?;
    let signer = if cfg.signing_key_path.exists()
        || last_cp.is_some()
        || max_seq.is_some()
        || mode != OpenMode::CreateIfMissing
    {
        // A log that already has events must be continued with its own key, never a new one.
        Signer::load(&cfg.signing_key_path)?
    } else {
        Signer::create(&cfg.signing_key_path)?
    };
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let log_id_hex = store.meta_init("log_id", &hex::encode(id)).await?;
    let log_id = hex::decode(&log_id_hex).map_err(|_| AuditError::Foreign {
        location: store.location().to_string(),
        detail: "its audit log id is not hex".into(),
    })?;
    let format = store.meta_init("format", "portcullis-audit-1").await?;
    if format != "portcullis-audit-1" {
        return Err(AuditError::Foreign {
            location: store.location().to_string(),
            detail: format!("its audit format is {format:?}, which this version does not read"),
        });
    }
    if let Some(c) = &last_cp
        && c.public_key != signer.verifying_key().as_bytes()
    {
        return Err(AuditError::Foreign {
            location: store.location().to_string(),
            detail: format!(
                "its checkpoints are signed by key {}, but {} holds key {}; use the key this log was created with",
                hex::encode(&c.public_key),
                cfg.signing_key_path.display(),
                signer.public_hex()
            ),
        });
    }
    Ok(Opened {
        store,
        signer,
        log_id,
    })
}

pub(crate) fn hash32(v: &[u8], seq: i64, location: &str) -> Result<Hash, AuditError> {
    <Hash>::try_from(v).map_err(|_| AuditError::Damaged {
        location: location.to_string(),
        seq,
        detail: "its stored chain hash is not 32 bytes".into(),
    })
}

impl AuditLog {
    /// Opens (creating when new) the log described by `cfg` and starts its writer task. Must be
    /// called inside a Tokio runtime.
    ///
    /// Refuses a database signed by another key, a missing key for a log that has events, and a
    /// log whose unsigned tail (left by a crash) does not chain; after a crash it signs the tail
    /// it finds intact.
    pub async fn open(
        cfg: AuditConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AuditLog>, AuditError> {
        let Opened {
            store,
            signer,
            log_id,
        } = open_parts(&cfg, OpenMode::CreateIfMissing).await?;
        let signer = Arc::new(signer);
        let metrics = Arc::new(AuditMetrics::default());
        let last_cp = recover_tail(
            &store,
            &signer,
            &log_id,
            clock.as_ref(),
            cfg.head_path.as_deref(),
            &metrics,
        )
        .await?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let master = Arc::new(std::sync::OnceLock::new());
        let writer = Writer {
            master: master.clone(),
            sinks: Some(crate::sinks::Sinks::start(&cfg.sinks, metrics.clone())),
            store: store.clone(),
            signer: signer.clone(),
            log_id: log_id.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            max_batch: cfg.max_batch,
            checkpoint_every: cfg.checkpoint_every,
            checkpoint_interval_us: cfg.checkpoint_interval.as_micros().min(i64::MAX as u128)
                as i64,
            head_path: cfg.head_path.clone(),
            cfg: cfg.clone(),
            last_cp_seq: last_cp.0,
            last_cp_time_us: last_cp.1,
            head: None,
            heads: cfg.head_path.clone().and_then(|p| {
                crate::head::HeadWriter::start(p, signer.clone(), log_id.clone())
                    .inspect_err(|e| {
                        tracing::warn!(error = %e, "cannot start the audit head-record thread; writing head records inline");
                    })
                    .ok()
            }),
        };
        let handle = tokio::spawn(writer.run(rx));
        Ok(Arc::new(AuditLog {
            tx,
            store,
            cfg,
            clock,
            master,
            signer,
            log_id,
            metrics,
            closed: AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
            writer: std::sync::Mutex::new(Some(handle)),
        }))
    }

    /// A receiver that turns `true` when shutdown begins.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Whether [`AuditLog::shutdown`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The counters (events written, dropped, sink failures...).
    pub fn metrics(&self) -> Arc<AuditMetrics> {
        self.metrics.clone()
    }

    /// The store, for the read side (search, export, verify) in the same process.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &AuditConfig {
        &self.cfg
    }

    /// The public half of the checkpoint key, hex.
    pub fn public_key_hex(&self) -> String {
        self.signer.public_hex()
    }

    /// The log's random id, hex.
    pub fn log_id_hex(&self) -> String {
        hex::encode(&self.log_id)
    }

    /// Committed events matching `filter`, oldest first. Events removed by retention or erasure
    /// are not returned.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, AuditError> {
        let rows = self.store.search_events(&filter.to_query()?).await?;
        rows.iter()
            .map(|r| {
                canonical::from_row(r).map_err(|detail| AuditError::Damaged {
                    location: self.store.location().to_string(),
                    seq: r.seq,
                    detail,
                })
            })
            .collect()
    }

    /// Flushes everything queued, writes a final signed checkpoint and stops the writer. Events
    /// recorded afterwards are dropped and counted. Idempotent.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.send_replace(true);
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

impl AuditLog {
    /// Like [`EventSink::record`], with the raw payload of the interaction. The payload is kept
    /// only when the event's data class is in `payload_classes` and its connector is not
    /// memory-off (AU-2, AU-7); it is then encrypted with the subject's (principal's) key.
    /// Callers pass text the detection engine has already redacted.
    pub fn record_with_payload(&self, event: Event, payload: Vec<u8>) {
        let keep = self.payload_kept(&event);
        if !keep {
            AuditMetrics::add(&self.metrics.payloads_suppressed, 1);
        }
        self.enqueue(event, keep.then_some(payload));
    }

    /// Whether a payload of this event would be kept.
    pub fn payload_kept(&self, event: &Event) -> bool {
        let memory_off = event
            .connector
            .as_deref()
            .is_some_and(|c| self.cfg.memory_off_connectors.contains(c));
        let class = self.cfg.class_of(event.connector.as_deref());
        !memory_off && self.cfg.payload_classes.contains(class)
    }

    /// The decrypted payload kept for event `seq`, if any (gone after erasure).
    pub async fn payload(&self, seq: i64) -> Result<Option<Vec<u8>>, AuditError> {
        let Some(p) = self
            .store
            .payloads_by_seq(seq, seq)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let rows = self.store.events_by_seq(seq, seq, 1).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let master = self.master_key()?;
        if self.store.subject_key(&p.subject).await?.is_none() {
            return Ok(None);
        }
        let key = master
            .subject_key(&self.store, &p.subject, self.clock.now().timestamp_micros())
            .await?;
        crate::payload::open(&key, &row.id, &p.nonce, &p.ciphertext).map(Some)
    }

    pub(crate) fn master_key(&self) -> Result<&crate::payload::MasterKey, AuditError> {
        master_key(&self.master, &self.cfg.payload_key_path)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Records `event` and waits until it is committed; returns its seq. For events that must
    /// not be lost silently (administrative changes, AU-1): unlike [`EventSink::record`], a
    /// closed log, a full queue or a failed commit is an error the caller sees.
    pub async fn record_committed(&self, event: Event) -> Result<i64, AuditError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuditError::Closed);
        }
        let (tx, rx) = oneshot::channel();
        // Waits for room rather than dropping: the caller asked to wait.
        self.tx
            .send(Msg::Acked(Box::new((event, None)), tx))
            .await
            .map_err(|_| AuditError::Closed)?;
        AuditMetrics::add(&self.metrics.queue_depth, 1);
        match rx.await {
            Ok(Some(seq)) => Ok(seq),
            _ => Err(AuditError::NotCommitted {
                location: self.store.location().to_string(),
            }),
        }
    }

    fn enqueue(&self, event: Event, payload: Option<Vec<u8>>) {
        // AU-1: never block the data path. A full queue or a closed log loses the event, which is
        // counted (and must stay 0: size the queue for bursts).
        if self.closed.load(Ordering::Relaxed) {
            AuditMetrics::add(&self.metrics.events_dropped, 1);
            tracing::error!("audit event recorded after shutdown; dropped");
            return;
        }
        match self.tx.try_send(Msg::Event(Box::new((event, payload)))) {
            Ok(()) => AuditMetrics::add(&self.metrics.queue_depth, 1),
            Err(_) => {
                AuditMetrics::add(&self.metrics.events_dropped, 1);
                tracing::error!("audit queue full or writer stopped; event dropped");
            }
        }
    }
}

impl EventSink for AuditLog {
    fn record(&self, event: Event) {
        self.enqueue(event, None);
    }

    fn flush(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            // FIFO: the marker is handled after every event queued before it.
            if self.tx.send(Msg::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
    }

    fn committed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.tx.send(Msg::Committed(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
    }
}

/// After a crash the last batches may have been committed without a checkpoint: check they chain
/// from the last checkpoint and sign them. Returns the last checkpoint's (seq, time).
async fn recover_tail(
    store: &Store,
    signer: &Signer,
    log_id: &[u8],
    clock: &dyn Clock,
    head_path: Option<&std::path::Path>,
    metrics: &AuditMetrics,
) -> Result<(i64, i64), AuditError> {
    let loc = store.location().to_string();
    let last = store.last_checkpoint().await?;
    let (mut seq, mut prev) = match &last {
        Some(c) => (c.seq, hash32(&c.hash, c.seq, &loc)?),
        None => (0, canonical::genesis(log_id)),
    };
    let Some(head) = store.head().await? else {
        return Ok((0, 0));
    };
    if head.seq < seq {
        return Err(AuditError::Damaged {
            location: loc,
            seq: head.seq + 1,
            detail: format!(
                "the log ends at seq {} but a checkpoint covers seq {seq}: its tail was cut off",
                head.seq
            ),
        });
    }
    if head.seq == seq {
        return Ok(last.map(|c| (c.seq, c.time_us)).unwrap_or((0, 0)));
    }
    let mut buf = Vec::new();
    while seq < head.seq {
        let rows = store.events_by_seq(seq + 1, head.seq, 10_000).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if r.seq != seq + 1 {
                return Err(AuditError::Damaged {
                    location: loc,
                    seq: seq + 1,
                    detail: "the event is missing".into(),
                });
            }
            let leaf = match &r.leaf {
                Some(l) => hash32(l, r.seq, &loc)?,
                None => canonical::leaf(r, &mut buf),
            };
            let h = canonical::chain(&prev, r.seq, &leaf);
            if h[..] != r.hash[..] {
                return Err(AuditError::Damaged {
                    location: loc,
                    seq: r.seq,
                    detail: "its content does not match its chain hash".into(),
                });
            }
            prev = h;
            seq = r.seq;
        }
    }
    let now = clock.now().timestamp_micros();
    let cp = signer.checkpoint(log_id, seq, &prev, now);
    store.insert_checkpoint(&cp).await?;
    AuditMetrics::add(&metrics.checkpoints_written, 1);
    if let Some(p) = head_path {
        write_head(p, &HeadRecord::new(signer, log_id, seq, &prev, now));
    }
    tracing::info!(seq, "signed the audit log tail left by an earlier run");
    Ok((seq, now))
}

pub(crate) fn write_head(path: &std::path::Path, rec: &HeadRecord) {
    // Several processes append to one log (the server, CLI admin commands): never move the head
    // record back over a later one another process wrote. Two writers racing past this check can
    // still leave the earlier of two heads, which only weakens the truncation check to that seq;
    // it never makes verify fail on an intact log.
    if let Ok(Some(old)) = HeadRecord::read(path)
        && old.log_id == rec.log_id
        && old.seq > rec.seq
    {
        return;
    }
    if let Err(e) = rec.write(path) {
        tracing::error!(path = %path.display(), error = %e, "cannot write the audit head record");
    }
}

fn master_key<'a>(
    cell: &'a std::sync::OnceLock<crate::payload::MasterKey>,
    path: &std::path::Path,
) -> Result<&'a crate::payload::MasterKey, AuditError> {
    if let Some(k) = cell.get() {
        return Ok(k);
    }
    let k = crate::payload::MasterKey::load_or_create(path, true)?;
    Ok(cell.get_or_init(|| k))
}

/// Tells the recorders of events `start..start + len` of a batch where they were committed
/// (`first` is the seq of event `start`), or that they were not.
fn answer(acks: &mut Vec<(usize, Ack)>, start: usize, len: usize, first: Option<i64>) {
    let mut i = 0;
    while i < acks.len() {
        let at = acks[i].0;
        if at >= start && at < start + len {
            let (_, a) = acks.swap_remove(i);
            let _ = a.send(first.map(|f| f + (at - start) as i64));
        } else {
            i += 1;
        }
    }
}

struct Writer {
    master: Arc<std::sync::OnceLock<crate::payload::MasterKey>>,
    sinks: Option<crate::sinks::Sinks>,
    store: Store,
    signer: Arc<Signer>,
    log_id: Vec<u8>,
    clock: Arc<dyn Clock>,
    metrics: Arc<AuditMetrics>,
    cfg: AuditConfig,
    max_batch: usize,
    checkpoint_every: u64,
    checkpoint_interval_us: i64,
    head_path: Option<std::path::PathBuf>,
    last_cp_seq: i64,
    last_cp_time_us: i64,
    /// The last head this writer committed.
    head: Option<(i64, Hash)>,
    /// Writes the head record off the commit path; `None`: inline (no thread could start).
    heads: Option<crate::head::HeadWriter>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<(Event, Option<Vec<u8>>)> = Vec::with_capacity(self.max_batch);
        // (index in `batch`, who waits for it)
        let mut acks: Vec<(usize, Ack)> = Vec::new();
        let mut flushes = Vec::new();
        let mut commits: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let Some(first) = rx.recv().await else {
                // Every sender is gone (the log was dropped): nothing more can arrive.
                self.final_checkpoint().await;
                self.sync_head().await;
                if let Some(s) = self.sinks.take() {
                    s.close().await;
                }
                return;
            };
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Msg::Event(e) => batch.push(*e),
                    Msg::Acked(e, a) => {
                        acks.push((batch.len(), a));
                        batch.push(*e);
                    }
                    Msg::Flush(f) => flushes.push(f),
                    Msg::Committed(c) => commits.push(c),
                    Msg::Shutdown(s) => {
                        shutdown = Some(s);
                        break;
                    }
                }
                if batch.len() >= self.max_batch {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                self.metrics.queue_depth.fetch_sub(
                    n.min(AuditMetrics::get(&self.metrics.queue_depth)),
                    Ordering::Relaxed,
                );
                let first = self.write_with_retry(&batch).await;
                answer(&mut acks, 0, batch.len(), first);
                batch.clear();
            }
            // FIFO: every event queued before these markers is in the batch just committed (or
            // counted as dropped after the retries).
            for c in commits.drain(..) {
                let _ = c.send(());
            }
            if !flushes.is_empty() {
                // a flushed log has its head record on disk too
                self.sync_head().await;
            }
            for f in flushes.drain(..) {
                let _ = f.send(());
            }
            if let Some(s) = shutdown {
                // Anything still queued was recorded before shutdown began: write it too.
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Event(e) => batch.push(*e),
                        Msg::Acked(e, a) => {
                            acks.push((batch.len(), a));
                            batch.push(*e);
                        }
                        Msg::Flush(f) => flushes.push(f),
                        Msg::Committed(c) => commits.push(c),
                        Msg::Shutdown(s) => {
                            let _ = s.send(());
                        }
                    }
                }
                for (i, chunk) in batch.chunks(self.max_batch).enumerate() {
                    let first = self.write_with_retry(chunk).await;
                    answer(&mut acks, i * self.max_batch, chunk.len(), first);
                }
                self.final_checkpoint().await;
                self.sync_head().await;
                if let Some(s) = self.sinks.take() {
                    s.close().await;
                }
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
                for c in commits.drain(..) {
                    let _ = c.send(());
                }
                let _ = s.send(());
                return;
            }
        }
    }

    /// Waits until the head record holds the last committed head.
    async fn sync_head(&self) {
        if let Some(w) = &self.heads {
            let sync = w.syncer();
            let _ = tokio::task::spawn_blocking(move || sync.wait()).await;
        }
    }

    async fn final_checkpoint(&mut self) {
        let Some((seq, hash)) = self.head else { return };
        if seq <= self.last_cp_seq {
            return;
        }
        let now = self.clock.now().timestamp_micros();
        let cp = self.signer.checkpoint(&self.log_id, seq, &hash, now);
        match self.store.insert_checkpoint(&cp).await {
            Ok(()) => {
                AuditMetrics::add(&self.metrics.checkpoints_written, 1);
                self.last_cp_seq = seq;
                self.last_cp_time_us = now;
            }
            Err(e) => tracing::error!(error = %e, "cannot write the final audit checkpoint"),
        }
    }

    /// Commits `events`, retrying; returns the seq of the first, or `None` when they were dropped.
    async fn write_with_retry(&mut self, events: &[(Event, Option<Vec<u8>>)]) -> Option<i64> {
        // Payloads are sealed once; the rows are made afresh for each attempt (the commit takes
        // them), which costs no more than the copy an attempt would otherwise need.
        let mut digests: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut payloads: Vec<(usize, PayloadRow)> = Vec::new();
        for (i, (e, payload)) in events.iter().enumerate() {
            if let Some(p) = payload {
                // AU-2: encrypt with the subject's key; without a subject there is no one to
                // erase it for, so it is not kept.
                match self.seal(e, p).await {
                    Ok(Some((subject, sealed))) => {
                        digests.push((i, sealed.digest));
                        payloads.push((
                            i,
                            PayloadRow {
                                seq: 0,
                                subject,
                                nonce: sealed.nonce,
                                ciphertext: sealed.ciphertext,
                            },
                        ));
                    }
                    Ok(None) => AuditMetrics::add(&self.metrics.payloads_suppressed, 1),
                    Err(err) => {
                        AuditMetrics::add(&self.metrics.payloads_suppressed, 1);
                        tracing::error!(error = %err, "cannot encrypt an audit payload; the event is kept without it");
                    }
                }
            }
        }
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=MAX_WRITE_ATTEMPTS {
            let before = self.head.map(|(seq, _)| seq);
            let rows = self.rows_of(events, &digests);
            match self.write_once(rows, &payloads).await {
                Ok(first_seq) => {
                    if let Some(b) = before
                        && first_seq > b + 1
                    {
                        self.forward_foreign(b + 1, first_seq - 1).await;
                    }
                    if let Some(sinks) = &self.sinks {
                        let committed: Vec<crate::sinks::Committed> = events
                            .iter()
                            .enumerate()
                            .map(|(i, (e, _))| Arc::new((first_seq + i as i64, e.clone())))
                            .collect();
                        sinks.send(&committed);
                    }
                    return Some(first_seq);
                }
                Err(e) => {
                    AuditMetrics::add(&self.metrics.write_failures, 1);
                    tracing::error!(attempt, error = %e, "cannot commit audit events; retrying");
                    if attempt < MAX_WRITE_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        AuditMetrics::add(&self.metrics.events_dropped, events.len() as u64);
        tracing::error!(
            count = events.len(),
            "audit events dropped after repeated write failures"
        );
        None
    }

    /// The rows of `events`, with the digests of their sealed payloads (by index in `events`).
    fn rows_of(
        &self,
        events: &[(Event, Option<Vec<u8>>)],
        digests: &[(usize, Vec<u8>)],
    ) -> Vec<EventRow> {
        let mut rows: Vec<EventRow> = events
            .iter()
            .map(|(e, _)| {
                let class = self.cfg.class_of(e.connector.as_deref());
                canonical::to_row(e, class, e.principal.clone(), None)
            })
            .collect();
        for (i, d) in digests {
            rows[*i].payload_digest = Some(d.clone());
        }
        rows
    }

    /// Sends to the live sinks the events another process (a CLI admin command) committed
    /// between this writer's commits, seqs `from..=to`, so that a SIEM sees admin actions too
    /// (AU-1, AU-6). They go out with this writer's next commit, in chain order, before its own.
    async fn forward_foreign(&self, from: i64, to: i64) {
        let Some(sinks) = &self.sinks else { return };
        // a bound on one catch-up; beyond it the events stay in the log (search, export)
        const MAX_FOREIGN: i64 = 10_000;
        match self.store.events_by_seq(from, to, MAX_FOREIGN).await {
            Ok(rows) => {
                let committed: Vec<crate::sinks::Committed> = rows
                    .iter()
                    .filter_map(|r| match canonical::from_row(r) {
                        Ok(e) => Some(Arc::new((r.seq, e))),
                        Err(err) => {
                            tracing::error!(seq = r.seq, error = %err, "cannot read an audit event another process wrote; not sent to the sinks");
                            None
                        }
                    })
                    .collect();
                sinks.send(&committed);
            }
            Err(e) => {
                tracing::error!(from, to, error = %e, "cannot read the audit events another process wrote; not sent to the sinks");
            }
        }
    }

    async fn seal(
        &self,
        e: &Event,
        payload: &[u8],
    ) -> Result<Option<(String, crate::payload::Sealed)>, AuditError> {
        let Some(subject) = e.principal.clone() else {
            return Ok(None);
        };
        let master = master_key(&self.master, &self.cfg.payload_key_path)?;
        let key = master
            .subject_key(&self.store, &subject, self.clock.now().timestamp_micros())
            .await?;
        Ok(Some((
            subject,
            crate::payload::seal(&key, &e.id.to_string(), payload)?,
        )))
    }

    /// Commits one batch; returns the seq of its first event.
    async fn write_once(
        &mut self,
        rows: Vec<EventRow>,
        payloads: &[(usize, PayloadRow)],
    ) -> Result<i64, AuditError> {
        let n = rows.len() as i64;
        let loc = self.store.location().to_string();
        let now_us = self.clock.now().timestamp_micros();
        let (last_cp_seq, last_cp_time, every, interval) = (
            self.last_cp_seq,
            self.last_cp_time_us,
            self.checkpoint_every as i64,
            self.checkpoint_interval_us,
        );
        let signer = self.signer.clone();
        let log_id = self.log_id.clone();
        let genesis = canonical::genesis(&log_id);
        // The commit runs on the store's writer thread (SQLite) or a pool task: it takes the
        // rows, and says back which seq it signed a checkpoint at, if any.
        let rows_in: Vec<EventRow> = rows;
        let payloads_in: Vec<(usize, PayloadRow)> = payloads.to_vec();
        let signed_at = Arc::new(std::sync::Mutex::new(None::<i64>));
        let signed_out = signed_at.clone();
        let loc_in = loc.clone();
        let built = self
            .store
            .append(
                move |head: Option<Head>| -> Result<AppendBatch, AuditError> {
                    let (mut seq, mut prev) = match head {
                        Some(h) => (h.seq, hash32(&h.hash, h.seq, &loc_in)?),
                        None => (0, genesis),
                    };
                    let mut buf = Vec::with_capacity(512);
                    let mut out = rows_in;
                    for row in &mut out {
                        seq += 1;
                        row.seq = seq;
                        let leaf = canonical::leaf(row, &mut buf);
                        prev = canonical::chain(&prev, seq, &leaf);
                        row.hash = prev.to_vec();
                    }
                    let first = out.first().map(|r| r.seq).unwrap_or(0);
                    let payloads: Vec<PayloadRow> = payloads_in
                        .into_iter()
                        .map(|(i, p)| PayloadRow {
                            seq: first + i as i64,
                            ..p
                        })
                        .collect();
                    let checkpoint = (seq - last_cp_seq >= every
                        || now_us - last_cp_time >= interval)
                        .then(|| {
                            *signed_out.lock().unwrap_or_else(|p| p.into_inner()) = Some(seq);
                            signer.checkpoint(&log_id, seq, &prev, now_us)
                        });
                    Ok(AppendBatch {
                        events: out,
                        payloads,
                        checkpoint,
                    })
                },
            )
            .await??;
        let signed = *signed_at.lock().unwrap_or_else(|p| p.into_inner());
        let mut first_seq = 0;
        if let Some(h) = built {
            first_seq = h.seq - n + 1;
            let hash = hash32(&h.hash, h.seq, &loc)?;
            self.head = Some((h.seq, hash));
            match (&self.heads, &self.head_path) {
                (Some(w), _) => w.publish(h.seq, hash, now_us),
                (None, Some(p)) => write_head(
                    p,
                    &HeadRecord::new(&self.signer, &self.log_id, h.seq, &hash, now_us),
                ),
                (None, None) => {}
            }
        }
        if let Some(seq) = signed {
            self.last_cp_seq = seq;
            self.last_cp_time_us = now_us;
            AuditMetrics::add(&self.metrics.checkpoints_written, 1);
        }
        AuditMetrics::add(&self.metrics.events_written, n as u64);
        AuditMetrics::add(&self.metrics.batches_written, 1);
        Ok(first_seq)
    }
}
