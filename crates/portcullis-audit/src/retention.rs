//! Retention per data class (AU-4) and erasure by data subject (AU-5). Both remove content, never
//! chain links: a removed event keeps its seq, time, class, leaf digest and chain hash, so
//! `verify` still walks the whole chain. Each run writes a receipt and appends an admin event to
//! the log itself, so the removal is on the record too.

use std::fmt::Write;
use std::sync::Arc;

use portcullis_core::{CorrelationId, Event, EventKind, EventSink};
use portcullis_store::audit::ReceiptRow;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::{AuditConfig, AuditError, AuditLog};

/// Events removed per transaction.
const RETENTION_PAGE: i64 = 5_000;

/// The retention policy as plain text, fit to publish (AU-4). Generated from the configuration
/// only, so what is published is what runs.
pub fn policy_text(cfg: &AuditConfig) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "Audit log retention policy");
    let _ = writeln!(t, "==========================");
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Every interaction through the gateway is recorded as an audit event: who called, which connector and tool, the decision and its reasons, what the detectors found (never the matched text), sizes, timing and outcome. Personal data and secrets are redacted before anything is written."
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "How long events are kept, by data class of the connector:"
    );
    let mut classes: std::collections::BTreeSet<&str> =
        cfg.retention_days.keys().map(String::as_str).collect();
    classes.extend(cfg.connector_classes.values().map(String::as_str));
    classes.insert(cfg.default_class.as_str());
    for class in classes {
        let connectors: Vec<&str> = cfg
            .connector_classes
            .iter()
            .filter(|(_, c)| c.as_str() == class)
            .map(|(k, _)| k.as_str())
            .collect();
        let who = if connectors.is_empty() {
            if class == cfg.default_class {
                "connectors without a class".to_string()
            } else {
                "no connector at present".to_string()
            }
        } else if class == cfg.default_class {
            format!("{} and connectors without a class", connectors.join(", "))
        } else {
            connectors.join(", ")
        };
        let days = match cfg.retention_for(class) {
            Some(d) => format!("{d} day{}", if d == 1 { "" } else { "s" }),
            None => "kept until deleted by an administrator (no limit set)".to_string(),
        };
        let _ = writeln!(t, "- {class} ({who}): {days}.");
    }
    let _ = writeln!(t);
    if cfg.payload_classes.is_empty() {
        let _ = writeln!(t, "Raw request and response content is not stored.");
    } else {
        let list: Vec<&str> = cfg.payload_classes.iter().map(String::as_str).collect();
        let _ = writeln!(
            t,
            "Raw request and response content, already redacted, is stored only for these data classes: {}. It is encrypted with a key per person and is kept no longer than the events it belongs to.",
            list.join(", ")
        );
    }
    if !cfg.memory_off_connectors.is_empty() {
        let list: Vec<&str> = cfg
            .memory_off_connectors
            .iter()
            .map(String::as_str)
            .collect();
        let _ = writeln!(
            t,
            "For these sensitive connectors no content is kept at all, only the metadata above: {}.",
            list.join(", ")
        );
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Expired events are removed automatically (checked every {} minutes). The fact that an event existed, its time and a cryptographic digest remain, so the log stays verifiable; the content is gone.",
        cfg.retention_interval.as_secs().div_ceil(60)
    );
    let _ = writeln!(
        t,
        "A person may ask for their data to be erased; their stored content is deleted and its encryption key destroyed, and a receipt records what was done, when and by whom."
    );
    t
}

/// What one retention run removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetentionReceipt {
    /// Receipt id.
    pub id: String,
    /// When it ran (RFC 3339).
    pub time: String,
    /// Who ran it.
    pub actor: String,
    /// Per class: (class, days, events removed).
    pub classes: Vec<(String, u32, u64)>,
    /// Events removed in all.
    pub removed: u64,
}

/// What one erasure did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// Receipt id.
    pub id: String,
    /// When (RFC 3339).
    pub time: String,
    /// Who asked.
    pub actor: String,
    /// SHA-256 of the subject id (the receipt itself keeps no personal data).
    pub subject_sha256: String,
    /// Payloads deleted.
    pub payloads_deleted: u64,
    /// Whether the subject's key existed and was destroyed.
    pub key_destroyed: bool,
    /// Events whose metadata was removed too (with `--redact-events`).
    pub events_redacted: u64,
}

fn admin_event(
    log: &AuditLog,
    actor: &str,
    method: &str,
    target: &str,
    reasons: Vec<String>,
) -> Event {
    let mut e = Event::new(
        log.clock().now(),
        CorrelationId::generate(&mut rand::rng()),
        EventKind::Admin,
    );
    e.principal = Some(actor.to_string());
    e.method = Some(method.to_string());
    e.target = Some(target.to_string());
    e.reasons = reasons;
    e
}

