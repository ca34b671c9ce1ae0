//! Egress checks of URLs in tool arguments (EG-1, IV-4).
//!
//! An [`EgressGuard`] is built once per connector from its validated `egress:` section and
//! answers one question: may an argument of this connector's tools point at this URL? A URL
//! passes only when
//! 1. it is an absolute `http` or `https` URL without a user name or password in it,
//! 2. its host is on the connector's allow-list (exact names, `*.suffix` for subdomains, IP
//!    addresses, CIDRs), and
//! 3. the address behind it is of a class URL arguments may reach: never loopback, link-local,
//!    cloud metadata, unspecified, multicast or broadcast; private (RFC 1918, ULA, CGNAT) only
//!    with `allow_private`; documentation and reserved ranges only when an IP or CIDR entry of
//!    the allow-list names them explicitly (a catch-all such as `0.0.0.0/0` does not).
//!
//! For a host name, step 3 runs on what the name resolves to, through a [`Resolver`], and every
//! address must pass: a name on the allow-list that resolves to `127.0.0.1` or
//! `169.254.169.254` is refused (DNS rebinding). The connector resolves the name again when it
//! fetches, so a record that flips between our check and its fetch stays possible; the
//! gateway's own connections use [`classify`] at connect time to close that gap for the
//! traffic it makes itself.
//!
//! Odd IPv4 spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`) are normalised by the `url`
//! crate's WHATWG host parser before any rule runs, and IPv4-mapped, -compatible, NAT64 and 6to4
//! IPv6 forms are classified by the IPv4 address they carry.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_config::inspect::ValidEgress;
use url::{Host, Url};

/// How long a name may take to resolve before the URL is refused (fail closed).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Host names longer than this are cut in messages and reasons (the DNS limit is 253).
const MAX_HOST_CHARS: usize = 253;

/// The class of an IP address, as far as egress rules care (EG-1).
///
/// [`classify`] is pure, so the gateway applies the same rules when it connects upstream as
/// this module applies to URL arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// A globally routable unicast address.
    Public,
    /// `127.0.0.0/8`, `::1`: the machine itself.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), CGNAT shared space (`100.64/10`), IPv6
    /// unique-local (`fc00::/7`) and the deprecated site-local (`fec0::/10`).
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata services (AWS, GCP, Azure, Alibaba), which hand out credentials.
    Metadata,
    /// `0.0.0.0/8` and `::`: on Linux, connecting to them reaches the machine itself.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Everything else that is not public unicast: `240/4`, `192.0.0/24`, benchmarking
    /// (`198.18/15`, `2001:2::/48`), Teredo, discard-only, IPv6 outside `2000::/3`, and
    /// deprecated IPv4-compatible IPv6 forms of public addresses.
    Reserved,
}

impl AddressClass {
    /// The snake-case name used in reasons (`link_local`).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Metadata => "metadata",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }

    /// The class in words, with its article, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address (this machine)",
            AddressClass::Private => "a private network address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata service address",
            AddressClass::Unspecified => "the unspecified address (this machine)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Documentation => "a documentation-only address",
            AddressClass::Reserved => "a reserved, non-public address",
        }
    }

    /// Classes no URL argument may ever reach, whatever the allow-list or `allow_private` say:
    /// they reach the gateway's own machine, its link, or credential-issuing metadata services.
    pub fn is_always_refused(self) -> bool {
        matches!(
            self,
            AddressClass::Loopback
                | AddressClass::LinkLocal
                | AddressClass::Metadata
                | AddressClass::Unspecified
                | AddressClass::Multicast
                | AddressClass::Broadcast
        )
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Instance metadata endpoints. They sit inside other classes (link-local, CGNAT, ULA, even
/// public space for Azure's wire server), so they are matched first.
const METADATA_V4: [Ipv4Addr; 5] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure IMDS, OCI, OpenStack
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure wire server
];
const METADATA_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023), // AWS EKS pod identity
    Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254), // GCP metadata over IPv6
];

