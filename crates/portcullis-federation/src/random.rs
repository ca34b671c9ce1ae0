//! Unguessable values for a login (state, nonce, PKCE verifier) and the PKCE S256 challenge
//! (RFC 7636 §4.2). The source is injectable so tests can pin it; production uses the OS-seeded
//! thread generator.

use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Fills a buffer with random bytes.
pub type RandomSource = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

/// The default source: `rand`'s thread generator (a CSPRNG seeded from the OS).
pub fn os_random() -> RandomSource {
    Arc::new(|buf: &mut [u8]| rand::rng().fill_bytes(buf))
}

/// 32 random bytes, base64url without padding (43 characters, 256 bits): valid as a PKCE
/// verifier (RFC 7636 §4.1), a state and a nonce.
pub(crate) fn token(source: &RandomSource) -> String {
    let mut buf = [0u8; 32];
    source(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// `BASE64URL(SHA256(verifier))`.
pub(crate) fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let src = os_random();
        let (a, b) = (token(&src), token(&src));
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}
