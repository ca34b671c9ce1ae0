//! The state every handler shares.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use portcullis_core::Clock;
use portcullis_store::Store;

use crate::cimd::CimdCache;
use crate::crypto::MasterKey;
use crate::events::{AuthEvent, AuthEventSink};
use crate::keys::KeySet;
use crate::settings::{AuthSettings, ProtectedResource};
use crate::throttle::Throttle;
use crate::verifier::Verifier;

/// Shared state of one authorization server.
pub struct Inner {
    /// Behaviour.
    pub settings: AuthSettings,
    /// The database.
    pub store: Store,
    /// Where the master key and demo password live.
    pub data_dir: PathBuf,
    /// The issuer URL, no trailing slash.
    pub issuer: String,
    /// Whether cookies get `Secure` and the `__Host-` prefix.
    pub https: bool,
    /// What tokens may be issued for.
    pub resources: Vec<ProtectedResource>,
    /// Injected time.
    pub clock: Arc<dyn Clock>,
    /// Seals signing keys; derives the CSRF key.
    pub master: MasterKey,
    /// The signing key and accepted public keys.
    pub keys: RwLock<KeySet>,
    /// When the current signing key was made.
    pub key_created_us: RwLock<i64>,
    /// The shared token verifier.
    pub verifier: Arc<Verifier>,
    /// Fetched client metadata documents.
    pub cimd: CimdCache,
    /// Failed sign-in counters.
    pub throttle: Throttle,
    /// HMAC key of the forms' CSRF tokens.
    pub csrf_key: [u8; 32],
    /// An argon2 hash of a random password, verified against when the user name is unknown, so
    /// both cases take the same time.
    pub dummy_hash: String,
    /// Where auditable actions go.
    pub events: RwLock<Option<AuthEventSink>>,
    /// The upstream OpenID provider of federated sign-in, when configured (AUTH-6).
    pub federation: Option<portcullis_federation::OidcLogin>,
}

impl Inner {
    /// Now, microseconds since the epoch.
    pub fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// Now, seconds since the epoch.
    pub fn now_s(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Reports an event to the sink, if one is set.
    pub fn emit(&self, e: AuthEvent) {
        if let Some(sink) = self.events.read().clone() {
            sink(e);
        }
    }

    /// The resource with this exact URL.
    pub fn resource(&self, url: &str) -> Option<&ProtectedResource> {
        self.resources.iter().find(|r| r.url == url)
    }

    /// Every scope any resource knows, sorted, deduplicated.
    pub fn all_scopes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .resources
            .iter()
            .flat_map(|r| r.scopes.iter().map(|s| s.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// A cookie name, with the `__Host-` prefix when served over https.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.https {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure over https.
    pub fn cookie(&self, base: &str, value: &str, max_age_s: i64) -> String {
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{}",
            self.cookie_name(base),
            if self.https { "; Secure" } else { "" }
        )
    }
}

/// The state type of the router.
pub type AppState = Arc<Inner>;