/// Classifies an address (EG-1). Pure; the same rules serve URL arguments and the gateway's
/// connect-time checks.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    if METADATA_V4.contains(&ip) {
        return Metadata;
    }
    let o = ip.octets();
    if o[0] == 0 {
        return Unspecified;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    if ip.is_link_local() {
        return LinkLocal;
    }
    if ip.is_private() || in_v4(ip, [100, 64, 0, 0], 10) {
        return Private;
    }
    if ip.is_broadcast() {
        return Broadcast;
    }
    if ip.is_multicast() {
        return Multicast;
    }
    if ip.is_documentation() {
        return Documentation;
    }
    if in_v4(ip, [240, 0, 0, 0], 4)
        || in_v4(ip, [192, 0, 0, 0], 24)
        || in_v4(ip, [198, 18, 0, 0], 15)
        || in_v4(ip, [192, 88, 99, 0], 24)
    {
        return Reserved;
    }
    Public
}

/// The IPv4 address in the last 32 bits.
fn low_v4(s: &[u16; 8]) -> Ipv4Addr {
    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if METADATA_V6.contains(&ip) {
        return Metadata;
    }
    if ip.is_unspecified() {
        return Unspecified;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    let s = ip.segments();
    // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated) reach the IPv4 address.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return classify_v4(low_v4(&s));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return classify_v4(low_v4(&s));
    }
    // ::a.b.c.d (IPv4-compatible, deprecated): a stack that still honours it reaches the
    // IPv4 address; a public one is only reachable through an obsolete mechanism.
    if s[..6] == [0; 6] {
        return match classify_v4(low_v4(&s)) {
            Public => Reserved,
            c => c,
        };
    }
    // NAT64 well-known prefix: the translator connects to the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(low_v4(&s));
    }
    // NAT64 local-use prefix (RFC 8215): an operator's own translator.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return match classify_v4(low_v4(&s)) {
            Public => Private,
            c => c,
        };
    }
    // 6to4: the relay reaches the IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return classify_v4(v4);
    }
    if ip.is_multicast() {
        return Multicast;
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return LinkLocal;
    }
    if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        return Private;
    }
    if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xfff0) == 0x3ff0 {
        return Documentation;
    }
    // Teredo hides its IPv4 address; benchmarking; ORCHID; discard-only.
    if (s[0] == 0x2001 && s[1] == 0)
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
        || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020)
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010)
        || (s[..4] == [0x0100, 0, 0, 0])
    {
        return Reserved;
    }
    // Only 2000::/3 is allocated for global unicast.
    if (s[0] & 0xe000) != 0x2000 {
        return Reserved;
    }
    Public
}

