//! Canonical form of an event and the hash chain (AU-3).
//!
//! An event is stored as columns; the leaf digest is SHA-256 over a fixed, length-prefixed
//! encoding of exactly those column values, in a fixed order. Hashing the columns themselves (not
//! a JSON rendering of the event) means verification needs no parsing, and a change to any column
//! that search or export reads is caught. The chain links each leaf to everything before it:
//! `hash[seq] = SHA-256("PCA-CHAIN-1" || hash[seq-1] || seq || leaf)`, starting from a genesis
//! hash bound to the log's random id.

use chrono::{DateTime, Utc};
use portcullis_core::{CorrelationId, Decision, Event, EventKind, FindingSummary, Outcome};
use portcullis_store::audit::{EventRef, EventRow};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

const LEAF_DOMAIN: &[u8] = b"PCA-LEAF-1\0";
const CHAIN_DOMAIN: &[u8] = b"PCA-CHAIN-1\0";
const GENESIS_DOMAIN: &[u8] = b"PCA-GENESIS-1\0";

/// The hash the chain starts from, bound to the log id so two logs never share a chain.
pub fn genesis(log_id: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(GENESIS_DOMAIN);
    h.update(log_id);
    h.finalize().into()
}

/// The chain hash of the event at `seq` with leaf digest `leaf`, after `prev`.
#[inline]
pub fn chain(prev: &Hash, seq: i64, leaf: &Hash) -> Hash {
    let mut buf = [0u8; 12 + 32 + 8 + 32];
    buf[..12].copy_from_slice(CHAIN_DOMAIN);
    buf[12..44].copy_from_slice(prev);
    buf[44..52].copy_from_slice(&seq.to_be_bytes());
    buf[52..].copy_from_slice(leaf);
    Sha256::digest(buf).into()
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
    buf.extend_from_slice(b);
}

fn put_opt(buf: &mut Vec<u8>, o: Option<&[u8]>) {
    match o {
        None => buf.push(0),
        Some(b) => {
            buf.push(1);
            put_bytes(buf, b);
        }
    }
}

/// The leaf digest of a row's content. `buf` is scratch space reused across calls (verification
/// hashes millions of rows).
pub fn leaf(row: &EventRow, buf: &mut Vec<u8>) -> Hash {
    leaf_of(&row.borrowed(), buf)
}

/// [`leaf`] of a borrowed row (the verify path reads rows without copying them into owned
/// strings). The same bytes, the same digest.
pub fn leaf_of(row: &EventRef<'_>, buf: &mut Vec<u8>) -> Hash {
    buf.clear();
    buf.extend_from_slice(LEAF_DOMAIN);
    put_bytes(buf, row.id);
    buf.extend_from_slice(&row.time_ns.to_be_bytes());
    put_bytes(buf, row.correlation_id);
    put_bytes(buf, row.kind);
    for o in [
        row.principal,
        row.client,
        row.source,
        row.session,
        row.connector,
        row.method,
        row.target,
    ] {
        put_opt(buf, o);
    }
    put_bytes(buf, row.decision);
    put_bytes(buf, row.reasons);
    put_bytes(buf, row.findings);
    put_bytes(buf, row.outcome);
    match row.upstream_status {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            buf.extend_from_slice(&s.to_be_bytes());
        }
    }
    buf.extend_from_slice(&row.request_bytes.to_be_bytes());
    buf.extend_from_slice(&row.response_bytes.to_be_bytes());
    buf.extend_from_slice(&row.latency_us.to_be_bytes());
    put_bytes(buf, row.data_class);
    put_opt(buf, row.subject);
    put_opt(buf, row.payload_digest);
    Sha256::digest(&buf[..]).into()
}

/// The snake-case name of an event kind, as stored.
pub fn kind_str(k: EventKind) -> &'static str {
    match k {
        EventKind::McpRequest => "mcp_request",
        EventKind::McpNotification => "mcp_notification",
        EventKind::ServerRequest => "server_request",
        EventKind::Http => "http",
        EventKind::Admin => "admin",
        EventKind::Auth => "auth",
    }
}

