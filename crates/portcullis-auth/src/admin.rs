//! Administration (AUTH-2, AUTH-7): users, consents and clients, for the CLI and the admin API.
//! Revocations made here reach a running server's verifier at its next sync
//! ([`crate::AuthServer::rotate_keys_if_due`]) and at once through [`crate::AuthServer::admin`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis_core::{Clock, Secret};
use portcullis_store::Store;
use portcullis_store::auth::{FamilyFilter, UserRow};

use crate::AuthError;
use crate::events::{AuthEvent, AuthEventSink};
use crate::verifier::Verifier;

/// Shortest password accepted for a local user.
pub const MIN_PASSWORD_LEN: usize = 12;

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Sign-in name: 1-64 characters of letters, digits, `.`, `_`, `-` and `@`.
    pub username: String,
    /// A name fit to show.
    pub display_name: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Roles (AZ-2).
    pub roles: Vec<String>,
    /// The password (at least [`MIN_PASSWORD_LEN`] characters).
    pub password: Secret,
}

/// A user as listed (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    /// Id (`sub`).
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Disabled.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A consent as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentInfo {
    /// The user's id.
    pub user_id: String,
    /// The user's name, when the user still exists.
    pub username: Option<String>,
    /// The client.
    pub client_id: String,
    /// The resource.
    pub resource: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// When given.
    pub granted_at: DateTime<Utc>,
}

/// A client as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientInfo {
    /// Client id.
    pub client_id: String,
    /// Declared name (unverified).
    pub client_name: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Token endpoint authentication.
    pub auth_method: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Revoked, when.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn user_info(u: &UserRow) -> UserInfo {
    UserInfo {
        id: u.id.clone(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        groups: serde_json::from_str(&u.groups_json).unwrap_or_default(),
        roles: serde_json::from_str(&u.roles_json).unwrap_or_default(),
        disabled: u.disabled,
        created_at: time(u.created_us),
    }
}

fn valid_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

/// An access token minted by an administrator (tests, break-glass), without the code flow.
#[derive(Debug, Clone)]
pub struct MintToken {
    /// The user it is for (must exist and be enabled).
    pub username: String,
    /// The `client_id` claim.
    pub client_id: String,
    /// The issuer (the gateway's public base URL).
    pub issuer: String,
    /// The resource (audience), exactly.
    pub resource: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The environment (`env` claim).
    pub environment: String,
    /// `iat` and `nbf`.
    pub issued_at: DateTime<Utc>,
    /// Lifetime (at most a day).
    pub ttl: std::time::Duration,
}

/// Store operations on users, consents and clients, without a server.
#[derive(Clone)]
pub struct AuthAdmin {
    store: Store,
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    verifier: Option<Arc<Verifier>>,
    events: Option<AuthEventSink>,
}

impl std::fmt::Debug for AuthAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthAdmin")
            .field("store", &self.store.location())
            .finish_non_exhaustive()
    }
}

