//! Shared helpers for the audit log tests: a deterministic clock, event factory and a throwaway
//! PostgreSQL database.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis_audit::AuditConfig;
use portcullis_core::clock::ManualClock;
use portcullis_core::{CorrelationId, Decision, Event, EventKind, FindingSummary};

/// The PostgreSQL server the tests use (trust auth).
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

pub fn clock() -> (ManualClock, Arc<dyn portcullis_core::Clock>) {
    let c = ManualClock::new(t0());
    (c.clone(), Arc::new(c))
}

/// Event number `i`: principal, connector and decision vary so filters have something to pick.
pub fn event(i: u64) -> Event {
    let t = t0() + chrono::Duration::milliseconds(i as i64);
    let mut e = Event::new(
        t,
        CorrelationId::from_request_id(&format!("req-{i}")).unwrap(),
        EventKind::McpRequest,
    );
    e.principal = Some(if i.is_multiple_of(2) {
        "alice".into()
    } else {
        "bob".into()
    });
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some(if i.is_multiple_of(3) {
        "delete_customer".into()
    } else {
        "search_customers".into()
    });
    e.decision = if i.is_multiple_of(5) {
        Decision::Deny
    } else {
        Decision::Allow
    };
    if i.is_multiple_of(4) {
        e.findings.push(FindingSummary {
            kind: "pii.email".into(),
            category: "pii".into(),
            direction: "response".into(),
            pointer: Some("/content/0/text".into()),
            action: "redact".into(),
            count: 1,
        });
        e.decision = Decision::Redact;
    }
    e.request_bytes = 100 + i;
    e.response_bytes = 1000 + i;
    e.latency_us = 10 * i;
    e
}

/// A uniquely named PostgreSQL database, dropped by [`PgDb::drop_db`]. Panics with a clear
/// message when the server is unreachable: these tests must not pass without it.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> Self {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test but {PG_ADMIN_URL} is unreachable ({e}); start the server (trust auth, user postgres, database test)"
            )
        });
        let name = format!("portcullis_audit_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self { name, url }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// An audit config on PostgreSQL with the key and head record in `dir`.
pub fn pg_config(url: &str, dir: &std::path::Path) -> AuditConfig {
    let mut cfg = AuditConfig::embedded(dir);
    cfg.database = url.to_string();
    cfg
}
