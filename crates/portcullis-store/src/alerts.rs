//! The alert and incident tables (MON-2, MON-4). Alerts are written by the monitor service and
//! acknowledged by people (`portcullis alerts ack`); incidents are users' leak reports linked to
//! the audit events they concern. Evidence is kept as correlation ids (a JSON array of strings).

use crate::{Store, StoreError, dispatch};

/// One alert, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    /// Time-ordered id (UUIDv7 text).
    pub id: String,
    /// When it was raised, microseconds since the epoch.
    pub created_us: i64,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The detector id, like `auth.brute_force`.
    pub kind: String,
    /// The principal concerned.
    pub principal: Option<String>,
    /// The OAuth client concerned.
    pub client: Option<String>,
    /// The source address concerned.
    pub source: Option<String>,
    /// The connector concerned.
    pub connector: Option<String>,
    /// JSON array of the evidence events' correlation ids.
    pub correlation_ids: String,
    /// A short explanation in plain words.
    pub explanation: String,
    /// What makes two alerts the same one (deduplication, MON-2).
    pub dedup_key: String,
    /// `open` or `acked`.
    pub status: String,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When.
    pub acked_us: Option<i64>,
}

/// One incident (MON-4): a user's report of output they believe leaked.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IncidentRow {
    /// Time-ordered id (UUIDv7 text).
    pub id: String,
    /// When it was reported, microseconds since the epoch.
    pub created_us: i64,
    /// Who reported it.
    pub reported_by: String,
    /// The principal whose calls it concerns.
    pub principal: Option<String>,
    /// The connector it concerns.
    pub connector: Option<String>,
    /// Start of the time range searched for related events.
    pub from_us: Option<i64>,
    /// End of it.
    pub to_us: Option<i64>,
    /// The reporter's description (free text; the CLI and API bound its length).
    pub description: String,
    /// JSON array of the related events' correlation ids.
    pub correlation_ids: String,
    /// `open` or `closed`.
    pub status: String,
}

const ALERT_COLUMNS: &str = "id, created_us, severity, kind, principal, client, source, connector, \
     correlation_ids, explanation, dedup_key, status, acked_by, acked_us";
const INCIDENT_COLUMNS: &str = "id, created_us, reported_by, principal, connector, from_us, to_us, \
     description, correlation_ids, status";

impl Store {
    /// Stores a new alert.
    pub async fn insert_alert(&self, r: &AlertRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        dispatch!(self.db(), pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&r.id).bind(r.created_us).bind(&r.severity).bind(&r.kind).bind(&r.principal)
            .bind(&r.client).bind(&r.source).bind(&r.connector).bind(&r.correlation_ids)
            .bind(&r.explanation).bind(&r.dedup_key).bind(&r.status).bind(&r.acked_by)
            .bind(r.acked_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing an alert"))
    }

    /// One alert by id.
    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)
            .map_err(self.err("reading an alert"))
    }

    /// Alerts, newest first; only those with `status` when given.
    pub async fn alerts(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = match status {
            Some(_) => format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = $1 ORDER BY created_us DESC, id DESC LIMIT $2"
            ),
            None => format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE $1 = $1 ORDER BY created_us DESC, id DESC LIMIT $2"
            ),
        };
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(status.unwrap_or("")).bind(limit).fetch_all(pool).await)
            .map_err(self.err("listing alerts"))
    }

    /// Acknowledges an open alert; false when it does not exist or was acknowledged already.
    pub async fn ack_alert(&self, id: &str, by: &str, now_us: i64) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE alerts SET status = 'acked', acked_by = $1, acked_us = $2 WHERE id = $3 AND status = 'open'")
            .bind(by).bind(now_us).bind(id)
            .execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("acknowledging an alert"))
    }

    /// Stores a new incident.
    pub async fn insert_incident(&self, r: &IncidentRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        dispatch!(self.db(), pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&r.id).bind(r.created_us).bind(&r.reported_by).bind(&r.principal)
            .bind(&r.connector).bind(r.from_us).bind(r.to_us).bind(&r.description)
            .bind(&r.correlation_ids).bind(&r.status)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing an incident"))
    }

    /// One incident by id.
    pub async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)
            .map_err(self.err("reading an incident"))
    }

    /// Incidents, newest first.
    pub async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY created_us DESC, id DESC LIMIT $1"
        );
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(limit).fetch_all(pool).await)
            .map_err(self.err("listing incidents"))
    }
}

/// What a user's leak report said about the text (MON-4), beside the incident it opened. The
/// text itself is never stored (AU-2).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeakReportRow {
    /// The incident it opened.
    pub incident_id: String,
    /// The tool the reporter named, if any.
    pub tool: Option<String>,
    /// SHA-256 of the reported text, lower-case hex: the same text reported twice is
    /// recognisable without keeping it.
    pub text_sha256: String,
    /// Length of the text in characters.
    pub text_chars: i64,
    /// JSON array of the detector kinds found in the text, like `["pii.email"]`.
    pub finding_kinds: String,
    /// How the events were linked: `findings` (events whose recorded findings share a kind
    /// with the text), `time` (no kind found: every call in the window) or `correlation_id`.
    pub matched_by: String,
}

const LEAK_COLUMNS: &str = "incident_id, tool, text_sha256, text_chars, finding_kinds, matched_by";

impl Store {
    /// Stores a leak report's incident and its report in one transaction, so an incident is
    /// never half-recorded.
    pub async fn insert_leak_incident(
        &self,
        incident: &IncidentRow,
        report: &LeakReportRow,
    ) -> Result<(), StoreError> {
        let doing = "storing a leak report";
        let isql = format!(
            "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let lsql =
            format!("INSERT INTO leak_reports ({LEAK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
        let r = incident;
        dispatch!(self.db(), pool => {
            let mut tx = pool.begin().await.map_err(self.err(doing))?;
            sqlx::query(sqlx::AssertSqlSafe(isql.clone()))
                .bind(&r.id).bind(r.created_us).bind(&r.reported_by).bind(&r.principal)
                .bind(&r.connector).bind(r.from_us).bind(r.to_us).bind(&r.description)
                .bind(&r.correlation_ids).bind(&r.status)
                .execute(&mut *tx).await.map_err(self.err(doing))?;
            sqlx::query(sqlx::AssertSqlSafe(lsql.clone()))
                .bind(&report.incident_id).bind(&report.tool).bind(&report.text_sha256)
                .bind(report.text_chars).bind(&report.finding_kinds).bind(&report.matched_by)
                .execute(&mut *tx).await.map_err(self.err(doing))?;
            tx.commit().await.map_err(self.err(doing))
        })
    }

    /// The leak report of an incident, when it came from one.
    pub async fn leak_report(
        &self,
        incident_id: &str,
    ) -> Result<Option<LeakReportRow>, StoreError> {
        let sql = format!("SELECT {LEAK_COLUMNS} FROM leak_reports WHERE incident_id = $1");
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(incident_id).fetch_optional(pool).await)
            .map_err(self.err("reading a leak report"))
    }
}
