//! How the gateway stays safe and useful when connectors fail or point somewhere they must not
//! (EG-1, EG-2):
//!
//! - [`RetryPolicy`]: bounded retries with exponential backoff and jitter, for read-only
//!   requests only, and only when nothing of an answer came yet.
//! - [`Breaker`]: a circuit breaker per connector, shared by all its sessions: after
//!   `breaker_failures` consecutive failures calls are refused at once for `breaker_cooldown`,
//!   then one trial call decides whether the connector is back.
//! - [`blocked_address`] and [`GuardedConnector`]: the HTTP client connects only to addresses
//!   checked at connect time, after resolution (so a name that re-resolves to the cloud
//!   metadata service is still refused: no DNS rebinding).
//! - [`Resilience`]: the above for every configured connector, with their metrics.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use ipnet::{Ipv4Net, Ipv6Net};
use parking_lot::Mutex;
use portcullis_core::Clock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rand::Rng;
use tower::Service;

use super::UpstreamError;

// ---------------------------------------------------------------------------------------------
// Addresses (EG-1)

/// 169.254.0.0/16: IPv4 link-local, home of most cloud metadata services.
const LINK_LOCAL_V4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16);
/// fe80::/10: IPv6 link-local.
const LINK_LOCAL_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10);
/// 64:ff9b::/96: the NAT64 well-known prefix; on a NAT64 network these reach the embedded
/// IPv4 address, so they are judged as that address.
const NAT64: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
/// Cloud metadata services: the one most clouds share (AWS, GCP, Azure, OCI) and Alibaba
/// Cloud's.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
];
/// AWS's IPv6 metadata service (Nitro instances).
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// Why the gateway never connects to `ip`, or `None` when it may.
///
/// EG-1: link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses (169.254.169.254,
/// fd00:ec2::254, 100.100.100.200) are refused, also in their IPv4-mapped (`::ffff:a.b.c.d`)
/// and NAT64 (`64:ff9b::a.b.c.d`) IPv6 forms. Loopback and private addresses stay allowed:
/// a connector an admin configured may well live there. (URLs in tool arguments get the
/// stricter check of the inspect stage.)
pub fn blocked_address(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) if METADATA_V4.contains(&v4) => Some("a cloud metadata address"),
        IpAddr::V4(v4) if LINK_LOCAL_V4.contains(&v4) => Some("a link-local address"),
        IpAddr::V6(v6) if METADATA_V6.contains(&v6) => Some("a cloud metadata address"),
        IpAddr::V6(v6) if LINK_LOCAL_V6.contains(&v6) => Some("a link-local address"),
        _ => None,
    }
}

/// The IPv4 address an IPv6 address stands for, when it embeds one that a connection to it
/// would reach; the address itself otherwise.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else if NAT64.contains(&v6) {
                let o = v6.octets();
                IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else {
                IpAddr::V6(v6)
            }
        }
        v4 => v4,
    }
}

/// A connection the gateway refused to make (EG-1). Its text says which host, which address,
/// why, and what to do; it names no secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the gateway does not connect to {ip} ({why}) for host '{host}'; link-local and cloud \
     metadata addresses are blocked whatever the connector URL says (EG-1): fix the \
     connector's URL, or the DNS records of its host, to name the connector's own address"
)]
pub struct BlockedAddress {
    /// The host as the URL names it.
    pub host: String,
    /// The address it is or resolved to.
    pub ip: IpAddr,
    /// Which kind of address it is.
    pub why: &'static str,
}

/// Resolves host names for the gateway's HTTP client. Whatever it answers is checked with
/// [`blocked_address`] before any connection is made, so a resolver cannot open a way around
/// EG-1.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal).
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (getaddrinfo on a blocking thread).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fixed map from host names to addresses, like curl's `--resolve`: for tests, and for
/// pinning connectors to known addresses. Names not in the map do not resolve.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    map: std::collections::HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// A resolver answering `host` with its addresses (names compared case-insensitively).
    pub fn new(entries: impl IntoIterator<Item = (String, Vec<IpAddr>)>) -> Self {
        Self {
            map: entries
                .into_iter()
                .map(|(h, a)| (h.to_ascii_lowercase(), a))
                .collect(),
        }
    }
}

impl Resolve for StaticResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.map.get(&host.to_ascii_lowercase()).cloned();
        let host = host.to_string();
        Box::pin(async move {
            found.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("host '{host}' is not in the resolver map"),
                )
            })
        })
    }
}

