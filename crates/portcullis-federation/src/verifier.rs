//! Access tokens of an external authorization server (AUTH-6), checked as AUTH-4 asks:
//! JWTs by the issuer's JWKS (the algorithm from the key, never the header; `alg: none` and
//! HS* refused), opaque tokens by RFC 7662 introspection; then issuer, expiry, not-before and
//! audience (RFC 8707: the resource being called must be among the token's audiences, or one
//! of the configured accepted audiences must be).

use std::sync::Arc;

use portcullis_core::{Clock, Principal, TokenRejection, TokenVerifier, VerifyFuture};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::claims::{self, str_claim};
use crate::http;
use crate::introspection::{IntrospectionSettings, Introspector};
use crate::jwks::JwksCache;
use crate::metadata;
use crate::{FederationError, HttpClient, jwt};

/// Default clock skew tolerated for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_SKEW_SECS: i64 = 30;

/// One trusted external issuer.
#[derive(Debug, Clone)]
pub struct ExternalIssuerSettings {
    /// The issuer (`iss`), exactly.
    pub issuer: String,
    /// Its JWKS; `None` discovers it from RFC 8414 or OpenID Connect metadata.
    pub jwks_uri: Option<String>,
    /// Its introspection endpoint, for opaque tokens.
    pub introspection: Option<IntrospectionSettings>,
    /// Accepted `aud` values besides the resource URL itself (for issuers that cannot put the
    /// resource URL in `aud`); empty accepts only the resource URL.
    pub audiences: Vec<String>,
    /// The claim holding scopes (`scope` or `scp`); `None` reads `scope`, then `scp`.
    pub scope_claim: Option<String>,
    /// The claim holding groups; `None` maps no groups.
    pub groups_claim: Option<String>,
    /// The claim holding roles (AZ-2); `None` maps no roles, so an issuer cannot grant
    /// Portcullis roles unless configured to.
    pub roles_claim: Option<String>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

/// Verifies tokens of one external issuer; implements [`TokenVerifier`].
pub struct ExternalVerifier {
    settings: ExternalIssuerSettings,
    jwks: Option<JwksCache>,
    introspector: Option<Introspector>,
    skew: i64,
}

impl std::fmt::Debug for ExternalVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalVerifier")
            .field("issuer", &self.settings.issuer)
            .field("jwks", &self.jwks.as_ref().map(|j| j.url().to_string()))
            .field("introspection", &self.introspector.is_some())
            .finish_non_exhaustive()
    }
}

