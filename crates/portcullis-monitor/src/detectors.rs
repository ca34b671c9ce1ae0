//! The detectors (MON-1, MON-3) over the event stream. Each reads only `Event` fields; what the
//! Event does not carry yet arrives as agreed `reasons` strings, which the gateway and the
//! authorization server must emit:
//!
//! | reason on the event | meaning | detector |
//! |---|---|---|
//! | `token_*` (except `token_verifier_unavailable`) on an `Auth` event | a refused token | `auth.brute_force` |
//! | `login_failed` on an `Auth` event (principal = the user name tried) | a failed sign-in at the login form | `auth.brute_force`, `auth.credential_stuffing` |
//! | `client_auth_failed`, `mfa_failed` on an `Auth` event | a failed client or second-factor authentication | `auth.brute_force` |
//! | `records=N` | the result held N records | `extraction.records` |
//! | `egress_unapproved:DOMAIN` | an argument or fetch aimed at a domain outside the allow-list | `egress.unapproved_domain` |
//! | `tool_definition_drift[:TOOL]` | the upstream's tool definition no longer matches its pinned hash | `tool.drift` |
//!
//! State is kept per key in [`Bounded`] maps (the stalest keys go first), so memory stays bounded.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Datelike, Timelike, Utc};
use portcullis_core::{Event, EventKind, Outcome};

use crate::alert::{MAX_EVIDENCE, Severity};
use crate::counters::Counters;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// What a detector found; the monitor turns it into an [`crate::Alert`] after deduplication.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Detector id.
    pub kind: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Who.
    pub principal: Option<String>,
    /// Which client.
    pub client: Option<String>,
    /// From where.
    pub source: Option<String>,
    /// Which connector.
    pub connector: Option<String>,
    /// What makes two detections the same alert, beyond the kind.
    pub key: String,
    /// Plain-words explanation.
    pub explanation: String,
    /// Correlation ids of the evidence.
    pub evidence: Vec<String>,
}

/// A map with at most `cap` keys; when full, the eighth least recently touched go.
#[derive(Debug)]
pub struct Bounded<V> {
    map: HashMap<String, (i64, V)>,
    cap: usize,
}

impl<V: Default> Bounded<V> {
    /// An empty map holding at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(8),
        }
    }

    /// The value for `key`, created when missing; marks it used at `now_us`.
    pub fn touch(&mut self, key: &str, now_us: i64) -> &mut V {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            let mut ages: Vec<(i64, String)> =
                self.map.iter().map(|(k, (t, _))| (*t, k.clone())).collect();
            ages.sort_unstable();
            for (_, k) in ages.into_iter().take(self.cap / 8) {
                self.map.remove(&k);
            }
        }
        let e = self
            .map
            .entry(key.to_string())
            .or_insert_with(|| (now_us, V::default()));
        e.0 = now_us;
        &mut e.1
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The latest correlation ids seen for one key.
#[derive(Debug, Default)]
struct Ring(VecDeque<String>);