fn parse_kind(s: &str) -> Option<EventKind> {
    Some(match s {
        "mcp_request" => EventKind::McpRequest,
        "mcp_notification" => EventKind::McpNotification,
        "server_request" => EventKind::ServerRequest,
        "http" => EventKind::Http,
        "admin" => EventKind::Admin,
        "auth" => EventKind::Auth,
        _ => return None,
    })
}

/// The snake-case name of a decision, as stored.
pub fn decision_str(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Redact => "redact",
        Decision::Confirm => "confirm",
        Decision::Deny => "deny",
    }
}

/// Parses a decision name (`allow`, `redact`, `confirm`, `deny`).
pub fn parse_decision(s: &str) -> Option<Decision> {
    Some(match s {
        "allow" => Decision::Allow,
        "redact" => Decision::Redact,
        "confirm" => Decision::Confirm,
        "deny" => Decision::Deny,
        _ => return None,
    })
}

/// Nanoseconds since the epoch; times outside 1677-2262 (not representable) are clamped, which
/// no real clock produces.
pub fn time_ns(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The row for an event, before its seq and hash are known. Data class and subject come from the
/// caller's policy.
pub fn to_row(
    e: &Event,
    data_class: &str,
    subject: Option<String>,
    payload_digest: Option<Vec<u8>>,
) -> EventRow {
    EventRow {
        seq: 0,
        id: e.id.to_string(),
        time_ns: time_ns(&e.time),
        correlation_id: e.correlation_id.as_str().to_string(),
        kind: kind_str(e.kind).to_string(),
        principal: e.principal.clone(),
        client: e.client.clone(),
        source: e.source.clone(),
        session: e.session.clone(),
        connector: e.connector.clone(),
        method: e.method.clone(),
        target: e.target.clone(),
        decision: decision_str(e.decision).to_string(),
        reasons: serde_json::to_string(&e.reasons).unwrap_or_else(|_| "[]".into()),
        findings: serde_json::to_string(&e.findings).unwrap_or_else(|_| "[]".into()),
        outcome: serde_json::to_string(&e.outcome).unwrap_or_else(|_| "{}".into()),
        upstream_status: e.upstream_status.map(i64::from),
        // u64 stored bit for bit in a signed column; read back with `as u64`.
        request_bytes: e.request_bytes as i64,
        response_bytes: e.response_bytes as i64,
        latency_us: e.latency_us as i64,
        data_class: data_class.to_string(),
        subject,
        payload_digest,
        redacted: None,
        leaf: None,
        hash: Vec::new(),
    }
}

/// The event a row holds, or why it cannot be read back.
pub fn from_row(r: &EventRow) -> Result<Event, String> {
    let bad = |what: &str| format!("event seq {}: unreadable {what}", r.seq);
    let correlation_id: CorrelationId =
        serde_json::from_value(serde_json::Value::String(r.correlation_id.clone()))
            .map_err(|_| bad("correlation id"))?;
    let reasons: Vec<String> = serde_json::from_str(&r.reasons).map_err(|_| bad("reasons"))?;
    let findings: Vec<FindingSummary> =
        serde_json::from_str(&r.findings).map_err(|_| bad("findings"))?;
    let outcome: Outcome = serde_json::from_str(&r.outcome).map_err(|_| bad("outcome"))?;
    Ok(Event {
        id: r.id.parse().map_err(|_| bad("id"))?,
        time: DateTime::from_timestamp_nanos(r.time_ns),
        correlation_id,
        kind: parse_kind(&r.kind).ok_or_else(|| bad("kind"))?,
        principal: r.principal.clone(),
        client: r.client.clone(),
        source: r.source.clone(),
        session: r.session.clone(),
        connector: r.connector.clone(),
        method: r.method.clone(),
        target: r.target.clone(),
        decision: parse_decision(&r.decision).ok_or_else(|| bad("decision"))?,
        reasons,
        findings,
        outcome,
        upstream_status: r
            .upstream_status
            .map(|s| u16::try_from(s).map_err(|_| bad("upstream status")))
            .transpose()?,
        request_bytes: r.request_bytes as u64,
        response_bytes: r.response_bytes as u64,
        latency_us: r.latency_us as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let mut e = Event::new(
            t,
            CorrelationId::from_request_id("req-1").unwrap(),
            EventKind::McpRequest,
        );
        e.principal = Some("alice".into());
        e.connector = Some("crm".into());
        e.method = Some("tools/call".into());
        e.target = Some("search_customers".into());
        e.decision = Decision::Redact;
        e.reasons = vec!["dlp.redact".into()];
        e.findings = vec![FindingSummary {
            kind: "pii.email".into(),
            category: "pii".into(),
            direction: "response".into(),
            pointer: Some("/content/0/text".into()),
            action: "redact".into(),
            count: 1,
        }];
        e.upstream_status = Some(200);
        e.request_bytes = u64::MAX;
        e.latency_us = 1234;
        e
    }

    #[test]
    fn row_round_trips_the_event_exactly() {
        let e = sample();
        let row = to_row(&e, "pii", Some("alice".into()), None);
        assert_eq!(from_row(&row).unwrap(), e);
    }

    #[test]
    fn every_column_changes_the_leaf() {
        // AU-3: a change to any stored field must change the digest.
        let row = to_row(&sample(), "pii", Some("alice".into()), Some(vec![1; 32]));
        let mut buf = Vec::new();
        let base = leaf(&row, &mut buf);
        type Mutation = Box<dyn Fn(&mut EventRow)>;
        let muts: Vec<Mutation> = vec![
            Box::new(|r| r.id.push('0')),
            Box::new(|r| r.time_ns += 1),
            Box::new(|r| r.correlation_id.push('x')),
            Box::new(|r| r.kind = "admin".into()),
            Box::new(|r| r.principal = None),
            Box::new(|r| r.client = Some(String::new())),
            Box::new(|r| r.source = Some("x".into())),
            Box::new(|r| r.session = Some("x".into())),
            Box::new(|r| r.connector = Some("crm2".into())),
            Box::new(|r| r.method = None),
            Box::new(|r| r.target = Some("delete_customer".into())),
            Box::new(|r| r.decision = "allow".into()),
            Box::new(|r| r.reasons = "[]".into()),
            Box::new(|r| r.findings = "[]".into()),
            Box::new(|r| r.outcome = "{}".into()),
            Box::new(|r| r.upstream_status = Some(500)),
            Box::new(|r| r.request_bytes = 0),
            Box::new(|r| r.response_bytes = 1),
            Box::new(|r| r.latency_us = 0),
            Box::new(|r| r.data_class = "public".into()),
            Box::new(|r| r.subject = None),
            Box::new(|r| r.payload_digest = None),
        ];
        for (i, m) in muts.iter().enumerate() {
            let mut r = row.clone();
            m(&mut r);
            assert_ne!(
                leaf(&r, &mut buf),
                base,
                "mutation {i} not covered by the leaf"
            );
        }
    }

    #[test]
    fn length_prefixes_prevent_field_shifting() {
        // "ab"+"c" and "a"+"bc" in adjacent fields must not collide.
        let mut a = to_row(&sample(), "pii", None, None);
        let mut b = a.clone();
        a.method = Some("ab".into());
        a.target = Some("c".into());
        b.method = Some("a".into());
        b.target = Some("bc".into());
        let mut buf = Vec::new();
        assert_ne!(leaf(&a, &mut buf), leaf(&b, &mut buf));
    }

    #[test]
    fn chain_depends_on_seq_and_previous_hash() {
        let g = genesis(b"log");
        let l = [7u8; 32];
        assert_ne!(chain(&g, 1, &l), chain(&g, 2, &l));
        assert_ne!(chain(&g, 1, &l), chain(&genesis(b"other"), 1, &l));
    }
}
