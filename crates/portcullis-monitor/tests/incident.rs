//! Users' reports of leaked text (MON-4): the text is scanned, the incident links the calls
//! whose answers could have held it, and only the text's digest and detector kinds are kept.

use portcullis_detect::{Detector, DetectorConfig};
use portcullis_monitor::incident::{
    MAX_TEXT_BYTES, ReportError, TextLeakReport, report_leaked_text,
};
use portcullis_store::audit::{AppendBatch, EventRow};
use portcullis_store::{DatabaseUrl, OpenMode, Store};
use sha2::{Digest, Sha256};

const S: i64 = 1_000_000; // a second in microseconds

/// A `tools/call` event of `principal` at `t_s` seconds with findings `(kind, direction)`.
fn call(seq: i64, t_s: i64, principal: &str, tool: &str, findings: &[(&str, &str)]) -> EventRow {
    let findings: Vec<serde_json::Value> = findings
        .iter()
        .map(|(kind, direction)| {
            serde_json::json!({"kind": kind, "category": "pii", "direction": direction, "action": "redact"})
        })
        .collect();
    EventRow {
        seq,
        id: format!("e{seq}"),
        time_ns: t_s * S * 1000,
        correlation_id: format!("c{seq}"),
        kind: "mcp_request".into(),
        principal: Some(principal.into()),
        client: Some("client-1".into()),
        source: Some("127.0.0.1".into()),
        session: None,
        connector: Some("crm".into()),
        method: Some("tools/call".into()),
        target: Some(tool.into()),
        decision: "redact".into(),
        reasons: "[]".into(),
        findings: serde_json::to_string(&findings).unwrap(),
        outcome: "{\"result\":\"ok\"}".into(),
        upstream_status: None,
        request_bytes: 100,
        response_bytes: 4_000,
        latency_us: 1_000,
        data_class: "default".into(),
        subject: None,
        payload_digest: None,
        redacted: None,
        leaf: None,
        hash: vec![seq as u8; 32],
    }
}

async fn store_with(events: Vec<EventRow>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url: DatabaseUrl = format!("sqlite://{}", dir.path().join("p.db").display())
        .parse()
        .unwrap();
    let store = Store::open(&url, OpenMode::CreateIfMissing).await.unwrap();
    store
        .append(|_| {
            Ok::<_, ()>(AppendBatch {
                events,
                ..Default::default()
            })
        })
        .await
        .unwrap()
        .unwrap();
    (dir, store)
}

fn report(text: &str) -> TextLeakReport {
    TextLeakReport {
        reported_by: "alice".into(),
        principal: "alice".into(),
        connector: Some("crm".into()),
        from_us: Some(0),
        to_us: Some(10_000 * S),
        text: text.into(),
        ..Default::default()
    }
}

const LEAKED: &str = "The assistant showed me: Jane Roe, jane.roe@example.org, VIP customer";

#[tokio::test]
async fn the_calls_whose_answers_held_the_same_kinds_are_linked() {
    let (_dir, store) = store_with(vec![
        // Alice's answer held an e-mail address: could have held the text.
        call(
            1,
            1_000,
            "alice",
            "search_customers",
            &[("pii.email", "response")],
        ),
        // Another kind only: could not.
        call(
            2,
            2_000,
            "alice",
            "get_customer",
            &[("pii.phone", "response")],
        ),
        // An e-mail address she sent, not one she was shown.
        call(
            3,
            3_000,
            "alice",
            "search_customers",
            &[("pii.email", "request")],
        ),
        // Bob's calls are not hers.
        call(
            4,
            4_000,
            "bob",
            "search_customers",
            &[("pii.email", "response")],
        ),
        // Outside the window.
        call(
            5,
            20_000,
            "alice",
            "search_customers",
            &[("pii.email", "response")],
        ),
    ])
    .await;
    let det = Detector::new(&DetectorConfig::default()).unwrap();
    let (incident, leak) = report_leaked_text(&store, &det, &report(LEAKED), "i1".into(), 9 * S)
        .await
        .unwrap();
    assert_eq!(incident.correlation_ids, "[\"c1\"]");
    assert_eq!(leak.matched_by, "findings");
    let kinds: Vec<String> = serde_json::from_str(&leak.finding_kinds).unwrap();
    assert!(kinds.contains(&"pii.email".to_string()), "{kinds:?}");
    assert_eq!(
        leak.text_sha256,
        hex::encode(Sha256::digest(LEAKED.as_bytes()))
    );
    assert_eq!(leak.text_chars, LEAKED.chars().count() as i64);
    // Stored as returned, and AU-2: the text is nowhere in what was stored.
    assert_eq!(store.incident("i1").await.unwrap().unwrap(), incident);
    assert_eq!(store.leak_report("i1").await.unwrap().unwrap(), leak);
    let stored = format!("{incident:?} {leak:?}");
    assert!(!stored.contains("jane.roe"), "{stored}");
    assert!(!stored.contains("Jane Roe"), "{stored}");
}

