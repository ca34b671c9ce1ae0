//! The Ed25519 checkpoint key, kept in a file outside the database (AU-3), the signed checkpoint
//! message, and the head record: a signed copy of the latest chain head written beside the key
//! after every commit, so a tail cut off the database (rows and checkpoints together) is noticed.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use portcullis_store::audit::CheckpointRow;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::canonical::Hash;

const CHECKPOINT_DOMAIN: &[u8] = b"PCA-CHECKPOINT-1\0";

/// The checkpoint signer: the private key and the log it signs for.
pub struct Signer {
    key: SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for Signer {
    // The private key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("path", &self.path)
            .field("public_key", &self.public_hex())
            .finish()
    }
}

impl Signer {
    /// Loads the key at `path`. A missing key is an error: use [`Signer::create`] only when the log
    /// is new, since a fresh key cannot vouch for checkpoints signed by a lost one.
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuditError::KeyMissing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(AuditError::KeyIo {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                });
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| AuditError::KeyIo {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(AuditError::KeyPermissions {
                    path: path.to_path_buf(),
                    mode: mode & 0o777,
                });
            }
        }
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| AuditError::KeyIo {
                path: path.to_path_buf(),
                detail: "the file does not hold an Ed25519 key (64 hex digits)".into(),
            })?;
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
            path: path.to_path_buf(),
        })
    }

    /// Creates a new random key at `path`, readable by the owner only (0600). Fails if the file
    /// exists (never overwrite a key).
    pub fn create(path: &Path) -> Result<Self, AuditError> {
        let io = |e: std::io::Error| AuditError::KeyIo {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
            path: path.to_path_buf(),
        })
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key in hex, to name it in messages.
    pub fn public_hex(&self) -> String {
        hex::encode(self.verifying_key().as_bytes())
    }

    /// Where the key file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A signed checkpoint of the chain at `seq`.
    pub fn checkpoint(&self, log_id: &[u8], seq: i64, hash: &Hash, time_us: i64) -> CheckpointRow {
        let msg = checkpoint_message(log_id, seq, hash, time_us);
        CheckpointRow {
            seq,
            hash: hash.to_vec(),
            time_us,
            public_key: self.verifying_key().as_bytes().to_vec(),
            signature: self.key.sign(&msg).to_bytes().to_vec(),
        }
    }
}

fn checkpoint_message(log_id: &[u8], seq: i64, hash: &[u8], time_us: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + log_id.len() + 48 + 1);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.push(log_id.len() as u8);
    m.extend_from_slice(log_id);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&time_us.to_be_bytes());
    m
}

/// Checks a checkpoint's signature against `key` (the trusted key from the key file, never the one
/// recorded in the row, which whoever edits the database could replace).
pub fn verify_checkpoint(
    key: &VerifyingKey,
    log_id: &[u8],
    c: &CheckpointRow,
) -> Result<(), String> {
    if c.public_key != key.as_bytes() {
        return Err(format!(
            "it was signed by key {}, not by the audit key {}",
            hex::encode(&c.public_key),
            hex::encode(key.as_bytes())
        ));
    }
    if c.hash.len() != 32 {
        return Err("its chain hash is not 32 bytes".into());
    }
    let sig = <[u8; 64]>::try_from(c.signature.as_slice())
        .map_err(|_| "its signature is not 64 bytes".to_string())?;
    key.verify(
        &checkpoint_message(log_id, c.seq, &c.hash, c.time_us),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| "its signature does not verify".to_string())
}

/// The head record written beside the key after each commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// Log id (hex).
    pub log_id: String,
    /// Last seq committed.
    pub seq: i64,
    /// Chain hash at `seq` (hex).
    pub hash: String,
    /// When, microseconds since the epoch.
    pub time_us: i64,
    /// Signature over the same message as a checkpoint (hex).
    pub signature: String,
}

impl HeadRecord {
    /// A signed head record.
    pub fn new(signer: &Signer, log_id: &[u8], seq: i64, hash: &Hash, time_us: i64) -> Self {
        let c = signer.checkpoint(log_id, seq, hash, time_us);
        Self {
            log_id: hex::encode(log_id),
            seq,
            hash: hex::encode(hash),
            time_us,
            signature: hex::encode(c.signature),
        }
    }

    /// As a checkpoint row, to verify it the same way.
    pub fn as_checkpoint(&self, key: &VerifyingKey) -> Result<CheckpointRow, String> {
        Ok(CheckpointRow {
            seq: self.seq,
            hash: hex::decode(&self.hash).map_err(|_| "its hash is not hex".to_string())?,
            time_us: self.time_us,
            public_key: key.as_bytes().to_vec(),
            signature: hex::decode(&self.signature)
                .map_err(|_| "its signature is not hex".to_string())?,
        })
    }

    /// Writes the record atomically (temporary file, then rename), so a crash never leaves half
    /// a record.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        // A temporary name of this process's own: two processes writing the same temporary file
        // at once could rename the other's half-written record into place.
        let mut nonce = [0u8; 8];
        rand::rng().fill_bytes(&mut nonce);
        let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), hex::encode(nonce)));
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Reads the record; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, AuditError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| AuditError::KeyIo {
                path: path.to_path_buf(),
                detail: format!("the head record is unreadable ({e}); it should be JSON written by Portcullis"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuditError::KeyIo { path: path.to_path_buf(), detail: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let a = Signer::create(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let b = Signer::load(&p).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        assert!(
            Signer::create(&p).is_err(),
            "an existing key must never be overwritten"
        );
        assert!(
            !format!("{a:?}").contains(&std::fs::read_to_string(&p).unwrap().trim().to_string())
        );
    }

    #[test]
    fn missing_or_open_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        assert!(matches!(
            Signer::load(&p),
            Err(AuditError::KeyMissing { .. })
        ));
        Signer::create(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                Signer::load(&p),
                Err(AuditError::KeyPermissions { .. })
            ));
        }
    }

    #[test]
    fn checkpoint_signature_binds_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = Signer::create(&dir.path().join("k")).unwrap();
        let key = s.verifying_key();
        let c = s.checkpoint(b"log", 10, &[3; 32], 99);
        verify_checkpoint(&key, b"log", &c).unwrap();
        assert!(verify_checkpoint(&key, b"other", &c).is_err());
        let mut d = c.clone();
        d.seq = 11;
        assert!(verify_checkpoint(&key, b"log", &d).is_err());
        let mut d = c.clone();
        d.hash[0] ^= 1;
        assert!(verify_checkpoint(&key, b"log", &d).is_err());
        let other = Signer::create(&dir.path().join("k2")).unwrap();
        assert!(
            verify_checkpoint(&other.verifying_key(), b"log", &c)
                .unwrap_err()
                .contains("signed by key")
        );
    }
}
