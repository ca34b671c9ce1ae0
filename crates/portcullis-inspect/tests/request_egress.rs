//! EG-1, IV-4: URL arguments against a connector's egress allow-list, address classes after
//! resolution (DNS rebinding), odd IPv4 spellings, resolution failures and timeouts.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portcullis_config::inspect::ValidEgress;
use portcullis_inspect::egress::{
    AddressClass, EgressGuard, EgressRefusal, FixedResolver, ResolveFuture, Resolver,
    SystemResolver, classify,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn guard(allow: &[&str]) -> EgressGuard {
    guard_with(allow, true, false)
}

fn guard_with(allow: &[&str], resolve: bool, allow_private: bool) -> EgressGuard {
    EgressGuard::new(
        "crm",
        &ValidEgress {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            resolve,
            allow_private,
            ..Default::default()
        },
    )
}

/// Public addresses for the names tests expect to pass.
fn public_dns() -> FixedResolver {
    FixedResolver::new()
        .with("docs.example.com", &[ip("93.184.216.34")])
        .with("api.example.org", &[ip("93.184.216.35")])
        .with("deep.api.example.org", &[ip("2606:2800:220:1::1")])
        .with("example.org", &[ip("93.184.216.36")])
        .with("xn--bcher-kva.example", &[ip("93.184.216.37")])
}

/// Counts calls and answers nothing, to prove a check did not resolve.
#[derive(Default)]
struct CountingResolver(AtomicUsize);

impl Resolver for CountingResolver {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(vec![ip("93.184.216.34")]) })
    }
}

/// Never answers.
struct HangingResolver;

impl Resolver for HangingResolver {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
        Box::pin(std::future::pending())
    }
}

async fn refused(g: &EgressGuard, url: &str, r: &dyn Resolver) -> EgressRefusal {
    match g.check_url(url, r).await {
        Err(e) => e,
        Ok(()) => panic!("{url} passed"),
    }
}