#[tokio::test]
async fn the_tool_narrows_the_search() {
    let (_dir, store) = store_with(vec![
        call(
            1,
            1_000,
            "alice",
            "search_customers",
            &[("pii.email", "response")],
        ),
        call(
            2,
            2_000,
            "alice",
            "get_customer",
            &[("pii.email", "response")],
        ),
    ])
    .await;
    let det = Detector::new(&DetectorConfig::default()).unwrap();
    let mut r = report(LEAKED);
    r.tool = Some("get_customer".into());
    let (incident, leak) = report_leaked_text(&store, &det, &r, "i1".into(), 9 * S)
        .await
        .unwrap();
    assert_eq!(incident.correlation_ids, "[\"c2\"]");
    assert_eq!(leak.tool.as_deref(), Some("get_customer"));
}

#[tokio::test]
async fn without_a_shared_kind_the_calls_in_the_window_are_linked_by_time() {
    let (_dir, store) = store_with(vec![
        call(1, 1_000, "alice", "search_customers", &[]),
        call(
            2,
            2_000,
            "alice",
            "get_customer",
            &[("pii.phone", "response")],
        ),
        call(3, 3_000, "bob", "get_customer", &[]),
    ])
    .await;
    let det = Detector::new(&DetectorConfig::default()).unwrap();
    // Nothing the detectors know in it (an internal plan, in plain words).
    let (incident, leak) = report_leaked_text(
        &store,
        &det,
        &report("the assistant told me about next quarter's merger plans"),
        "i1".into(),
        9 * S,
    )
    .await
    .unwrap();
    assert_eq!(leak.finding_kinds, "[]");
    assert_eq!(leak.matched_by, "time");
    assert_eq!(incident.correlation_ids, "[\"c1\",\"c2\"]");
    // A kind found in the text that no call recorded: linked by time too, and said so.
    let (incident, leak) = report_leaked_text(&store, &det, &report(LEAKED), "i2".into(), 9 * S)
        .await
        .unwrap();
    assert_eq!(leak.matched_by, "time");
    assert_eq!(incident.correlation_ids, "[\"c1\",\"c2\"]");
    assert!(
        incident
            .description
            .contains("principal, tool and time only"),
        "{}",
        incident.description
    );
}

#[tokio::test]
async fn bad_reports_say_what_to_fix() {
    let (_dir, store) = store_with(vec![]).await;
    let det = Detector::new(&DetectorConfig::default()).unwrap();
    let check = async |r: TextLeakReport, needle: &str| match report_leaked_text(
        &store,
        &det,
        &r,
        "x".into(),
        9 * S,
    )
    .await
    {
        Err(ReportError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected an invalid report, got {other:?}"),
    };
    check(report("  "), "text is empty").await;
    check(report(&"a".repeat(MAX_TEXT_BYTES + 1)), "at most").await;
    let mut r = report(LEAKED);
    r.principal = String::new();
    check(r, "principal is empty").await;
    let mut r = report(LEAKED);
    r.from_us = Some(5 * S);
    r.to_us = Some(4 * S);
    check(r, "ends before it starts").await;
    let mut r = report(LEAKED);
    r.from_us = Some(0);
    r.to_us = Some(40 * 86_400 * S);
    check(r, "31 days").await;
    let mut r = report(LEAKED);
    r.tool = Some(String::new());
    check(r, "tool").await;
    assert!(
        store.incidents(10).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[test]
fn the_text_never_shows_in_debug_output() {
    let r = report(LEAKED);
    let shown = format!("{r:?}");
    assert!(!shown.contains("jane.roe"), "{shown}");
    assert!(shown.contains("not shown"), "{shown}");
}