static SYSTEM_RESOLVER: LazyLock<Arc<dyn Resolve>> = LazyLock::new(|| Arc::new(SystemResolver));

/// Which [`Resolve`] a client uses: the system's until one is set (once, before the gateway
/// serves; see `Gateway::with_resolver`).
#[derive(Default)]
pub struct ResolverSlot(OnceLock<Arc<dyn Resolve>>);

impl ResolverSlot {
    /// Uses `r` from now on; `false` when a resolver was set already (the first one stays, so
    /// that connections made so far and later agree).
    pub fn set(&self, r: Arc<dyn Resolve>) -> bool {
        self.0.set(r).is_ok()
    }

    fn get(&self) -> Arc<dyn Resolve> {
        self.0
            .get()
            .cloned()
            .unwrap_or_else(|| SYSTEM_RESOLVER.clone())
    }
}

/// Why a name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// It resolved to an address the gateway never connects to.
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
    /// It did not resolve.
    #[error("could not resolve host '{host}': {source}; check the connector URL and DNS")]
    Lookup {
        /// The host.
        host: String,
        /// What the resolver said.
        source: std::io::Error,
    },
}

/// The resolver the HTTP connector asks: the slot's [`Resolve`], every answer checked. One
/// blocked address refuses the whole name: a name that mixes the metadata service into its
/// answers is not to be trusted with the others.
#[derive(Clone)]
pub struct GuardedResolver {
    slot: Arc<ResolverSlot>,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_string();
        let resolver = self.slot.get();
        Box::pin(async move {
            let ips = match resolver.resolve(&host).await {
                Ok(ips) => ips,
                Err(source) => return Err(ResolveError::Lookup { host, source }),
            };
            if ips.is_empty() {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
                return Err(ResolveError::Lookup { host, source });
            }
            if let Some((ip, why)) = ips
                .iter()
                .find_map(|ip| blocked_address(*ip).map(|w| (*ip, w)))
            {
                return Err(BlockedAddress { host, ip, why }.into());
            }
            // The port is set by the connector from the URL.
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TCP connector under TLS: names go through the [`GuardedResolver`], and IP literals in
/// URLs (which a resolver never sees) get the same check here.
#[derive(Clone)]
pub struct GuardedConnector {
    http: HttpConnector<GuardedResolver>,
}

impl GuardedConnector {
    /// A connector resolving through `slot`: TCP_NODELAY, 10 s to connect, any scheme (TLS is
    /// the layer above).
    pub fn new(slot: Arc<ResolverSlot>) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { slot });
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        Self { http }
    }
}

impl Service<http::Uri> for GuardedConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let host = dst.host().unwrap_or("");
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && let Some(why) = blocked_address(ip)
        {
            let e = BlockedAddress {
                host: host.to_string(),
                ip,
                why,
            };
            return Box::pin(std::future::ready(Err(Box::new(e) as BoxError)));
        }
        let fut = self.http.call(dst);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// The [`BlockedAddress`] somewhere in an error's chain of causes, if the error is one.
pub fn find_blocked<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BlockedAddress> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<BlockedAddress>() {
            return Some(b);
        }
        if let Some(ResolveError::Blocked(b)) = err.downcast_ref::<ResolveError>() {
            return Some(b);
        }
        cur = err.source();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Retries (EG-2)

/// Protocol methods that only read, so that sending them twice changes nothing.
const PROTOCOL_READS: &[&str] = &[
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "ping",
];

/// Whether `method` is a protocol read (retried like a read-only tool call). `tools/call` is
/// not: whether a call only reads depends on its tool's listed annotations.
pub fn is_protocol_read(method: &str) -> bool {
    PROTOCOL_READS.contains(&method)
}

/// The longest `Retry-After` a retry waits for; a connector asking for more gets its wish
/// (no retry) and the caller the error.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// When and how long to wait before sending a read-only request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the connector's `egress.retries`).
    pub retries: u32,
    /// The wait before the first retry; each next one doubles it (then jitter).
    pub base: Duration,
}

impl RetryPolicy {
    /// `retries` retries, the first after about 50 ms.
    pub fn new(retries: u32) -> Self {
        Self {
            retries,
            base: Duration::from_millis(50),
        }
    }