impl Ring {
    fn push(&mut self, id: &str) {
        if self.0.len() == MAX_EVIDENCE {
            self.0.pop_front();
        }
        self.0.push_back(id.to_string());
    }
    fn ids(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

#[derive(Debug, Default)]
struct Ewma {
    bucket: i64,
    count: f64,
    bytes: f64,
    records: f64,
    baseline: f64,
    baseline_bytes: f64,
    seen: u32,
    fired_bucket: i64,
}

#[derive(Debug, Default)]
struct Daily {
    day: i64,
    bytes: u64,
    fired: bool,
}

#[derive(Debug, Default)]
struct Distinct {
    bucket: i64,
    names: HashSet<String>,
}

/// The detectors' state.
#[derive(Debug)]
pub struct Detectors {
    evidence: Bounded<Ring>,
    rate: Bounded<Ewma>,
    extraction: Bounded<Ewma>,
    daily: Bounded<Daily>,
    stuffing: Bounded<Distinct>,
    tools_used: Bounded<HashSet<String>>,
    /// Per principal: how long we have known them, their hours and their networks.
    habits: Bounded<Habits>,
    /// Per principal and client (one token's holder): the latest networks in order.
    client_nets: Bounded<NetRuns>,
}

/// What the monitor has learned about one principal (MON-1). Learned habits excuse what the
/// principal does every day; a principal with too short a history has no habits yet, so their
/// first days are not compared against one (the learning period, `Settings::min_history_days`).
#[derive(Debug, Default)]
struct Habits {
    /// The current local day (days since the common era, in the principal's time zone).
    day: i64,
    /// Distinct local days with at least one call, `day` included.
    active_days: u32,
    /// A bit per local hour in which they called on an earlier day.
    learned_hours: u32,
    /// A bit per local hour in which they called today.
    today_hours: u32,
    /// The local day of the last off-hours alert (one per day).
    off_reported_day: i64,
    /// Time and correlation id of today's recent off-hours calls (at most `min_calls`).
    off_recent: VecDeque<(i64, String)>,
    /// Networks (/24, /48) they have called from, oldest first, at most [`MAX_NETWORKS`].
    nets: Vec<String>,
}

/// Networks remembered per principal; the oldest goes first.
const MAX_NETWORKS: usize = 32;

/// One stretch of calls of one client from one network.
#[derive(Debug)]
struct NetRun {
    net: String,
    trusted: bool,
    start_us: i64,
    correlation_id: String,
}

/// The last four network stretches of one principal's client, newest last.
#[derive(Debug, Default)]
struct NetRuns(VecDeque<NetRun>);

/// Reasons that mean an authentication failed.
pub fn is_auth_failure(reason: &str) -> bool {
    matches!(reason, "login_failed" | "client_auth_failed" | "mfa_failed")
        || (reason.starts_with("token_") && reason != "token_verifier_unavailable")
}

/// The IP address of a source (`ip`, `ip:port` or `[v6]:port`); `None` when it is not one.
pub fn source_ip(source: &str) -> Option<std::net::IpAddr> {
    source
        .parse()
        .ok()
        .or_else(|| source.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The network a source address belongs to: IPv4 /24 or IPv6 /48; `None` when it is not an IP.
/// Networks are compared at these prefixes because one household, office or mobile carrier
/// hands out addresses within one of them: a new address there is not a new place.
pub fn network_of(source: &str) -> Option<String> {
    source_ip(source).map(network_of_ip)
}

/// [`network_of`] for a parsed address.
pub fn network_of_ip(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

fn is_error(o: &Outcome) -> bool {
    matches!(
        o,
        Outcome::Error { .. } | Outcome::HttpError { .. } | Outcome::Ok { tool_error: true }
    )
}

impl Detectors {
    /// Empty state, each map holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> Self {
        Self {
            evidence: Bounded::new(max_keys),
            rate: Bounded::new(max_keys),
            extraction: Bounded::new(max_keys),
            daily: Bounded::new(max_keys),
            stuffing: Bounded::new(max_keys),
            tools_used: Bounded::new(max_keys),
            habits: Bounded::new(max_keys),
            client_nets: Bounded::new(max_keys),
        }
    }

    /// Keys held over all detectors.
    pub fn tracked_keys(&self) -> usize {
        self.evidence.len()
            + self.rate.len()
            + self.extraction.len()
            + self.daily.len()
            + self.stuffing.len()
            + self.tools_used.len()
            + self.habits.len()
            + self.client_nets.len()
    }

    fn base(
        ev: &Event,
        kind: &'static str,
        severity: Severity,
        key: String,
        explanation: String,
    ) -> Detection {
        Detection {
            kind,
            severity,
            principal: ev.principal.clone(),
            client: ev.client.clone(),
            source: ev.source.clone(),
            connector: ev.connector.clone(),
            key,
            explanation,
            evidence: vec![ev.correlation_id.as_str().to_string()],
        }
    }

    /// Counts `ev` under `key` in the shared window and returns (count, evidence).
    fn count(
        &mut self,
        counters: &dyn Counters,
        metrics: &Metrics,
        key: &str,
        ev: &Event,
        window: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Option<(f64, Vec<String>)> {
        let ring = self.evidence.touch(key, now.timestamp_micros());
        ring.push(ev.correlation_id.as_str());
        match counters.window_add(key, window, now) {
            Ok(n) => Some((n, ring.ids())),
            Err(e) => {
                tracing::warn!(error = %e, "monitor counter unavailable; this event is not counted");
                metrics.counter_errors.inc();
                None
            }
        }
    }

    /// Runs every enabled detector on one event.
    pub fn observe(
        &mut self,
        s: &Settings,
        counters: &dyn Counters,
        metrics: &Metrics,
        ev: &Event,
        now: DateTime<Utc>,
        out: &mut Vec<Detection>,
    ) {
        let now_us = now.timestamp_micros();
        let is_call = matches!(ev.kind, EventKind::McpRequest);

        // MON-1: repeated failed authentication, per source, client and principal.
        if ev.kind == EventKind::Auth && ev.reasons.iter().any(|r| is_auth_failure(r)) {
            if let Some(rule) = &s.auth_failures {
                let dims = [
                    ("source", &ev.source),
                    ("client", &ev.client),
                    ("principal", &ev.principal),
                ];
                for (dim, val) in dims {
                    let Some(v) = val else { continue };
                    let key = format!("authfail|{dim}={v}");
                    if let Some((n, evidence)) =
                        self.count(counters, metrics, &key, ev, rule.window, now)
                        && n >= f64::from(rule.threshold)
                    {
                        let mut d = Self::base(
                            ev,
                            "auth.brute_force",
                            rule.severity,
                            format!("{dim}={v}"),
                            format!(
                                "{} failed authentications for {dim} {v} within {} s",
                                n.round(),
                                rule.window.as_secs()
                            ),
                        );
                        // The alert is about the dimension that crossed; other fields are context.
                        if dim != "principal" {
                            d.principal = None;
                        }
                        if dim == "principal" {
                            d.source = ev.source.clone();
                        }
                        d.evidence = evidence;
                        out.push(d);
                    }
                }
            }
            // Credential stuffing: many distinct user names failing from one source.
            if let (Some(rule), Some(src), Some(user)) =
                (&s.credential_stuffing, &ev.source, &ev.principal)
                && ev.reasons.iter().any(|r| r == "login_failed")
            {
                let w = (rule.window.as_micros() as i64).max(1);
                let st = self.stuffing.touch(src, now_us);
                if st.bucket != now_us / w {
                    st.bucket = now_us / w;
                    st.names.clear();
                }
                if st.names.len() < 10_000 {
                    st.names.insert(user.clone());
                }
                if st.names.len() >= rule.threshold as usize {
                    let mut d = Self::base(
                        ev,
                        "auth.credential_stuffing",
                        rule.severity,
                        format!("source={src}"),
                        format!(
                            "{} different user names failed to sign in from {src}",
                            st.names.len()
                        ),
                    );
                    d.principal = None;
                    d.evidence = self
                        .evidence
                        .touch(&format!("authfail|source={src}"), now_us)
                        .ids();
                    out.push(d);
                }
            }
        }

        // MON-1: repeated errors, per principal (or source when anonymous).
        if is_call
            && is_error(&ev.outcome)
            && let Some(rule) = &s.errors
            && let Some(who) = ev.principal.as_ref().or(ev.source.as_ref())
        {
            let key = format!("errors|{who}");
            if let Some((n, evidence)) = self.count(counters, metrics, &key, ev, rule.window, now)
                && n >= f64::from(rule.threshold)
            {
                let mut d = Self::base(
                    ev,
                    "errors.repeated",
                    rule.severity,
                    format!("who={who}"),
                    format!(
                        "{} calls by {who} ended in errors within {} s",
                        n.round(),
                        rule.window.as_secs()
                    ),
                );
                d.evidence = evidence;
                out.push(d);
            }
        }

        // MON-3: tool-definition drift.
        // The gateway names the tool: `tool_definition_drift:TOOL`.
        if s.drift
            && ev
                .reasons
                .iter()
                .any(|r| r == "tool_definition_drift" || r.starts_with("tool_definition_drift:"))
        {
            let mut d = Self::base(
                ev,
                "tool.drift",
                Severity::High,
                format!(
                    "connector={}|tool={}",
                    ev.connector.as_deref().unwrap_or("-"),
                    ev.target.as_deref().unwrap_or("-")
                ),
                format!(
                    "the definition of {}/{} changed after approval",
                    ev.connector.as_deref().unwrap_or("-"),
                    ev.target.as_deref().unwrap_or("-")
                ),
            );
            d.principal = None;
            out.push(d);
        }

        let Some(principal) = ev.principal.clone() else {
            return;
        };
        if !is_call {
            return;
        }

        // MON-1: request rate against the principal's own baseline (EWMA with a warm-up).
        if let Some(rule) = &s.rate_spike {
            let b = (rule.bucket.as_micros() as i64).max(1);
            let bucket = now_us.div_euclid(b);
            let st = self.rate.touch(&principal, now_us);
            if st.seen == 0 && st.count == 0.0 {
                st.bucket = bucket;
                st.fired_bucket = i64::MIN;
            }
            if bucket != st.bucket {
                // Fold the finished bucket into the baseline; idle buckets are not folded, so the
                // baseline is the principal's rate while active.
                // During warm-up the baseline is the plain mean, so one early burst does not dominate it.
                st.baseline = if st.seen < rule.warmup_buckets {
                    (st.baseline * f64::from(st.seen) + st.count) / f64::from(st.seen + 1)
                } else {
                    rule.alpha * st.count + (1.0 - rule.alpha) * st.baseline
                };
                st.seen = st.seen.saturating_add(1);
                st.bucket = bucket;
                st.count = 0.0;
            }
            st.count += 1.0;
            if st.seen >= rule.warmup_buckets
                && st.count >= f64::from(rule.min_calls)
                && st.count > rule.factor * st.baseline.max(1.0)
                && st.fired_bucket != bucket
            {
                st.fired_bucket = bucket;
                let (count, base) = (st.count, st.baseline);
                out.push(Self::base(ev, "rate.spike", Severity::Medium, format!("principal={principal}"),
                    format!("{principal} made {count} calls within {} s against a baseline of {base:.1}", rule.bucket.as_secs())));
            }
        }

        // MON-1: excessive data extraction, bytes and records per window and per day.
        if let Some(rule) = &s.extraction {
            let records: u64 = ev
                .reasons
                .iter()
                .filter_map(|r| r.strip_prefix("records=")?.parse::<u64>().ok())
                .sum();
            let w = (rule.window.as_micros() as i64).max(1);
            let window = now_us.div_euclid(w);
            let st = self.extraction.touch(&principal, now_us);
            if st.seen == 0 && st.bytes == 0.0 && st.records == 0.0 {
                st.bucket = window;
                st.fired_bucket = i64::MIN;
            }
            if window != st.bucket {
                st.baseline_bytes = if st.seen == 0 {
                    st.bytes
                } else {
                    0.2 * st.bytes + 0.8 * st.baseline_bytes
                };
                st.seen = st.seen.saturating_add(1);
                st.bucket = window;
                st.bytes = 0.0;
                st.records = 0.0;
            }
            st.bytes += ev.response_bytes as f64;
            st.records += records as f64;
            let mut hit = None;
            if st.bytes > rule.max_bytes as f64 {
                hit = Some((
                    "extraction.bytes",
                    format!(
                        "{principal} received {} bytes within {} s (cap {})",
                        st.bytes,
                        rule.window.as_secs(),
                        rule.max_bytes
                    ),
                ));
            } else if st.records > rule.max_records as f64 {
                hit = Some((
                    "extraction.records",
                    format!(
                        "{principal} received {} records within {} s (cap {})",
                        st.records,
                        rule.window.as_secs(),
                        rule.max_records
                    ),
                ));
            } else if st.seen >= rule.warmup_windows
                && st.bytes > rule.baseline_min_bytes as f64
                && st.bytes > rule.baseline_factor * st.baseline_bytes
            {
                hit = Some((
                    "extraction.baseline",
                    format!(
                        "{principal} received {} bytes within {} s against a baseline of {:.0}",
                        st.bytes,
                        rule.window.as_secs(),
                        st.baseline_bytes
                    ),
                ));
            }
            if let Some((kind, why)) = hit
                && st.fired_bucket != window
            {
                st.fired_bucket = window;
                out.push(Self::base(
                    ev,
                    kind,
                    Severity::High,
                    format!("principal={principal}"),
                    why,
                ));
            }
            let day = now_us.div_euclid(86_400_000_000);
            let d = self.daily.touch(&principal, now_us);
            if d.day != day {
                *d = Daily {
                    day,
                    bytes: 0,
                    fired: false,
                };
            }
            d.bytes = d.bytes.saturating_add(ev.response_bytes);
            if d.bytes > rule.daily_max_bytes && !d.fired {
                d.fired = true;
                let total = d.bytes;
                out.push(Self::base(
                    ev,
                    "extraction.daily",
                    Severity::High,
                    format!("principal={principal}"),
                    format!(
                        "{principal} received {total} bytes today (cap {})",
                        rule.daily_max_bytes
                    ),
                ));
            }
        }

        // MON-1, PI-2: injection attempts found by the detection engine.
        if s.injection
            && let Some(f) = ev.findings.iter().find(|f| f.category == "injection")
        {
            out.push(Self::base(
                ev,
                "detect.injection",
                Severity::High,
                format!(
                    "principal={principal}|connector={}",
                    ev.connector.as_deref().unwrap_or("-")
                ),
                format!(
                    "injection finding {} in the {} of a call by {principal}",
                    f.kind, f.direction
                ),
            ));
        }
        // Leaks: a secret anywhere, or personal/internal data that passed through unaltered.
        if s.leaks
            && let Some(f) = ev.findings.iter().find(|f| {
                f.category == "secret"
                    || (matches!(f.category.as_str(), "pii" | "internal")
                        && matches!(f.action.as_str(), "log" | "allow"))
            })
        {
            out.push(Self::base(
                ev,
                "detect.leak",
                Severity::Medium,
                format!("principal={principal}|kind={}", f.kind),
                format!(
                    "{} finding {} in the {} of a call by {principal} (action {})",
                    f.category, f.kind, f.direction, f.action
                ),
            ));
        }

        // MON-1: first use of a sensitive tool by a principal.
        if let Some(tool) = &ev.target
            && !s.sensitive_tools.is_empty()
        {
            let full = format!("{}/{tool}", ev.connector.as_deref().unwrap_or(""));
            if s.sensitive_tools.iter().any(|t| t == tool || *t == full) {
                let used = self.tools_used.touch(&principal, now_us);
                if used.len() < 256 && used.insert(full.clone()) {
                    out.push(Self::base(
                        ev,
                        "tool.first_use",
                        Severity::Low,
                        format!("principal={principal}|tool={full}"),
                        format!("{principal} used the sensitive tool {full} for the first time"),
                    ));
                }
            }
        }

        // The principal's history, in their local days: how many days we have known them.
        let offset = s.off_hours.as_ref().map_or(0, |rule| {
            rule.offsets
                .get(&principal)
                .copied()
                .unwrap_or(rule.default_offset_minutes)
        });
        let local = now + chrono::Duration::minutes(i64::from(offset));
        let day = i64::from(local.date_naive().num_days_from_ce());
        let h = self.habits.touch(&principal, now_us);
        if h.day != day {
            // Today's hours count from tomorrow, so a new habit is still reported once.
            h.learned_hours |= h.today_hours;
            h.today_hours = 0;
            h.day = day;
            h.active_days = h.active_days.saturating_add(1);
            h.off_recent.clear();
        }
        let earlier_days = h.active_days.saturating_sub(1);
        // Habits are only trusted once the principal has been seen on enough earlier days;
        // before that everything they do is new, and new is not news.
        let established = earlier_days >= s.min_history_days;
        let corr = ev.correlation_id.as_str();

        // MON-1: off-hours access, in the principal's time zone.
        if let Some(rule) = &s.off_hours {
            let weekend = matches!(local.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
            let hour = local.hour();
            h.today_hours |= 1 << hour;
            // Hours they worked on earlier days are not off-hours for them; habit excuses the
            // hour, never the weekend.
            let habitual = h.learned_hours & (1 << hour) != 0;
            let weekend_off = rule.weekends_off && weekend;
            let off =
                weekend_off || ((hour < rule.start_hour || hour >= rule.end_hour) && !habitual);
            // An hour right beside their usual ones (21:00 for someone who works until 20:xx)
            // is a long day, not an intruder: one such call is excused, a session is not.
            let beside = (1u32 << ((hour + 23) % 24)) | (1u32 << ((hour + 1) % 24));
            let beside_habit = !weekend_off && h.learned_hours & beside != 0;
            // Once per principal per local day: the first off-hours call is the news.
            if off && h.off_reported_day != day {
                let window = rule.window.as_micros() as i64;
                h.off_recent.retain(|(t, _)| now_us - *t <= window);
                if h.off_recent.len() >= rule.min_calls.max(1) as usize {
                    h.off_recent.pop_front();
                }
                h.off_recent.push_back((now_us, corr.to_string()));
                // With an established history one call is enough (their hours are known and
                // this is not one of them, nor beside one); otherwise only a session is:
                // `min_calls` calls within `window`, not the one late call of someone
                // finishing their day.
                let sustained = h.off_recent.len() >= rule.min_calls.max(1) as usize;
                let single = established && !beside_habit;
                if single || sustained {
                    h.off_reported_day = day;
                    let why = if single {
                        format!(
                            "{principal} called at {} local time, outside working hours and outside their habits of {earlier_days} earlier days",
                            local.format("%a %H:%M")
                        )
                    } else {
                        format!(
                            "{principal} made {} calls within {} s outside working hours, the latest at {} local time",
                            h.off_recent.len(),
                            rule.window.as_secs(),
                            local.format("%a %H:%M")
                        )
                    };
                    let mut d = Self::base(
                        ev,
                        "access.off_hours",
                        Severity::Low,
                        format!("principal={principal}|day={}", local.date_naive()),
                        why,
                    );
                    d.evidence = h.off_recent.iter().map(|(_, c)| c.clone()).collect();
                    out.push(d);
                }
            }
        }

        // MON-1: a principal's token used from a network it has not used before, and one
        // client's token in use from two networks at once.
        if let Some(rule) = &s.new_network
            && let Some(ip) = ev.source.as_deref().and_then(source_ip)
        {
            let net = network_of_ip(ip);
            // Corporate and VPN egress ranges are known places for everyone.
            let trusted = rule.trusted.iter().any(|n| n.contains(&ip));
            if !trusted && !h.nets.contains(&net) {
                if h.nets.len() == MAX_NETWORKS {
                    h.nets.remove(0);
                }
                h.nets.push(net.clone());
                // During the learning period a new network is a habit being learned (home,
                // office, the phone's hotspot), not a stolen token.
                if established {
                    out.push(Self::base(
                        ev,
                        "token.new_network",
                        Severity::Medium,
                        format!("principal={principal}|net={net}"),
                        format!(
                            "{principal} called from network {net}, not seen in {earlier_days} earlier days of their history"
                        ),
                    ));
                }
            }
            // A token in two places: the same client going back and forth between two
            // networks (A, B, A, B) within the window. Roaming (A, then B for the rest of the
            // day) never does that, so this needs no history.
            let client = ev.client.as_deref().unwrap_or("");
            let runs = &mut self
                .client_nets
                .touch(&format!("{principal}|{client}"), now_us)
                .0;
            if runs.back().is_none_or(|r| r.net != net) {
                if runs.len() == 4 {
                    runs.pop_front();
                }
                runs.push_back(NetRun {
                    net: net.clone(),
                    trusted,
                    start_us: now_us,
                    correlation_id: corr.to_string(),
                });
                if runs.len() == 4
                    && runs[0].net == runs[2].net
                    && runs[1].net == runs[3].net
                    && now_us - runs[1].start_us <= rule.concurrent_window.as_micros() as i64
                    // Two trusted networks (office and VPN) alternating is ordinary.
                    && !(runs[0].trusted && runs[1].trusted)
                {
                    let (a, b) = (runs[0].net.clone(), runs[1].net.clone());
                    let mut d = Self::base(
                        ev,
                        "token.concurrent_networks",
                        Severity::High,
                        format!("principal={principal}|client={client}"),
                        format!(
                            "{principal}'s token for client {client} went back and forth between networks {a} and {b} within {} s: it is in use in two places",
                            rule.concurrent_window.as_secs()
                        ),
                    );
                    d.evidence = runs.iter().map(|r| r.correlation_id.clone()).collect();
                    out.push(d);
                }
            }
        }

        // MON-1, EG-1: calls to domains outside the allow-lists.
        if s.unapproved_domains {
            for r in &ev.reasons {
                if let Some(domain) = r.strip_prefix("egress_unapproved:") {
                    out.push(Self::base(
                        ev,
                        "egress.unapproved_domain",
                        Severity::Medium,
                        format!("principal={principal}|domain={domain}"),
                        format!("{principal} asked for {domain}, outside the allow-list"),
                    ));
                }
            }
        }
    }
}
