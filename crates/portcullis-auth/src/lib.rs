//! portcullis-auth: the built-in OAuth 2.1 authorization server the gateway mounts (AUTH-1,
//! AUTH-2, AUTH-3, AUTH-7, AUTH-9), and the verifier of the tokens it issues (AUTH-4).
//!
//! [`AuthServer::open`] prepares keys and state; [`AuthServer::router`] serves discovery,
//! registration, the authorization code flow with PKCE, token, revocation, introspection and
//! JWKS, and federated sign-in to an upstream OpenID provider when `auth.federation` is set
//! (AUTH-6, `/oauth/federated/start` and `/oauth/federated/callback`); [`AuthServer::verifier`]
//! checks bearer tokens for the gateway. [`AuthAdmin`] does the
//! same store operations for the CLI.

#![warn(missing_docs)]

pub mod admin;
pub mod cimd;
pub mod clients;
pub mod crypto;
pub mod error;
pub mod events;
mod federated;
mod flow;
pub mod keys;
mod metadata;
pub mod pages;
pub mod passwords;
pub mod redirect;
mod register;
mod revoke;
pub mod settings;
mod state;
pub mod throttle;
mod token;
pub mod verifier;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use parking_lot::RwLock;
use portcullis_core::{Clock, Secret, TokenVerifier};
use portcullis_store::Store;

pub use admin::{AuthAdmin, ClientInfo, ConsentInfo, MintToken, NewUser, UserInfo};
pub use error::{AuthError, OAuthError};
pub use events::{AuthEvent, AuthEventSink};
pub use settings::{AuthSettings, ProtectedResource, Registration, ScopeInfo, ScopeLevel};
pub use verifier::{Claims, Verifier};

use crate::state::Inner;

/// Largest request body any AS endpoint reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The demo user's password file in the data directory.
pub const DEMO_PASSWORD_FILE: &str = "demo-password";

/// The authorization server. Cheap to clone.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

fn check_issuer(issuer: &str) -> Result<bool, AuthError> {
    let bad = |why: &str| {
        AuthError::Settings(format!(
            "issuer {issuer:?} {why}; use the gateway's public base URL, like http://127.0.0.1:8080"
        ))
    };
    let u = url::Url::parse(issuer).map_err(|_| bad("is not a URL"))?;
    if issuer.ends_with('/') || u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not end with / or carry a query or fragment"));
    }
    if u.path() != "/" {
        return Err(bad("must have no path (the server is mounted at the root)"));
    }
    match u.scheme() {
        "https" => Ok(true),
        "http" => Ok(false),
        _ => Err(bad("must be http or https")),
    }
}

fn check_resources(resources: &[ProtectedResource]) -> Result<(), AuthError> {
    if resources.is_empty() {
        return Err(AuthError::Settings(
            "no protected resource: the server would have nothing to issue tokens for".into(),
        ));
    }
    for r in resources {
        let u = url::Url::parse(&r.url).map_err(|_| {
            AuthError::Settings(format!("resource {:?} is not an absolute URL", r.url))
        })?;
        if u.fragment().is_some() || !matches!(u.scheme(), "http" | "https") {
            return Err(AuthError::Settings(format!(
                "resource {:?} must be http(s) without a fragment (RFC 8707)",
                r.url
            )));
        }
        if r.scopes.is_empty() {
            return Err(AuthError::Settings(format!(
                "resource {:?} has no scopes",
                r.url
            )));
        }
    }
    Ok(())
}

impl AuthServer {
    /// Opens the server: checks settings, loads (or on first start creates) the master key and
    /// a signing key, and loads the revocation state.
    pub async fn open(
        settings: AuthSettings,
        store: Store,
        data_dir: &Path,
        issuer: String,
        resources: Vec<ProtectedResource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let mut settings = settings;
        settings.resolve()?;
        settings.check()?;
        let https = check_issuer(&issuer)?;
        check_resources(&resources)?;
        // AUTH-6: a configured provider that cannot be discovered stops start-up (fail closed),
        // rather than serving a login page whose federated button cannot work.
        let federation = match &settings.federation {
            Some(f) => Some(federated::discover(f, clock.clone()).await?),
            None => None,
        };
        let master = keys::load_master_key(&store, data_dir).await?;
        let now = clock.now().timestamp_micros();
        let overlap = overlap_us(&settings);
        let (keyset, created) = match keys::load_key_set(&store, &master, data_dir, now, overlap)
            .await?
        {
            Some(k) => k,
            None => {
                keys::create_signing_key(&store, &master, now).await?;
                keys::load_key_set(&store, &master, data_dir, now, overlap)
                    .await?
                    .ok_or_else(|| AuthError::Settings("the new signing key did not load".into()))?
            }
        };
        let verifier = Arc::new(Verifier::new(
            issuer.clone(),
            settings.environment.clone(),
            clock.clone(),
        ));
        verifier.set_keys(keyset.public.clone());
        let mut scopes: Vec<String> = resources
            .iter()
            .flat_map(|r| r.scopes.iter().map(|s| s.name.clone()))
            .collect();
        scopes.sort();
        scopes.dedup();
        let dummy_pw = Secret::new(crypto::random_token());
        let dummy_hash = tokio::task::spawn_blocking(move || passwords::hash(&dummy_pw))
            .await
            .map_err(|e| AuthError::Settings(format!("hashing failed: {e}")))?;
        let inner = Inner {
            cimd: cimd::CimdCache::new(settings.allow_insecure_loopback, scopes),
            throttle: throttle::Throttle::new(
                settings.login_attempts,
                settings.login_window.as_micros() as i64,
            ),
            csrf_key: master.derive("csrf"),
            settings,
            store,
            data_dir: data_dir.to_path_buf(),
            issuer,
            https,
            resources,
            clock,
            master,
            keys: RwLock::new(keyset),
            key_created_us: RwLock::new(created),
            verifier,
            dummy_hash,
            events: RwLock::new(None),
            federation,
        };
        let s = Self {
            inner: Arc::new(inner),
        };
        s.sync().await?;
        Ok(s)
    }