impl AuthAdmin {
    /// Administration of the database `store` (its data directory is `data_dir`).
    pub async fn open(
        store: Store,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            store,
            clock,
            data_dir: data_dir.to_path_buf(),
            verifier: None,
            events: None,
        })
    }

    pub(crate) fn attached(
        store: Store,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        verifier: Arc<Verifier>,
        events: Option<AuthEventSink>,
    ) -> Self {
        Self {
            store,
            clock,
            data_dir: data_dir.to_path_buf(),
            verifier: Some(verifier),
            events,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    fn emit(&self, e: AuthEvent) {
        if let Some(s) = &self.events {
            s(e);
        }
    }

    fn revoked(&self, ids: Vec<String>) {
        if let Some(v) = &self.verifier {
            v.revoke_families(ids);
        }
    }

    /// Creates a local user (password hashed with argon2id).
    pub async fn add_user(&self, u: NewUser) -> Result<UserInfo, AuthError> {
        if !valid_username(&u.username) {
            return Err(AuthError::Invalid(format!(
                "user name {:?} is not allowed: use 1-64 letters, digits, '.', '_', '-' or '@'",
                u.username
            )));
        }
        if let Some(bad) = u.groups.iter().chain(&u.roles).find(|g| !valid_label(g)) {
            return Err(AuthError::Invalid(format!(
                "group or role {bad:?} is not allowed: use 1-64 letters, digits, '.', '_', '-' or ':'"
            )));
        }
        if u.display_name
            .as_ref()
            .is_some_and(|d| d.chars().count() > 200 || d.chars().any(char::is_control))
        {
            return Err(AuthError::Invalid(
                "the display name must be at most 200 characters, without control characters"
                    .into(),
            ));
        }
        if u.password.expose().chars().count() < MIN_PASSWORD_LEN {
            return Err(AuthError::Invalid(format!(
                "the password must be at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let pw = u.password.clone();
        let hash = tokio::task::spawn_blocking(move || crate::passwords::hash(&pw))
            .await
            .map_err(|e| AuthError::Invalid(format!("hashing the password failed: {e}")))?;
        let row = UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: u.username.clone(),
            display_name: u.display_name,
            groups_json: serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into()),
            roles_json: serde_json::to_string(&u.roles).unwrap_or_else(|_| "[]".into()),
            password_hash: hash,
            disabled: false,
            created_us: self.now_us(),
        };
        if !self.store.auth_insert_user(&row).await? {
            return Err(AuthError::Invalid(format!(
                "user {:?} already exists",
                u.username
            )));
        }
        Ok(user_info(&row))
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        Ok(self
            .store
            .auth_users()
            .await?
            .iter()
            .map(user_info)
            .collect())
    }

    /// Disables (or enables) a user. Disabling ends their sessions and revokes their token
    /// families, so refresh tokens and access tokens stop working.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<UserInfo, AuthError> {
        let id = self
            .store
            .auth_set_user_disabled(username, disabled)
            .await?
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "no user named {username:?}; see `portcullis users list`"
                ))
            })?;
        if disabled {
            self.store.auth_delete_sessions_of(&id).await?;
            let ids = self
                .store
                .auth_revoke_families(FamilyFilter::User(&id), self.now_us(), "user")
                .await?;
            self.revoked(ids);
        }
        self.emit(AuthEvent::UserChanged {
            user_id: id.clone(),
            disabled,
        });
        let u = self
            .store
            .auth_user(&id)
            .await?
            .ok_or_else(|| AuthError::Invalid("the user vanished".into()))?;
        Ok(user_info(&u))
    }

    /// Consents, of one user (by name) or of everyone.
    pub async fn consents(&self, username: Option<&str>) -> Result<Vec<ConsentInfo>, AuthError> {
        let user_id = match username {
            None => None,
            Some(n) => Some(self.user_id(n).await?),
        };
        let users = self.store.auth_users().await?;
        Ok(self
            .store
            .auth_consents(user_id.as_deref())
            .await?
            .into_iter()
            .map(|c| ConsentInfo {
                username: users
                    .iter()
                    .find(|u| u.id == c.user_id)
                    .map(|u| u.username.clone()),
                user_id: c.user_id,
                client_id: c.client_id,
                resource: c.resource,
                scopes: c
                    .scopes
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                granted_at: time(c.granted_us),
            })
            .collect())
    }

    async fn user_id(&self, username: &str) -> Result<String, AuthError> {
        Ok(self
            .store
            .auth_user_by_name(username)
            .await?
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "no user named {username:?}; see `portcullis users list`"
                ))
            })?
            .id)
    }

    /// Revokes a user's consent to a client (every resource) and the token families it
    /// produced (AUTH-7); how many consents there were.
    pub async fn revoke_consent(&self, username: &str, client_id: &str) -> Result<u64, AuthError> {
        let id = self.user_id(username).await?;
        self.revoke_consent_by_id(&id, client_id).await
    }

    /// [`AuthAdmin::revoke_consent`] by user id.
    pub async fn revoke_consent_by_id(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<u64, AuthError> {
        let n = self.store.auth_delete_consents(user_id, client_id).await?;
        let ids = self
            .store
            .auth_revoke_families(
                FamilyFilter::UserClient(user_id, client_id),
                self.now_us(),
                "consent",
            )
            .await?;
        self.revoked(ids);
        if n == 0 {
            return Err(AuthError::Invalid(format!(
                "the user has no consent for client {client_id:?}; see `portcullis consents list`"
            )));
        }
        self.emit(AuthEvent::ConsentRevoked {
            user_id: user_id.to_string(),
            client_id: client_id.to_string(),
        });
        Ok(n)
    }

    /// Every registered client.
    pub async fn clients(&self) -> Result<Vec<ClientInfo>, AuthError> {
        Ok(self
            .store
            .auth_clients()
            .await?
            .into_iter()
            .map(|c| ClientInfo {
                client_id: c.client_id,
                client_name: c.client_name,
                redirect_uris: serde_json::from_str(&c.redirect_uris).unwrap_or_default(),
                auth_method: c.auth_method,
                created_at: time(c.created_us),
                revoked_at: c.revoked_us.map(time),
            })
            .collect())
    }

    /// Signs an access token with the current signing key, in a token family of its own (so
    /// disabling the user or revoking the client revokes it too). Needs the master key in the
    /// data directory and a signing key (the server creates one at its first start).
    pub async fn mint_access_token(&self, m: MintToken) -> Result<String, AuthError> {
        if m.ttl.is_zero() || m.ttl > std::time::Duration::from_secs(86_400) {
            return Err(AuthError::Invalid(
                "the lifetime must be between 1 s and one day".into(),
            ));
        }
        if m.scopes.is_empty() {
            return Err(AuthError::Invalid("give at least one scope".into()));
        }
        let user = self
            .store
            .auth_user_by_name(&m.username)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AuthError::Invalid(format!("no enabled user named {:?}", m.username)))?;
        if self.store.auth_keys().await?.is_empty() {
            return Err(AuthError::Invalid(
                "there is no signing key yet: start `portcullis serve` once".into(),
            ));
        }
        // Never create a master key here: only the server may, on a database without keys.
        if !self.data_dir.join(crate::keys::MASTER_KEY_FILE).exists() {
            return Err(AuthError::MasterKeyMissing(
                self.data_dir.join(crate::keys::MASTER_KEY_FILE),
            ));
        }
        let master = crate::keys::load_master_key(&self.store, &self.data_dir).await?;
        let now = self.now_us();
        let (keys, _) = crate::keys::load_key_set(&self.store, &master, &self.data_dir, now, 0)
            .await?
            .ok_or_else(|| {
                AuthError::Invalid(
                    "there is no signing key yet: start `portcullis serve` once".into(),
                )
            })?;
        let iat = m.issued_at.timestamp();
        let exp = iat + m.ttl.as_secs() as i64;
        let fam = crate::crypto::b64url(&crate::crypto::random_bytes::<16>());
        self.store
            .auth_insert_family(&portcullis_store::auth::FamilyRow {
                id: fam.clone(),
                user_id: user.id.clone(),
                client_id: m.client_id.clone(),
                resource: m.resource.clone(),
                scopes: m.scopes.join(" "),
                created_us: now,
                expires_us: (exp * 1_000_000).max(now),
                revoked_us: None,
                reason: None,
            })
            .await?;
        let claims = crate::Claims {
            iss: m.issuer,
            sub: user.id.clone(),
            aud: m.resource,
            client_id: m.client_id,
            scope: m.scopes.join(" "),
            exp,
            iat,
            nbf: iat,
            jti: crate::crypto::b64url(&crate::crypto::random_bytes::<16>()),
            name: Some(
                user.display_name
                    .clone()
                    .unwrap_or_else(|| user.username.clone()),
            ),
            groups: serde_json::from_str(&user.groups_json).unwrap_or_default(),
            roles: serde_json::from_str(&user.roles_json).unwrap_or_default(),
            env: m.environment,
            fam,
        };
        crate::token::sign_with(&keys, &claims)
            .map_err(|e| AuthError::Invalid(format!("signing failed: {e}")))
    }

    /// Revokes a registered client and every token family issued to it.
    pub async fn revoke_client(&self, client_id: &str) -> Result<(), AuthError> {
        if !self
            .store
            .auth_revoke_client(client_id, self.now_us())
            .await?
        {
            return Err(AuthError::Invalid(format!(
                "no live registered client {client_id:?}; see `portcullis clients list`"
            )));
        }
        let ids = self
            .store
            .auth_revoke_families(FamilyFilter::Client(client_id), self.now_us(), "client")
            .await?;
        self.revoked(ids);
        self.emit(AuthEvent::ClientRevoked {
            client_id: client_id.to_string(),
        });
        Ok(())
    }
}
