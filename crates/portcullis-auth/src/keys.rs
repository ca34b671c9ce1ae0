//! Signing keys (AUTH-9): ES256 keys created here, their private halves sealed in the database
//! under the master key kept in `data_dir/auth-master.key`; rotation every `key_rotation`, with
//! retired keys still published (and accepted) for an overlap of at least the access-token
//! lifetime, so tokens signed just before a rotation stay valid until they expire.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{DecodingKey, EncodingKey};
use portcullis_store::Store;
use portcullis_store::auth::KeyRow;

use crate::AuthError;
use crate::crypto::{MasterKey, b64url, random_bytes};

/// The master key's file name in the data directory.
pub const MASTER_KEY_FILE: &str = "auth-master.key";
const CHECK_KEY: &str = "master_check";
const CHECK_PLAIN: &[u8] = b"portcullis-auth master key check";

/// Loads the master key, or creates it (0600) when neither it nor anything sealed under it
/// exists. A database that has sealed data but no key file is an error, never a fresh key.
pub async fn load_master_key(store: &Store, data_dir: &Path) -> Result<MasterKey, AuthError> {
    let path = data_dir.join(MASTER_KEY_FILE);
    let check = store.auth_meta_get(CHECK_KEY).await?;
    let key = match std::fs::read_to_string(&path) {
        Ok(text) => parse_key(&path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if check.is_some() || !store.auth_keys().await?.is_empty() {
                return Err(AuthError::MasterKeyMissing(path));
            }
            create_key(&path)?
        }
        Err(e) => {
            return Err(AuthError::MasterKeyIo {
                path,
                detail: e.to_string(),
            });
        }
    };
    match check {
        Some(c) => {
            let ok = c
                .split_once(':')
                .and_then(|(n, s)| Some((hex_decode(n)?, hex_decode(s)?)))
                .and_then(|(n, s)| key.open(&n, &s, CHECK_KEY.as_bytes()))
                .is_some_and(|p| p == CHECK_PLAIN);
            if !ok {
                return Err(AuthError::MasterKeyMismatch(path));
            }
        }
        None => {
            let (n, s) = key.seal(CHECK_PLAIN, CHECK_KEY.as_bytes());
            let stored = store
                .auth_meta_init(CHECK_KEY, &format!("{}:{}", hex(&n), hex(&s)))
                .await?;
            // Another process may have initialised it first, with another key file.
            if stored != format!("{}:{}", hex(&n), hex(&s)) {
                return Box::pin(load_master_key(store, data_dir)).await;
            }
        }
    }
    Ok(key)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_key(path: &Path, text: &str) -> Result<MasterKey, AuthError> {
    let bytes = hex_decode(text.trim())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| AuthError::MasterKeyIo {
            path: path.to_path_buf(),
            detail: "it does not hold 64 hexadecimal digits; restore the original file".into(),
        })?;
    let mut k = [0u8; 32];
    k.copy_from_slice(&bytes);
    Ok(MasterKey::from_bytes(k))
}

fn create_key(path: &PathBuf) -> Result<MasterKey, AuthError> {
    let io = |e: std::io::Error| AuthError::MasterKeyIo {
        path: path.clone(),
        detail: e.to_string(),
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let k = random_bytes::<32>();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(format!("{}\n", hex(&k)).as_bytes())
        .map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(MasterKey::from_bytes(k))
}

/// A public key as verifiers and the JWKS need it.
#[derive(Clone)]
pub struct PublicKey {
    /// Key id.
    pub kid: String,
    /// For jsonwebtoken.
    pub decoding: DecodingKey,
    /// The JWK (public parts only).
    pub jwk: serde_json::Value,
}

/// The current signing key and every public key still accepted.
#[derive(Clone)]
pub struct KeySet {
    /// The key new tokens are signed with.
    pub current_kid: String,
    /// Its private half.
    pub encoding: Arc<EncodingKey>,
    /// Accepted keys by kid (current and retired within the overlap).
    pub public: Arc<HashMap<String, PublicKey>>,
}

/// A public key from its uncompressed SEC1 point (`0x04 || x || y`); `None` when malformed.
pub fn public_key(kid: &str, point: &[u8]) -> Option<PublicKey> {
    // Uncompressed SEC1: 0x04 || x (32) || y (32).
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
    let decoding = DecodingKey::from_ec_components(&x, &y).ok()?;
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"
    });
    Some(PublicKey {
        kid: kid.to_string(),
        decoding,
        jwk,
    })
}

/// Creates and stores a new ES256 key, retiring the older ones.
pub async fn create_signing_key(
    store: &Store,
    master: &MasterKey,
    now_us: i64,
) -> Result<String, AuthError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| AuthError::Settings("cannot generate a P-256 signing key".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| AuthError::Settings("cannot load the generated signing key".into()))?;
    let kid = b64url(&random_bytes::<12>());
    let (nonce, sealed) = master.seal(pkcs8.as_ref(), kid.as_bytes());
    store
        .auth_insert_key(&KeyRow {
            kid: kid.clone(),
            alg: "ES256".into(),
            public_key: pair.public_key().as_ref().to_vec(),
            nonce,
            sealed,
            created_us: now_us,
            retired_us: None,
        })
        .await?;
    store
        .auth_retire_keys_older_than(&kid, now_us, now_us)
        .await?;
    Ok(kid)
}

/// Loads the key set: the newest live key signs; it and retired keys younger than `overlap_us`
/// verify. `None` when there is no live key yet.
pub async fn load_key_set(
    store: &Store,
    master: &MasterKey,
    data_dir: &Path,
    now_us: i64,
    overlap_us: i64,
) -> Result<Option<(KeySet, i64)>, AuthError> {
    let rows = store.auth_keys().await?;
    let Some(cur) = rows.iter().find(|r| r.retired_us.is_none()) else {
        return Ok(None);
    };
    let der = master
        .open(&cur.nonce, &cur.sealed, cur.kid.as_bytes())
        .ok_or_else(|| AuthError::MasterKeyMismatch(data_dir.join(MASTER_KEY_FILE)))?;
    let mut public = HashMap::new();
    for r in &rows {
        let live = r.retired_us.is_none_or(|t| now_us - t < overlap_us);
        if live
            && r.alg == "ES256"
            && let Some(p) = public_key(&r.kid, &r.public_key)
        {
            public.insert(r.kid.clone(), p);
        }
    }
    Ok(Some((
        KeySet {
            current_kid: cur.kid.clone(),
            encoding: Arc::new(EncodingKey::from_ec_der(&der)),
            public: Arc::new(public),
        },
        cur.created_us,
    )))
}