    /// Sends every auditable action to `sink` (no secrets in events).
    pub fn with_event_sink(self, sink: AuthEventSink) -> Self {
        *self.inner.events.write() = Some(sink);
        self
    }

    /// Every AS route, state inside, to merge into the gateway's router at its root.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::oauth_metadata),
            )
            .route(
                "/.well-known/openid-configuration",
                get(metadata::openid_configuration),
            )
            .route("/oauth/jwks", get(metadata::jwks))
            .route("/oauth/register", post(register::register))
            .route("/oauth/authorize", get(flow::authorize))
            .route("/oauth/login", post(flow::login))
            .route("/oauth/federated/start", get(federated::start))
            .route("/oauth/federated/callback", get(federated::callback))
            .route(
                "/oauth/consent",
                get(flow::consent_get).post(flow::consent_post),
            )
            .route("/oauth/token", post(token::token))
            .route("/oauth/revoke", post(revoke::revoke))
            .route("/oauth/introspect", post(revoke::introspect))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.inner.clone())
    }

    /// The verifier of this server's tokens, for the gateway (AUTH-4).
    pub fn verifier(&self) -> Arc<dyn TokenVerifier> {
        self.inner.verifier.clone()
    }

    /// The concrete verifier (benchmarks, tests).
    pub fn token_verifier(&self) -> Arc<Verifier> {
        self.inner.verifier.clone()
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The protected resources.
    pub fn resources(&self) -> &[ProtectedResource] {
        &self.inner.resources
    }

    /// Administration sharing this server's verifier, so revocations apply at once.
    pub fn admin(&self) -> AuthAdmin {
        AuthAdmin::attached(
            self.inner.store.clone(),
            &self.inner.data_dir,
            self.inner.clock.clone(),
            self.inner.verifier.clone(),
            self.inner.events.read().clone(),
        )
    }

    /// Creates user `demo` with a random password when no user exists, writing the password to
    /// `data_dir/demo-password` (0600); returns the password when it created one.
    pub async fn ensure_demo_user(&self) -> Result<Option<String>, AuthError> {
        if self.inner.store.auth_count_users().await? > 0 {
            return Ok(None);
        }
        let password = crypto::b64url(&crypto::random_bytes::<18>());
        let path = self.inner.data_dir.join(DEMO_PASSWORD_FILE);
        let io = |e: std::io::Error| AuthError::FileIo {
            path: path.clone(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(&self.inner.data_dir).map_err(io)?;
        let _ = std::fs::remove_file(&path);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(io)?;
        f.write_all(format!("{password}\n").as_bytes())
            .map_err(io)?;
        match self
            .admin()
            .add_user(NewUser {
                username: "demo".into(),
                display_name: Some("Demo User".into()),
                groups: vec!["demo".into()],
                roles: vec!["end_user".into()],
                password: Secret::new(password.clone()),
            })
            .await
        {
            Ok(_) => Ok(Some(password)),
            // Another replica created it first.
            Err(AuthError::Invalid(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Rotates the signing key when it is older than `key_rotation`, drops retired keys past the
    /// overlap, reloads revocations from the store (so revocations made by the CLI or another
    /// replica apply here), and purges lapsed records. The gateway runs it in a background job
    /// (every minute is fine).
    pub async fn rotate_keys_if_due(&self) -> Result<(), AuthError> {
        let i = &self.inner;
        let now = i.now_us();
        let due = now - *i.key_created_us.read() >= i.settings.key_rotation.as_micros() as i64;
        if due {
            let kid = keys::create_signing_key(&i.store, &i.master, now).await?;
            i.emit(AuthEvent::KeyRotated { kid });
        }
        self.sync().await?;
        i.store.auth_purge_expired(now).await?;
        Ok(())
    }

    /// Reloads keys and revocations from the store.
    pub async fn sync(&self) -> Result<(), AuthError> {
        let i = &self.inner;
        let now = i.now_us();
        if let Some((ks, created)) = keys::load_key_set(
            &i.store,
            &i.master,
            &i.data_dir,
            now,
            overlap_us(&i.settings),
        )
        .await?
        {
            i.verifier.set_keys(ks.public.clone());
            *i.keys.write() = ks;
            *i.key_created_us.write() = created;
        }
        i.verifier.begin_sync();
        let jtis: HashSet<String> = i.store.auth_revoked_jtis(now).await?.into_iter().collect();
        let fams: HashSet<String> = i
            .store
            .auth_revoked_families(now)
            .await?
            .into_iter()
            .collect();
        i.verifier.set_revocations(jtis, fams);
        Ok(())
    }
}

/// How long a retired key stays published and accepted: the access-token lifetime plus a
/// minute of clock skew (AUTH-9).
fn overlap_us(s: &AuthSettings) -> i64 {
    (s.access_token_ttl.as_secs() as i64 + 60) * 1_000_000
}
