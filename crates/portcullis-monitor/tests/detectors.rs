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
        count: 1,
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

const MIN: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

fn from(clock: &ManualClock, principal: &str, n: u64, source: &str) -> Event {
    let mut e = call(clock, principal, n);
    e.source = Some(source.into());
    e
}

#[test]
fn off_hours_needs_a_session_during_the_learning_period() {
    // MON-1. Alice is in UTC-8: 10:00 UTC is 02:00 for her, and it is her first day.
    let mut s = Settings::default();
    if let Some(o) = s.off_hours.as_mut() {
        o.offsets.insert("alice".into(), -480);
    }
    let (m, clock) = setup(s);
    // One or two calls at night from someone we do not know yet: not a session.
    assert!(m.observe(&call(&clock, "alice", 1)).is_empty());
    clock.advance(10 * MIN);
    assert!(m.observe(&call(&clock, "alice", 2)).is_empty());
    clock.advance(10 * MIN);
    // The third within 30 minutes is.
    let a = m.observe(&call(&clock, "alice", 3));
    assert_eq!(kinds(&a), ["access.off_hours"]);
    assert_eq!(a[0].correlation_ids.len(), 3, "the session is the evidence");
    assert!(a[0].explanation.contains("3 calls"), "{}", a[0].explanation);
    // Once per local day.
    clock.advance(MIN);
    assert!(m.observe(&call(&clock, "alice", 4)).is_empty());
    // Bob is in UTC: 10:20 is working hours.
    assert!(m.observe(&call(&clock, "bob", 5)).is_empty());
}

#[test]
fn off_hours_calls_spread_over_the_night_are_not_a_session() {
    let mut s = Settings::default();
    if let Some(o) = s.off_hours.as_mut() {
        o.offsets.insert("alice".into(), -480);
    }
    let (m, clock) = setup(s);
    for n in 0..4 {
        assert!(m.observe(&call(&clock, "alice", n)).is_empty(), "call {n}");
        clock.advance(40 * MIN);
    }
}

#[test]
fn off_hours_after_the_learning_period_one_call_is_enough() {
    // Bob (UTC) works 13:00-20:59 on Wednesday and Thursday: two earlier days by Friday.
    let (m, clock) = setup(Settings::default());
    clock.advance(27 * 60 * MIN); // Wednesday 13:00
    let mut n = 0;
    for _day in 0..2 {
        for _hour in 0..8 {
            n += 1;
            assert!(m.observe(&call(&clock, "bob", n)).is_empty());
            clock.advance(60 * MIN);
        }
        clock.advance(16 * 60 * MIN);
    }
    // Friday 21:30, right after his usual hours (working hours end at 21:00): a long day,
    // excused.
    clock.advance(8 * 60 * MIN + 30 * MIN);
    assert!(m.observe(&call(&clock, "bob", 100)).is_empty());
    // But one call at 23:30 is not like him at all.
    clock.advance(2 * 60 * MIN);
    let a = m.observe(&call(&clock, "bob", 101));
    assert_eq!(kinds(&a), ["access.off_hours"]);
    assert!(
        a[0].explanation.contains("2 earlier days"),
        "{}",
        a[0].explanation
    );
    // Saturday is off for everyone, whatever the hour, once the history is there.
    clock.advance(11 * 60 * MIN); // Saturday 10:30
    assert_eq!(
        kinds(&m.observe(&call(&clock, "bob", 102))),
        ["access.off_hours"]
    );
}

#[test]
fn off_hours_worked_before_become_a_habit() {
    let mut s = Settings::default();
    if let Some(o) = s.off_hours.as_mut() {
        o.offsets.insert("alice".into(), -480);
        o.min_calls = 1;
    }
    let (m, clock) = setup(s);
    assert_eq!(
        kinds(&m.observe(&call(&clock, "alice", 1))),
        ["access.off_hours"]
    );
    // The next day at the same hour is her habit now: reported once, not every day.
    clock.advance(DAY);
    assert!(m.observe(&call(&clock, "alice", 2)).is_empty());
}