/// Names that reach this machine or a metadata service without any DNS being asked, refused
/// even when resolution is off. `*.localhost` is included (RFC 6761 makes it loopback).
fn special_name(host: &str) -> Option<AddressClass> {
    const METADATA_NAMES: [&str; 4] = [
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    if host == "localhost" || host.ends_with(".localhost") || host == "localhost.localdomain" {
        Some(AddressClass::Loopback)
    } else if METADATA_NAMES.contains(&host) {
        Some(AddressClass::Metadata)
    } else {
        None
    }
}

/// What a [`Resolver`] returns: the addresses of a name, or why it has none.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Resolves host names to addresses. Object-safe so the gateway can hold `Arc<dyn Resolver>`
/// and tests can pass a [`FixedResolver`].
pub trait Resolver: Send + Sync {
    /// Every address `host` resolves to (`port` is what the URL would connect to; resolvers
    /// that do not care ignore it).
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The operating system's resolver, through `tokio::net::lookup_host` (`getaddrinfo` on a
/// blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A resolver answering from a fixed map of lowercase names, for tests and for connectors
/// whose hosts are pinned in configuration. Unknown names fail as "not found".
#[derive(Debug, Clone, Default)]
pub struct FixedResolver {
    map: HashMap<String, Vec<IpAddr>>,
}

impl FixedResolver {
    /// An empty map: every name fails to resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the addresses of `host`.
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.map.insert(
            host.trim_end_matches('.').to_ascii_lowercase(),
            addrs.to_vec(),
        );
        self
    }
}

impl Resolver for FixedResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        let found = self.map.get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// Why a URL was refused. `Display` is the sentence for the client and the person behind it:
/// what was wrong and what to do; it names the host, never the path or query (which may carry
/// the data being exfiltrated). [`EgressRefusal::reason`] is the machine reason for the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefusal {
    /// Not a URL at all, or not an absolute one.
    #[error("the URL is not valid ({detail}); give an absolute http or https URL")]
    InvalidUrl {
        /// The parser's complaint (it never quotes the input).
        detail: String,
    },
    /// A scheme other than http or https.
    #[error("the URL uses the scheme {scheme:?}; only http and https URLs may be passed to tools")]
    Scheme {
        /// The scheme, lowercased and cut to 20 characters.
        scheme: String,
    },
    /// A URL without a host (`http:///x` cannot be; `file`-like forms are refused as scheme).
    #[error("the URL has no host; give an absolute http or https URL with a host name")]
    NoHost,
    /// `user:password@` in the URL.
    #[error(
        "the URL to {host} carries a user name or password; credentials may not be passed in \
         URLs (remove the `user:password@` part)"
    )]
    Userinfo {
        /// The host.
        host: String,
    },
    /// The host is not on the connector's allow-list.
    #[error(
        "the host {host} is not on the egress allow-list of connector {connector}; an \
         administrator can allow it under connectors.{connector}.egress.allow"
    )]
    NotAllowed {
        /// The host as normalised (lowercase, punycode, no trailing dot).
        host: String,
        /// The connector.
        connector: String,
    },
    /// The host is, or resolves to, an address of a refused class.
    #[error("{}", address_message(host, *class, connector, *resolved))]
    Address {
        /// The host as normalised.
        host: String,
        /// The class of the refused address.
        class: AddressClass,
        /// The connector.
        connector: String,
        /// Whether the address came from resolving a name (else the URL held it).
        resolved: bool,
    },
    /// The name did not resolve, or resolved to nothing.
    #[error(
        "the host {host} could not be resolved ({detail}); the URL is refused because the \
         addresses behind it cannot be checked"
    )]
    Unresolved {
        /// The host.
        host: String,
        /// What the resolver said.
        detail: String,
    },
    /// Resolution took too long.
    #[error(
        "resolving the host {host} took longer than {} ms; the URL is refused because the \
         addresses behind it cannot be checked; try again later",
        after.as_millis()
    )]
    ResolveTimeout {
        /// The host.
        host: String,
        /// The limit that passed.
        after: Duration,
    },
}

fn address_message(host: &str, class: AddressClass, connector: &str, resolved: bool) -> String {
    let what = if resolved {
        format!("the host {host} resolves to {}", class.describe())
    } else {
        format!("the host {host} is {}", class.describe())
    };
    match class {
        AddressClass::Private => format!(
            "{what}; URL arguments may not point into private networks unless an administrator \
             sets connectors.{connector}.egress.allow_private: true"
        ),
        AddressClass::Documentation | AddressClass::Reserved => format!(
            "{what}; such addresses pass only when an IP address or CIDR in \
             connectors.{connector}.egress.allow names them"
        ),
        _ => format!("{what}, which URL arguments may never reach"),
    }
}

impl EgressRefusal {
    /// The machine reason recorded on the event: `egress_unapproved:HOST` for a host outside
    /// the allow-list (the monitor's `egress.unapproved_domain` detector reads it),
    /// `egress_address:CLASS:HOST`, `egress_unresolved:HOST`, `egress_resolve_timeout:HOST`,
    /// `egress_userinfo:HOST`, `egress_scheme`, `egress_no_host`, `egress_invalid_url`.
    pub fn reason(&self) -> String {
        match self {
            EgressRefusal::InvalidUrl { .. } => "egress_invalid_url".into(),
            EgressRefusal::Scheme { .. } => "egress_scheme".into(),
            EgressRefusal::NoHost => "egress_no_host".into(),
            EgressRefusal::Userinfo { host } => format!("egress_userinfo:{host}"),
            EgressRefusal::NotAllowed { host, .. } => format!("egress_unapproved:{host}"),
            EgressRefusal::Address { host, class, .. } => format!("egress_address:{class}:{host}"),
            EgressRefusal::Unresolved { host, .. } => format!("egress_unresolved:{host}"),
            EgressRefusal::ResolveTimeout { host, .. } => format!("egress_resolve_timeout:{host}"),
        }
    }

