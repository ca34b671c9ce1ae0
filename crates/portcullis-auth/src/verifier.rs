//! The verifier of the tokens this server issues (AUTH-4): the algorithm comes from our key,
//! never from the token header; signature, issuer, audience (exactly the resource), expiry,
//! not-before, environment and revocation are all checked. Verified tokens are cached (keyed by
//! a SHA-256 of the token, until their `exp`), but revocation is checked on every call against
//! in-memory sets kept in step with the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use parking_lot::RwLock;
use portcullis_core::{Clock, Principal, TokenRejection, TokenVerifier, VerifyFuture};
use serde::{Deserialize, Serialize};

use crate::crypto::sha256;
use crate::keys::PublicKey;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The resource, exactly (RFC 8707).
    pub aud: String,
    /// The client.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Environment (AZ-4).
    pub env: String,
    /// Refresh family.
    pub fam: String,
}

impl Claims {
    fn principal(&self) -> Principal {
        Principal {
            subject: self.sub.clone(),
            display_name: self.name.clone(),
            groups: self.groups.clone(),
            roles: self.roles.clone(),
            client_id: self.client_id.clone(),
            scopes: self
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            audience: self.aud.clone(),
            issuer: self.iss.clone(),
            token_id: self.jti.clone(),
            expires_at: self.exp,
            environment: Some(self.env.clone()),
        }
    }
}

/// A token that verified once.
struct Cached {
    principal: Principal,
    claims: Claims,
}

/// Most cached tokens; past it, expired entries go, and if that is not enough the cache is
/// emptied (a miss costs one signature check, never a wrong answer).
const CACHE_CAP: usize = 65_536;
/// Tokens longer than this are refused unread.
const MAX_TOKEN_LEN: usize = 8192;

