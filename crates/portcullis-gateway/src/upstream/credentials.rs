//! The credential the gateway sends to a connector (AUTH-8, no token passthrough): a static
//! bearer token or API key, an OAuth client-credentials token, or a token obtained by exchanging
//! the caller's verified token at the connector's security token service (RFC 8693). The
//! client's own `Authorization` header never reaches a connector: [`super::http`] builds every
//! upstream request's headers itself and adds only what a [`CredentialProvider`] yields.
//!
//! Tokens from a token endpoint are cached until shortly before they expire, with one refresh
//! in flight at a time per token, so a burst of calls costs one token request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use parking_lot::Mutex;
use portcullis_config::{AuthMethod, Credential, OAuthClient, SecretValue};
use portcullis_core::{Clock, Secret};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::UpstreamError;
use super::http::HttpClient;

/// The headers one upstream request carries for its credential.
pub type CredentialHeaders = Vec<(HeaderName, HeaderValue)>;

/// How many callers' exchanged tokens one connector keeps (the cache is bounded so that many
/// callers cannot grow memory without limit).
pub const MAX_EXCHANGED_TOKENS: usize = 4096;

/// A token without `expires_in` is kept this long at most.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// The longest a token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Yields the credential headers for one connector's upstream requests.
pub struct CredentialProvider {
    connector: Arc<str>,
    kind: Kind,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("connector", &self.connector)
            .field("kind", &self.kind_name())
            .finish_non_exhaustive()
    }
}

enum Kind {
    Bearer(SecretValue),
    ApiKey(HeaderName, SecretValue),
    ClientCredentials {
        client: OAuthClient,
        slot: TokenSlot,
    },
    TokenExchange {
        client: OAuthClient,
        audience: Option<String>,
        /// Keyed by the SHA-256 of the caller's token: the token itself is not kept as a key.
        slots: Mutex<HashMap<[u8; 32], Arc<TokenSlot>>>,
    },
}

/// A token with its lifetime.
#[derive(Clone)]
struct Cached {
    header: HeaderValue,
    /// Fetch a new one from here on.
    refresh_at: DateTime<Utc>,
}

/// One cached token with single-flight refresh.
#[derive(Default)]
struct TokenSlot {
    cached: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    /// Counts finished fetches, so that callers queued behind a failing fetch share its error
    /// instead of each retrying a token endpoint that is down.
    generation: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl TokenSlot {
    fn fresh(&self, now: DateTime<Utc>) -> Option<HeaderValue> {
        self.cached
            .lock()
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.header.clone())
    }

    fn expiry(&self) -> Option<DateTime<Utc>> {
        self.cached.lock().as_ref().map(|c| c.refresh_at)
    }

    async fn get<F, Fut>(&self, clock: &dyn Clock, fetch: F) -> Result<HeaderValue, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Cached, String>>,
    {
        if let Some(v) = self.fresh(clock.now()) {
            return Ok(v);
        }
        let seen = self.generation.load(Ordering::SeqCst);
        let _one_at_a_time = self.refresh.lock().await;
        if let Some(v) = self.fresh(clock.now()) {
            return Ok(v);
        }
        if self.generation.load(Ordering::SeqCst) != seen
            && let Some(e) = self.last_error.lock().clone()
        {
            return Err(e);
        }
        let r = fetch().await;
        match &r {
            Ok(c) => {
                *self.cached.lock() = Some(c.clone());
                *self.last_error.lock() = None;
            }
            Err(e) => {
                *self.cached.lock() = None;
                *self.last_error.lock() = Some(e.clone());
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        r.map(|c| c.header)
    }

    fn invalidate(&self) {
        *self.cached.lock() = None;
    }
}

/// What one request to a connector knows about its caller, for token exchange.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The caller's verified access token.
    pub token: Option<&'a Secret>,
    /// Its expiry, seconds since the Unix epoch, when known.
    pub expires_at: Option<i64>,
}

impl CredentialProvider {
    /// A provider for `connector`'s `credential`; token requests go through `http` (TLS
    /// verification on, EG-2) and token lifetimes are measured on `clock`.
    pub fn new(
        connector: &str,
        credential: &Credential,
        http: HttpClient,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let kind = match credential {
            Credential::Bearer { token } => Kind::Bearer(token.clone()),
            Credential::ApiKey { header, value } => Kind::ApiKey(header.clone(), value.clone()),
            Credential::ClientCredentials(client) => Kind::ClientCredentials {
                client: client.clone(),
                slot: TokenSlot::default(),
            },
            Credential::TokenExchange { client, audience } => Kind::TokenExchange {
                client: client.clone(),
                audience: audience.clone(),
                slots: Mutex::new(HashMap::new()),
            },
        };
        Self {
            connector: connector.into(),
            kind,
            http,
            clock,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Bearer(_) => "bearer",
            Kind::ApiKey(..) => "api_key",
            Kind::ClientCredentials { .. } => "client_credentials",
            Kind::TokenExchange { .. } => "token_exchange",
        }
    }

