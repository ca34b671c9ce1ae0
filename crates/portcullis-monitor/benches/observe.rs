//! Cost of `Monitor::observe` on an ordinary call, against cloning the event (the baseline
//! measured in the same run; report ratios, the machines are noisy).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use portcullis_core::clock::ManualClock;
use portcullis_core::{Clock, CorrelationId, Event, EventKind};
use portcullis_monitor::{LocalCounters, Monitor, RateKey, Settings};

fn main() {
    divan::main();
}

fn setup() -> (Monitor, ManualClock, Vec<Event>) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap());
    let m = Monitor::new(
        Settings::default(),
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    );
    let events = (0..1000)
        .map(|i| {
            let mut e = Event::new(
                clock.now(),
                CorrelationId::from_request_id(&format!("c{i}")).unwrap(),
                EventKind::McpRequest,
            );
            e.principal = Some(format!("user{}", i % 300));
            e.client = Some("client-1".into());
            e.source = Some(format!("10.0.{}.7", i % 300));
            e.connector = Some("crm".into());
            e.target = Some("search_customers".into());
            e.response_bytes = 4_000;
            e
        })
        .collect();
    (m, clock, events)
}

#[divan::bench]
fn baseline_event_clone(b: divan::Bencher) {
    let (_, _, events) = setup();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % events.len();
        divan::black_box(events[i].clone())
    });
}

#[divan::bench]
fn observe_normal_call(b: divan::Bencher) {
    let (m, clock, events) = setup();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % events.len();
        clock.advance(std::time::Duration::from_millis(50));
        divan::black_box(m.observe(&events[i]))
    });
}

#[divan::bench]
fn check_rate_principal(b: divan::Bencher) {
    let mut s = Settings::default();
    s.rate_limits.per_principal = Some(portcullis_monitor::settings::RateQuota {
        per_minute: 600_000,
        burst: 1_000,
    });
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap());
    let m = Monitor::new(s, Arc::new(clock.clone()), Arc::new(LocalCounters::new()));
    let keys: Vec<RateKey> = (0..300)
        .map(|i| RateKey::Principal(format!("user{i}")))
        .collect();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % keys.len();
        clock.advance(std::time::Duration::from_millis(1));
        divan::black_box(m.check_rate(&keys[i]).is_ok())
    });
}