    /// The host the refusal is about, when the URL had one.
    pub fn host(&self) -> Option<&str> {
        match self {
            EgressRefusal::InvalidUrl { .. }
            | EgressRefusal::Scheme { .. }
            | EgressRefusal::NoHost => None,
            EgressRefusal::Userinfo { host }
            | EgressRefusal::NotAllowed { host, .. }
            | EgressRefusal::Address { host, .. }
            | EgressRefusal::Unresolved { host, .. }
            | EgressRefusal::ResolveTimeout { host, .. } => Some(host),
        }
    }
}

/// One allow-list entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowEntry {
    /// An exact host name.
    Name(String),
    /// `*.suffix`: held as `.suffix`; matches subdomains only.
    Suffix(String),
    /// An IP address or a CIDR.
    Net(IpNet),
}

/// A URL that passed the static checks, waiting for its addresses to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTarget {
    /// The host as normalised (lowercase, punycode, no trailing dot; IPs in canonical form).
    pub host: String,
    /// The port the URL connects to.
    pub port: u16,
    /// Whether the host is a name that must be resolved before the URL may pass.
    pub needs_resolution: bool,
}

/// A connector's egress rules, compiled (EG-1, IV-4). Cheap to share; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct EgressGuard {
    connector: String,
    allow: Vec<AllowEntry>,
    resolve: bool,
    allow_private: bool,
    resolve_timeout: Duration,
}

impl EgressGuard {
    /// Compiles `connector`'s validated `egress:` section. Entries are already lowercase and
    /// checked by the config loader; an entry that is neither an address, a CIDR nor a
    /// wildcard is an exact name.
    pub fn new(connector: &str, egress: &ValidEgress) -> Self {
        let allow = egress
            .allow
            .iter()
            .map(|e| {
                let e = e.trim().trim_end_matches('.').to_ascii_lowercase();
                if let Ok(ip) = e.parse::<IpAddr>() {
                    AllowEntry::Net(IpNet::from(canonical_ip(ip)))
                } else if let Ok(net) = e.parse::<IpNet>() {
                    AllowEntry::Net(net.trunc())
                } else if let Some(suffix) = e.strip_prefix("*.") {
                    AllowEntry::Suffix(format!(".{suffix}"))
                } else {
                    AllowEntry::Name(e)
                }
            })
            .collect();
        Self {
            connector: connector.to_string(),
            allow,
            resolve: egress.resolve,
            allow_private: egress.allow_private,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
        }
    }