    fn error(&self, detail: impl Into<String>) -> UpstreamError {
        UpstreamError::Credential {
            connector: self.connector.to_string(),
            detail: detail.into(),
        }
    }

    /// The headers for one upstream request (AUTH-8). `caller` is used only by token exchange,
    /// which fails closed without it.
    pub async fn headers(&self, caller: Caller<'_>) -> Result<CredentialHeaders, UpstreamError> {
        let authorization = match &self.kind {
            Kind::Bearer(token) => {
                let t = token.get().map_err(|e| self.error(e.to_string()))?;
                bearer(t.expose()).ok_or_else(|| {
                    self.error(format!(
                        "the token in {} holds characters not allowed in an HTTP header",
                        token.source()
                    ))
                })?
            }
            Kind::ApiKey(name, value) => {
                let v = value.get().map_err(|e| self.error(e.to_string()))?;
                let mut hv = HeaderValue::from_str(v.expose()).map_err(|_| {
                    self.error(format!(
                        "the key in {} holds characters not allowed in an HTTP header",
                        value.source()
                    ))
                })?;
                hv.set_sensitive(true);
                return Ok(vec![(name.clone(), hv)]);
            }
            Kind::ClientCredentials { client, slot } => slot
                .get(&*self.clock, || self.client_credentials(client))
                .await
                .map_err(|e| self.error(e))?,
            Kind::TokenExchange {
                client,
                audience,
                slots,
            } => {
                let Some(subject) = caller.token else {
                    return Err(self.error(
                        "token exchange needs the caller's verified access token, and this request has none; the connector is not called without it",
                    ));
                };
                let subject_exp = caller.expires_at.or_else(|| jwt_expiry(subject.expose()));
                let now = self.clock.now();
                if let Some(exp) = subject_exp
                    && exp <= now.timestamp()
                {
                    return Err(self.error("the caller's access token has expired"));
                }
                let slot = self.exchange_slot(slots, subject, now);
                slot.get(&*self.clock, || {
                    self.exchange(client, audience.as_deref(), subject, subject_exp)
                })
                .await
                .map_err(|e| self.error(e))?
            }
        };
        Ok(vec![(header::AUTHORIZATION, authorization)])
    }

    /// Forgets the cached token (after the connector refused it with 401), so that the next
    /// request fetches a new one.
    pub fn invalidate(&self, caller: Caller<'_>) {
        match &self.kind {
            Kind::ClientCredentials { slot, .. } => slot.invalidate(),
            Kind::TokenExchange { slots, .. } => {
                if let Some(t) = caller.token
                    && let Some(s) = slots.lock().get(&token_key(t))
                {
                    s.invalidate();
                }
            }
            _ => {}
        }
    }

    /// The slot for one caller's token; evicts expired slots, then the one expiring first, when
    /// the cache is full.
    fn exchange_slot(
        &self,
        slots: &Mutex<HashMap<[u8; 32], Arc<TokenSlot>>>,
        subject: &Secret,
        now: DateTime<Utc>,
    ) -> Arc<TokenSlot> {
        let key = token_key(subject);
        let mut map = slots.lock();
        if let Some(s) = map.get(&key) {
            return s.clone();
        }
        if map.len() >= MAX_EXCHANGED_TOKENS {
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.expiry().is_some_and(|e| e > now));
        }
        if map.len() >= MAX_EXCHANGED_TOKENS
            && let Some(oldest) = map
                .iter()
                .filter(|(_, s)| Arc::strong_count(s) == 1)
                .min_by_key(|(_, s)| s.expiry())
                .map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.entry(key).or_default().clone()
    }

