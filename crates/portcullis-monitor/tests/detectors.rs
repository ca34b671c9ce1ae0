//! Each detector fires on its case and stays quiet on normal traffic, on an injected clock
//! (MON-1, MON-2, MON-3).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use portcullis_core::clock::ManualClock;
use portcullis_core::{CorrelationId, Event, EventKind, FindingSummary, Outcome};
use portcullis_monitor::settings::{ExtractionRule, RateSpikeRule};
use portcullis_monitor::{Alert, LocalCounters, Monitor, Settings};

/// Tuesday 2026-12-01 10:00 UTC: working hours.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

fn setup(s: Settings) -> (Monitor, ManualClock) {
    let clock = ManualClock::new(start());
    (
        Monitor::new(s, Arc::new(clock.clone()), Arc::new(LocalCounters::new())),
        clock,
    )
}

fn call(clock: &ManualClock, principal: &str, n: u64) -> Event {
    use portcullis_core::Clock;
    let mut e = Event::new(
        clock.now(),
        CorrelationId::from_request_id(&format!("c{n}")).unwrap(),
        EventKind::McpRequest,
    );
    e.principal = Some(principal.into());
    e.client = Some("client-1".into());
    e.source = Some("198.51.100.10".into());
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some("search_customers".into());
    e.response_bytes = 2_000;
    e
}

fn auth_fail(clock: &ManualClock, source: &str, user: Option<&str>, reason: &str, n: u64) -> Event {
    use portcullis_core::Clock;
    let mut e = Event::new(
        clock.now(),
        CorrelationId::from_request_id(&format!("a{n}")).unwrap(),
        EventKind::Auth,
    );
    e.source = Some(source.into());
    e.principal = user.map(Into::into);
    e.reasons = vec![reason.into()];
    e.outcome = Outcome::HttpError { status: 401 };
    e
}

fn kinds(a: &[Alert]) -> Vec<&str> {
    a.iter().map(|a| a.kind.as_str()).collect()
}

/// Normal traffic: a few users, a call every 20 s in working hours for two hours.
fn normal_day(m: &Monitor, clock: &ManualClock) -> Vec<Alert> {
    let mut out = Vec::new();
    for i in 0..360u64 {
        for p in ["alice", "bob", "carol"] {
            out.extend(m.observe(&call(clock, p, i)));
        }
        clock.advance(Duration::from_secs(20));
    }
    out
}

#[test]
fn normal_traffic_raises_nothing() {
    let (m, clock) = setup(Settings::default());
    let alerts = normal_day(&m, &clock);
    assert!(alerts.is_empty(), "{:?}", kinds(&alerts));
}

#[test]
fn brute_force_fires_once_per_source_and_blocks_it() {
    // MON-1 repeated failed authentication; MON-2 dedup and automatic response.
    let (m, clock) = setup(Settings::default());
    let mut alerts = Vec::new();
    for i in 0..19 {
        alerts.extend(m.observe(&auth_fail(
            &clock,
            "203.0.113.7",
            None,
            "token_bad_signature",
            i,
        )));
        clock.advance(Duration::from_secs(1));
    }
    assert!(alerts.is_empty());
    assert!(
        m.blocklist()
            .blocked(None, None, Some("203.0.113.7"))
            .is_none()
    );
    alerts.extend(m.observe(&auth_fail(&clock, "203.0.113.7", None, "token_expired", 19)));
    for i in 20..40 {
        alerts.extend(m.observe(&auth_fail(&clock, "203.0.113.7", None, "token_expired", i)));
    }
    assert_eq!(kinds(&alerts), ["auth.brute_force"]);
    let a = &alerts[0];
    assert_eq!(a.source.as_deref(), Some("203.0.113.7"));
    assert_eq!(a.correlation_ids.len(), 20);
    assert!(
        a.explanation.contains("20 failed authentications"),
        "{}",
        a.explanation
    );
    assert!(
        m.blocklist()
            .blocked(None, None, Some("203.0.113.7"))
            .is_some()
    );
    // The block expires after 15 minutes.
    clock.advance(Duration::from_secs(901));
    assert!(
        m.blocklist()
            .blocked(None, None, Some("203.0.113.7"))
            .is_none()
    );
    // Suppressed duplicates were counted.
    assert!(
        m.render_prometheus().contains(
            "portcullis_monitor_alerts_suppressed_total{detector=\"auth.brute_force\"} 20"
        )
    );
}