/// Verifies this server's access tokens. Shared (`Arc`) between the gateway and the AS.
pub struct Verifier {
    issuer: String,
    environment: String,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<HashMap<String, PublicKey>>>,
    revoked_jti: RwLock<HashSet<String>>,
    revoked_fam: RwLock<HashSet<String>>,
    /// Revocations made here since the last [`Verifier::begin_sync`]: a reload from the store
    /// that started before them must not drop them.
    recent: parking_lot::Mutex<(Vec<String>, Vec<String>)>,
    cache: RwLock<HashMap<[u8; 32], Arc<Cached>>>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens of `issuer` in `environment`.
    pub fn new(issuer: String, environment: String, clock: Arc<dyn Clock>) -> Self {
        // Signature only: time, issuer and audience are checked below with the injected clock
        // and with errors precise enough to tell the caller what was wrong.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Self {
            issuer,
            environment,
            clock,
            keys: RwLock::default(),
            revoked_jti: RwLock::default(),
            revoked_fam: RwLock::default(),
            recent: parking_lot::Mutex::default(),
            cache: RwLock::default(),
            validation,
        }
    }

    /// Replaces the accepted public keys.
    pub fn set_keys(&self, keys: Arc<HashMap<String, PublicKey>>) {
        *self.keys.write() = keys;
    }

    /// Call before reading revocations from the store for [`Verifier::set_revocations`].
    pub fn begin_sync(&self) {
        let mut r = self.recent.lock();
        r.0.clear();
        r.1.clear();
    }

    /// Replaces the revocation sets with the store's view (read after
    /// [`Verifier::begin_sync`]), keeping what was revoked here meanwhile. Entries of expired
    /// tokens leave the sets this way.
    pub fn set_revocations(&self, mut jtis: HashSet<String>, mut families: HashSet<String>) {
        let r = self.recent.lock();
        jtis.extend(r.0.iter().cloned());
        families.extend(r.1.iter().cloned());
        *self.revoked_jti.write() = jtis;
        *self.revoked_fam.write() = families;
    }

    /// Marks an access token id revoked (after the store recorded it).
    pub fn revoke_jti(&self, jti: &str) {
        let mut r = self.recent.lock();
        r.0.push(jti.to_string());
        self.revoked_jti.write().insert(jti.to_string());
    }

    /// Marks refresh families revoked, with every access token issued in them (after the store
    /// recorded it).
    pub fn revoke_families<I: IntoIterator<Item = String>>(&self, ids: I) {
        let mut r = self.recent.lock();
        let ids: Vec<String> = ids.into_iter().collect();
        r.1.extend(ids.iter().cloned());
        self.revoked_fam.write().extend(ids);
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn revoked(&self, c: &Claims) -> bool {
        self.revoked_jti.read().contains(&c.jti) || self.revoked_fam.read().contains(&c.fam)
    }

    /// Verifies `token` for `resource` (its audience must be exactly that).
    pub fn verify_sync(&self, token: &str, resource: &str) -> Result<Principal, TokenRejection> {
        let key = sha256(token.as_bytes());
        let hit = self.cache.read().get(&key).cloned();
        let entry = match hit {
            Some(e) => e,
            None => {
                let claims = self.verify_signed(token)?;
                let e = Arc::new(Cached {
                    principal: claims.principal(),
                    claims,
                });
                self.insert(key, e.clone());
                e
            }
        };
        let c = &entry.claims;
        let now = self.now();
        if now >= c.exp {
            self.cache.write().remove(&key);
            return Err(TokenRejection::Expired);
        }
        if now < c.nbf {
            return Err(TokenRejection::NotYetValid);
        }
        if c.aud != resource {
            return Err(TokenRejection::WrongAudience(resource.to_string()));
        }
        if self.revoked(c) {
            self.cache.write().remove(&key);
            return Err(TokenRejection::Revoked);
        }
        Ok(entry.principal.clone())
    }

    /// Verifies a token whatever its audience (introspection, revocation); time and revocation
    /// still apply.
    pub fn verify_any_audience(&self, token: &str) -> Result<Claims, TokenRejection> {
        let c = self.verify_signed(token)?;
        let now = self.now();
        if now >= c.exp {
            return Err(TokenRejection::Expired);
        }
        if now < c.nbf {
            return Err(TokenRejection::NotYetValid);
        }
        if self.revoked(&c) {
            return Err(TokenRejection::Revoked);
        }
        Ok(c)
    }

    /// Signature, algorithm, key, issuer and environment; not time or audience.
    pub fn verify_signed(&self, token: &str) -> Result<Claims, TokenRejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRejection::Malformed(format!(
                "longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        // `alg: none` and unknown algorithms fail to parse here: jsonwebtoken has no `none`.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            TokenRejection::Malformed(
                "not a JWS with a supported algorithm (alg: none is refused)".into(),
            )
        })?;
        // AUTH-4: the algorithm is our key's (ES256), whatever the header claims; HS256 signed
        // with our public key as the secret is refused here.
        if header.alg != Algorithm::ES256 {
            return Err(TokenRejection::BadSignature);
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenRejection::Malformed("the header has no kid".into()))?;
        let keys = self.keys.read().clone();
        let key = keys.get(&kid).ok_or(TokenRejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidEcdsaKey => TokenRejection::BadSignature,
                _ => TokenRejection::Malformed(
                    "the claims are not those of a Portcullis access token".into(),
                ),
            },
        )?;
        let c = data.claims;
        if c.iss != self.issuer {
            return Err(TokenRejection::WrongIssuer);
        }
        if c.env != self.environment {
            return Err(TokenRejection::WrongEnvironment);
        }
        Ok(c)
    }

    fn insert(&self, key: [u8; 32], e: Arc<Cached>) {
        let mut cache = self.cache.write();
        if cache.len() >= CACHE_CAP {
            let now = self.now();
            cache.retain(|_, v| v.claims.exp > now);
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(key, e);
    }

    /// Empties the cache (benchmarks of the miss path; never needed for correctness).
    pub fn clear_cache(&self) {
        self.cache.write().clear();
    }

    /// How many tokens are cached (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.cache.read().len()
    }
}

impl TokenVerifier for Verifier {
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a> {
        let r = self.verify_sync(token, resource);
        Box::pin(std::future::ready(r))
    }
}