    async fn client_credentials(&self, client: &OAuthClient) -> Result<Cached, String> {
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if let Some(s) = &client.scope {
            form.push(("scope", s.clone()));
        }
        if let Some(r) = &client.resource {
            form.push(("resource", r.clone()));
        }
        let t = self.token_request(client, form).await?;
        self.cache_entry(t, None)
    }

    async fn exchange(
        &self,
        client: &OAuthClient,
        audience: Option<&str>,
        subject: &Secret,
        subject_exp: Option<i64>,
    ) -> Result<Cached, String> {
        // RFC 8693 §2.1. The caller's token goes to the STS only, never to the connector.
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_string(),
            ),
            ("subject_token", subject.expose().to_string()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_string(),
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_string(),
            ),
        ];
        if let Some(a) = audience {
            form.push(("audience", a.to_string()));
        }
        if let Some(r) = &client.resource {
            form.push(("resource", r.clone()));
        }
        if let Some(s) = &client.scope {
            form.push(("scope", s.clone()));
        }
        let t = self.token_request(client, form).await?;
        if let Some(issued) = &t.issued_token_type
            && issued != "urn:ietf:params:oauth:token-type:access_token"
            && issued != "urn:ietf:params:oauth:token-type:jwt"
        {
            return Err(format!(
                "the token service issued a {issued}, not an access token"
            ));
        }
        self.cache_entry(t, subject_exp)
    }

    /// A cache entry that is refreshed a little before the token expires, and never outlives
    /// the caller's token (`bound`, seconds since the epoch).
    fn cache_entry(&self, t: TokenResponse, bound: Option<i64>) -> Result<Cached, String> {
        if !t.token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "the token endpoint issued a token of type {:?}; only Bearer tokens are supported",
                t.token_type
            ));
        }
        let header = bearer(&t.access_token).ok_or(
            "the token endpoint issued a token with characters not allowed in an HTTP header",
        )?;
        let now = self.clock.now();
        let lifetime = t
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        // Refresh early by a tenth of the lifetime, 1 to 60 seconds, so that a token is not
        // sent just as it expires.
        let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut refresh_at =
            now + chrono::Duration::from_std(lifetime.saturating_sub(margin)).unwrap_or_default();
        if let Some(b) = bound.and_then(|b| DateTime::from_timestamp(b, 0)) {
            refresh_at = refresh_at.min(b);
        }
        Ok(Cached { header, refresh_at })
    }

    async fn token_request(
        &self,
        client: &OAuthClient,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, String> {
        let secret = client
            .client_secret
            .get()
            .map_err(|e| format!("client secret: {e}"))?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(client.token_url.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        match client.auth_method {
            AuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let raw = format!("{}:{}", enc(&client.client_id), enc(secret.expose()));
                let mut hv = HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
                .map_err(|_| "the client credentials cannot be sent in a header".to_string())?;
                hv.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, hv);
            }
            AuthMethod::ClientSecretPost => {
                form.push(("client_id", client.client_id.clone()));
                form.push(("client_secret", secret.expose().to_string()));
            }
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the token request: {e}"))?;
        let url = &client.token_url;
        let resp = match tokio::time::timeout(TOKEN_TIMEOUT, self.http.request(req)).await {
            Err(_) => {
                return Err(format!(
                    "the token endpoint {url} did not answer within {} s",
                    TOKEN_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(e)) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(inner) = src {
                    s.push_str(": ");
                    s.push_str(&inner.to_string());
                    src = inner.source();
                }
                return Err(format!("the token endpoint {url} is unreachable: {s}"));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_TOKEN_RESPONSE)
            .collect()
            .await
            .map_err(|e| format!("reading the answer of the token endpoint {url}: {e}"))?
            .to_bytes();
        if status != StatusCode::OK {
            // RFC 6749 §5.2: the error code (and description) say what to fix.
            let detail = serde_json::from_slice::<TokenError>(&body)
                .map(|e| match e.error_description {
                    Some(d) => format!("{}: {}", e.error, clip(&d)),
                    None => e.error,
                })
                .unwrap_or_else(|_| "no OAuth error in the answer".to_string());
            return Err(format!(
                "the token endpoint {url} answered HTTP {status} ({detail})"
            ));
        }
        serde_json::from_slice::<TokenResponse>(&body).map_err(|e| {
            format!("the token endpoint {url} answered something that is not a token response: {e}")
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    issued_token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// Keeps third-party text in our messages short and on one line.
fn clip(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn token_key(t: &Secret) -> [u8; 32] {
    Sha256::digest(t.expose().as_bytes()).into()
}

/// The `exp` claim of a JWT, read without verifying it: the caller's token was verified by the
/// gateway already; here it only bounds how long an exchanged token is cached.
fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<i64>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.exp
}

/// Providers for every connector with a credential, by connector index.
pub fn for_connectors(
    connectors: &[portcullis_config::Connector],
    clock: Arc<dyn Clock>,
) -> Vec<Option<Arc<CredentialProvider>>> {
    // Its own pool: token endpoints are other hosts than the connectors.
    let http = super::http::client();
    connectors
        .iter()
        .map(|c| {
            c.credential.as_ref().map(|cred| {
                Arc::new(CredentialProvider::new(
                    &c.name,
                    cred,
                    http.clone(),
                    clock.clone(),
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange_provider(clock: Arc<dyn Clock>) -> CredentialProvider {
        let secret = SecretValue::from_env_with("S", |_| Some("x".into())).unwrap();
        let cred = Credential::TokenExchange {
            client: OAuthClient {
                token_url: "http://127.0.0.1:1/token".parse().unwrap(),
                client_id: "gw".into(),
                client_secret: secret,
                auth_method: AuthMethod::ClientSecretBasic,
                scope: None,
                resource: None,
            },
            audience: None,
        };
        CredentialProvider::new("api", &cred, super::super::http::client(), clock)
    }

    #[tokio::test]
    async fn the_exchange_cache_is_bounded_and_evicts_expired_then_soonest() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = Arc::new(portcullis_core::clock::ManualClock::new(start));
        let p = exchange_provider(clock.clone());
        let Kind::TokenExchange { slots, .. } = &p.kind else {
            unreachable!()
        };
        let fill = |i: usize, refresh_at| {
            let s = p.exchange_slot(slots, &Secret::new(format!("caller-{i}")), start);
            *s.cached.lock() = Some(Cached {
                header: HeaderValue::from_static("Bearer x"),
                refresh_at,
            });
        };
        // One already expired, the rest expiring one second apart.
        fill(0, start - chrono::Duration::seconds(1));
        for i in 1..MAX_EXCHANGED_TOKENS {
            fill(i, start + chrono::Duration::seconds(i as i64 + 10));
        }
        assert_eq!(slots.lock().len(), MAX_EXCHANGED_TOKENS);
        p.exchange_slot(slots, &Secret::new("new-1"), start);
        let map = slots.lock();
        assert_eq!(map.len(), MAX_EXCHANGED_TOKENS, "still bounded");
        assert!(
            !map.contains_key(&token_key(&Secret::new("caller-0"))),
            "the expired one went first"
        );
        drop(map);
        p.exchange_slot(slots, &Secret::new("new-2"), start);
        let map = slots.lock();
        assert_eq!(map.len(), MAX_EXCHANGED_TOKENS);
        // No expired entries left: an idle entry without a token yet ("new-1") is the cheapest
        // to drop; the soonest to expire would be next.
        assert!(map.contains_key(&token_key(&Secret::new("new-2"))));
        assert!(!map.contains_key(&token_key(&Secret::new("new-1"))));
        assert!(map.contains_key(&token_key(&Secret::new("caller-1"))));
    }

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1_700_000_000));
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }

    #[test]
    fn bearer_headers_are_sensitive_and_refuse_bad_bytes() {
        let v = bearer("abc").unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v, "Bearer abc");
        assert!(bearer("a\nb").is_none());
    }

    #[test]
    fn third_party_text_is_clipped_to_one_line() {
        assert_eq!(clip("a\nb"), "a b");
        assert_eq!(clip(&"x".repeat(500)).len(), 200);
    }
}
