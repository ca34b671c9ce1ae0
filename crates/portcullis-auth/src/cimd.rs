//! Client ID Metadata Documents (the draft the MCP authorization spec adopted): a `client_id`
//! that is an https URL with a path names a JSON document describing the client. It is fetched
//! without following redirects, with a size cap and a timeout, only from public addresses (the
//! resolved address is pinned for the request, so DNS cannot rebind it to an internal one), and
//! cached per its `Cache-Control: max-age` within bounds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use crate::clients::{AuthMethod, Client, ClientKind};
use crate::register::check_metadata;

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_CACHE_S: i64 = 60;
const DEFAULT_CACHE_S: i64 = 300;
const MAX_CACHE_S: i64 = 86_400;
const MAX_ENTRIES: usize = 1024;

/// Fetched documents, by URL.
pub struct CimdCache {
    allow_insecure_loopback: bool,
    scopes: Vec<String>,
    entries: Mutex<HashMap<String, (Client, i64)>>,
}

impl CimdCache {
    /// A cache; `scopes` are those a document's `scope` may name.
    pub fn new(allow_insecure_loopback: bool, scopes: Vec<String>) -> Self {
        Self {
            allow_insecure_loopback,
            scopes,
            entries: Mutex::default(),
        }
    }

    /// Whether `client_id` is meant as a metadata document URL.
    pub fn is_document_url(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.allow_insecure_loopback && client_id.starts_with("http://127.0.0.1:"))
    }

    /// The client a document describes, from the cache or fetched now.
    pub async fn resolve(&self, client_id: &str, now_us: i64) -> Result<Client, String> {
        if let Some((c, until)) = self.entries.lock().get(client_id)
            && *until > now_us
        {
            return Ok(c.clone());
        }
        let (client, max_age) = self.fetch(client_id).await?;
        let mut e = self.entries.lock();
        if e.len() >= MAX_ENTRIES {
            e.retain(|_, (_, until)| *until > now_us);
            if e.len() >= MAX_ENTRIES {
                e.clear();
            }
        }
        e.insert(
            client_id.to_string(),
            (client.clone(), now_us + max_age * 1_000_000),
        );
        Ok(client)
    }

    fn check_url(&self, raw: &str) -> Result<(url::Url, bool), String> {
        if raw.len() > 2000 {
            return Err("the client_id URL is longer than 2000 characters".into());
        }
        let url =
            url::Url::parse(raw).map_err(|_| "the client_id is not a valid URL".to_string())?;
        // The document's client_id must equal the URL exactly, so it must already be canonical.
        if url.as_str() != raw {
            return Err("the client_id URL is not in canonical form".into());
        }
        if url.fragment().is_some()
            || url.query().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(
                "the client_id URL must not have a fragment, query or user information".into(),
            );
        }
        if url.path() == "/" || url.path().split('/').any(|s| s == "." || s == "..") {
            return Err("the client_id URL must have a path (and no . or .. segments)".into());
        }
        let loopback_http = url.scheme() == "http"
            && self.allow_insecure_loopback
            && url.host_str() == Some("127.0.0.1")
            && url.port().is_some();
        if url.scheme() != "https" && !loopback_http {
            return Err("the client_id URL must use https".into());
        }
        Ok((url, loopback_http))
    }

    async fn fetch(&self, raw: &str) -> Result<(Client, i64), String> {
        let (url, insecure_ok) = self.check_url(raw)?;
        let host = url
            .host_str()
            .ok_or("the client_id URL has no host")?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                FETCH_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| format!("resolving {host} timed out"))?
            .map_err(|_| format!("cannot resolve {host}"))?
            .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        // Every address must be public: one private answer is enough to refuse (SSRF).
        if !insecure_ok && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(format!(
                "{host} resolves to {}, a private, loopback, link-local or metadata address; metadata documents are fetched only from public addresses",
                bad.ip()
            ));
        }
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .no_proxy()
            .user_agent("portcullis-auth");
        if url
            .host()
            .is_some_and(|h| matches!(h, url::Host::Domain(_)))
        {
            b = b.resolve(&host, addrs[0]);
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut resp = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching the document failed: {}", without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(format!(
                "fetching the document answered HTTP {} (redirects are not followed)",
                resp.status().as_u16()
            ));
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !ct.to_ascii_lowercase().contains("json") {
            return Err("the document is not served as JSON (Content-Type)".into());
        }
        let max_age = cache_seconds(
            resp.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the document failed: {}", without_url(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| "the document is not valid JSON".to_string())?;
        let Value::Object(o) = v else {
            return Err("the document is not a JSON object".into());
        };
        if o.get("client_id").and_then(Value::as_str) != Some(raw) {
            return Err("the document's client_id does not equal its URL".into());
        }
        let mut o = o;
        // A document client has no secret to share with us: it is public unless it says more,
        // and only `none` is supported for it.
        match o.get("token_endpoint_auth_method").and_then(Value::as_str) {
            None => {
                o.insert(
                    "token_endpoint_auth_method".into(),
                    Value::String("none".into()),
                );
            }
            Some("none") => {}
            Some(m) => {
                return Err(format!(
                    "token_endpoint_auth_method {m:?} is not supported for metadata document clients; use none"
                ));
            }
        }
        let r = check_metadata(&o, &self.scopes).map_err(|e| e.description)?;
        Ok((
            Client {
                client_id: raw.to_string(),
                client_name: r.client_name,
                redirect_uris: r.redirect_uris,
                grant_types: r.grant_types,
                auth_method: AuthMethod::None,
                secret_hash: None,
                kind: ClientKind::MetadataDocument,
                revoked: false,
            },
            max_age,
        ))
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<document>");
    }
    s
}

