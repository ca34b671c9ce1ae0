//! An issuer's signing keys (RFC 7517), fetched from its `jwks_uri` and cached. Each key's
//! algorithm is decided here from the key itself (kty, crv, alg), so a token cannot pick it
//! (AUTH-4). A token naming an unknown `kid` triggers at most one refetch per
//! [`REFETCH_INTERVAL_SECS`], so garbage tokens cannot make the gateway hammer the issuer.

use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use portcullis_core::{Clock, TokenRejection};
use reqwest::Url;
use serde_json::Value;

use crate::http::{self, JWKS_BODY_LIMIT};
use crate::{FederationError, HttpClient};

/// Least time between two fetches of one JWKS triggered by tokens.
pub const REFETCH_INTERVAL_SECS: i64 = 30;
/// Keys older than this are refreshed on the next verification (rotation without new `kid`s
/// in tokens, or a removed key), when the rate limit allows.
pub const MAX_AGE_SECS: i64 = 3600;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;

/// One public key with the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The algorithm a JWK verifies, or `None` when the key cannot be used for signatures here
/// (symmetric, encryption-only, unknown curve, or an `alg` that contradicts its type).
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let declared = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            // OIDC Discovery: RS256 is the default when a key does not say.
            None => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            Some(_) => None,
        },
        AlgorithmParameters::EllipticCurve(p) => {
            let alg = match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return None,
            };
            match declared {
                None => Some(alg),
                Some(d) if KeyAlgorithm::from(alg) == d => Some(alg),
                Some(_) => None,
            }
        }
        AlgorithmParameters::OctetKeyPair(p) => match (p.curve.clone(), declared) {
            (EllipticCurve::Ed25519, None | Some(KeyAlgorithm::EdDSA)) => Some(Algorithm::EdDSA),
            _ => None,
        },
        // Symmetric keys are never trusted from a published set.
        _ => None,
    }
}