    /// The backoff before retry number `retry` (1 for the first): `base * 2^(retry-1)`, scaled
    /// by a random factor in [0.5, 1) drawn from `rng`, so that many clients failing together
    /// do not come back together.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.base * 2u32.saturating_pow(retry.saturating_sub(1).min(16));
        nominal.mul_f64(0.5 + rng.random::<f64>() / 2.0)
    }

    /// How long to wait before retry number `retry` after `e`, with `remaining` left of the
    /// request's deadline; `None` when there is to be no retry: retries spent, an error that
    /// a retry would not cure or that may have reached the connector, a `Retry-After` longer
    /// than [`MAX_RETRY_AFTER`], or a wait that would not end before the deadline.
    ///
    /// Retried: the connector unreachable (connection refused or reset before an answer) and
    /// HTTP 429, 502, 503 and 504 without a JSON-RPC body. Never: timeouts (the deadline is
    /// spent), refusals by the gateway itself (blocked address, bad certificate), credential
    /// failures, other answers.
    pub fn wait_before(
        &self,
        retry: u32,
        e: &UpstreamError,
        remaining: Duration,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if retry == 0 || retry > self.retries {
            return None;
        }
        let wait = match e {
            UpstreamError::Unavailable { .. } => self.backoff(retry, rng),
            UpstreamError::Protocol {
                status: Some(429 | 502 | 503 | 504),
                retry_after,
                ..
            } => match retry_after {
                Some(after) if *after > MAX_RETRY_AFTER => return None,
                Some(after) => *after,
                None => self.backoff(retry, rng),
            },
            _ => return None,
        };
        (wait < remaining).then_some(wait)
    }
}

/// Reads a `Retry-After` header given in seconds (the HTTP-date form is not honoured: a
/// connector busy until a date is busy for longer than a retry waits).
pub fn parse_retry_after(v: &http::HeaderValue) -> Option<Duration> {
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker (EG-2)

/// What the breaker of a connector lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down ended: the next call is a trial; its outcome closes or opens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// The value of the `circuit_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { failures: u32, until: DateTime<Utc> },
    HalfOpen { failures: u32, trial: bool },
}

/// How one call through the breaker ended, as far as the breaker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The connector answered (an error in JSON-RPC is an answer too).
    Answered,
    /// It was unavailable, timed out or failed with a 5xx.
    Failed,
    /// Nothing to learn: the call never reached it (credential failure, refused by the
    /// gateway) or was abandoned.
    Neutral,
}

impl CallOutcome {
    /// What an upstream error says about the connector's health.
    pub fn of(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::Unavailable { .. } | UpstreamError::Timeout { .. } => Self::Failed,
            UpstreamError::Protocol {
                status: Some(s), ..
            } if *s >= 500 => Self::Failed,
            UpstreamError::Protocol {
                status: Some(_), ..
            }
            | UpstreamError::SessionGone { .. } => Self::Answered,
            // A blocked address or bad certificate keeps its own clear message rather than
            // turning into "failing"; garbage without a status is not an outage.
            UpstreamError::Protocol { status: None, .. }
            | UpstreamError::Blocked { .. }
            | UpstreamError::Credential { .. } => Self::Neutral,
        }
    }
}

/// A refusal by an open breaker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerOpen {
    /// Open: refused until the cool-down ends.
    #[error(
        "connector '{connector}' is failing: {failures} consecutive failures; calls are refused \
         for the next {} s", .retry_in.as_millis().div_ceil(1000).max(1)
    )]
    CoolingDown {
        /// Connector name.
        connector: String,
        /// Consecutive failures so far.
        failures: u32,
        /// Until the cool-down ends (rounded up to whole seconds in the message).
        retry_in: Duration,
    },
    /// Half-open with its trial call under way.
    #[error(
        "connector '{connector}' is failing: {failures} consecutive failures; one trial call is \
         under way and other calls are refused until it answers"
    )]
    Trial {
        /// Connector name.
        connector: String,
        /// Consecutive failures so far.
        failures: u32,
    },
}