/// Seconds to cache, from `Cache-Control`: `max-age` within [60 s, 1 day]; no-store or no-cache
/// still cache for the minimum, so a client cannot make us fetch on every request.
pub fn cache_seconds(cc: Option<&str>) -> i64 {
    let Some(cc) = cc else { return DEFAULT_CACHE_S };
    let mut out = DEFAULT_CACHE_S;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" {
            return MIN_CACHE_S;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            out = v.trim_matches('"').parse::<i64>().unwrap_or(MIN_CACHE_S);
        }
    }
    out.clamp(MIN_CACHE_S, MAX_CACHE_S)
}

/// Whether an address is public (not private, loopback, link-local, metadata, shared,
/// documentation, multicast, reserved or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_unspecified()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cache_lifetime_is_bounded() {
        assert_eq!(cache_seconds(None), 300);
        assert_eq!(cache_seconds(Some("public, max-age=600")), 600);
        assert_eq!(cache_seconds(Some("max-age=1")), 60);
        assert_eq!(cache_seconds(Some("max-age=99999999")), 86_400);
        assert_eq!(cache_seconds(Some("no-store")), 60);
    }

    #[test]
    fn document_urls_need_https_and_a_path() {
        let c = CimdCache::new(false, vec![]);
        assert!(c.check_url("https://app.example/client.json").is_ok());
        assert!(c.check_url("https://app.example/").is_err());
        assert!(c.check_url("https://app.example/a/../b").is_err());
        assert!(c.check_url("https://app.example/c?x=1").is_err());
        assert!(c.check_url("http://127.0.0.1:8000/c.json").is_err());
        let c = CimdCache::new(true, vec![]);
        assert!(c.check_url("http://127.0.0.1:8000/c.json").unwrap().1);
    }

    #[tokio::test]
    async fn a_host_resolving_to_a_private_address_is_refused() {
        let c = CimdCache::new(false, vec![]);
        let e = c
            .resolve("https://169.254.169.254/latest/meta-data", 0)
            .await
            .unwrap_err();
        assert!(e.contains("metadata address"), "{e}");
        let e = c
            .resolve("https://localhost/client.json", 0)
            .await
            .unwrap_err();
        assert!(e.contains("private, loopback"), "{e}");
    }
}
