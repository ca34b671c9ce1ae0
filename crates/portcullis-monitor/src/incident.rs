//! Users' leak reports (MON-4): a report becomes an incident linked to the audit events that
//! match it (by correlation id, or by principal, connector and time range).

use portcullis_store::Store;
use portcullis_store::alerts::IncidentRow;
use portcullis_store::audit::EventQuery;

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
