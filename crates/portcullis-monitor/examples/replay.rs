//! Replay harness (MON-1 evaluation): a deterministic, generated day of gateway traffic for a few
//! hundred principals, each with their own habits and time zone, with labelled attack episodes
//! mixed in. It drives [`Monitor`] on a simulated clock and prints the detection rate, the time
//! to detect per episode and false alerts per 1,000 principal-days.
//!
//! `cargo run -p portcullis-monitor --example replay -- --seed 2 --principals 400 --days 1`
//!
//! Tune on one seed, report another (EVAL.md).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration as CDuration, TimeZone, Utc};
use portcullis_core::clock::ManualClock;
use portcullis_core::{Clock, CorrelationId, Event, EventKind, FindingSummary, Outcome};
use portcullis_monitor::{LocalCounters, Monitor, Settings};

/// SplitMix64: small, deterministic, good enough for traffic shapes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
    /// Exponential inter-arrival with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f()).ln()
    }
}

struct Principal {
    name: String,
    offset_min: i32,
    start_h: f64,
    end_h: f64,
    calls_per_hour: f64,
    bytes: u64,
    net: String,
    /// A second network used after lunch (a laptop moving to a phone's hotspot), if any.
    roam: Option<String>,
}

#[derive(Clone)]
struct Episode {
    name: &'static str,
    actor: String,
    start: DateTime<Utc>,
}

fn ev(t: DateTime<Utc>, id: u64, kind: EventKind) -> Event {
    Event::new(
        t,
        CorrelationId::from_request_id(&format!("r{id}")).unwrap(),
        kind,
    )
}

fn call(t: DateTime<Utc>, id: u64, p: &Principal, tool: &str, bytes: u64) -> Event {
    let mut e = ev(t, id, EventKind::McpRequest);
    e.principal = Some(p.name.clone());
    e.client = Some(format!("client-{}", p.name));
    e.source = Some(format!("{}{}", p.net, 10 + id % 200));
    e.connector = Some("crm".into());
    e.method = Some("tools/call".into());
    e.target = Some(tool.into());
    e.response_bytes = bytes;
    e
}