impl ExternalVerifier {
    /// Sets up the verifier: checks the URLs, discovers the JWKS when not given, and loads it.
    /// A JWKS that cannot be loaded now is not fatal: tokens get `Unavailable` until it can.
    pub async fn new(
        settings: ExternalIssuerSettings,
        http: HttpClient,
    ) -> Result<Self, FederationError> {
        metadata::checked_issuer(&settings.issuer)?;
        let introspector = match &settings.introspection {
            Some(i) => Some(Introspector::new(
                http::checked_url(&i.endpoint)?,
                i,
                http.clone(),
                settings.clock.clone(),
            )),
            None => None,
        };
        let jwks_uri = match &settings.jwks_uri {
            Some(u) => Some(http::checked_url(u)?),
            None => match metadata::discover_any(&http, &settings.issuer).await {
                Ok(meta) => Some(metadata::endpoint(
                    &meta.jwks_uri,
                    "jwks_uri",
                    &settings.issuer,
                )?),
                // Introspection alone can still decide every token.
                Err(e) if introspector.is_some() && e.is_unavailable() => {
                    tracing::warn!(issuer = %settings.issuer, error = %e,
                        "no JWKS discovered; every token of this issuer goes to introspection");
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let jwks = jwks_uri.map(|u| JwksCache::new(u, http.clone(), settings.clock.clone()));
        if let Some(j) = &jwks
            && let Err(e) = j.load().await
        {
            tracing::warn!(issuer = %settings.issuer, error = %e,
                "JWKS not loaded at start-up; its tokens are refused as unavailable until it loads");
        }
        Ok(Self {
            settings,
            jwks,
            introspector,
            skew: DEFAULT_SKEW_SECS,
        })
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds (default 30).
    pub fn with_skew_secs(mut self, secs: i64) -> Self {
        self.skew = secs.max(0);
        self
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Whether opaque tokens can be checked (introspection is configured).
    pub fn introspects(&self) -> bool {
        self.introspector.is_some()
    }

    async fn check(&self, token: &str, resource: &str) -> Result<Principal, TokenRejection> {
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return Err(TokenRejection::Malformed("the token is too long".into()));
        }
        if jwt::looks_like_jwt(token) {
            let jws = jwt::parse(token)?;
            // A foreign token must not make us fetch keys.
            if str_claim(&jws.claims, "iss") != Some(self.settings.issuer.as_str()) {
                return Err(TokenRejection::WrongIssuer);
            }
            if let Some(jwks) = &self.jwks {
                let key = jwks.key(jws.kid.as_deref(), jws.alg).await?;
                jws.verify_with(&key)?;
                return self.principal(&jws.claims, token, resource, true);
            }
        }
        let Some(introspector) = &self.introspector else {
            return Err(TokenRejection::Malformed(
                "not a JWT, and this issuer has no introspection endpoint configured".into(),
            ));
        };
        match introspector.introspect(token).await {
            Ok(claims) => self.principal(&claims, token, resource, false),
            // Inactive: an expired JWT says so; anything else was revoked or never issued.
            Err(TokenRejection::Revoked)
                if jwt::unverified_claims(token)
                    .ok()
                    .and_then(|c| c.get("exp").and_then(Value::as_i64))
                    .is_some_and(|exp| exp <= self.settings.clock.now().timestamp()) =>
            {
                Err(TokenRejection::Expired)
            }
            Err(e) => Err(e),
        }
    }

    /// Claims (verified JWT payload, or an active introspection answer) to a principal.
    fn principal(
        &self,
        c: &Map<String, Value>,
        token: &str,
        resource: &str,
        from_jwt: bool,
    ) -> Result<Principal, TokenRejection> {
        let s = &self.settings;
        match str_claim(c, "iss") {
            Some(iss) if iss == s.issuer => {}
            // RFC 7662 makes `iss` optional: the endpoint itself is the issuer's.
            None if !from_jwt => {}
            _ => return Err(TokenRejection::WrongIssuer),
        }
        let now = s.clock.now().timestamp();
        let exp = claims::check_times(c, now, self.skew, from_jwt)?;
        let aud = claims::audiences(c);
        let bound = aud.iter().any(|a| a == resource || s.audiences.contains(a));
        if !bound {
            return Err(TokenRejection::WrongAudience(resource.to_string()));
        }
        let sub = str_claim(c, "sub")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TokenRejection::Malformed("the token has no `sub`".into()))?;
        let client_id = str_claim(c, "client_id")
            .or_else(|| str_claim(c, "azp"))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                TokenRejection::Malformed("the token names no client (`client_id` or `azp`)".into())
            })?;
        let scopes = match &s.scope_claim {
            Some(name) => claims::string_list(c, name, true),
            None if c.contains_key("scope") => claims::string_list(c, "scope", true),
            None => claims::string_list(c, "scp", true),
        };
        let list = |name: &Option<String>| {
            name.as_deref()
                .map(|n| claims::string_list(c, n, false))
                .unwrap_or_default()
        };
        let token_id = match str_claim(c, "jti").filter(|j| !j.is_empty()) {
            Some(j) => j.to_string(),
            // Never the token itself: a hash prefix identifies it for audit.
            None => format!("sha256:{}", &hex_prefix(&Sha256::digest(token.as_bytes()))),
        };
        let display_name = ["preferred_username", "username", "email", "name"]
            .iter()
            .find_map(|n| str_claim(c, n).filter(|v| !v.is_empty()))
            .map(str::to_string);
        Ok(Principal {
            subject: format!("{}|{sub}", s.issuer),
            display_name,
            groups: list(&s.groups_claim),
            roles: list(&s.roles_claim),
            client_id: client_id.to_string(),
            scopes,
            audience: resource.to_string(),
            issuer: s.issuer.clone(),
            token_id,
            expires_at: exp.unwrap_or(now + crate::introspection::POSITIVE_TTL_SECS),
            environment: None,
        })
    }
}

fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl TokenVerifier for ExternalVerifier {
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a> {
        Box::pin(self.check(token, resource))
    }
}
