//! Verification of the audit log (AU-3): recomputes every leaf and chain hash, checks every
//! checkpoint signature against the key from the key file, and compares the end of the log with
//! the last checkpoint and the head record. It reports "intact" only when it read every event it
//! was asked about; any read error is an error, never a pass.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use portcullis_store::audit::{CheckpointRow, EventRef};
use portcullis_store::{OpenMode, Store};

use crate::canonical::{self, Hash};
use crate::keys::{self, HeadRecord, Signer};
use crate::log::hash32;
use crate::{AuditConfig, AuditError};

/// Rows read per query while verifying.
const PAGE: i64 = 50_000;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only events at or after this time (and the chain that leads to them).
    pub from: Option<DateTime<Utc>>,
    /// Only events at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// The head record to compare the end of the log with; `None` skips that check.
    pub head_path: Option<PathBuf>,
}

/// What kind of damage was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// An event's content does not match its chain hash: a changed field, or an event inserted,
    /// moved or renumbered.
    Changed,
    /// An event is missing (a gap in the sequence).
    Missing,
    /// A checkpoint's signature does not verify, or was made by another key.
    BadCheckpoint,
    /// The chain does not reach a signed checkpoint's hash: events before it were altered and
    /// re-hashed.
    CheckpointMismatch,
    /// Events covered by a checkpoint or by the head record are gone from the end.
    Truncated,
    /// An event marked as removed by retention or erasure still has content, or the reverse.
    BadRedaction,
    /// A stored payload does not match the digest its event carries in the chain.
    PayloadMismatch,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The first bad event's position.
    pub seq: i64,
    /// Its id, when readable.
    pub event_id: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// In words.
    pub detail: String,
}

/// The result of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events whose hashes were recomputed.
    pub events_checked: u64,
    /// First and last seq checked.
    pub first_seq: Option<i64>,
    /// Last seq checked.
    pub last_seq: Option<i64>,
    /// Checkpoint signatures verified.
    pub checkpoints_checked: u64,
    /// Events whose content was removed by retention or erasure (still chained).
    pub redacted: u64,
    /// Events after the last signed checkpoint or head record: chained, but not yet signed (a
    /// crash between commit and signing leaves at most one batch; the next start signs them).
    pub unsigned_tail: u64,
    /// Whether the chain was compared with the head record (only when its seq was walked).
    pub head_checked: bool,
    /// The first problem, if any. `None` means intact.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies the log described by `cfg`, read-only. The key file must exist (its public half is
/// the only key trusted); the database must be a Portcullis audit log.
pub async fn verify_config(
    cfg: &AuditConfig,
    opts: &VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    cfg.validate()?;
    let store = Store::open(&cfg.database_url()?, OpenMode::ReadOnly).await?;
    let signer = Signer::load(&cfg.signing_key_path)?;
    let r = verify(&store, &signer.verifying_key(), opts).await;
    store.close().await;
    r
}

fn time_range(opts: &VerifyOptions) -> Result<Option<(i64, i64)>, AuditError> {
    match (opts.from, opts.to) {
        (None, None) => Ok(None),
        (f, t) => {
            if let (Some(f), Some(t)) = (f, t)
                && f > t
            {
                return Err(AuditError::BadTimeRange(format!(
                    "--from {} is after --to {}; swap them",
                    f.to_rfc3339(),
                    t.to_rfc3339()
                )));
            }
            Ok(Some((
                f.as_ref().map(canonical::time_ns).unwrap_or(i64::MIN),
                t.as_ref().map(canonical::time_ns).unwrap_or(i64::MAX),
            )))
        }
    }
}