fn main() {
    let mut seed = 2u64;
    let mut n_principals = 400usize;
    let mut days = 1u32;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seed" => seed = v.parse().expect("--seed N"),
            "--principals" => n_principals = v.parse().expect("--principals N"),
            "--days" => days = v.parse().expect("--days N"),
            other => panic!("unknown argument {other}; use --seed N --principals N --days N"),
        }
        i += 2;
    }
    let mut rng = Rng(seed);
    // A Monday, so every simulated day up to five is a working day.
    let day0 = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let offsets = [-480, -300, -240, 0, 0, 60, 60, 120, 330, 540];
    let principals: Vec<Principal> = (0..n_principals)
        .map(|k| Principal {
            name: format!("user{k:04}"),
            offset_min: offsets[rng.range(0, offsets.len() as u64) as usize],
            start_h: 8.0 + rng.f() * 1.5,
            // A few stay late, some past the detector's working hours: real false-alert risk.
            end_h: if rng.f() < 0.03 {
                19.0 + rng.f() * 2.0
            } else {
                16.5 + rng.f() * 2.0
            },
            calls_per_hour: 2.0 + rng.f() * 40.0,
            bytes: rng.range(500, 20_000),
            net: format!("10.{}.{}.", rng.range(0, 250), rng.range(0, 250)),
            roam: (rng.f() < 0.01)
                .then(|| format!("172.{}.{}.", rng.range(16, 32), rng.range(0, 250))),
        })
        .collect();

    let mut events: Vec<Event> = Vec::new();
    let mut id = 0u64;
    for d in 0..days {
        for p in &principals {
            // Working hours in the principal's own zone.
            let local_midnight =
                day0 + CDuration::days(i64::from(d)) - CDuration::minutes(i64::from(p.offset_min));
            let mut t = p.start_h * 3600.0;
            while t < p.end_h * 3600.0 {
                t += rng.exp(3600.0 / p.calls_per_hour);
                let at = local_midnight + CDuration::milliseconds((t * 1000.0) as i64);
                id += 1;
                let r = rng.f();
                let tool = if r < 0.6 {
                    "search_customers"
                } else if r < 0.95 {
                    "get_customer"
                } else {
                    "fetch_url"
                };
                let mut e = call(at, id, p, tool, (p.bytes as f64 * (0.5 + rng.f())) as u64);
                if let Some(r) = &p.roam
                    && t > 13.0 * 3600.0
                {
                    e.source = Some(format!("{r}{}", 10 + id % 200));
                }
                if rng.f() < 0.02 {
                    e.outcome = Outcome::Error {
                        code: -32603,
                        origin: "upstream".into(),
                    };
                }
                if rng.f() < 0.05 {
                    e.findings.push(FindingSummary {
                        kind: "pii.email".into(),
                        category: "pii".into(),
                        direction: "response".into(),
                        pointer: None,
                        action: "redact".into(),
                        count: 1,
                    });
                }
                events.push(e);
                // An expired token now and then, refreshed at once by the client.
                if rng.f() < 0.01 {
                    id += 1;
                    let mut a = ev(at, id, EventKind::Auth);
                    a.principal = Some(p.name.clone());
                    a.client = Some(format!("client-{}", p.name));
                    a.source = Some(format!("{}{}", p.net, 10));
                    a.reasons = vec!["token_expired".into()];
                    events.push(a);
                }
                // A mistyped password now and then.
                if rng.f() < 0.003 {
                    id += 1;
                    let mut a = ev(at, id, EventKind::Auth);
                    a.principal = Some(p.name.clone());
                    a.source = Some(format!("{}{}", p.net, 10));
                    a.reasons = vec!["login_failed".into()];
                    events.push(a);
                }
            }
        }
    }

    // Labelled episodes, on day one.
    let mut episodes = Vec::new();
    let at =
        |h: u32, m: u32| day0 + CDuration::hours(i64::from(h)) + CDuration::minutes(i64::from(m));
    let pick = |rng: &mut Rng| rng.range(0, n_principals as u64) as usize;
    // Brute force: bad tokens from one address, one a second.
    let bf = format!("203.0.113.{}", rng.range(1, 250));
    episodes.push(Episode {
        name: "brute_force",
        actor: bf.clone(),
        start: at(3, 10),
    });
    for k in 0..120 {
        id += 1;
        let mut a = ev(at(3, 10) + CDuration::seconds(k), id, EventKind::Auth);
        a.source = Some(bf.clone());
        a.reasons = vec!["token_bad_signature".into()];
        events.push(a);
    }
    // Credential stuffing: many user names, a few tries each, from one address.
    let cs = format!("198.18.{}.{}", rng.range(0, 250), rng.range(1, 250));
    episodes.push(Episode {
        name: "credential_stuffing",
        actor: cs.clone(),
        start: at(11, 20),
    });
    for k in 0..60 {
        id += 1;
        let mut a = ev(at(11, 20) + CDuration::seconds(k * 4), id, EventKind::Auth);
        a.source = Some(cs.clone());
        a.principal = Some(principals[pick(&mut rng)].name.clone());
        a.reasons = vec!["login_failed".into()];
        events.push(a);
    }
    // Slow exfiltration: a compromised account exports a little every few minutes for hours.
    let ex = pick(&mut rng);
    let start_ex =
        at(9, 0) - CDuration::minutes(i64::from(principals[ex].offset_min)) + CDuration::hours(1);
    episodes.push(Episode {
        name: "slow_exfiltration",
        actor: principals[ex].name.clone(),
        start: start_ex,
    });
    for k in 0..60 {
        id += 1;
        let mut e = call(
            start_ex + CDuration::minutes(k * 4),
            id,
            &principals[ex],
            "search_customers",
            1_200_000,
        );
        e.reasons = vec!["records=400".into()];
        events.push(e);
    }
    // Burst scraping: hundreds of get_customer calls in minutes.
    let sc = pick(&mut rng);
    let start_sc =
        at(10, 0) - CDuration::minutes(i64::from(principals[sc].offset_min)) + CDuration::hours(3);
    episodes.push(Episode {
        name: "burst_scraping",
        actor: principals[sc].name.clone(),
        start: start_sc,
    });
    for k in 0..400 {
        id += 1;
        events.push(call(
            start_sc + CDuration::milliseconds(k * 450),
            id,
            &principals[sc],
            "get_customer",
            3_000,
        ));
    }
    // Injection campaign: crafted arguments from one account.
    let inj = pick(&mut rng);
    let start_inj =
        at(10, 0) - CDuration::minutes(i64::from(principals[inj].offset_min)) + CDuration::hours(2);
    episodes.push(Episode {
        name: "injection_campaign",
        actor: principals[inj].name.clone(),
        start: start_inj,
    });
    for k in 0..15 {
        id += 1;
        let mut e = call(
            start_inj + CDuration::seconds(k * 40),
            id,
            &principals[inj],
            "fetch_url",
            4_000,
        );
        e.findings.push(FindingSummary {
            kind: "injection.instruction".into(),
            category: "injection".into(),
            direction: "request".into(),
            pointer: Some("/url".into()),
            action: "block".into(),
            count: 1,
        });
        e.decision = portcullis_core::Decision::Deny;
        events.push(e);
    }
    // Off-hours access: a normal account used at 02:30 its local time.
    let oh = pick(&mut rng);
    let start_oh =
        at(2, 30) - CDuration::minutes(i64::from(principals[oh].offset_min)) + CDuration::days(1);
    episodes.push(Episode {
        name: "off_hours",
        actor: principals[oh].name.clone(),
        start: start_oh,
    });
    for k in 0..5 {
        id += 1;
        events.push(call(
            start_oh + CDuration::minutes(k * 3),
            id,
            &principals[oh],
            "search_customers",
            8_000,
        ));
    }

    // Token theft: the victim's token (same client) used from another network while the victim
    // keeps working, one call a minute for an hour from 11:00 local. Drawn after every other
    // episode, so the traffic above is the same as without it.
    let tt = pick(&mut rng);
    let start_tt =
        at(9, 0) - CDuration::minutes(i64::from(principals[tt].offset_min)) + CDuration::hours(2);
    episodes.push(Episode {
        name: "token_theft",
        actor: principals[tt].name.clone(),
        start: start_tt,
    });
    let thief = format!("198.51.100.{}", rng.range(1, 250));
    for k in 0..60 {
        id += 1;
        let mut e = call(
            start_tt + CDuration::minutes(k),
            id,
            &principals[tt],
            "get_customer",
            3_000,
        );
        e.source = Some(thief.clone());
        events.push(e);
    }

    events.sort_by_key(|e| e.time);
    let mut settings = Settings::default();
    if let Some(o) = settings.off_hours.as_mut() {
        for p in &principals {
            o.offsets.insert(p.name.clone(), p.offset_min);
        }
    }
    let clock = ManualClock::new(events[0].time);
    let monitor = Monitor::new(
        settings,
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    );
    let mut first: HashMap<usize, (DateTime<Utc>, String)> = HashMap::new();
    let mut false_alerts: Vec<String> = Vec::new();
    if std::env::var_os("REPLAY_DEBUG").is_some() {
        for ep in &episodes {
            eprintln!("{} {} {}", ep.name, ep.actor, ep.start);
        }
    }
    let started = std::time::Instant::now();
    for e in &events {
        let now = clock.now();
        if e.time > now {
            clock.advance((e.time - now).to_std().unwrap_or_default());
        }
        for a in monitor.observe(e) {
            // When one actor plays in two episodes, the alert belongs to the one that began
            // last before it (the other was under way already).
            let hit = episodes
                .iter()
                .enumerate()
                .filter(|(_, ep)| {
                    a.time >= ep.start
                        && a.time <= ep.start + CDuration::hours(8)
                        && (a.principal.as_deref() == Some(&ep.actor)
                            || a.source.as_deref() == Some(&ep.actor))
                })
                .max_by_key(|(_, ep)| ep.start)
                .map(|(k, _)| k);
            match hit {
                Some(k) => {
                    first.entry(k).or_insert((a.time, a.kind.clone()));
                }
                None => false_alerts.push(format!(
                    "{} {} {}",
                    a.time.format("%d %H:%M:%S"),
                    a.kind,
                    a.explanation
                )),
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "seed {seed}, {n_principals} principals, {days} day(s), {} events, replayed in {:.2} s",
        events.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "{:<22} {:<10} {:>14}  first alert",
        "episode", "detected", "time to detect"
    );
    let mut ttd = Vec::new();
    for (k, ep) in episodes.iter().enumerate() {
        match first.get(&k) {
            Some((t, kind)) => {
                let s = (*t - ep.start).num_milliseconds() as f64 / 1000.0;
                ttd.push(s);
                println!("{:<22} {:<10} {:>12.1} s  {kind}", ep.name, "yes", s);
            }
            None => println!("{:<22} {:<10} {:>14}", ep.name, "NO", "-"),
        }
    }
    ttd.sort_by(|a, b| a.total_cmp(b));
    let median = if ttd.is_empty() {
        f64::NAN
    } else if ttd.len() % 2 == 1 {
        ttd[ttd.len() / 2]
    } else {
        (ttd[ttd.len() / 2 - 1] + ttd[ttd.len() / 2]) / 2.0
    };
    let principal_days = n_principals as f64 * f64::from(days);
    println!(
        "detection rate: {}/{} episodes",
        first.len(),
        episodes.len()
    );
    println!("median time to detect: {median:.1} s of simulated time");
    println!(
        "false alerts: {} = {:.2} per 1,000 principal-days",
        false_alerts.len(),
        false_alerts.len() as f64 * 1000.0 / principal_days
    );
    for f in false_alerts.iter().take(20) {
        println!("  false: {f}");
    }
}