/// The circuit breaker of one connector: closed, open after `threshold` consecutive failures,
/// half-open (one trial call) once `cooldown` passed on the injected clock, closed again after
/// the trial's success.
pub struct Breaker {
    connector: String,
    threshold: u32,
    cooldown: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("connector", &self.connector)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    /// A closed breaker for `connector`.
    pub fn new(
        connector: &str,
        threshold: u32,
        cooldown: Duration,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            connector: connector.to_string(),
            threshold: threshold.max(1),
            cooldown,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
        })
    }

    /// Where it stands now (an open breaker whose cool-down ended shows as half-open).
    pub fn state(&self) -> BreakerState {
        match *self.state.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until, .. } if self.clock.now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Lets one call through, or refuses it. The call reports how it ended through the
    /// [`Permit`]; a permit dropped without a report counts as [`CallOutcome::Neutral`].
    pub fn admit(self: &Arc<Self>) -> Result<Permit, BreakerOpen> {
        let mut s = self.state.lock();
        let trial = match *s {
            State::Closed { .. } => false,
            State::Open { failures, until } => {
                let now = self.clock.now();
                if now < until {
                    let retry_in = (until - now).to_std().unwrap_or_default();
                    return Err(BreakerOpen::CoolingDown {
                        connector: self.connector.clone(),
                        failures,
                        retry_in,
                    });
                }
                *s = State::HalfOpen {
                    failures,
                    trial: true,
                };
                true
            }
            State::HalfOpen { failures, trial } => {
                if trial {
                    return Err(BreakerOpen::Trial {
                        connector: self.connector.clone(),
                        failures,
                    });
                }
                *s = State::HalfOpen {
                    failures,
                    trial: true,
                };
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            trial,
            settled: false,
        })
    }

    fn record(&self, trial: bool, outcome: CallOutcome) {
        let mut s = self.state.lock();
        let next = match (outcome, *s) {
            (CallOutcome::Answered, State::Closed { failures: 0 }) => return,
            (CallOutcome::Answered, prev) => {
                if !matches!(prev, State::Closed { .. }) {
                    tracing::info!(connector = %self.connector, "circuit breaker closed: the connector answers again");
                }
                State::Closed { failures: 0 }
            }
            (CallOutcome::Failed, State::Closed { failures }) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    tracing::warn!(connector = %self.connector, failures, "circuit breaker opened");
                    State::Open {
                        failures,
                        until: self.clock.now() + self.cooldown,
                    }
                } else {
                    State::Closed { failures }
                }
            }
            // A call let through before the breaker opened failed late: counted, the
            // cool-down unchanged.
            (CallOutcome::Failed, State::Open { failures, until }) => State::Open {
                failures: failures.saturating_add(1),
                until,
            },
            (CallOutcome::Failed, State::HalfOpen { failures, trial: t }) => {
                let failures = failures.saturating_add(1);
                if trial {
                    tracing::warn!(connector = %self.connector, failures, "circuit breaker trial failed; open again");
                    State::Open {
                        failures,
                        until: self.clock.now() + self.cooldown,
                    }
                } else {
                    State::HalfOpen { failures, trial: t }
                }
            }
            // An abandoned trial frees the way for another.
            (CallOutcome::Neutral, State::HalfOpen { failures, .. }) if trial => State::HalfOpen {
                failures,
                trial: false,
            },
            (CallOutcome::Neutral, _) => return,
        };
        *s = next;
    }
}

/// One call let through a [`Breaker`]; report how it ended with [`Permit::settle`].
#[must_use = "report the call's outcome with settle()"]
pub struct Permit {
    breaker: Arc<Breaker>,
    trial: bool,
    settled: bool,
}

impl Permit {
    /// Records how the call ended.
    pub fn settle(mut self, outcome: CallOutcome) {
        self.settled = true;
        self.breaker.record(self.trial, outcome);
    }

