//! The alert a detector raises (MON-2): who, what, which connector, the evidence events and a
//! short explanation. Never raw payloads or personal data beyond the identifiers already in the
//! audit event (AU-2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Look when convenient.
    Low,
    /// Look today.
    Medium,
    /// Look now.
    High,
    /// An attack in progress.
    Critical,
}

impl Severity {
    /// The lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// Most evidence correlation ids kept on one alert; the rest are in the audit log by key.
pub const MAX_EVIDENCE: usize = 20;

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Time-ordered id (UUIDv7).
    pub id: uuid::Uuid,
    /// When it was raised (the injected clock's time).
    pub time: DateTime<Utc>,
    /// Urgency.
    pub severity: Severity,
    /// The detector id, like `auth.brute_force` (see `detectors`).
    pub kind: String,
    /// The principal concerned.
    pub principal: Option<String>,
    /// The OAuth client concerned.
    pub client: Option<String>,
    /// The source address concerned.
    pub source: Option<String>,
    /// The connector concerned.
    pub connector: Option<String>,
    /// Correlation ids of the evidence events (at most [`MAX_EVIDENCE`], newest last).
    pub correlation_ids: Vec<String>,
    /// A short explanation in plain words.
    pub explanation: String,
    /// Alerts with the same key within the throttle window are one alert (MON-2).
    pub dedup_key: String,
}

impl Alert {
    /// The alert as a store row (status `open`).
    pub fn to_row(&self) -> portcullis_store::alerts::AlertRow {
        portcullis_store::alerts::AlertRow {
            id: self.id.to_string(),
            created_us: self.time.timestamp_micros(),
            severity: self.severity.as_str().into(),
            kind: self.kind.clone(),
            principal: self.principal.clone(),
            client: self.client.clone(),
            source: self.source.clone(),
            connector: self.connector.clone(),
            correlation_ids: serde_json::to_string(&self.correlation_ids)
                .unwrap_or_else(|_| "[]".into()),
            explanation: self.explanation.clone(),
            dedup_key: self.dedup_key.clone(),
            status: "open".into(),
            acked_by: None,
            acked_us: None,
        }
    }
}