/// Parses a JWKS document, keeping the signature keys it can use and skipping the others (an
/// issuer may publish encryption keys or key types we do not support beside its signing keys).
pub(crate) fn parse_jwks(doc: &Value) -> Result<Vec<VerifyingKey>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no `keys` array")?;
    let mut out = Vec::new();
    for raw in keys.iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Some(alg) = key_algorithm(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(VerifyingKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    if out.is_empty() {
        return Err("the JWKS holds no usable signature key (RSA, P-256, P-384 or Ed25519)".into());
    }
    Ok(out)
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<VerifyingKey>>,
    fetched_at: Option<i64>,
    last_attempt: Option<i64>,
}

/// The cached key set of one issuer.
pub(crate) struct JwksCache {
    url: Url,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    // Single flight: one fetch at a time; others wait and then look again.
    gate: tokio::sync::Mutex<()>,
}

enum Lookup {
    Found(VerifyingKey),
    Missing,
}

impl JwksCache {
    /// A cache for `url` (already checked by [`http::checked_url`]), empty until first use.
    pub(crate) fn new(url: Url, http: HttpClient, clock: Arc<dyn Clock>) -> Self {
        Self {
            url,
            http,
            clock,
            state: RwLock::new(State::default()),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The JWKS URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// Fetches the keys now (at start-up), whatever the rate limit says.
    pub(crate) async fn load(&self) -> Result<(), FederationError> {
        let _g = self.gate.lock().await;
        let now = self.clock.now().timestamp();
        self.write().last_attempt = Some(now);
        let keys = self.fetch().await?;
        let mut st = self.write();
        st.keys = Arc::new(keys);
        st.fetched_at = Some(now);
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    async fn fetch(&self) -> Result<Vec<VerifyingKey>, FederationError> {
        let doc: Value = http::get_json(&self.http, &self.url, JWKS_BODY_LIMIT, None).await?;
        parse_jwks(&doc).map_err(|detail| FederationError::InvalidResponse {
            url: self.url.to_string(),
            detail,
        })
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Lookup, TokenRejection> {
        let keys = self.read().keys.clone();
        match kid {
            Some(kid) => {
                let mut same_kid = keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if same_kid.peek().is_none() {
                    // Some issuers publish one key without a kid yet name it in tokens; the
                    // signature still has to verify with that published key.
                    if !keys.is_empty() && keys.iter().all(|k| k.kid.is_none()) {
                        return self.lookup(None, alg);
                    }
                    return Ok(Lookup::Missing);
                }
                // The key exists: an algorithm other than its own is a forgery attempt, not a
                // reason to refetch.
                same_kid
                    .find(|k| k.alg == alg)
                    .map(|k| Lookup::Found(k.clone()))
                    .ok_or(TokenRejection::BadSignature)
            }
            None => {
                let mut fits = keys.iter().filter(|k| k.alg == alg);
                match (fits.next(), fits.next()) {
                    (None, _) => Ok(Lookup::Missing),
                    (Some(k), None) => Ok(Lookup::Found(k.clone())),
                    (Some(_), Some(_)) => Err(TokenRejection::Malformed(
                        "the token names no key (kid) and the issuer publishes several".into(),
                    )),
                }
            }
        }
    }

    /// The key a token names (`kid`, or the only key for its algorithm), refetching the set at
    /// most once per [`REFETCH_INTERVAL_SECS`] when it is unknown or the set is stale.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, TokenRejection> {
        let now = self.clock.now().timestamp();
        let stale = self
            .read()
            .fetched_at
            .is_none_or(|t| now - t >= MAX_AGE_SECS);
        if !stale && let Lookup::Found(k) = self.lookup(kid, alg)? {
            return Ok(k);
        }
        let _g = self.gate.lock().await;
        let (fetched_at, last_attempt) = {
            let st = self.read();
            (st.fetched_at, st.last_attempt)
        };
        let stale = fetched_at.is_none_or(|t| now - t >= MAX_AGE_SECS);
        if !stale && let Lookup::Found(k) = self.lookup(kid, alg)? {
            return Ok(k);
        }
        let may_fetch = last_attempt.is_none_or(|t| now - t >= REFETCH_INTERVAL_SECS);
        if may_fetch {
            self.write().last_attempt = Some(now);
            match self.fetch().await {
                Ok(keys) => {
                    let mut st = self.write();
                    st.keys = Arc::new(keys);
                    st.fetched_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(jwks = %self.url, error = %e, "JWKS refresh failed");
                    // Keys we already hold still verify; anything else cannot be decided.
                    if fetched_at.is_some()
                        && let Lookup::Found(k) = self.lookup(kid, alg)?
                    {
                        return Ok(k);
                    }
                    return Err(TokenRejection::Unavailable(format!(
                        "the issuer's JWKS ({}) cannot be fetched",
                        self.url
                    )));
                }
            }
        } else if fetched_at.is_none() {
            return Err(TokenRejection::Unavailable(format!(
                "the issuer's JWKS ({}) could not be fetched recently; retrying within {REFETCH_INTERVAL_SECS}s",
                self.url
            )));
        }
        match self.lookup(kid, alg)? {
            Lookup::Found(k) => Ok(k),
            Lookup::Missing => Err(TokenRejection::UnknownKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn the_algorithm_comes_from_the_key() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": N, "e": "AQAB"});
        let ps = json!({"kty": "RSA", "kid": "p", "alg": "PS256", "n": N, "e": "AQAB"});
        let enc = json!({"kty": "RSA", "kid": "e", "use": "enc", "n": N, "e": "AQAB"});
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let keys = parse_jwks(&json!({"keys": [rsa, ps, enc, oct, {"kty": "weird"}]})).unwrap();
        let got: Vec<_> = keys
            .iter()
            .map(|k| (k.kid.clone().unwrap(), k.alg))
            .collect();
        assert_eq!(
            got,
            vec![
                ("r".into(), Algorithm::RS256),
                ("p".into(), Algorithm::PS256)
            ]
        );
    }

    #[test]
    fn a_set_without_usable_keys_is_refused() {
        assert!(parse_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(parse_jwks(&json!({"nokeys": []})).is_err());
        let ec_wrong_alg = json!({"kty": "EC", "crv": "P-256", "alg": "ES384",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(parse_jwks(&json!({ "keys": [ec_wrong_alg] })).is_err());
    }
}