    /// Whether this call is the trial of a half-open breaker.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.record(self.trial, CallOutcome::Neutral);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// All connectors

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabel {
    connector: String,
}

/// Retry policies and breakers of every configured connector (by index), the resolver of the
/// gateway's HTTP client, and their metrics.
pub struct Resilience {
    names: Vec<String>,
    breakers: Vec<Arc<Breaker>>,
    retry: Vec<RetryPolicy>,
    resolver: Arc<ResolverSlot>,
    registry: Registry,
    state: Family<ConnectorLabel, Gauge>,
    retries: Family<ConnectorLabel, Counter>,
    refusals: Family<ConnectorLabel, Counter>,
}

impl Resilience {
    /// From the connectors' `egress` settings; breakers measure time on `clock`.
    pub fn new(connectors: &[portcullis_config::Connector], clock: Arc<dyn Clock>) -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let state = Family::<ConnectorLabel, Gauge>::default();
        let retries = Family::<ConnectorLabel, Counter>::default();
        let refusals = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker of each connector: 0 closed, 1 half-open, 2 open",
            state.clone(),
        );
        registry.register(
            "upstream_retries",
            "Retries of read-only requests, by connector",
            retries.clone(),
        );
        registry.register(
            "circuit_breaker_refusals",
            "Calls refused by an open circuit breaker, by connector",
            refusals.clone(),
        );
        Self {
            names: connectors.iter().map(|c| c.name.clone()).collect(),
            breakers: connectors
                .iter()
                .map(|c| {
                    Breaker::new(
                        &c.name,
                        c.egress.breaker_failures,
                        c.egress.breaker_cooldown,
                        clock.clone(),
                    )
                })
                .collect(),
            retry: connectors
                .iter()
                .map(|c| RetryPolicy::new(c.egress.retries))
                .collect(),
            resolver: Arc::new(ResolverSlot::default()),
            registry,
            state,
            retries,
            refusals,
        }
    }

    /// The resolver slot the gateway's HTTP client resolves through.
    pub fn resolver(&self) -> Arc<ResolverSlot> {
        self.resolver.clone()
    }

    /// The breaker of connector `i`.
    pub fn breaker(&self, i: usize) -> Option<&Arc<Breaker>> {
        self.breakers.get(i)
    }

    /// Lets a call to connector `i` through its breaker, or says why not (counted).
    pub fn admit(&self, i: usize) -> Result<Option<Permit>, BreakerOpen> {
        let Some(b) = self.breakers.get(i) else {
            return Ok(None);
        };
        b.admit().map(Some).inspect_err(|_| {
            self.refusals.get_or_create(&self.label(i)).inc();
        })
    }

    /// The retry policy of connector `i` (none for an unknown index).
    pub fn retry_policy(&self, i: usize) -> RetryPolicy {
        self.retry.get(i).copied().unwrap_or(RetryPolicy::new(0))
    }

    /// Counts `n` retries of a request to connector `i`.
    pub fn count_retries(&self, i: usize, n: u32) {
        self.retries
            .get_or_create(&self.label(i))
            .inc_by(u64::from(n));
    }

    fn label(&self, i: usize) -> ConnectorLabel {
        ConnectorLabel {
            connector: self.names.get(i).cloned().unwrap_or_default(),
        }
    }

    /// The metrics in the Prometheus text format, without the closing `# EOF` (they are
    /// appended to the gateway's).
    pub fn render_metrics(&self) -> String {
        for (i, b) in self.breakers.iter().enumerate() {
            self.state
                .get_or_create(&self.label(i))
                .set(b.state().gauge());
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        if let Some(at) = out.find("# EOF") {
            out.truncate(at);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::clock::ManualClock;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn link_local_and_metadata_addresses_are_blocked_in_every_form() {
        for blocked in [
            "169.254.169.254",
            "169.254.0.1",
            "169.254.170.2",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:100.100.100.200",
            "::ffff:a9fe:a9fe",
            "64:ff9b::169.254.169.254",
        ] {
            assert!(blocked_address(ip(blocked)).is_some(), "{blocked} passed");
        }
        assert_eq!(
            blocked_address(ip("169.254.169.254")),
            Some("a cloud metadata address")
        );
        assert_eq!(
            blocked_address(ip("::ffff:169.254.1.1")),
            Some("a link-local address")
        );
        // EG-1: connectors an admin configured may live on loopback or private networks.
        for allowed in [
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "192.168.1.1",
            "172.16.0.1",
            "fd00::1",
            "fd00:ec2::253",
            "100.100.100.201",
            "169.253.255.255",
            "169.255.0.0",
            "fec0::1",
            "8.8.8.8",
            "2001:db8::1",
        ] {
            assert_eq!(blocked_address(ip(allowed)), None, "{allowed} blocked");
        }
    }

    #[tokio::test]
    async fn the_guarded_resolver_refuses_a_name_with_any_blocked_address() {
        let map = StaticResolver::new([
            ("meta.test".to_string(), vec![ip("169.254.169.254")]),
            (
                "mixed.test".to_string(),
                vec![ip("10.0.0.1"), ip("::ffff:169.254.169.254")],
            ),
            ("fine.test".to_string(), vec![ip("127.0.0.1")]),
        ]);
        let slot = Arc::new(ResolverSlot::default());
        assert!(slot.set(Arc::new(map)));
        assert!(!slot.set(Arc::new(SystemResolver)), "set only once");
        let mut r = GuardedResolver { slot };
        let name = |s: &str| s.parse::<Name>().unwrap();
        let e = r.call(name("meta.test")).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("169.254.169.254")
                && msg.contains("meta.test")
                && msg.contains("cloud metadata"),
            "{msg}"
        );
        assert!(find_blocked(&e).is_some());
        assert!(matches!(
            r.call(name("mixed.test")).await,
            Err(ResolveError::Blocked(_))
        ));
        let ok: Vec<SocketAddr> = r.call(name("FINE.test")).await.unwrap().collect();
        assert_eq!(ok, vec!["127.0.0.1:0".parse().unwrap()]);
        let e = r.call(name("unknown.test")).await.unwrap_err();
        assert!(matches!(e, ResolveError::Lookup { .. }), "{e}");
        assert!(find_blocked(&e).is_none());
    }

    #[tokio::test]
    async fn the_connector_refuses_ip_literals_the_resolver_never_sees() {
        let mut c = GuardedConnector::new(Arc::new(ResolverSlot::default()));
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "https://[::ffff:169.254.169.254]:8443/",
        ] {
            let e = c.call(url.parse().unwrap()).await.unwrap_err();
            assert!(find_blocked(e.as_ref()).is_some(), "{url}: {e}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_from_the_injected_rng() {
        let p = RetryPolicy::new(5);
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=4u32 {
            let nominal = Duration::from_millis(50) * 2u32.pow(retry - 1);
            let d = p.backoff(retry, &mut rng);
            assert!(d >= nominal / 2 && d < nominal, "retry {retry}: {d:?}");
        }
        // The same seed gives the same waits: the randomness is the caller's.
        let a: Vec<_> = (1..4)
            .map(|r| p.backoff(r, &mut StdRng::seed_from_u64(1)))
            .collect();
        let b: Vec<_> = (1..4)
            .map(|r| p.backoff(r, &mut StdRng::seed_from_u64(1)))
            .collect();
        assert_eq!(a, b);
    }

    fn status(s: u16, retry_after: Option<u64>) -> UpstreamError {
        UpstreamError::Protocol {
            connector: "c".into(),
            detail: format!("HTTP {s}"),
            status: Some(s),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn only_failures_before_an_answer_are_retried_within_the_deadline() {
        let p = RetryPolicy::new(2);
        let mut rng = StdRng::seed_from_u64(3);
        let long = Duration::from_secs(30);
        let down = UpstreamError::Unavailable {
            connector: "c".into(),
            detail: "connection refused".into(),
        };
        assert!(p.wait_before(1, &down, long, &mut rng).is_some());
        assert!(p.wait_before(2, &down, long, &mut rng).is_some());
        assert_eq!(p.wait_before(3, &down, long, &mut rng), None, "bounded");
        for s in [502, 503, 504, 429] {
            assert!(p.wait_before(1, &status(s, None), long, &mut rng).is_some());
        }
        for s in [500, 400, 401, 404] {
            assert_eq!(p.wait_before(1, &status(s, None), long, &mut rng), None);
        }
        // Retry-After is honoured up to 2 s, and a longer one means no retry.
        assert_eq!(
            p.wait_before(1, &status(429, Some(2)), long, &mut rng),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.wait_before(1, &status(503, Some(3)), long, &mut rng),
            None
        );
        // The wait must end before the deadline.
        assert_eq!(
            p.wait_before(
                1,
                &status(503, Some(1)),
                Duration::from_millis(900),
                &mut rng
            ),
            None
        );
        assert_eq!(
            p.wait_before(1, &down, Duration::from_millis(10), &mut rng),
            None
        );
        let never = [
            UpstreamError::Timeout {
                connector: "c".into(),
                after: long,
            },
            UpstreamError::Blocked {
                connector: "c".into(),
                detail: "metadata".into(),
            },
            UpstreamError::Credential {
                connector: "c".into(),
                detail: "no token".into(),
            },
            UpstreamError::SessionGone {
                connector: "c".into(),
            },
        ];
        for e in never {
            assert_eq!(p.wait_before(1, &e, long, &mut rng), None, "{e}");
        }
        assert_eq!(
            RetryPolicy::new(0).wait_before(1, &down, long, &mut rng),
            None
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let v = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert_eq!(parse_retry_after(&v("1")), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(&v(" 0 ")), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&v("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(&v("-1")), None);
    }

    fn clock() -> ManualClock {
        ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap())
    }

    #[test]
    fn the_breaker_opens_refuses_half_opens_and_closes() {
        let clock = clock();
        let b = Breaker::new("crm", 3, Duration::from_secs(30), Arc::new(clock.clone()));
        // Failures that are not consecutive do not open it.
        b.admit().unwrap().settle(CallOutcome::Failed);
        b.admit().unwrap().settle(CallOutcome::Failed);
        b.admit().unwrap().settle(CallOutcome::Answered);
        b.admit().unwrap().settle(CallOutcome::Failed);
        b.admit().unwrap().settle(CallOutcome::Failed);
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().settle(CallOutcome::Failed);
        assert_eq!(b.state(), BreakerState::Open);
        // Open: refused at once, with how long it stays so.
        clock.advance(Duration::from_millis(10_500));
        let e = b.admit().err().unwrap();
        assert_eq!(
            e.to_string(),
            "connector 'crm' is failing: 3 consecutive failures; calls are refused for the next 20 s"
        );
        // Half-open after the cool-down: one trial, the others refused while it runs.
        clock.advance(Duration::from_millis(19_500));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let trial = b.admit().unwrap();
        assert!(trial.is_trial());
        assert!(matches!(b.admit(), Err(BreakerOpen::Trial { .. })));
        // The trial fails: open again for a full cool-down.
        trial.settle(CallOutcome::Failed);
        assert_eq!(b.state(), BreakerState::Open);
        let e = b.admit().err().unwrap();
        assert!(
            e.to_string()
                .contains("4 consecutive failures; calls are refused for the next 30 s"),
            "{e}"
        );
        clock.advance(Duration::from_secs(30));
        // An abandoned trial lets another one through.
        drop(b.admit().unwrap());
        let trial = b.admit().unwrap();
        assert!(trial.is_trial());
        trial.settle(CallOutcome::Answered);
        assert_eq!(b.state(), BreakerState::Closed);
        let p = b.admit().unwrap();
        assert!(!p.is_trial());
        p.settle(CallOutcome::Answered);
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_reset() {
        let clock = clock();
        let b = Breaker::new("c", 2, Duration::from_secs(5), Arc::new(clock));
        b.admit().unwrap().settle(CallOutcome::Failed);
        b.admit().unwrap().settle(CallOutcome::Neutral);
        drop(b.admit().unwrap());
        b.admit().unwrap().settle(CallOutcome::Failed);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn late_failures_of_calls_let_through_earlier_are_counted() {
        let clock = clock();
        let b = Breaker::new("c", 1, Duration::from_secs(5), Arc::new(clock.clone()));
        let early = b.admit().unwrap();
        b.admit().unwrap().settle(CallOutcome::Failed);
        early.settle(CallOutcome::Failed);
        let e = b.admit().err().unwrap();
        assert!(e.to_string().contains("2 consecutive failures"), "{e}");
    }

    #[test]
    fn errors_are_judged_for_the_breaker() {
        assert_eq!(CallOutcome::of(&status(503, None)), CallOutcome::Failed);
        assert_eq!(CallOutcome::of(&status(500, None)), CallOutcome::Failed);
        assert_eq!(CallOutcome::of(&status(404, None)), CallOutcome::Answered);
        let t = UpstreamError::Timeout {
            connector: "c".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(CallOutcome::of(&t), CallOutcome::Failed);
        let b = UpstreamError::Blocked {
            connector: "c".into(),
            detail: "x".into(),
        };
        assert_eq!(CallOutcome::of(&b), CallOutcome::Neutral);
    }

    #[test]
    fn metrics_show_each_breaker() {
        let config = portcullis_config::load_str(
            "connectors:\n  crm:\n    type: demo\n    egress:\n      breaker_failures: 1\n  other:\n    type: demo\n",
            "t.yaml",
        )
        .unwrap();
        let clock = clock();
        let r = Resilience::new(&config.connectors, Arc::new(clock));
        r.admit(0).unwrap().unwrap().settle(CallOutcome::Failed);
        assert!(r.admit(0).is_err());
        r.count_retries(1, 2);
        let text = r.render_metrics();
        assert!(
            text.contains(r#"portcullis_circuit_breaker_state{connector="crm"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_circuit_breaker_state{connector="other"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_upstream_retries_total{connector="other"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_circuit_breaker_refusals_total{connector="crm"} 1"#),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
