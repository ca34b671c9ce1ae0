//! Password hashing for local users: argon2id (PHC strings), run on the blocking pool so a
//! sign-in never stalls the async workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use portcullis_core::Secret;

/// Hashes a password with argon2id and a random salt.
pub fn hash(password: &Secret) -> String {
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("argon2id with default parameters accepts any password")
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub async fn verify(password: Secret, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = hash(&Secret::new("correct horse"));
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(Secret::new("correct horse"), h.clone()).await);
        assert!(!verify(Secret::new("wrong"), h).await);
        assert!(!verify(Secret::new("x"), "not a hash".into()).await);
    }
}
