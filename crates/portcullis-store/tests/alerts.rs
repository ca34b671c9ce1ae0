//! The alert and incident tables on both backends (MON-2, MON-4): stored, listed newest first,
//! acknowledged once.

mod common;

use portcullis_store::Store;
use portcullis_store::alerts::{AlertRow, IncidentRow, LeakReportRow};

fn alert(id: &str, created_us: i64) -> AlertRow {
    AlertRow {
        id: id.into(),
        created_us,
        severity: "high".into(),
        kind: "auth.brute_force".into(),
        principal: None,
        client: Some("client-1".into()),
        source: Some("203.0.113.7".into()),
        connector: Some("crm".into()),
        correlation_ids: "[\"c1\",\"c2\"]".into(),
        explanation: "20 failed authentications from 203.0.113.7 in 60 s".into(),
        dedup_key: "auth.brute_force|source=203.0.113.7".into(),
        status: "open".into(),
        acked_by: None,
        acked_us: None,
    }
}

async fn exercise(store: &Store) {
    store.insert_alert(&alert("a1", 1_000)).await.unwrap();
    store.insert_alert(&alert("a2", 2_000)).await.unwrap();
    let all = store.alerts(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a2", "a1"]
    );
    assert_eq!(
        store.alert("a1").await.unwrap().unwrap(),
        alert("a1", 1_000)
    );
    // MON-2: an acknowledgement happens once.
    assert!(store.ack_alert("a1", "sec-admin", 3_000).await.unwrap());
    assert!(!store.ack_alert("a1", "other", 3_001).await.unwrap());
    assert!(!store.ack_alert("nope", "other", 3_001).await.unwrap());
    let a1 = store.alert("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.status.as_str(), a1.acked_by.as_deref()),
        ("acked", Some("sec-admin"))
    );
    assert_eq!(store.alerts(Some("open"), 10).await.unwrap().len(), 1);

    // MON-4: an incident keeps its links.
    let inc = IncidentRow {
        id: "i1".into(),
        created_us: 5_000,
        reported_by: "alice".into(),
        principal: Some("alice".into()),
        connector: Some("crm".into()),
        from_us: Some(1_000),
        to_us: Some(4_000),
        description: "a card number appeared in a summary".into(),
        correlation_ids: "[\"c1\"]".into(),
        status: "open".into(),
    };
    store.insert_incident(&inc).await.unwrap();
    assert_eq!(store.incident("i1").await.unwrap().unwrap(), inc);
    assert_eq!(store.incidents(10).await.unwrap().len(), 1);
    assert!(store.incident("zzz").await.unwrap().is_none());
    assert!(store.leak_report("i1").await.unwrap().is_none());

    // MON-4: a leak report opens its incident and keeps the text's digest and kinds, never the
    // text; both rows or neither.
    let inc2 = IncidentRow {
        id: "i2".into(),
        created_us: 6_000,
        description: "user-reported leak".into(),
        ..inc.clone()
    };
    let report = LeakReportRow {
        incident_id: "i2".into(),
        tool: Some("search_customers".into()),
        text_sha256: "ab".repeat(32),
        text_chars: 120,
        finding_kinds: "[\"pii.card\"]".into(),
        matched_by: "findings".into(),
    };
    store.insert_leak_incident(&inc2, &report).await.unwrap();
    assert_eq!(store.incident("i2").await.unwrap().unwrap(), inc2);
    assert_eq!(store.leak_report("i2").await.unwrap().unwrap(), report);
    // A second report under the same incident id fails as a whole: no orphan report row.
    let dup = LeakReportRow {
        incident_id: "i3".into(),
        ..report.clone()
    };
    let again = IncidentRow {
        id: "i2".into(),
        ..inc2.clone()
    };
    assert!(store.insert_leak_incident(&again, &dup).await.is_err());
    assert!(store.leak_report("i3").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_alerts_and_incidents() {
    common::on_sqlite(async |s: &Store| exercise(s).await).await;
}

#[tokio::test]
async fn postgres_alerts_and_incidents() {
    common::on_postgres("alerts", async |s: &Store| exercise(s).await).await;
}