#[test]
fn a_new_network_is_learned_first_and_news_after() {
    // MON-1: Tuesday, Alice's first day: every network is new, none is news.
    let (m, clock) = setup(Settings::default());
    assert!(
        m.observe(&from(&clock, "alice", 1, "198.51.100.10"))
            .is_empty()
    );
    assert!(
        m.observe(&from(&clock, "alice", 2, "203.0.113.5"))
            .is_empty()
    );
    clock.advance(DAY);
    // One earlier day is not a history yet.
    assert!(m.observe(&from(&clock, "alice", 3, "192.0.2.1")).is_empty());
    clock.advance(DAY);
    // Thursday: a network seen on Tuesday (same /24) is known; one never seen is news.
    assert!(
        m.observe(&from(&clock, "alice", 4, "203.0.113.99"))
            .is_empty()
    );
    let a = m.observe(&from(&clock, "alice", 5, "203.0.114.5:4433"));
    assert_eq!(kinds(&a), ["token.new_network"]);
    assert!(
        a[0].explanation.contains("203.0.114.0/24"),
        "{}",
        a[0].explanation
    );
    // IPv6 networks are compared at /48.
    assert!(
        m.observe(&from(&clock, "alice", 6, "2001:db8:1:2::1"))
            .len()
            == 1
    );
    assert!(
        m.observe(&from(&clock, "alice", 7, "2001:db8:1:ff::1"))
            .is_empty()
    );
}

#[test]
fn trusted_networks_are_never_new() {
    let mut s = Settings::default();
    if let Some(n) = s.new_network.as_mut() {
        n.trusted = vec!["10.0.0.0/8".parse().unwrap()];
    }
    let (m, clock) = setup(s);
    for d in 0..3 {
        assert!(
            m.observe(&from(&clock, "alice", d, "198.51.100.10"))
                .is_empty()
        );
        clock.advance(DAY);
    }
    // The VPN hands out addresses anywhere in 10/8: never news.
    assert!(
        m.observe(&from(&clock, "alice", 10, "10.200.1.1"))
            .is_empty()
    );
    assert!(m.observe(&from(&clock, "alice", 11, "10.7.9.1")).is_empty());
    assert_eq!(
        kinds(&m.observe(&from(&clock, "alice", 12, "192.0.2.1"))),
        ["token.new_network"]
    );
}

#[test]
fn one_token_going_back_and_forth_between_two_networks_is_in_two_places() {
    // MON-1: no history needed. Alice works from A; her token (client-1) is also used from B.
    let (m, clock) = setup(Settings::default());
    let (a, b) = ("198.51.100.10", "203.0.113.7");
    assert!(m.observe(&from(&clock, "alice", 1, a)).is_empty());
    clock.advance(MIN);
    assert!(m.observe(&from(&clock, "alice", 2, b)).is_empty());
    clock.advance(10 * MIN);
    assert!(m.observe(&from(&clock, "alice", 3, a)).is_empty());
    clock.advance(MIN);
    let alerts = m.observe(&from(&clock, "alice", 4, b));
    assert_eq!(kinds(&alerts), ["token.concurrent_networks"]);
    assert_eq!(alerts[0].correlation_ids, ["c1", "c2", "c3", "c4"]);
    // Another client of hers on B is another token: not the same thing.
    let mut other = from(&clock, "alice", 5, a);
    other.client = Some("client-2".into());
    assert!(m.observe(&other).is_empty());
}

#[test]
fn roaming_is_not_a_token_in_two_places() {
    // Carol moves from the office (A) to her phone's hotspot (B) after lunch, every day.
    let (m, clock) = setup(Settings::default());
    let (a, b) = ("198.51.100.10", "203.0.113.7");
    for day in 0..4u64 {
        for k in 0..5 {
            assert!(
                m.observe(&from(&clock, "carol", day * 100 + k, a))
                    .is_empty()
            );
            clock.advance(30 * MIN);
        }
        for k in 5..10 {
            let got = m.observe(&from(&clock, "carol", day * 100 + k, b));
            assert!(got.is_empty(), "day {day}: {:?}", kinds(&got));
            clock.advance(30 * MIN);
        }
        clock.advance(DAY - 10 * 30 * MIN);
    }
}

#[test]
fn two_trusted_networks_alternating_are_ordinary() {
    let mut s = Settings::default();
    if let Some(n) = s.new_network.as_mut() {
        n.trusted = vec![
            "198.51.100.0/24".parse().unwrap(),
            "203.0.113.0/24".parse().unwrap(),
        ];
    }
    let (m, clock) = setup(s);
    for k in 0..8u64 {
        let src = if k % 2 == 0 {
            "198.51.100.10"
        } else {
            "203.0.113.7"
        };
        assert!(m.observe(&from(&clock, "alice", k, src)).is_empty());
        clock.advance(MIN);
    }
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