    /// The same guard with another resolution timeout (the default is 2 s).
    pub fn with_resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout;
        self
    }

    /// The connector the guard belongs to.
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// Checks a URL completely: the static checks of [`EgressGuard::precheck`], then, for a
    /// name when resolution is on, the addresses it resolves to.
    pub async fn check_url(&self, url: &str, resolver: &dyn Resolver) -> Result<(), EgressRefusal> {
        let target = self.precheck(url)?;
        self.check_target(&target, resolver).await
    }

    /// The checks that need no resolution: syntax, scheme, userinfo, special names, the
    /// allow-list, and the class of an IP literal. Callers checking many URLs run this on each
    /// and then [`EgressGuard::check_target`] once per distinct host.
    pub fn precheck(&self, url: &str) -> Result<UrlTarget, EgressRefusal> {
        let parsed = Url::parse(url).map_err(|e| EgressRefusal::InvalidUrl {
            detail: e.to_string(),
        })?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(EgressRefusal::Scheme {
                scheme: scheme.chars().take(20).collect(),
            });
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let host = match parsed.host() {
            None => return Err(EgressRefusal::NoHost),
            Some(Host::Domain(d)) => {
                let d = d.strip_suffix('.').unwrap_or(d);
                if d.is_empty() {
                    return Err(EgressRefusal::NoHost);
                }
                HostKind::Name(cut(&d.to_ascii_lowercase()))
            }
            Some(Host::Ipv4(v4)) => HostKind::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => HostKind::Ip(canonical_ip(IpAddr::V6(v6))),
        };
        let host_str = match &host {
            HostKind::Name(n) => n.clone(),
            HostKind::Ip(ip) => ip.to_string(),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressRefusal::Userinfo { host: host_str });
        }
        match host {
            HostKind::Ip(ip) => {
                let class = classify(ip);
                if class.is_always_refused() {
                    return Err(self.address_refusal(host_str, class, false));
                }
                let listed = self.allow.iter().any(|e| match e {
                    AllowEntry::Net(net) => net.contains(&ip),
                    _ => false,
                });
                if !listed {
                    return Err(EgressRefusal::NotAllowed {
                        host: host_str,
                        connector: self.connector.clone(),
                    });
                }
                self.class_allowed(ip, class)
                    .map_err(|c| self.address_refusal(host_str.clone(), c, false))?;
                Ok(UrlTarget {
                    host: host_str,
                    port,
                    needs_resolution: false,
                })
            }
            HostKind::Name(name) => {
                if let Some(class) = special_name(&name) {
                    return Err(self.address_refusal(name, class, false));
                }
                let listed = self.allow.iter().any(|e| match e {
                    AllowEntry::Name(n) => *n == name,
                    AllowEntry::Suffix(s) => name.ends_with(s.as_str()),
                    AllowEntry::Net(_) => false,
                });
                if !listed {
                    return Err(EgressRefusal::NotAllowed {
                        host: name,
                        connector: self.connector.clone(),
                    });
                }
                Ok(UrlTarget {
                    host: name,
                    port,
                    needs_resolution: self.resolve,
                })
            }
        }
    }

    /// Resolves a target's name (when it needs it) within the timeout and refuses it if the
    /// name does not resolve or if ANY of its addresses is of a refused class.
    pub async fn check_target(
        &self,
        target: &UrlTarget,
        resolver: &dyn Resolver,
    ) -> Result<(), EgressRefusal> {
        if !target.needs_resolution {
            return Ok(());
        }
        let host = target.host.as_str();
        let addrs =
            match tokio::time::timeout(self.resolve_timeout, resolver.resolve(host, target.port))
                .await
            {
                Err(_) => {
                    return Err(EgressRefusal::ResolveTimeout {
                        host: host.to_string(),
                        after: self.resolve_timeout,
                    });
                }
                Ok(Err(e)) => {
                    return Err(EgressRefusal::Unresolved {
                        host: host.to_string(),
                        detail: resolve_detail(&e),
                    });
                }
                Ok(Ok(a)) => a,
            };
        if addrs.is_empty() {
            return Err(EgressRefusal::Unresolved {
                host: host.to_string(),
                detail: "no addresses".into(),
            });
        }
        // The most severe refused class wins, so a name resolving to both a private and a
        // metadata address is reported as metadata.
        let mut worst: Option<AddressClass> = None;
        for ip in addrs {
            let ip = canonical_ip(ip);
            let class = classify(ip);
            let refused = if class.is_always_refused() {
                Some(class)
            } else {
                self.class_allowed(ip, class).err()
            };
            if let Some(c) = refused
                && worst.is_none_or(|w| severity(c) > severity(w))
            {
                worst = Some(c);
            }
        }
        match worst {
            Some(class) => Err(self.address_refusal(host.to_string(), class, true)),
            None => Ok(()),
        }
    }

    /// Whether an address of a class that is not always refused may be reached.
    fn class_allowed(&self, ip: IpAddr, class: AddressClass) -> Result<(), AddressClass> {
        match class {
            AddressClass::Public => Ok(()),
            AddressClass::Private if self.allow_private => Ok(()),
            // Only an entry that names such a range itself (its network is of the same
            // class) lets it through; a catch-all like `0.0.0.0/0` does not.
            AddressClass::Documentation | AddressClass::Reserved
                if self.allow.iter().any(|e| {
                    matches!(e, AllowEntry::Net(n)
                        if n.contains(&ip) && classify(n.network()) == class)
                }) =>
            {
                Ok(())
            }
            c => Err(c),
        }
    }

    fn address_refusal(&self, host: String, class: AddressClass, resolved: bool) -> EgressRefusal {
        EgressRefusal::Address {
            host,
            class,
            connector: self.connector.clone(),
            resolved,
        }
    }
}

