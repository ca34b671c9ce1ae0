//! The approval queue's table (HC-2, HC-3): calls waiting for a person's decision. What a
//! decision means (binding to the call, expiry, single use) is enforced here in the SQL itself,
//! so that two replicas, or the CLI and a replica, can never both use or decide one entry.

use crate::{Store, StoreError, dispatch};

/// One parked call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApprovalRow {
    /// Random id, shown to approvers.
    pub id: String,
    /// When the call was parked, microseconds since the epoch.
    pub created_us: i64,
    /// When it is denied if nobody decides.
    pub expires_us: i64,
    /// Who made the call (subject).
    pub principal: String,
    /// Through which OAuth client.
    pub client: String,
    /// The connector.
    pub connector: String,
    /// The tool.
    pub tool: String,
    /// SHA-256 (hex) of the exact call: connector, tool and canonical arguments (HC-3).
    pub call_hash: String,
    /// What the approver is shown: the tool and its arguments in plain words, redacted.
    pub summary: String,
    /// The call's correlation id, to find it in the audit log.
    pub correlation_id: String,
    /// `pending`, `approved`, `denied` or `expired`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_us: Option<i64>,
    /// Why (optional, from the approver).
    pub reason: Option<String>,
    /// When an approval was used by the call it approves; a second use is refused.
    pub used_us: Option<i64>,
}

const COLUMNS: &str = "id, created_us, expires_us, principal, client, connector, tool, call_hash, summary, \
     correlation_id, status, decided_by, decided_us, reason, used_us";

impl Store {
    /// Parks a call.
    pub async fn insert_approval(&self, r: &ApprovalRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        dispatch!(self.db(), pool => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&r.id).bind(r.created_us).bind(r.expires_us).bind(&r.principal).bind(&r.client)
            .bind(&r.connector).bind(&r.tool).bind(&r.call_hash).bind(&r.summary)
            .bind(&r.correlation_id).bind(&r.status).bind(&r.decided_by).bind(r.decided_us)
            .bind(&r.reason).bind(r.used_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("parking a call for approval"))
    }

    /// One entry by id.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)
            .map_err(self.err("reading an approval"))
    }

    /// Entries, newest first; only those with `status` when given.
    pub async fn approvals(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let sql = match status {
            Some(_) => format!(
                "SELECT {COLUMNS} FROM approvals WHERE status = $1 ORDER BY created_us DESC, id LIMIT $2"
            ),
            None => format!(
                "SELECT {COLUMNS} FROM approvals WHERE $1 = $1 ORDER BY created_us DESC, id LIMIT $2"
            ),
        };
        dispatch!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(status.unwrap_or("")).bind(limit).fetch_all(pool).await)
            .map_err(self.err("listing approvals"))
    }

    /// Decides a pending, unexpired entry: `approved` or `denied`. False when it was not pending
    /// any more (decided by someone else, or expired): nothing changes then.
    pub async fn decide_approval(
        &self,
        id: &str,
        status: &str,
        by: &str,
        reason: Option<&str>,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE approvals SET status = $1, decided_by = $2, decided_us = $3, reason = $4 \
             WHERE id = $5 AND status = 'pending' AND expires_us > $3")
            .bind(status).bind(by).bind(now_us).bind(reason).bind(id)
            .execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("deciding an approval"))
    }

    /// Marks pending entries past their expiry as `expired`; returns how many.
    pub async fn expire_approvals(&self, now_us: i64) -> Result<u64, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE approvals SET status = 'expired', decided_us = $1 WHERE status = 'pending' AND expires_us <= $1")
            .bind(now_us).execute(pool).await.map(|r| r.rows_affected()))
        .map_err(self.err("expiring approvals"))
    }

    /// Uses an approval for the call it is bound to: true once, for an approved entry whose
    /// `call_hash` matches; false for any other state or a second use (HC-3).
    pub async fn use_approval(
        &self,
        id: &str,
        call_hash: &str,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE approvals SET used_us = $1 WHERE id = $2 AND call_hash = $3 AND status = 'approved' AND used_us IS NULL")
            .bind(now_us).bind(id).bind(call_hash)
            .execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("using an approval"))
    }
}
