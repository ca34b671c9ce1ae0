//! Raw payloads kept by policy (AU-2), encrypted at rest with a key per data subject, so erasing a
//! subject (AU-5) destroys its key and with it every copy of its payloads, backups included
//! (crypto-shredding). Subject keys are stored wrapped by a master key kept in a file outside the
//! database. AES-256-GCM from aws-lc-rs (the crypto provider the rest of the stack uses).

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use portcullis_store::Store;
use portcullis_store::audit::SubjectKeyRow;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AuditError;

/// The master key that wraps subject keys.
pub struct MasterKey {
    key: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| "not an AES-256 key".to_string())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

impl MasterKey {
    /// Loads the key at `path`, creating it (0600) when `create` and it is missing.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, AuditError> {
        let io = |e: std::io::Error| AuditError::KeyIo {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let bytes = match std::fs::read_to_string(path) {
            Ok(t) => hex::decode(t.trim()).map_err(|_| AuditError::KeyIo {
                path: path.to_path_buf(),
                detail: "the file does not hold a payload key (64 hex digits)".into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let k: [u8; 32] = random();
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    o.mode(0o600);
                }
                let mut f = o.open(path).map_err(io)?;
                f.write_all(format!("{}\n", hex::encode(k)).as_bytes())
                    .map_err(io)?;
                f.sync_all().map_err(io)?;
                k.to_vec()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuditError::KeyMissing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        let key = aead_key(&bytes).map_err(|d| AuditError::KeyIo {
            path: path.to_path_buf(),
            detail: d,
        })?;
        Ok(Self {
            key,
            path: path.to_path_buf(),
        })
    }

    /// The subject's payload key, made and stored (wrapped) on first use.
    pub async fn subject_key(
        &self,
        store: &Store,
        subject: &str,
        now_us: i64,
    ) -> Result<LessSafeKey, AuditError> {
        let row = match store.subject_key(subject).await? {
            Some(r) => r,
            None => {
                let k: [u8; 32] = random();
                let nonce: [u8; NONCE_LEN] = random();
                let mut wrapped = k.to_vec();
                self.key
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(subject.as_bytes()),
                        &mut wrapped,
                    )
                    .map_err(|_| AuditError::Config("cannot wrap a subject key".into()))?;
                store
                    .subject_key_init(&SubjectKeyRow {
                        subject: subject.to_string(),
                        nonce: nonce.to_vec(),
                        wrapped_key: wrapped,
                        created_us: now_us,
                    })
                    .await?
            }
        };
        let nonce = <[u8; NONCE_LEN]>::try_from(row.nonce.as_slice()).map_err(|_| {
            AuditError::Config(format!(
                "the stored key of a subject has a bad nonce ({})",
                self.path.display()
            ))
        })?;
        let mut buf = row.wrapped_key.clone();
        let k = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(subject.as_bytes()),
                &mut buf,
            )
            .map_err(|_| AuditError::KeyIo {
                path: self.path.clone(),
                detail: "a subject key does not unwrap with this payload key (wrong key file?)"
                    .into(),
            })?;
        aead_key(k).map_err(AuditError::Config)
    }
}

/// An encrypted payload: nonce, ciphertext with tag, and the digest bound into the chain.
pub struct Sealed {
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// SHA-256 over nonce and ciphertext.
    pub digest: Vec<u8>,
}

/// The digest of a stored payload, as kept in the event row.
pub fn digest(nonce: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(nonce);
    h.update(ciphertext);
    h.finalize().to_vec()
}

/// Encrypts `plain` for the event `event_id` (bound as associated data, so a ciphertext cannot be
/// moved to another event).
pub fn seal(key: &LessSafeKey, event_id: &str, plain: &[u8]) -> Result<Sealed, AuditError> {
    let nonce: [u8; NONCE_LEN] = random();
    let mut ct = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(event_id.as_bytes()),
        &mut ct,
    )
    .map_err(|_| AuditError::Config("cannot encrypt a payload".into()))?;
    let d = digest(&nonce, &ct);
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext: ct,
        digest: d,
    })
}

/// Decrypts a payload.
pub fn open(
    key: &LessSafeKey,
    event_id: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, AuditError> {
    let n = <[u8; NONCE_LEN]>::try_from(nonce)
        .map_err(|_| AuditError::Config("bad payload nonce".into()))?;
    let mut buf = ciphertext.to_vec();
    let p = key
        .open_in_place(
            Nonce::assume_unique_for_key(n),
            Aad::from(event_id.as_bytes()),
            &mut buf,
        )
        .map_err(|_| {
            AuditError::Config(
                "a payload does not decrypt (altered, or moved from another event)".into(),
            )
        })?;
    Ok(p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = aead_key(&[7u8; 32]).unwrap();
        let s = seal(&k, "ev1", b"hello").unwrap();
        assert_eq!(open(&k, "ev1", &s.nonce, &s.ciphertext).unwrap(), b"hello");
        assert!(
            open(&k, "ev2", &s.nonce, &s.ciphertext).is_err(),
            "bound to its event"
        );
        assert_ne!(s.ciphertext[..5], b"hello"[..]);
        assert_eq!(s.digest, digest(&s.nonce, &s.ciphertext));
    }
}