enum HostKind {
    Name(String),
    Ip(IpAddr),
}

/// Ranks refused classes for reporting: the one most worth an alert first.
fn severity(c: AddressClass) -> u8 {
    match c {
        AddressClass::Metadata => 9,
        AddressClass::Loopback | AddressClass::Unspecified => 8,
        AddressClass::LinkLocal => 7,
        AddressClass::Private => 6,
        AddressClass::Multicast | AddressClass::Broadcast => 5,
        AddressClass::Reserved | AddressClass::Documentation => 4,
        AddressClass::Public => 0,
    }
}

/// IPv4-mapped IPv6 addresses are the IPv4 address for matching and display.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn cut(host: &str) -> String {
    if host.len() <= MAX_HOST_CHARS {
        host.to_string()
    } else {
        let mut end = MAX_HOST_CHARS;
        while !host.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &host[..end])
    }
}

/// A resolver error in a few words, without any OS-specific noise that might grow long.
fn resolve_detail(e: &io::Error) -> String {
    let s = e.to_string();
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classify_v4_classes() {
        use AddressClass::*;
        for (ip, class) in [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("100.128.0.1", Public),
            ("169.254.1.1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("168.63.129.16", Metadata),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Reserved),
        ] {
            assert_eq!(classify(v4(ip)), class, "{ip}");
        }
    }

    #[test]
    fn classify_v6_classes() {
        use AddressClass::*;
        for (ip, class) in [
            ("2606:4700:4700::1111", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("::ffff:0:127.0.0.1", Loopback),
            ("::127.0.0.1", Loopback),
            ("::8.8.8.8", Reserved),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::808:808", Public),
            ("64:ff9b:1::808:808", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:808:808::1", Public),
            ("fe80::1", LinkLocal),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fd00:ec2::254", Metadata),
            ("fd20:ce::254", Metadata),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),
            ("2001:2::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ] {
            assert_eq!(classify(v4(ip)), class, "{ip}");
        }
    }

    #[test]
    fn always_refused_classes() {
        use AddressClass::*;
        for c in [
            Loopback,
            LinkLocal,
            Metadata,
            Unspecified,
            Multicast,
            Broadcast,
        ] {
            assert!(c.is_always_refused(), "{c}");
        }
        for c in [Public, Private, Documentation, Reserved] {
            assert!(!c.is_always_refused(), "{c}");
        }
    }

    #[test]
    fn allow_entries_compile() {
        let g = EgressGuard::new(
            "c",
            &ValidEgress {
                allow: vec![
                    "Docs.Example.com".into(),
                    "*.example.org".into(),
                    "10.0.0.0/8".into(),
                    "::ffff:192.0.2.1".into(),
                ],
                ..Default::default()
            },
        );
        assert_eq!(
            g.allow,
            vec![
                AllowEntry::Name("docs.example.com".into()),
                AllowEntry::Suffix(".example.org".into()),
                AllowEntry::Net("10.0.0.0/8".parse().unwrap()),
                AllowEntry::Net("192.0.2.1/32".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn host_is_cut_in_messages() {
        let long = "a".repeat(300);
        let c = cut(&long);
        assert!(c.chars().count() == MAX_HOST_CHARS + 1 && c.ends_with('…'));
        assert_eq!(cut("short"), "short");
    }
}