fn receipt_id(log: &AuditLog) -> String {
    let now = log.clock().now();
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.timestamp().max(0) as u64,
        now.timestamp_subsec_nanos(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

impl AuditLog {
    /// Removes the content of events older than their class's retention (AU-4), writes a receipt
    /// and records the run as an admin event. Waits for queued events first.
    pub async fn apply_retention(&self, actor: &str) -> Result<RetentionReceipt, AuditError> {
        self.flush().await;
        let store = self.store();
        let now = self.clock().now();
        let mut classes = Vec::new();
        let mut removed = 0;
        let mut buf = Vec::new();
        for class in store.data_classes().await? {
            let Some(days) = self.config().retention_for(&class) else {
                continue;
            };
            let cutoff = now - chrono::Duration::days(i64::from(days));
            let cutoff_ns = canonical::time_ns(&cutoff);
            let mut n = 0;
            loop {
                let rows = store
                    .expired_events(&class, cutoff_ns, RETENTION_PAGE)
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let reason = format!("retention:{class}");
                let batch: Vec<(i64, Vec<u8>, String)> = rows
                    .iter()
                    .map(|r| (r.seq, canonical::leaf(r, &mut buf).to_vec(), reason.clone()))
                    .collect();
                n += store.redact_events(&batch).await?;
            }
            classes.push((class, days, n));
            removed += n;
        }
        let receipt = RetentionReceipt {
            id: receipt_id(self),
            time: now.to_rfc3339(),
            actor: actor.to_string(),
            classes,
            removed,
        };
        store
            .insert_receipt(&ReceiptRow {
                id: receipt.id.clone(),
                kind: "retention".into(),
                time_us: now.timestamp_micros(),
                actor: actor.to_string(),
                details: serde_json::to_string(&receipt).unwrap_or_default(),
            })
            .await?;
        let reasons = receipt
            .classes
            .iter()
            .map(|(c, d, n)| format!("class={c} days={d} removed={n}"))
            .collect();
        self.record(admin_event(
            self,
            actor,
            "audit/retention",
            &receipt.id,
            reasons,
        ));
        self.flush().await;
        Ok(receipt)
    }

    /// Runs [`AuditLog::apply_retention`] every `retention_interval` until the log shuts down.
    pub fn spawn_retention(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let log = Arc::downgrade(self);
        let every = self.config().retention_interval;
        let mut closing = self.closing();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = closing.wait_for(|c| *c) => return,
                }
                let Some(log) = log.upgrade() else { return };
                if log.is_closed() {
                    return;
                }
                if let Err(e) = log.apply_retention("portcullis-retention").await {
                    tracing::error!(error = %e, "audit retention run failed; will retry at the next interval");
                }
            }
        })
    }

    /// Erasure of a data subject (AU-5): destroys the subject's payload key and deletes its
    /// payloads (and, with `redact_events`, the metadata of its events), writes a receipt and
    /// records the erasure as an admin event. The chain stays verifiable.
    pub async fn erase_subject(
        &self,
        subject: &str,
        actor: &str,
        redact_events: bool,
    ) -> Result<ErasureReceipt, AuditError> {
        if subject.trim().is_empty() {
            return Err(AuditError::Config("the subject to erase is empty".into()));
        }
        self.flush().await;
        let store = self.store();
        let now = self.clock().now();
        let id = receipt_id(self);
        let subject_sha256 = hex::encode(Sha256::digest(subject.as_bytes()));
        let mut receipt = ErasureReceipt {
            id: id.clone(),
            time: now.to_rfc3339(),
            actor: actor.to_string(),
            subject_sha256,
            payloads_deleted: 0,
            key_destroyed: false,
            events_redacted: 0,
        };
        let row = |r: &ErasureReceipt| ReceiptRow {
            id: r.id.clone(),
            kind: "erasure".into(),
            time_us: now.timestamp_micros(),
            actor: actor.to_string(),
            details: serde_json::to_string(r).unwrap_or_default(),
        };
        // Key, payloads and receipt go in one transaction; the receipt row is then rewritten
        // with the counts only known afterwards.
        let (n, key) = store.erase_subject(subject, &row(&receipt)).await?;
        receipt.payloads_deleted = n;
        receipt.key_destroyed = key;
        let mut events_redacted = 0;
        if redact_events {
            let mut buf = Vec::new();
            let seqs = store.subject_event_seqs(subject).await?;
            for chunk in seqs.chunks(RETENTION_PAGE as usize) {
                let (a, b) = (chunk[0], chunk[chunk.len() - 1]);
                let rows = store.events_by_seq(a, b, RETENTION_PAGE * 4).await?;
                let reason = format!("erasure:{id}");
                let batch: Vec<(i64, Vec<u8>, String)> = rows
                    .iter()
                    .filter(|r| r.redacted.is_none() && r.subject.as_deref() == Some(subject))
                    .map(|r| (r.seq, canonical::leaf(r, &mut buf).to_vec(), reason.clone()))
                    .collect();
                events_redacted += store.redact_events(&batch).await?;
            }
        }
        receipt.events_redacted = events_redacted;
        store.update_receipt(&row(&receipt)).await?;
        let reasons = vec![
            format!("subject_sha256={}", receipt.subject_sha256),
            format!("payloads_deleted={n}"),
            format!("key_destroyed={key}"),
            format!("events_redacted={events_redacted}"),
        ];
        self.record(admin_event(self, actor, "audit/erase", &id, reasons));
        self.flush().await;
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_follows_the_configuration() {
        let dir = std::path::Path::new("/tmp/x");
        let mut cfg = AuditConfig::embedded(dir);
        cfg.connector_classes
            .insert("crm".into(), "personal".into());
        cfg.retention_days.insert("personal".into(), 30);
        cfg.default_retention_days = Some(365);
        cfg.memory_off_connectors.insert("hr".into());
        let t = policy_text(&cfg);
        assert!(t.contains("- personal (crm): 30 days."), "{t}");
        assert!(
            t.contains("- default (connectors without a class): 365 days."),
            "{t}"
        );
        assert!(t.contains("Raw request and response content is not stored."));
        assert!(t.contains("only the metadata above: hr."));
        cfg.default_retention_days = None;
        assert!(policy_text(&cfg).contains("no limit set"));
    }
}
