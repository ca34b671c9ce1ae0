//! Users' leak reports (MON-4): a report becomes an incident linked to the audit events that
//! match it (by correlation id, or by principal, connector and time range).
//!
//! [`report_leaked_text`] takes the text the user believes leaked: it is scanned with the
//! detection engine, and the events linked are the principal's calls in the window (for the
//! connector and tool when named) whose recorded response findings share a kind with the text:
//! those whose answer could have held it. The text itself is never stored (AU-2): the incident
//! keeps its SHA-256, its length and the kinds found in it.

use std::collections::BTreeSet;

use portcullis_store::Store;
use portcullis_store::alerts::{IncidentRow, LeakReportRow};
use portcullis_store::audit::{EventQuery, EventRow};
use sha2::{Digest, Sha256};

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 4_000;
/// Most events linked to one incident.
pub const MAX_LINKED: i64 = 500;

/// A user's report of output they believe leaked.
#[derive(Debug, Clone, Default)]
pub struct LeakReport {
    /// Who reports it.
    pub reported_by: String,
    /// The principal whose calls it concerns.
    pub principal: Option<String>,
    /// The connector.
    pub connector: Option<String>,
    /// Correlation ids the reporter knows (returned to the client on every call, AU-1).
    pub correlation_ids: Vec<String>,
    /// Time range to search, microseconds since the epoch.
    pub from_us: Option<i64>,
    /// End of it.
    pub to_us: Option<i64>,
    /// What they saw, in their words.
    pub description: String,
}

/// Errors of a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report is not usable.
    #[error("invalid leak report: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] portcullis_store::StoreError),
}