#[tokio::test]
async fn exact_names_pass_case_insensitively_with_trailing_dot() {
    let g = guard(&["docs.example.com"]);
    let dns = public_dns();
    for url in [
        "https://docs.example.com/guide",
        "https://DOCS.Example.COM/guide?q=1",
        "https://docs.example.com./guide",
        "http://docs.example.com:8080/",
    ] {
        g.check_url(url, &dns)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[tokio::test]
async fn wildcards_cover_subdomains_not_the_apex() {
    let g = guard(&["*.example.org"]);
    let dns = public_dns();
    g.check_url("https://api.example.org/v1", &dns)
        .await
        .unwrap();
    g.check_url("https://deep.api.example.org/v1", &dns)
        .await
        .unwrap();
    let e = refused(&g, "https://example.org/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:example.org");
    // A look-alike suffix is not a subdomain.
    let e = refused(&g, "https://evilexample.org/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:evilexample.org");
    // The apex passes when it is listed too.
    let g = guard(&["*.example.org", "example.org"]);
    g.check_url("https://example.org/", &dns).await.unwrap();
}

#[tokio::test]
async fn unlisted_hosts_are_refused_naming_host_and_setting() {
    let g = guard(&["docs.example.com"]);
    let e = refused(
        &g,
        "https://attacker.example/steal?data=s3cr3t",
        &public_dns(),
    )
    .await;
    assert_eq!(e.reason(), "egress_unapproved:attacker.example");
    assert_eq!(e.host(), Some("attacker.example"));
    let msg = e.to_string();
    assert_eq!(
        msg,
        "the host attacker.example is not on the egress allow-list of connector crm; an \
         administrator can allow it under connectors.crm.egress.allow"
    );
    assert!(!msg.contains("s3cr3t"));
    // An empty allow-list allows nothing.
    let e = refused(&guard(&[]), "https://docs.example.com/", &public_dns()).await;
    assert_eq!(e.reason(), "egress_unapproved:docs.example.com");
}

#[tokio::test]
async fn international_names_are_matched_in_punycode() {
    let g = guard(&["xn--bcher-kva.example"]);
    let dns = public_dns();
    g.check_url("https://bücher.example/", &dns).await.unwrap();
    g.check_url("https://BÜCHER.example./", &dns).await.unwrap();
    let e = refused(&g, "https://bucher.example/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:bucher.example");
}

#[tokio::test]
async fn only_http_and_https() {
    let g = guard(&["docs.example.com"]);
    for (url, scheme) in [
        ("ftp://docs.example.com/x", "ftp"),
        ("file:///etc/passwd", "file"),
        ("gopher://docs.example.com:70/_x", "gopher"),
        ("javascript:alert(1)", "javascript"),
        ("ws://docs.example.com/", "ws"),
    ] {
        let e = refused(&g, url, &public_dns()).await;
        assert_eq!(
            e,
            EgressRefusal::Scheme {
                scheme: scheme.into()
            },
            "{url}"
        );
        assert_eq!(e.reason(), "egress_scheme");
    }
}

#[tokio::test]
async fn invalid_and_relative_urls_are_refused() {
    let g = guard(&["docs.example.com"]);
    for url in [
        "/relative/path",
        "docs.example.com/x",
        "https://",
        "http://[::1",
        "",
    ] {
        let e = refused(&g, url, &public_dns()).await;
        assert!(
            matches!(e, EgressRefusal::InvalidUrl { .. } | EgressRefusal::NoHost),
            "{url}: {e:?}"
        );
    }
}

#[tokio::test]
async fn userinfo_is_refused() {
    let g = guard(&["docs.example.com"]);
    for url in [
        "https://user:hunter2@docs.example.com/",
        "https://user@docs.example.com/",
        "https://:hunter2@docs.example.com/",
        // The classic confusion: the host is the part after `@`.
        "https://docs.example.com@attacker.example/",
    ] {
        let e = refused(&g, url, &public_dns()).await;
        assert!(e.reason().starts_with("egress_userinfo:"), "{url}: {e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}

#[tokio::test]
async fn loopback_in_every_spelling_is_refused_even_when_listed() {
    // Everything listed: only the address classes stand in the way.
    let g = guard(&["127.0.0.1", "127.0.0.0/8", "::1", "0.0.0.0/0", "::/0"]);
    let dns = FixedResolver::new();
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/admin",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::127.0.0.1]/",
        "http://[2002:7f00:1::]/",
    ] {
        let e = refused(&g, url, &dns).await;
        match &e {
            EgressRefusal::Address {
                class: AddressClass::Loopback,
                resolved: false,
                ..
            } => {}
            other => panic!("{url}: {other:?}"),
        }
        assert!(e.reason().starts_with("egress_address:loopback:"), "{url}");
        assert!(
            e.to_string()
                .contains("which URL arguments may never reach"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn every_refused_class_is_refused_even_when_listed() {
    let g = guard(&["0.0.0.0/0", "::/0"]);
    let dns = FixedResolver::new();
    for (url, class) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            AddressClass::Metadata,
        ),
        ("http://[::ffff:169.254.169.254]/", AddressClass::Metadata),
        ("http://[::ffff:a9fe:a9fe]/", AddressClass::Metadata),
        ("http://2852039166/", AddressClass::Metadata),
        ("http://0251.0376.0251.0376/", AddressClass::Metadata),
        ("http://0xa9.0xfe.0xa9.0xfe/", AddressClass::Metadata),
        ("http://[fd00:ec2::254]/", AddressClass::Metadata),
        ("http://100.100.100.200/", AddressClass::Metadata),
        ("http://169.254.10.1/", AddressClass::LinkLocal),
        ("http://[fe80::1]/", AddressClass::LinkLocal),
        ("http://0.0.0.0/", AddressClass::Unspecified),
        ("http://0/", AddressClass::Unspecified),
        ("http://[::]/", AddressClass::Unspecified),
        ("http://224.0.0.251/", AddressClass::Multicast),
        ("http://[ff02::1]/", AddressClass::Multicast),
        ("http://255.255.255.255/", AddressClass::Broadcast),
        ("http://10.0.0.1/", AddressClass::Private),
        ("http://012.0.0.1/", AddressClass::Private),
        ("http://172.16.5.4/", AddressClass::Private),
        ("http://192.168.1.1/", AddressClass::Private),
        ("http://3232235777/", AddressClass::Private),
        ("http://100.64.0.1/", AddressClass::Private),
        ("http://[fd12:3456::1]/", AddressClass::Private),
        ("http://[::ffff:10.0.0.1]/", AddressClass::Private),
        ("http://192.0.2.1/", AddressClass::Documentation),
        ("http://198.51.100.1/", AddressClass::Documentation),
        ("http://203.0.113.1/", AddressClass::Documentation),
        ("http://[2001:db8::1]/", AddressClass::Documentation),
        ("http://240.0.0.1/", AddressClass::Reserved),
        ("http://198.18.0.1/", AddressClass::Reserved),
        ("http://[2001::1]/", AddressClass::Reserved),
    ] {
        match refused(&g, url, &dns).await {
            EgressRefusal::Address { class: c, .. } => assert_eq!(c, class, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    // The catch-all lets public addresses through, in any spelling.
    g.check_url("http://8.8.8.8/", &dns).await.unwrap();
    g.check_url("http://134744072/", &dns).await.unwrap();
    g.check_url("http://[2606:4700:4700::1111]/", &dns)
        .await
        .unwrap();
    g.check_url("http://[::ffff:8.8.8.8]/", &dns).await.unwrap();
}

#[tokio::test]
async fn private_addresses_pass_only_with_allow_private() {
    let dns = FixedResolver::new();
    let strict = guard_with(&["10.0.0.0/8", "fd00::/8"], true, false);
    let e = refused(&strict, "http://10.1.2.3/", &dns).await;
    assert!(
        e.to_string()
            .contains("connectors.crm.egress.allow_private: true"),
        "{e}"
    );
    let open = guard_with(&["10.0.0.0/8", "fd00::/8", "127.0.0.1"], true, true);
    open.check_url("http://10.1.2.3/", &dns).await.unwrap();
    open.check_url("http://[fd12::1]/", &dns).await.unwrap();
    // allow_private never extends to loopback, link-local or metadata.
    let e = refused(&open, "http://127.0.0.1/", &dns).await;
    assert!(matches!(
        e,
        EgressRefusal::Address {
            class: AddressClass::Loopback,
            ..
        }
    ));
    let e = refused(&open, "http://[fd00:ec2::254]/", &dns).await;
    assert!(matches!(
        e,
        EgressRefusal::Address {
            class: AddressClass::Metadata,
            ..
        }
    ));
    // Still the allow-list first: a private address not listed is unapproved.
    let e = refused(&open, "http://192.168.0.1/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:192.168.0.1");
}

#[tokio::test]
async fn documentation_ranges_pass_when_named_explicitly() {
    let dns = FixedResolver::new();
    let g = guard(&["192.0.2.0/24", "203.0.113.7"]);
    g.check_url("http://192.0.2.10/", &dns).await.unwrap();
    g.check_url("http://203.0.113.7/", &dns).await.unwrap();
    let e = refused(&g, "http://203.0.113.8/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:203.0.113.8");
}

#[tokio::test]
async fn ip_literals_need_an_ip_entry() {
    let dns = FixedResolver::new();
    let g = guard(&["docs.example.com", "93.184.216.0/24"]);
    g.check_url("http://93.184.216.34/", &dns).await.unwrap();
    let e = refused(&g, "http://93.184.217.34/", &dns).await;
    assert_eq!(e.reason(), "egress_unapproved:93.184.217.34");
}

#[tokio::test]
async fn rebinding_a_listed_name_to_loopback_or_metadata_is_refused() {
    let g = guard(&["docs.example.com", "*.example.org"]);
    for (addrs, class) in [
        (vec![ip("127.0.0.1")], AddressClass::Loopback),
        (vec![ip("169.254.169.254")], AddressClass::Metadata),
        (vec![ip("::ffff:127.0.0.1")], AddressClass::Loopback),
        (vec![ip("::1")], AddressClass::Loopback),
        (vec![ip("0.0.0.0")], AddressClass::Unspecified),
        (vec![ip("10.0.0.7")], AddressClass::Private),
        // ANY refused address refuses the name, and the worst one is reported.
        (
            vec![ip("93.184.216.34"), ip("10.0.0.7")],
            AddressClass::Private,
        ),
        (
            vec![ip("93.184.216.34"), ip("10.0.0.7"), ip("169.254.169.254")],
            AddressClass::Metadata,
        ),
    ] {
        let dns = FixedResolver::new().with("docs.example.com", &addrs);
        let e = refused(&g, "https://docs.example.com/", &dns).await;
        assert_eq!(
            e,
            EgressRefusal::Address {
                host: "docs.example.com".into(),
                class,
                connector: "crm".into(),
                resolved: true
            },
            "{addrs:?}"
        );
        assert_eq!(
            e.reason(),
            format!("egress_address:{class}:docs.example.com")
        );
        assert!(
            e.to_string().starts_with(&format!(
                "the host docs.example.com resolves to {}",
                class.describe()
            )),
            "{e}"
        );
        // The address itself is an internal detail: it is not in the message.
        for a in &addrs {
            assert!(!e.to_string().contains(&a.to_string()), "{e}");
        }
    }
}

#[tokio::test]
async fn allow_private_lets_a_name_resolve_to_a_private_address() {
    let dns = FixedResolver::new().with("wiki.corp.example", &[ip("10.0.0.7")]);
    guard_with(&["wiki.corp.example"], true, true)
        .check_url("https://wiki.corp.example/", &dns)
        .await
        .unwrap();
    let dns = FixedResolver::new().with("wiki.corp.example", &[ip("169.254.169.254")]);
    let e = refused(
        &guard_with(&["wiki.corp.example"], true, true),
        "https://wiki.corp.example/",
        &dns,
    )
    .await;
    assert!(matches!(
        e,
        EgressRefusal::Address {
            class: AddressClass::Metadata,
            ..
        }
    ));
}

#[tokio::test]
async fn resolution_off_skips_the_resolver() {
    let counter = CountingResolver::default();
    let g = guard_with(&["docs.example.com"], false, false);
    g.check_url("https://docs.example.com/", &counter)
        .await
        .unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    let g = guard_with(&["docs.example.com"], true, false);
    g.check_url("https://docs.example.com/", &counter)
        .await
        .unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn local_and_metadata_names_are_refused_without_resolution() {
    let counter = CountingResolver::default();
    let g = guard_with(
        &[
            "localhost",
            "*.localhost",
            "metadata.google.internal",
            "instance-data",
        ],
        false,
        true,
    );
    for (url, class) in [
        ("http://localhost:8080/", AddressClass::Loopback),
        ("http://LOCALHOST./", AddressClass::Loopback),
        ("http://admin.localhost/", AddressClass::Loopback),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            AddressClass::Metadata,
        ),
        ("http://instance-data/latest/", AddressClass::Metadata),
    ] {
        match refused(&g, url, &counter).await {
            EgressRefusal::Address { class: c, .. } => assert_eq!(c, class, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(counter.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn resolution_failure_refuses() {
    let g = guard(&["docs.example.com"]);
    let e = refused(&g, "https://docs.example.com/", &FixedResolver::new()).await;
    assert_eq!(e.reason(), "egress_unresolved:docs.example.com");
    assert_eq!(
        e.to_string(),
        "the host docs.example.com could not be resolved (no such host); the URL is refused \
         because the addresses behind it cannot be checked"
    );
    let empty = FixedResolver::new().with("docs.example.com", &[]);
    let e = refused(&g, "https://docs.example.com/", &empty).await;
    assert!(matches!(e, EgressRefusal::Unresolved { ref detail, .. } if detail == "no addresses"));
}

#[tokio::test(start_paused = true)]
async fn resolution_times_out_after_two_seconds() {
    let g = guard(&["docs.example.com"]);
    let started = tokio::time::Instant::now();
    let e = refused(&g, "https://docs.example.com/", &HangingResolver).await;
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(
        e,
        EgressRefusal::ResolveTimeout {
            host: "docs.example.com".into(),
            after: Duration::from_secs(2)
        }
    );
    assert_eq!(e.reason(), "egress_resolve_timeout:docs.example.com");
    assert!(e.to_string().contains("longer than 2000 ms"), "{e}");
    let g = g.with_resolve_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    refused(&g, "https://docs.example.com/", &HangingResolver).await;
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn the_system_resolver_resolves_localhost_to_loopback() {
    let addrs = SystemResolver.resolve("localhost", 80).await.unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs.iter().all(|a| classify(*a) == AddressClass::Loopback),
        "{addrs:?}"
    );
}

#[test]
fn classify_is_the_shared_rule() {
    assert_eq!(classify(ip("169.254.169.254")), AddressClass::Metadata);
    assert_eq!(classify(ip("::ffff:192.168.0.1")), AddressClass::Private);
    assert_eq!(classify(ip("8.8.4.4")), AddressClass::Public);
    assert!(classify(ip("127.0.0.53")).is_always_refused());
}
