//! Small cryptographic helpers: random tokens, digests, constant-time comparison, HMAC, and the
//! AES-256-GCM sealing of signing keys under the master key (AUTH-9).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system RNG failing is not recoverable and must not yield predictable tokens.
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random number generator failed");
    b
}

/// A random token with 256 bits of entropy, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA-256 of `parts` (each length-prefixed, so no two inputs collide).
pub fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The master key: 32 bytes kept outside the database, sealing the signing keys.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A key from its bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// A subkey for one purpose, so that no two uses share a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac(&self.0, &[b"portcullis-auth-subkey", purpose.as_bytes()])
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte AES-256 key"))
    }

    /// Seals `plain`, bound to `aad`; returns (nonce, ciphertext with tag).
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut buf = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .expect("AES-GCM sealing of a small buffer cannot fail");
        (nonce.to_vec(), buf)
    }

    /// Opens what [`MasterKey::seal`] sealed; `None` when the key, the nonce, the AAD or the
    /// data do not match.
    pub fn open(&self, nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut buf = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_aad() {
        let k = MasterKey::from_bytes([7; 32]);
        let (n, c) = k.seal(b"private key", b"kid-1");
        assert_eq!(k.open(&n, &c, b"kid-1").unwrap(), b"private key");
        assert!(k.open(&n, &c, b"kid-2").is_none());
        assert!(
            MasterKey::from_bytes([8; 32])
                .open(&n, &c, b"kid-1")
                .is_none()
        );
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hmac_parts_are_length_prefixed() {
        let k = [1; 32];
        assert_ne!(hmac(&k, &[b"ab", b"c"]), hmac(&k, &[b"a", b"bc"]));
        assert!(ct_eq(b"x", b"x") && !ct_eq(b"x", b"y") && !ct_eq(b"x", b"xx"));
    }
}
