//! Compact JWS parsing and signature checking (RFC 7515), with the algorithm taken from the
//! key, never from the token (AUTH-4, AUTH-6). The claims are checked by [`crate::claims`] with
//! the injected clock, which is why `jsonwebtoken`'s own claim validation (system time) is not
//! used: only its signature primitives are.

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use portcullis_core::TokenRejection;
use serde_json::{Map, Value};

use crate::jwks::VerifyingKey;

/// Larger tokens are refused before any decoding (a bearer header this big is an attack).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The parts of a compact JWS that matter here.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    /// The algorithm the token claims; only ever compared with the key's.
    pub alg: Algorithm,
    /// The key id, when the header has one.
    pub kid: Option<String>,
    /// The payload's claims.
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

/// Whether `token` has the shape of a compact JWS (three base64url parts); anything else is
/// treated as an opaque token.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().take(2).all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn b64_json(part: &str, what: &str) -> Result<Map<String, Value>, TokenRejection> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenRejection::Malformed(format!("the JWT {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenRejection::Malformed(format!(
            "the JWT {what} is not a JSON object"
        ))),
    }
}

/// The claims of a JWT without checking anything: only to route a token to its issuer's
/// verifier, or to read `iss` before the key is known.
pub(crate) fn unverified_claims(token: &str) -> Result<Map<String, Value>, TokenRejection> {
    if token.len() > MAX_TOKEN_BYTES || !looks_like_jwt(token) {
        return Err(TokenRejection::Malformed("not a JWT".into()));
    }
    let payload = token.split('.').nth(1).unwrap_or_default();
    b64_json(payload, "payload")
}

/// Splits and decodes a compact JWS. `alg: none` is malformed; HMAC algorithms are refused as a
/// bad signature, since the issuers trusted here publish only public keys and an HS token
/// "signed" with a public key is the classic key-confusion attack.
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, TokenRejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenRejection::Malformed(format!(
            "the token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    if !looks_like_jwt(token) {
        return Err(TokenRejection::Malformed(
            "not a JWT (expected three base64url parts)".into(),
        ));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| TokenRejection::Malformed("not a JWT".into()))?;
    let (header_part, payload_part) = signing_input
        .split_once('.')
        .ok_or_else(|| TokenRejection::Malformed("not a JWT".into()))?;
    let header = b64_json(header_part, "header")?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        return Err(TokenRejection::Malformed(
            "the JWT header has critical extensions (crit), which are not supported".into(),
        ));
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        None => {
            return Err(TokenRejection::Malformed(
                "the JWT header has no alg".into(),
            ));
        }
        Some(a) if a.eq_ignore_ascii_case("none") => {
            return Err(TokenRejection::Malformed(
                "unsigned tokens (alg none) are refused".into(),
            ));
        }
        Some("HS256" | "HS384" | "HS512") => return Err(TokenRejection::BadSignature),
        Some(a) => a.parse::<Algorithm>().map_err(|_| {
            TokenRejection::Malformed(format!("unsupported JWT alg `{}`", short(a)))
        })?,
    };
    if signature.is_empty() {
        return Err(TokenRejection::BadSignature);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            return Err(TokenRejection::Malformed(
                "the JWT kid is not a string".into(),
            ));
        }
    };
    let claims = b64_json(payload_part, "payload")?;
    Ok(Jws {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(20).collect()
}

impl Jws<'_> {
    /// Checks the signature with `key`; the token's `alg` must be the key's own.
    pub(crate) fn verify_with(&self, key: &VerifyingKey) -> Result<(), TokenRejection> {
        if self.alg != key.alg {
            return Err(TokenRejection::BadSignature);
        }
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key.key,
            key.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(TokenRejection::BadSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn token(header: Value) -> String {
        format!(
            "{}.{}.c2ln",
            enc(&header),
            enc(&serde_json::json!({"sub": "a"}))
        )
    }

    #[test]
    fn alg_none_is_malformed_and_hmac_is_a_bad_signature() {
        let t = token(serde_json::json!({"alg": "none"}));
        assert!(matches!(parse(&t), Err(TokenRejection::Malformed(m)) if m.contains("alg none")));
        let t = token(serde_json::json!({"alg": "NONE"}));
        assert!(matches!(parse(&t), Err(TokenRejection::Malformed(_))));
        for alg in ["HS256", "HS384", "HS512"] {
            let t = token(serde_json::json!({ "alg": alg }));
            assert_eq!(parse(&t).unwrap_err(), TokenRejection::BadSignature);
        }
        let t = token(serde_json::json!({"alg": "XX1"}));
        assert!(matches!(parse(&t), Err(TokenRejection::Malformed(_))));
        let t = token(serde_json::json!({"alg": "RS256", "crit": ["exp"]}));
        assert!(matches!(parse(&t), Err(TokenRejection::Malformed(m)) if m.contains("crit")));
    }

    #[test]
    fn shapes_that_are_not_jwts_are_malformed() {
        for t in ["", "abc", "a.b", "a.b.c.d", "a..c", "a.b.c d", "YQ.YQ.YQ"] {
            assert!(
                matches!(parse(t), Err(TokenRejection::Malformed(_))),
                "{t:?}"
            );
        }
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(parse(&huge), Err(TokenRejection::Malformed(_))));
        let t = token(serde_json::json!({"alg": "RS256", "kid": "k1"}));
        let jws = parse(&t).unwrap();
        assert_eq!(jws.alg, Algorithm::RS256);
        assert_eq!(jws.kid.as_deref(), Some("k1"));
        assert_eq!(jws.claims["sub"], "a");
        assert!(looks_like_jwt(&t));
        assert!(!looks_like_jwt("opaque-token_value"));
    }
}
