//! [`Monitor`]: the synchronous core the gateway calls on every event (observe) and before
//! forwarding (blocklist, rate limits). Detections become alerts here, after deduplication and
//! throttling (MON-2); configured responses block principals, clients or sources.

use std::sync::Arc;

use parking_lot::Mutex;
use portcullis_core::{Clock, Event};

use crate::alert::Alert;
use crate::blocklist::{BlockTarget, Blocklist};
use crate::counters::Counters;
use crate::detectors::{Bounded, Detection, Detectors};
use crate::metrics::{DetectorLabel, Metrics};
use crate::ratelimit::{RateKey, RateLimits, RetryAfter};
use crate::settings::{BlockWhat, Settings};

/// The monitor.
#[derive(Debug)]
pub struct Monitor {
    settings: Settings,
    clock: Arc<dyn Clock>,
    counters: Arc<dyn Counters>,
    metrics: Arc<Metrics>,
    detectors: Mutex<Detectors>,
    last_sent: Mutex<Bounded<i64>>,
    blocklist: Arc<Blocklist>,
    rate: RateLimits,
}

impl Monitor {
    /// A monitor with these settings, clock and counters.
    pub fn new(settings: Settings, clock: Arc<dyn Clock>, counters: Arc<dyn Counters>) -> Self {
        let metrics = Arc::new(Metrics::default());
        Self {
            rate: RateLimits::new(
                &settings.rate_limits,
                clock.clone(),
                counters.clone(),
                metrics.clone(),
            ),
            detectors: Mutex::new(Detectors::new(settings.max_keys)),
            last_sent: Mutex::new(Bounded::new(settings.max_keys)),
            blocklist: Arc::new(Blocklist::new(clock.clone())),
            settings,
            clock,
            counters,
            metrics,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The blocklist the gateway consults before forwarding.
    pub fn blocklist(&self) -> &Arc<Blocklist> {
        &self.blocklist
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Observes one event; returns the alerts it raised (after deduplication) and applies the
    /// configured automatic responses. Cheap and synchronous: it runs on every call.
    pub fn observe(&self, ev: &Event) -> Vec<Alert> {
        self.metrics.events.inc();
        let now = self.clock.now();
        let mut found: Vec<Detection> = Vec::new();
        {
            let mut d = self.detectors.lock();
            d.observe(
                &self.settings,
                self.counters.as_ref(),
                &self.metrics,
                ev,
                now,
                &mut found,
            );
            self.metrics.tracked_keys.set(d.tracked_keys() as i64);
        }
        if found.is_empty() {
            return Vec::new();
        }
        let now_us = now.timestamp_micros();
        let throttle = self.settings.throttle.as_micros() as i64;
        let mut alerts = Vec::new();
        let mut last = self.last_sent.lock();
        for d in found {
            let dedup_key = format!("{}|{}", d.kind, d.key);
            let label = DetectorLabel {
                detector: d.kind.to_string(),
            };
            let sent = last.touch(&dedup_key, now_us);
            // MON-2: one alert per key per throttle window.
            if *sent != 0 && now_us - *sent < throttle {
                self.metrics.suppressed.get_or_create(&label).inc();
                continue;
            }
            *sent = now_us;
            self.metrics.alerts.get_or_create(&label).inc();
            let ts = uuid::Timestamp::from_unix(
                uuid::NoContext,
                now.timestamp().max(0) as u64,
                now.timestamp_subsec_nanos(),
            );
            let alert = Alert {
                id: uuid::Uuid::new_v7(ts),
                time: now,
                severity: d.severity,
                kind: d.kind.to_string(),
                principal: d.principal,
                client: d.client,
                source: d.source,
                connector: d.connector,
                correlation_ids: d.evidence,
                explanation: d.explanation,
                dedup_key,
            };
            self.respond(&alert);
            alerts.push(alert);
        }
        alerts
    }

    fn respond(&self, a: &Alert) {
        for r in self.settings.responses.iter().filter(|r| r.kind == a.kind) {
            let target = match r.what {
                BlockWhat::Principal => a.principal.clone().map(BlockTarget::Principal),
                BlockWhat::Client => a.client.clone().map(BlockTarget::Client),
                BlockWhat::Source => a.source.clone().map(BlockTarget::Source),
            };
            if let Some(t) = target {
                tracing::warn!(alert = %a.id, kind = %a.kind, "automatic response: blocking {:?} for {} s", r.what, r.duration.as_secs());
                self.blocklist.block(t, r.duration, &a.kind);
                self.metrics.blocks.inc();
            }
        }
    }

    /// Takes one token of the rate limit for `key` (the gateway checks the principal's, the
    /// client's and the tool's before forwarding and answers 429 with `Retry-After` on refusal).
    pub fn check_rate(&self, key: &RateKey) -> Result<(), RetryAfter> {
        self.rate.check(key)
    }

    /// Every metric in the Prometheus text format (MON-5).
    pub fn render_prometheus(&self) -> String {
        self.metrics.render()
    }
}