#[test]
fn failures_per_principal_and_unavailable_verifier() {
    let (m, clock) = setup(Settings::default());
    let mut alerts = Vec::new();
    // The verifier being down is not the caller's failure.
    for i in 0..30 {
        alerts.extend(m.observe(&auth_fail(
            &clock,
            "198.51.100.1",
            Some("alice"),
            "token_verifier_unavailable",
            i,
        )));
    }
    assert!(alerts.is_empty());
    // One user failing from many sources is caught per principal.
    for i in 0..20 {
        alerts.extend(m.observe(&auth_fail(
            &clock,
            &format!("192.0.2.{i}"),
            Some("alice"),
            "login_failed",
            100 + i,
        )));
    }
    assert_eq!(kinds(&alerts), ["auth.brute_force"]);
    assert_eq!(alerts[0].principal.as_deref(), Some("alice"));
}

#[test]
fn credential_stuffing_many_users_from_one_source() {
    let (m, clock) = setup(Settings::default());
    let mut alerts = Vec::new();
    for i in 0..10 {
        alerts.extend(m.observe(&auth_fail(
            &clock,
            "203.0.113.9",
            Some(&format!("user{i}")),
            "login_failed",
            i,
        )));
        clock.advance(Duration::from_secs(5));
    }
    assert_eq!(kinds(&alerts), ["auth.credential_stuffing"]);
}

#[test]
fn repeated_errors() {
    let (m, clock) = setup(Settings::default());
    let mut alerts = Vec::new();
    for i in 0..29 {
        let mut e = call(&clock, "alice", i);
        e.outcome = Outcome::Error {
            code: -32603,
            origin: "upstream".into(),
        };
        alerts.extend(m.observe(&e));
        clock.advance(Duration::from_secs(2));
    }
    assert!(alerts.is_empty());
    let mut e = call(&clock, "alice", 99);
    e.outcome = Outcome::Ok { tool_error: true };
    alerts.extend(m.observe(&e));
    assert_eq!(kinds(&alerts), ["errors.repeated"]);
}