/// Records the report as an incident linked to the matching events; returns it.
pub async fn report_leak(
    store: &Store,
    r: &LeakReport,
    id: String,
    now_us: i64,
) -> Result<IncidentRow, ReportError> {
    if r.reported_by.trim().is_empty() {
        return Err(ReportError::Invalid(
            "reported_by is empty; say who reports it".into(),
        ));
    }
    if r.description.trim().is_empty() || r.description.chars().count() > MAX_DESCRIPTION {
        return Err(ReportError::Invalid(format!(
            "the description must be 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    if r.correlation_ids.is_empty() && r.principal.is_none() && r.connector.is_none() {
        return Err(ReportError::Invalid(
            "give a correlation id, a principal or a connector to link the events".into(),
        ));
    }
    if let (Some(a), Some(b)) = (r.from_us, r.to_us)
        && a > b
    {
        return Err(ReportError::Invalid(
            "the time range ends before it starts".into(),
        ));
    }
    let mut linked: Vec<String> = Vec::new();
    let base = EventQuery {
        from_ns: r.from_us.map(|v| v.saturating_mul(1000)),
        to_ns: r.to_us.map(|v| v.saturating_mul(1000)),
        principal: r.principal.clone(),
        connector: r.connector.clone(),
        limit: Some(MAX_LINKED),
        ..Default::default()
    };
    if r.correlation_ids.is_empty() {
        for e in store.search_events(&base).await? {
            linked.push(e.correlation_id);
        }
    } else {
        for c in &r.correlation_ids {
            let q = EventQuery {
                correlation_id: Some(c.clone()),
                ..base.clone()
            };
            for e in store.search_events(&q).await? {
                linked.push(e.correlation_id);
            }
        }
    }
    linked.dedup();
    let row = IncidentRow {
        id,
        created_us: now_us,
        reported_by: r.reported_by.clone(),
        principal: r.principal.clone(),
        connector: r.connector.clone(),
        from_us: r.from_us,
        to_us: r.to_us,
        description: r.description.clone(),
        correlation_ids: serde_json::to_string(&linked).unwrap_or_else(|_| "[]".into()),
        status: "open".into(),
    };
    store.insert_incident(&row).await?;
    Ok(row)
}

/// A new time-ordered incident id (UUIDv7) for `now`.
pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.timestamp().max(0) as u64,
        now.timestamp_subsec_nanos(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// Longest reported text accepted, in bytes (1 MiB): a tool answer pasted whole fits.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// The window searched when the report names none: the last seven days.
pub const DEFAULT_WINDOW_US: i64 = 7 * 86_400 * 1_000_000;
/// Longest window searched: 31 days.
pub const MAX_WINDOW_US: i64 = 31 * 86_400 * 1_000_000;

/// A user's report of text they believe leaked through a tool's answer.
#[derive(Clone, Default)]
pub struct TextLeakReport {
    /// Who reports it (over HTTP: the subject of their token).
    pub reported_by: String,
    /// The principal whose calls it concerns (over HTTP: the reporter themselves).
    pub principal: String,
    /// The connector, when the reporter knows it.
    pub connector: Option<String>,
    /// The tool, when the reporter knows it.
    pub tool: Option<String>,
    /// Start of the window to search, microseconds since the epoch (default: `to` less seven
    /// days).
    pub from_us: Option<i64>,
    /// End of it (default: now).
    pub to_us: Option<i64>,
    /// The text. Scanned, hashed and dropped: never stored or logged.
    pub text: String,
}

impl std::fmt::Debug for TextLeakReport {
    // The text may be the very personal data or secret that leaked: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLeakReport")
            .field("reported_by", &self.reported_by)
            .field("principal", &self.principal)
            .field("connector", &self.connector)
            .field("tool", &self.tool)
            .field("from_us", &self.from_us)
            .field("to_us", &self.to_us)
            .field(
                "text",
                &format_args!("<{} bytes, not shown>", self.text.len()),
            )
            .finish()
    }
}

/// The recorded findings of an event (a JSON array of `FindingSummary`), as (kind, direction).
fn finding_kinds(row: &EventRow) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<portcullis_core::FindingSummary>>(&row.findings)
        .map(|v| v.into_iter().map(|f| (f.kind, f.direction)).collect())
        .unwrap_or_default()
}

/// Records a report of leaked text as an incident linked to the events whose answers could
/// have held it; returns the incident and the report as stored.
///
/// Linking: the principal's `tools/call` events in the window (and for the connector and tool
/// when named) whose response findings share a kind with those found in the text
/// (`matched_by: findings`). When the text holds nothing the detectors know, or no event
/// recorded such a finding (inspection was off for that connector, or it missed what the
/// user saw), every call of theirs in the window is linked instead (`matched_by: time`), so
/// the investigator starts from the right calls either way.
pub async fn report_leaked_text(
    store: &Store,
    detector: &portcullis_detect::Detector,
    r: &TextLeakReport,
    id: String,
    now_us: i64,
) -> Result<(IncidentRow, LeakReportRow), ReportError> {
    let invalid = |m: String| Err(ReportError::Invalid(m));
    if r.reported_by.trim().is_empty() {
        return invalid("reported_by is empty; say who reports it".into());
    }
    if r.principal.trim().is_empty() {
        return invalid("the principal is empty; name whose calls the text came from".into());
    }
    if r.text.trim().is_empty() {
        return invalid("the reported text is empty; give the text you believe leaked".into());
    }
    if r.text.len() > MAX_TEXT_BYTES {
        return invalid(format!(
            "the reported text is {} bytes; at most {MAX_TEXT_BYTES} are accepted: keep the part that leaked",
            r.text.len()
        ));
    }
    for (name, v) in [("connector", &r.connector), ("tool", &r.tool)] {
        if v.as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.len() > 200)
        {
            return invalid(format!("the {name} must be 1 to 200 characters when given"));
        }
    }
    let to_us = r.to_us.unwrap_or(now_us);
    let from_us = r.from_us.unwrap_or(to_us.saturating_sub(DEFAULT_WINDOW_US));
    if from_us > to_us {
        return invalid("the time range ends before it starts".into());
    }
    if to_us - from_us > MAX_WINDOW_US {
        return invalid(
            "the time range spans more than 31 days; narrow it to when the text was seen".into(),
        );
    }
    let kinds: BTreeSet<String> = detector
        .scan_text(&r.text)
        .into_iter()
        .map(|f| f.kind)
        .collect();
    let base = EventQuery {
        from_ns: Some(from_us.saturating_mul(1000)),
        to_ns: Some(to_us.saturating_mul(1000)),
        principal: Some(r.principal.clone()),
        connector: r.connector.clone(),
        target: r.tool.clone(),
        limit: Some(MAX_LINKED),
        ..Default::default()
    };
    let is_call =
        |e: &EventRow| e.kind == "mcp_request" && e.method.as_deref() == Some("tools/call");
    // seq -> correlation id, in chain order.
    let mut linked = std::collections::BTreeMap::new();
    for kind in &kinds {
        let q = EventQuery {
            finding_kind: Some(kind.clone()),
            ..base.clone()
        };
        for e in store.search_events(&q).await? {
            // Only what the answer held: a finding in the arguments is what the user sent.
            let held = finding_kinds(&e)
                .iter()
                .any(|(k, d)| k == kind && d == "response");
            if is_call(&e) && held {
                linked.insert(e.seq, e.correlation_id);
            }
        }
    }
    let matched_by = if linked.is_empty() {
        for e in store.search_events(&base).await? {
            if is_call(&e) {
                linked.insert(e.seq, e.correlation_id);
            }
        }
        "time"
    } else {
        "findings"
    };
    let linked: Vec<String> = linked.into_values().take(MAX_LINKED as usize).collect();
    let kinds: Vec<String> = kinds.into_iter().collect();
    let chars = r.text.chars().count();
    let description = format!(
        "{} reported {chars} characters of output they believe leaked (text not stored); detector kinds found in it: {}; {} event(s) linked by {}",
        r.reported_by,
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        linked.len(),
        if matched_by == "findings" {
            "shared finding kinds"
        } else {
            "principal, tool and time only"
        }
    );
    let incident = IncidentRow {
        id: id.clone(),
        created_us: now_us,
        reported_by: r.reported_by.clone(),
        principal: Some(r.principal.clone()),
        connector: r.connector.clone(),
        from_us: Some(from_us),
        to_us: Some(to_us),
        description,
        correlation_ids: serde_json::to_string(&linked).unwrap_or_else(|_| "[]".into()),
        status: "open".into(),
    };
    let report = LeakReportRow {
        incident_id: id,
        tool: r.tool.clone(),
        text_sha256: hex::encode(Sha256::digest(r.text.as_bytes())),
        text_chars: chars as i64,
        finding_kinds: serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
        matched_by: matched_by.into(),
    };
    store.insert_leak_incident(&incident, &report).await?;
    Ok((incident, report))
}