/// Verifies the log in `store` against the trusted public `key`.
pub async fn verify(
    store: &Store,
    key: &VerifyingKey,
    opts: &VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    let loc = store.location().to_string();
    let range = time_range(opts)?;
    let log_id_hex = store
        .meta_get("log_id")
        .await?
        .ok_or_else(|| AuditError::Foreign {
            location: loc.clone(),
            detail: "it has no audit log id (it was never opened by Portcullis)".into(),
        })?;
    let log_id = hex::decode(&log_id_hex).map_err(|_| AuditError::Foreign {
        location: loc.clone(),
        detail: "its audit log id is not hex".into(),
    })?;
    let mut report = VerifyReport::default();
    let fail = |mut report: VerifyReport,
                seq: i64,
                id: Option<&str>,
                kind: ProblemKind,
                detail: String| {
        report.problem = Some(Problem {
            seq,
            event_id: id.filter(|s| !s.is_empty()).map(str::to_string),
            kind,
            detail,
        });
        Ok(report)
    };

    let checkpoints = store.checkpoints().await?;
    // Every checkpoint by another key: this is another log (or the wrong key file), not a
    // tampered one. Say so plainly; a mix of keys is tampering and is reported below.
    if !checkpoints.is_empty() && checkpoints.iter().all(|c| c.public_key != key.as_bytes()) {
        return Err(AuditError::Foreign {
            location: loc,
            detail: format!(
                "its checkpoints are signed by key {}, but the key file holds key {}; check --data-dir and the key",
                hex::encode(&checkpoints[0].public_key),
                hex::encode(key.as_bytes())
            ),
        });
    }
    let (_, max_seq, _) = store.event_bounds().await?;
    let max_seq = max_seq.unwrap_or(0);

    // Which seqs to walk: everything, or from the checkpoint before the range to the one after.
    let (start_after, start_hash, end_seq) = match range {
        None => (0, canonical::genesis(&log_id), max_seq),
        Some((f, t)) => match store.seq_range_for_time(f, t).await? {
            None => return Ok(report),
            Some((a, b)) => {
                let anchor = checkpoints.iter().rev().find(|c| c.seq < a);
                let (s, h) = match anchor {
                    Some(c) => {
                        if let Err(why) = keys::verify_checkpoint(key, &log_id, c) {
                            return fail(
                                report,
                                c.seq,
                                None,
                                ProblemKind::BadCheckpoint,
                                format!("checkpoint at seq {}: {why}", c.seq),
                            );
                        }
                        report.checkpoints_checked += 1;
                        (c.seq, hash32(&c.hash, c.seq, &loc)?)
                    }
                    None => (0, canonical::genesis(&log_id)),
                };
                let end = checkpoints
                    .iter()
                    .find(|c| c.seq >= b)
                    .map(|c| c.seq)
                    .unwrap_or(max_seq);
                (s, h, end.min(max_seq).max(b))
            }
        },
    };

    // Checkpoints past the end of the log mean its tail was cut off.
    if let Some(c) = checkpoints.last()
        && c.seq > max_seq
        && keys::verify_checkpoint(key, &log_id, c).is_ok()
    {
        return fail(
            report,
            max_seq + 1,
            None,
            ProblemKind::Truncated,
            format!(
                "the log ends at seq {max_seq} but a signed checkpoint covers up to seq {}: events {}..={} were deleted",
                c.seq,
                max_seq + 1,
                c.seq
            ),
        );
    }

    let mut cps = checkpoints
        .iter()
        .filter(|c| c.seq > start_after && c.seq <= end_seq)
        .peekable();
    let mut prev: Hash = start_hash;
    let mut seq = start_after;
    let mut last_signed = start_after;
    let mut last_cp: i64 = start_after;
    let mut buf = Vec::with_capacity(1024);
    let mut hashes_at: Vec<(i64, Hash)> = Vec::new();
    let head = match &opts.head_path {
        Some(p) => HeadRecord::read(p)?,
        None => None,
    };
    // Payloads are outside the chain but bound to it by the digest in their event: collect the
    // digests while walking, compare the stored payloads afterwards.
    let mut digests: Vec<(i64, Vec<u8>, String)> = Vec::new();
    let mut scan = store.scan_events(start_after + 1, end_seq);
    while let Some(chunk) = scan.next().await? {
        for r in chunk.iter() {
            if r.seq != seq + 1 {
                return fail(
                    report,
                    seq + 1,
                    None,
                    ProblemKind::Missing,
                    format!(
                        "event seq {} is missing (deleted): the next stored event is seq {}",
                        seq + 1,
                        r.seq
                    ),
                );
            }
            let leaf = match redaction_leaf(&r) {
                Ok(Some(l)) => {
                    report.redacted += 1;
                    l
                }
                Ok(None) => canonical::leaf_of(&r, &mut buf),
                Err(why) => {
                    let id = String::from_utf8_lossy(r.id);
                    return fail(report, r.seq, Some(&id), ProblemKind::BadRedaction, why);
                }
            };
            let h = canonical::chain(&prev, r.seq, &leaf);
            if h[..] != r.hash[..] {
                let id = String::from_utf8_lossy(r.id);
                return fail(
                    report,
                    r.seq,
                    Some(&id),
                    ProblemKind::Changed,
                    format!(
                        "event seq {} does not match its chain hash: a field was changed, or the event was inserted, moved or renumbered",
                        r.seq
                    ),
                );
            }
            prev = h;
            seq = r.seq;
            report.events_checked += 1;
            report.first_seq.get_or_insert(r.seq);
            report.last_seq = Some(r.seq);
            if let Some(d) = r.payload_digest {
                digests.push((
                    r.seq,
                    d.to_vec(),
                    String::from_utf8_lossy(r.id).into_owned(),
                ));
            }
            if head.as_ref().is_some_and(|hd| hd.seq == r.seq) {
                hashes_at.push((r.seq, h));
            }
            while let Some(c) = cps.peek() {
                if c.seq > seq {
                    break;
                }
                let c: &CheckpointRow = cps.next().expect("peeked");
                if let Err(why) = keys::verify_checkpoint(key, &log_id, c) {
                    return fail(
                        report,
                        c.seq,
                        None,
                        ProblemKind::BadCheckpoint,
                        format!("checkpoint at seq {}: {why}", c.seq),
                    );
                }
                report.checkpoints_checked += 1;
                if c.seq == seq && c.hash[..] != h[..] {
                    return fail(
                        report,
                        last_cp + 1,
                        None,
                        ProblemKind::CheckpointMismatch,
                        format!(
                            "the chain at seq {} differs from the signed checkpoint: events {}..={} were altered and re-hashed",
                            c.seq,
                            last_cp + 1,
                            c.seq
                        ),
                    );
                }
                last_cp = c.seq;
                last_signed = c.seq;
            }
        }
    }
    if seq < end_seq {
        return fail(
            report,
            seq + 1,
            None,
            ProblemKind::Missing,
            format!("events {}..={end_seq} are missing", seq + 1),
        );
    }
    let mut page_from = start_after + 1;
    while page_from <= seq {
        let page_to = page_from.saturating_add(PAGE - 1).min(seq);
        for p in store.payloads_by_seq(page_from, page_to).await? {
            let found = digests
                .binary_search_by_key(&p.seq, |d| d.0)
                .ok()
                .map(|i| &digests[i]);
            if found.map(|d| &d.1[..]) != Some(&crate::payload::digest(&p.nonce, &p.ciphertext)[..])
            {
                return fail(
                    report,
                    p.seq,
                    found.map(|d| d.2.as_str()),
                    ProblemKind::PayloadMismatch,
                    format!(
                        "the stored payload of event seq {} does not match the digest in the chain",
                        p.seq
                    ),
                );
            }
        }
        page_from = page_to + 1;
    }

    if let Some(hd) = head {
        let c = hd.as_checkpoint(key).map_err(|why| AuditError::KeyIo {
            path: opts.head_path.clone().unwrap_or_default(),
            detail: format!("the head record is unreadable: {why}"),
        })?;
        if hd.log_id != log_id_hex {
            return Err(AuditError::Foreign {
                location: loc,
                detail: format!(
                    "the head record {} belongs to log {}, not to this log {log_id_hex}; check --data-dir",
                    opts.head_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    hd.log_id
                ),
            });
        }
        if let Err(why) = keys::verify_checkpoint(key, &log_id, &c) {
            return fail(
                report,
                hd.seq,
                None,
                ProblemKind::BadCheckpoint,
                format!("the head record: {why}"),
            );
        }
        if hd.seq > max_seq {
            return fail(
                report,
                max_seq + 1,
                None,
                ProblemKind::Truncated,
                format!(
                    "the log ends at seq {max_seq} but the signed head record says it reached seq {}: events {}..={} were deleted",
                    hd.seq,
                    max_seq + 1,
                    hd.seq
                ),
            );
        }
        if let Some((_, h)) = hashes_at.iter().find(|(s, _)| *s == hd.seq) {
            if h[..] != c.hash[..] {
                return fail(
                    report,
                    last_cp + 1,
                    None,
                    ProblemKind::CheckpointMismatch,
                    format!(
                        "the chain at seq {} differs from the signed head record: the log was rewritten",
                        hd.seq
                    ),
                );
            }
            last_signed = last_signed.max(hd.seq);
            report.head_checked = true;
        }
    }
    if range.is_none() || end_seq == max_seq {
        report.unsigned_tail = (seq - last_signed).max(0) as u64;
    }
    Ok(report)
}

