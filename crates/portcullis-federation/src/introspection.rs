//! RFC 7662 token introspection for opaque tokens of an external authorization server
//! (AUTH-6), with a small bounded cache: a positive answer is reused for at most
//! [`POSITIVE_TTL_SECS`] and never past the token's `exp`; a negative one for
//! [`NEGATIVE_TTL_SECS`], so a flood of one bad token does not become a flood of requests.
//! An endpoint that is down or refuses our credentials gives `Unavailable`: the gateway fails
//! closed without blaming the token, and that outcome is not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portcullis_core::{Clock, Secret, TokenRejection};
use reqwest::Url;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::HttpClient;
use crate::http::{self, ClientAuth};

/// Longest reuse of an `active: true` answer, in seconds.
pub const POSITIVE_TTL_SECS: i64 = 60;
/// Reuse of an `active: false` answer, in seconds.
pub const NEGATIVE_TTL_SECS: i64 = 10;
/// Most cached answers.
pub const MAX_ENTRIES: usize = 10_000;

/// How to reach an issuer's introspection endpoint.
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    /// The endpoint URL (https, or loopback http).
    pub endpoint: String,
    /// Portcullis's client id at the authorization server (it authenticates with HTTP Basic).
    pub client_id: String,
    /// Its client secret.
    pub client_secret: Secret,
}

type Answer = Result<Map<String, Value>, TokenRejection>;

struct Entry {
    until: i64,
    answer: Answer,
}

/// Asks one introspection endpoint, with the cache.
pub(crate) struct Introspector {
    endpoint: Url,
    client_id: String,
    client_secret: Secret,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Introspector {
    pub(crate) fn new(
        endpoint: Url,
        settings: &IntrospectionSettings,
        http: HttpClient,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            endpoint,
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            http,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The active token's claims, or why it is refused.
    pub(crate) async fn introspect(&self, token: &str) -> Answer {
        // Keyed by a hash, so the cache never holds the token itself.
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now().timestamp();
        if let Some(e) = self.cache().get(&key)
            && e.until > now
        {
            return e.answer.clone();
        }
        let answer = self.ask(token).await;
        let until = match &answer {
            Err(TokenRejection::Unavailable(_)) => return answer,
            Err(_) => now + NEGATIVE_TTL_SECS,
            Ok(claims) => {
                let exp = claims
                    .get("exp")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                (now + POSITIVE_TTL_SECS).min(exp)
            }
        };
        self.store(
            key,
            Entry {
                until,
                answer: answer.clone(),
            },
            now,
        );
        answer
    }

    fn store(&self, key: [u8; 32], entry: Entry, now: i64) {
        let mut cache = self.cache();
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(&key) {
            cache.retain(|_, e| e.until > now);
            while cache.len() >= MAX_ENTRIES {
                let Some(oldest) = cache.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k)
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(key, entry);
    }

    async fn ask(&self, token: &str) -> Answer {
        let unavailable = |detail: String| {
            tracing::warn!(endpoint = %self.endpoint, %detail, "token introspection failed");
            TokenRejection::Unavailable(format!(
                "the introspection endpoint {} {detail}",
                self.endpoint
            ))
        };
        let form = vec![
            ("token", token.to_string()),
            ("token_type_hint", "access_token".to_string()),
        ];
        let got = http::post_form(
            &self.http,
            &self.endpoint,
            form,
            ClientAuth::SecretBasic,
            &self.client_id,
            Some(&self.client_secret),
        )
        .await
        .map_err(|e| unavailable(format!("failed: {e}")))?;
        if got.status != 200 {
            // 401 means our own credentials are wrong: still not the token's fault.
            return Err(unavailable(format!("answered HTTP {}", got.status)));
        }
        let body: Map<String, Value> = http::parse_json(&self.endpoint, &got.body)
            .map_err(|_| unavailable("sent a response that is not a JSON object".into()))?;
        match body.get("active") {
            // A refresh token is active too, but it is not an access token.
            Some(Value::Bool(true))
                if body
                    .get("token_type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token")) =>
            {
                Err(TokenRejection::Malformed(
                    "a refresh token is not an access token".into(),
                ))
            }
            Some(Value::Bool(true)) => Ok(body),
            Some(Value::Bool(false)) => Err(TokenRejection::Revoked),
            _ => Err(unavailable(
                "sent a response without a boolean `active`".into(),
            )),
        }
    }
}
