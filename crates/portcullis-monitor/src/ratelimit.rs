//! Rate limits per principal, client and tool (token buckets), enforced by the gateway before
//! forwarding: a refused call gets HTTP 429 with `Retry-After` ([`RetryAfter::header_value`]).
//! In process, `governor`'s keyed GCRA limiters on the injected clock; with shared counters
//! ([`Counters::shared`]), a GCRA script in Redis so every replica sees one bucket (OPS-2).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovClockTrait;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use portcullis_core::Clock;

use crate::counters::Counters;
use crate::metrics::Metrics;
use crate::settings::{RateLimitSettings, RateQuota};

/// What a rate limit is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// One principal (user id), across clients and tools.
    Principal(String),
    /// One OAuth client, across its users.
    Client(String),
    /// One tool, `connector/tool`, across everyone (protects the upstream).
    Tool(String),
}

impl RateKey {
    fn scope(&self) -> &'static str {
        match self {
            Self::Principal(_) => "principal",
            Self::Client(_) => "client",
            Self::Tool(_) => "tool",
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Principal(s) | Self::Client(s) | Self::Tool(s) => s,
        }
    }
}

/// A refusal: wait this long before trying again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit for this {scope} exceeded; retry after {} s", self.header_value())]
pub struct RetryAfter {
    /// `principal`, `client` or `tool`.
    pub scope: &'static str,
    /// How long until one more call is allowed.
    pub wait: Duration,
}

impl RetryAfter {
    /// The `Retry-After` header value (RFC 9110 §10.2.3): whole seconds, rounded up, at least 1.
    pub fn header_value(&self) -> String {
        let micros = self.wait.as_micros();
        micros.div_ceil(1_000_000).max(1).to_string()
    }
}

/// `governor`'s clock, read from ours so tests drive it.
#[derive(Debug, Clone)]
struct GovClock(Arc<dyn Clock>);

impl GovClockTrait for GovClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.0.now().timestamp_micros().max(0) as u64 * 1_000)
    }
}

type Keyed = RateLimiter<
    String,
    DashMapStateStore<String>,
    GovClock,
    governor::middleware::NoOpMiddleware<Nanos>,
>;

struct Limiter {
    quota: RateQuota,
    local: Keyed,
}

/// The rate limits.
pub struct RateLimits {
    clock: Arc<dyn Clock>,
    counters: Arc<dyn Counters>,
    metrics: Arc<Metrics>,
    principal: Option<Limiter>,
    client: Option<Limiter>,
    tool_default: Option<Limiter>,
    tools: HashMap<String, Limiter>,
    max_keys: usize,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("shared", &self.counters.shared())
            .finish()
    }
}

fn limiter(q: &RateQuota, clock: &GovClock) -> Limiter {
    let per_min = NonZeroU32::new(q.per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(q.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Limiter {
        quota: *q,
        local: RateLimiter::dashmap_with_clock(
            Quota::per_minute(per_min).allow_burst(burst),
            clock.clone(),
        ),
    }
}

impl RateLimits {
    /// Limits from settings.
    pub fn new(
        s: &RateLimitSettings,
        clock: Arc<dyn Clock>,
        counters: Arc<dyn Counters>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gc = GovClock(clock.clone());
        Self {
            principal: s.per_principal.as_ref().map(|q| limiter(q, &gc)),
            client: s.per_client.as_ref().map(|q| limiter(q, &gc)),
            tool_default: s.per_tool_default.as_ref().map(|q| limiter(q, &gc)),
            tools: s
                .per_tool
                .iter()
                .map(|(k, q)| (k.clone(), limiter(q, &gc)))
                .collect(),
            max_keys: s.max_keys.max(1),
            clock,
            counters,
            metrics,
        }
    }

    fn limiter_for(&self, key: &RateKey) -> Option<&Limiter> {
        match key {
            RateKey::Principal(_) => self.principal.as_ref(),
            RateKey::Client(_) => self.client.as_ref(),
            RateKey::Tool(t) => self.tools.get(t).or(self.tool_default.as_ref()),
        }
    }

    /// Takes one token for `key`, or says how long to wait. Fails closed: when the shared
    /// counters cannot be reached the call is refused (and counted).
    pub fn check(&self, key: &RateKey) -> Result<(), RetryAfter> {
        let Some(l) = self.limiter_for(key) else {
            return Ok(());
        };
        let scope = key.scope();
        let result = if self.counters.shared() {
            let emission = Duration::from_micros(60_000_000 / u64::from(l.quota.per_minute.max(1)));
            match self.counters.gcra(
                &format!("{scope}:{}", key.id()),
                emission,
                l.quota.burst,
                self.clock.now(),
            ) {
                Ok(None) => Ok(()),
                Ok(Some(wait)) => Err(RetryAfter { scope, wait }),
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit check failed; refusing the call (fail closed)");
                    self.metrics.counter_errors.inc();
                    Err(RetryAfter {
                        scope,
                        wait: Duration::from_secs(1),
                    })
                }
            }
        } else {
            if l.local.len() >= self.max_keys {
                l.local.retain_recent();
                l.local.shrink_to_fit();
            }
            if l.local.len() >= self.max_keys {
                // Too many live keys (a key flood): refuse rather than grow without bound.
                self.metrics.counter_errors.inc();
                Err(RetryAfter {
                    scope,
                    wait: Duration::from_secs(1),
                })
            } else {
                let now = GovClock(self.clock.clone()).now();
                l.local
                    .check_key(&key.id().to_string())
                    .map_err(|nu| RetryAfter {
                        scope,
                        wait: nu.wait_time_from(now),
                    })
            }
        };
        if result.is_err() {
            self.metrics
                .rate_limited
                .get_or_create(&crate::metrics::ScopeLabel {
                    scope: scope.into(),
                })
                .inc();
        }
        result
    }
}