/// For a redacted row, the kept leaf; `None` for an intact row; an error when the two states are
/// mixed (content left behind a redaction marker, which would hide a change from search).
fn redaction_leaf(r: &EventRef<'_>) -> Result<Option<Hash>, String> {
    match (r.redacted, r.leaf) {
        (None, None) => Ok(None),
        (Some(_), Some(l)) => {
            let blank = r.id.is_empty()
                && r.correlation_id.is_empty()
                && r.kind.is_empty()
                && r.principal.is_none()
                && r.client.is_none()
                && r.source.is_none()
                && r.session.is_none()
                && r.connector.is_none()
                && r.method.is_none()
                && r.target.is_none()
                && r.decision.is_empty()
                && r.reasons.is_empty()
                && r.findings.is_empty()
                && r.outcome.is_empty()
                && r.subject.is_none()
                && r.payload_digest.is_none();
            if !blank {
                return Err(format!(
                    "event seq {} is marked removed but still has content",
                    r.seq
                ));
            }
            <Hash>::try_from(l)
                .map(Some)
                .map_err(|_| format!("event seq {}: its kept leaf digest is not 32 bytes", r.seq))
        }
        _ => Err(format!(
            "event seq {}: its removal marker and kept digest disagree",
            r.seq
        )),
    }
}