#[test]
fn rate_spike_against_baseline_after_warm_up() {
    let s = Settings {
        rate_spike: Some(RateSpikeRule {
            bucket: Duration::from_secs(60),
            alpha: 0.1,
            warmup_buckets: 10,
            factor: 8.0,
            min_calls: 40,
        }),
        ..Settings::default()
    };
    let (m, clock) = setup(s);
    // During warm-up, a burst is not judged.
    let mut alerts = Vec::new();
    for i in 0..45 {
        alerts.extend(m.observe(&call(&clock, "alice", i)));
    }
    clock.advance(Duration::from_secs(60));
    assert!(alerts.is_empty());
    // Baseline: 3 calls a minute for 20 minutes.
    for i in 0..60 {
        alerts.extend(m.observe(&call(&clock, "alice", 1000 + i)));
        clock.advance(Duration::from_secs(20));
    }
    assert!(alerts.is_empty(), "{:?}", kinds(&alerts));
    // Then 60 calls in one minute.
    for i in 0..60 {
        alerts.extend(m.observe(&call(&clock, "alice", 2000 + i)));
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(kinds(&alerts), ["rate.spike"]);
}

#[test]
fn extraction_by_bytes_records_and_day() {
    let s = Settings {
        extraction: Some(ExtractionRule {
            window: Duration::from_secs(600),
            max_bytes: 1_000_000,
            max_records: 100,
            daily_max_bytes: 3_000_000,
            baseline_factor: 10.0,
            baseline_min_bytes: 500_000,
            warmup_windows: 1000,
        }),
        ..Settings::default()
    };
    let (m, clock) = setup(s);
    let mut e = call(&clock, "alice", 1);
    e.response_bytes = 1_000_001;
    assert_eq!(kinds(&m.observe(&e)), ["extraction.bytes"]);

    let mut e = call(&clock, "bob", 2);
    e.reasons = vec!["records=101".into()];
    assert_eq!(kinds(&m.observe(&e)), ["extraction.records"]);

    // Slow exfiltration: 900 kB per window, under the window cap, over the daily one.
    let mut alerts = Vec::new();
    for i in 0..4 {
        let mut e = call(&clock, "carol", 10 + i);
        e.response_bytes = 900_000;
        alerts.extend(m.observe(&e));
        clock.advance(Duration::from_secs(700));
    }
    assert_eq!(kinds(&alerts), ["extraction.daily"]);
}

fn finding(category: &str, kind: &str, direction: &str, action: &str) -> FindingSummary {
    FindingSummary {
        kind: kind.into(),
        category: category.into(),
        direction: direction.into(),
        pointer: None,
        action: action.into(),
    }
}

#[test]
fn injection_and_leak_findings() {
    let (m, clock) = setup(Settings::default());
    let mut e = call(&clock, "alice", 1);
    e.findings = vec![finding(
        "injection",
        "injection.instruction",
        "request",
        "block",
    )];
    assert_eq!(kinds(&m.observe(&e)), ["detect.injection"]);
    let mut e = call(&clock, "alice", 2);
    e.findings = vec![finding(
        "secret",
        "secret.aws_access_key",
        "response",
        "redact",
    )];
    assert_eq!(kinds(&m.observe(&e)), ["detect.leak"]);
    // Redacted personal data in a result is the system working, not a leak.
    let mut e = call(&clock, "bob", 3);
    e.findings = vec![finding("pii", "pii.email", "response", "redact")];
    assert!(m.observe(&e).is_empty());
}

#[test]
fn first_use_of_a_sensitive_tool() {
    let (m, clock) = setup(Settings::default());
    let mut e = call(&clock, "alice", 1);
    e.target = Some("export_customers".into());
    assert_eq!(kinds(&m.observe(&e)), ["tool.first_use"]);
    clock.advance(Duration::from_secs(3600 * 2));
    assert!(m.observe(&e).is_empty(), "only the first use");
}

#[test]
fn off_hours_in_the_principals_time_zone() {
    let mut s = Settings::default();
    // Alice is in UTC-8: 10:00 UTC is 02:00 for her.
    if let Some(o) = s.off_hours.as_mut() {
        o.offsets.insert("alice".into(), -480);
    }
    let (m, clock) = setup(s);
    assert_eq!(
        kinds(&m.observe(&call(&clock, "alice", 1))),
        ["access.off_hours"]
    );
    assert!(m.observe(&call(&clock, "bob", 2)).is_empty());
    // The next day at the same hour is her habit now: reported once, not every day.
    clock.advance(Duration::from_secs(86_400));
    assert!(m.observe(&call(&clock, "alice", 4)).is_empty());
    clock.advance(Duration::from_secs(3 * 86_400));
    // Saturday is off for everyone.
    assert_eq!(
        kinds(&m.observe(&call(&clock, "bob", 3))),
        ["access.off_hours"]
    );
}

#[test]
fn token_from_a_new_network() {
    let (m, clock) = setup(Settings::default());
    assert!(m.observe(&call(&clock, "alice", 1)).is_empty());
    let mut e = call(&clock, "alice", 2);
    e.source = Some("198.51.100.77".into()); // same /24
    assert!(m.observe(&e).is_empty());
    e.source = Some("203.0.113.5:4433".into());
    assert_eq!(kinds(&m.observe(&e)), ["token.new_network"]);
}

#[test]
fn unapproved_domain_and_drift_reasons() {
    let (m, clock) = setup(Settings::default());
    let mut e = call(&clock, "alice", 1);
    e.target = Some("fetch_url".into());
    e.reasons = vec!["egress_unapproved:evil.example".into()];
    let a = m.observe(&e);
    assert_eq!(kinds(&a), ["egress.unapproved_domain"]);
    assert!(a[0].explanation.contains("evil.example"));
    let mut e = call(&clock, "bob", 2);
    e.reasons = vec!["tool_definition_drift".into()];
    assert_eq!(kinds(&m.observe(&e)), ["tool.drift"]);
}

#[test]
fn throttle_window_lets_a_repeat_through_after_it() {
    let (m, clock) = setup(Settings::default());
    let mut e = call(&clock, "alice", 1);
    e.findings = vec![finding(
        "injection",
        "injection.instruction",
        "request",
        "block",
    )];
    assert_eq!(m.observe(&e).len(), 1);
    clock.advance(Duration::from_secs(899));
    assert!(m.observe(&e).is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(m.observe(&e).len(), 1);
}

#[test]
fn detector_state_is_bounded() {
    let s = Settings {
        max_keys: 64,
        ..Settings::default()
    };
    let (m, clock) = setup(s);
    for i in 0..5_000u64 {
        m.observe(&call(&clock, &format!("user{i}"), i));
    }
    let text = m.render_prometheus();
    let line = text
        .lines()
        .find(|l| l.starts_with("portcullis_monitor_tracked_keys "))
        .unwrap();
    let n: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n <= 64 * 7, "{n}");
}
