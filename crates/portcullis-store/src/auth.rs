//! The authorization server's tables (AUTH-1, AUTH-2, AUTH-7, AUTH-9): rows as stored, and the
//! queries on them, the same on SQLite and PostgreSQL. What the rows mean (hashing, sealing,
//! the OAuth rules) is `portcullis-auth`'s business; this module only moves rows. Times are
//! microseconds since the Unix epoch; digests are SHA-256 of the secret they stand for.

use crate::{Store, StoreError, dispatch};

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// Stable id (UUID text), the tokens' `sub`.
    pub id: String,
    /// Sign-in name, unique.
    pub username: String,
    /// A name fit to show.
    pub display_name: Option<String>,
    /// Groups, a JSON array of strings.
    pub groups_json: String,
    /// Roles, a JSON array of strings.
    pub roles_json: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot sign in and their refresh tokens stop working.
    pub disabled: bool,
    /// When created.
    pub created_us: i64,
}

/// A registered client (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRow {
    /// The client id.
    pub client_id: String,
    /// Its self-declared name (unverified).
    pub client_name: Option<String>,
    /// Registered redirect URIs, a JSON array, compared exactly.
    pub redirect_uris: String,
    /// Grant types, a JSON array.
    pub grant_types: String,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<Vec<u8>>,
    /// The registration response's metadata, a JSON object (no secret in it).
    pub metadata: String,
    /// When registered.
    pub created_us: i64,
    /// When revoked by an administrator.
    pub revoked_us: Option<i64>,
}

/// A user's consent to a client for a resource (AUTH-7).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRow {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The resource (RFC 8707).
    pub resource: String,
    /// Consented scopes, space separated.
    pub scopes: String,
    /// When given (or last widened).
    pub granted_us: i64,
}

/// A pending authorization request, between `/oauth/authorize` and the consent decision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestRow {
    /// Random id, carried in the forms.
    pub id: String,
    /// SHA-256 of the browser-binding cookie the request was started with (CSRF).
    pub browser: Vec<u8>,
    /// The validated request, a JSON object.
    pub payload: String,
    /// The signed-in user, once known.
    pub user_id: Option<String>,
    /// When it lapses.
    pub expires_us: i64,
}

/// A signed-in browser session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// SHA-256 of the session cookie.
    pub id_hash: Vec<u8>,
    /// The user.
    pub user_id: String,
    /// When created.
    pub created_us: i64,
    /// When it lapses.
    pub expires_us: i64,
}

/// An authorization code (single use, short-lived).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeRow {
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The exact redirect URI of the request.
    pub redirect_uri: String,
    /// The resource it is bound to.
    pub resource: String,
    /// Granted scopes, space separated.
    pub scopes: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The refresh family its tokens will belong to (so a reused code revokes them).
    pub family_id: String,
    /// When it lapses.
    pub expires_us: i64,
    /// When redeemed.
    pub used_us: Option<i64>,
}

/// A refresh-token family: every token issued from one authorization code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyRow {
    /// Family id (the tokens' `fam`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The bound resource.
    pub resource: String,
    /// The scopes granted at authorization, space separated (the most a refresh may ask).
    pub scopes: String,
    /// When created.
    pub created_us: i64,
    /// When its last token lapses at the latest (kept revoked until then).
    pub expires_us: i64,
    /// When revoked.
    pub revoked_us: Option<i64>,
    /// Why (for the audit trail): `reuse`, `revoked`, `consent`, `client`, `user`, `code_reuse`.
    pub reason: Option<String>,
}

/// One refresh token of a family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRow {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Its family.
    pub family_id: String,
    /// Its scopes, space separated.
    pub scopes: String,
    /// When issued.
    pub created_us: i64,
    /// When it lapses.
    pub expires_us: i64,
    /// When used (rotated); a second use is reuse.
    pub used_us: Option<i64>,
}

/// A signing key, its private half sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    /// Key id (`kid`).
    pub kid: String,
    /// JWS algorithm (`ES256`).
    pub alg: String,
    /// The public key (uncompressed SEC1 point).
    pub public_key: Vec<u8>,
    /// AEAD nonce of the sealing.
    pub nonce: Vec<u8>,
    /// The sealed PKCS#8 private key.
    pub sealed: Vec<u8>,
    /// When created.
    pub created_us: i64,
    /// When replaced by a newer key.
    pub retired_us: Option<i64>,
}

const USER_COLS: &str =
    "id, username, display_name, groups_json, roles_json, password_hash, disabled, created_us";
const CLIENT_COLS: &str = "client_id, client_name, redirect_uris, grant_types, auth_method, secret_hash, metadata, created_us, revoked_us";
const FAMILY_COLS: &str =
    "id, user_id, client_id, resource, scopes, created_us, expires_us, revoked_us, reason";

impl Store {
    // ---- users ----

    /// Adds a user; `false` when the user name is taken.
    pub async fn auth_insert_user(&self, u: &UserRow) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_users (id, username, display_name, groups_json, roles_json, password_hash, disabled, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING")
            .bind(&u.id).bind(&u.username).bind(&u.display_name).bind(&u.groups_json)
            .bind(&u.roles_json).bind(&u.password_hash).bind(u.disabled).bind(u.created_us)
            .execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("adding a user"))
    }

    /// A user by sign-in name.
    pub async fn auth_user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let q = format!("SELECT {USER_COLS} FROM auth_users WHERE username = $1");
        dispatch!(self.db(), pool => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(q))
            .bind(username).fetch_optional(pool).await)
        .map_err(self.err("reading a user"))
    }

    /// A user by id.
    pub async fn auth_user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let q = format!("SELECT {USER_COLS} FROM auth_users WHERE id = $1");
        dispatch!(self.db(), pool => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(q))
            .bind(id).fetch_optional(pool).await)
        .map_err(self.err("reading a user"))
    }

    /// Every user, by name.
    pub async fn auth_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let q = format!("SELECT {USER_COLS} FROM auth_users ORDER BY username");
        dispatch!(self.db(), pool => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(q))
            .fetch_all(pool).await)
        .map_err(self.err("listing users"))
    }

    /// How many users there are.
    pub async fn auth_count_users(&self) -> Result<i64, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar("SELECT count(*) FROM auth_users")
            .fetch_one(pool).await)
        .map_err(self.err("counting users"))
    }

    /// Disables or enables a user by name; the user's id when found.
    pub async fn auth_set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar(
            "UPDATE auth_users SET disabled = $1 WHERE username = $2 RETURNING id")
            .bind(disabled).bind(username).fetch_optional(pool).await)
        .map_err(self.err("changing a user"))
    }

    /// Replaces a user's display name and groups (a federated user's profile is refreshed from
    /// its provider at each sign-in, AUTH-6); `false` when no user has this id.
    pub async fn auth_update_user_profile(
        &self,
        id: &str,
        display_name: Option<&str>,
        groups_json: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_users SET display_name = $1, groups_json = $2 WHERE id = $3")
            .bind(display_name).bind(groups_json).bind(id)
            .execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("updating a user"))
    }

    // ---- clients ----

    /// Registers a client.
    pub async fn auth_insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_clients (client_id, client_name, redirect_uris, grant_types, auth_method, secret_hash, metadata, created_us, revoked_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&c.client_id).bind(&c.client_name).bind(&c.redirect_uris).bind(&c.grant_types)
            .bind(&c.auth_method).bind(&c.secret_hash).bind(&c.metadata).bind(c.created_us).bind(c.revoked_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("registering a client"))
    }

    /// A registered client.
    pub async fn auth_client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let q = format!("SELECT {CLIENT_COLS} FROM auth_clients WHERE client_id = $1");
        dispatch!(self.db(), pool => sqlx::query_as::<_, ClientRow>(sqlx::AssertSqlSafe(q))
            .bind(client_id).fetch_optional(pool).await)
        .map_err(self.err("reading a client"))
    }

    /// Every registered client, oldest first.
    pub async fn auth_clients(&self) -> Result<Vec<ClientRow>, StoreError> {
        let q = format!("SELECT {CLIENT_COLS} FROM auth_clients ORDER BY created_us, client_id");
        dispatch!(self.db(), pool => sqlx::query_as::<_, ClientRow>(sqlx::AssertSqlSafe(q))
            .fetch_all(pool).await)
        .map_err(self.err("listing clients"))
    }

    /// Marks a client revoked; `false` when unknown or already revoked.
    pub async fn auth_revoke_client(
        &self,
        client_id: &str,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_clients SET revoked_us = $1 WHERE client_id = $2 AND revoked_us IS NULL")
            .bind(now_us).bind(client_id).execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("revoking a client"))
    }

    // ---- consents ----

    /// Records (or replaces) a consent.
    pub async fn auth_upsert_consent(&self, c: &ConsentRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_consents (user_id, client_id, resource, scopes, granted_us) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scopes = excluded.scopes, granted_us = excluded.granted_us")
            .bind(&c.user_id).bind(&c.client_id).bind(&c.resource).bind(&c.scopes).bind(c.granted_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("recording a consent"))
    }

    /// The consent of a user to a client for a resource.
    pub async fn auth_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, ConsentRow>(
            "SELECT user_id, client_id, resource, scopes, granted_us FROM auth_consents WHERE user_id = $1 AND client_id = $2 AND resource = $3")
            .bind(user_id).bind(client_id).bind(resource).fetch_optional(pool).await)
        .map_err(self.err("reading a consent"))
    }

    /// Consents, of one user or of everyone.
    pub async fn auth_consents(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, ConsentRow>(
            "SELECT user_id, client_id, resource, scopes, granted_us FROM auth_consents \
             WHERE ($1 IS NULL OR user_id = $1) ORDER BY user_id, client_id, resource")
            .bind(user_id).fetch_all(pool).await)
        .map_err(self.err("listing consents"))
    }

    /// Deletes a user's consents to a client; how many there were.
    pub async fn auth_delete_consents(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<u64, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "DELETE FROM auth_consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id).bind(client_id).execute(pool).await.map(|r| r.rows_affected()))
        .map_err(self.err("revoking a consent"))
    }

    // ---- pending requests and sessions ----

    /// Stores a pending authorization request.
    pub async fn auth_insert_request(&self, r: &RequestRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_requests (id, browser, payload, user_id, expires_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(&r.id).bind(&r.browser).bind(&r.payload).bind(&r.user_id).bind(r.expires_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing an authorization request"))
    }

    /// A pending authorization request.
    pub async fn auth_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, RequestRow>(
            "SELECT id, browser, payload, user_id, expires_us FROM auth_requests WHERE id = $1")
            .bind(id).fetch_optional(pool).await)
        .map_err(self.err("reading an authorization request"))
    }

    /// Records who signed in for a pending request.
    pub async fn auth_set_request_user(&self, id: &str, user_id: &str) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query("UPDATE auth_requests SET user_id = $1 WHERE id = $2")
            .bind(user_id).bind(id).execute(pool).await.map(|_| ()))
        .map_err(self.err("updating an authorization request"))
    }

    /// Deletes a pending request; `true` only for the one caller that removed it (single use).
    pub async fn auth_take_request(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id).execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("finishing an authorization request"))
    }

    /// Stores a session.
    pub async fn auth_insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_sessions (id_hash, user_id, created_us, expires_us) VALUES ($1, $2, $3, $4)")
            .bind(&s.id_hash).bind(&s.user_id).bind(s.created_us).bind(s.expires_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing a session"))
    }

    /// A session by the digest of its cookie.
    pub async fn auth_session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, SessionRow>(
            "SELECT id_hash, user_id, created_us, expires_us FROM auth_sessions WHERE id_hash = $1")
            .bind(id_hash).fetch_optional(pool).await)
        .map_err(self.err("reading a session"))
    }

    /// Ends every session of a user (when disabled).
    pub async fn auth_delete_sessions_of(&self, user_id: &str) -> Result<u64, StoreError> {
        dispatch!(self.db(), pool => sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user_id).execute(pool).await.map(|r| r.rows_affected()))
        .map_err(self.err("ending sessions"))
    }

    // ---- codes, families, refresh tokens ----

    /// Stores an authorization code.
    pub async fn auth_insert_code(&self, c: &CodeRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, resource, scopes, code_challenge, family_id, expires_us, used_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&c.code_hash).bind(&c.client_id).bind(&c.user_id).bind(&c.redirect_uri).bind(&c.resource)
            .bind(&c.scopes).bind(&c.code_challenge).bind(&c.family_id).bind(c.expires_us).bind(c.used_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing an authorization code"))
    }

    /// An authorization code by digest.
    pub async fn auth_code(&self, code_hash: &[u8]) -> Result<Option<CodeRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, CodeRow>(
            "SELECT code_hash, client_id, user_id, redirect_uri, resource, scopes, code_challenge, family_id, expires_us, used_us \
             FROM auth_codes WHERE code_hash = $1")
            .bind(code_hash).fetch_optional(pool).await)
        .map_err(self.err("reading an authorization code"))
    }

    /// Marks a code used; `true` only for the first caller (single use even across replicas).
    pub async fn auth_use_code(&self, code_hash: &[u8], now_us: i64) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_codes SET used_us = $1 WHERE code_hash = $2 AND used_us IS NULL")
            .bind(now_us).bind(code_hash).execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("redeeming an authorization code"))
    }

    /// Creates a refresh family.
    pub async fn auth_insert_family(&self, f: &FamilyRow) -> Result<(), StoreError> {
        let q = format!(
            "INSERT INTO auth_families ({FAMILY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        dispatch!(self.db(), pool => sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(&f.id).bind(&f.user_id).bind(&f.client_id).bind(&f.resource).bind(&f.scopes)
            .bind(f.created_us).bind(f.expires_us).bind(f.revoked_us).bind(&f.reason)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("creating a token family"))
    }

    /// A refresh family.
    pub async fn auth_family(&self, id: &str) -> Result<Option<FamilyRow>, StoreError> {
        let q = format!("SELECT {FAMILY_COLS} FROM auth_families WHERE id = $1");
        dispatch!(self.db(), pool => sqlx::query_as::<_, FamilyRow>(sqlx::AssertSqlSafe(q))
            .bind(id).fetch_optional(pool).await)
        .map_err(self.err("reading a token family"))
    }

    /// Pushes a family's expiry out (each rotation issues a token that lives longer).
    pub async fn auth_extend_family(&self, id: &str, expires_us: i64) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_families SET expires_us = $1 WHERE id = $2 AND expires_us < $1")
            .bind(expires_us).bind(id).execute(pool).await.map(|_| ()))
        .map_err(self.err("extending a token family"))
    }

    /// Revokes families matching a filter (any of the ids given, or every live family of a
    /// user, of a client, or of a user and client); returns the ids newly revoked.
    pub async fn auth_revoke_families(
        &self,
        filter: FamilyFilter<'_>,
        now_us: i64,
        reason: &str,
    ) -> Result<Vec<String>, StoreError> {
        let (cond, a, b) = match filter {
            FamilyFilter::Id(id) => ("id = $3", Some(id), None),
            FamilyFilter::User(u) => ("user_id = $3", Some(u), None),
            FamilyFilter::Client(c) => ("client_id = $3", Some(c), None),
            FamilyFilter::UserClient(u, c) => ("user_id = $3 AND client_id = $4", Some(u), Some(c)),
        };
        let q = format!(
            "UPDATE auth_families SET revoked_us = $1, reason = $2 WHERE revoked_us IS NULL AND {cond} RETURNING id"
        );
        dispatch!(self.db(), pool => {
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(q)).bind(now_us).bind(reason).bind(a);
            if let Some(b) = b { query = query.bind(b); }
            query.fetch_all(pool).await
        })
        .map_err(self.err("revoking token families"))
    }

    /// Ids of revoked families whose tokens may still be unexpired.
    pub async fn auth_revoked_families(&self, now_us: i64) -> Result<Vec<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM auth_families WHERE revoked_us IS NOT NULL AND expires_us > $1")
            .bind(now_us).fetch_all(pool).await)
        .map_err(self.err("reading revoked token families"))
    }

    /// Stores a refresh token.
    pub async fn auth_insert_refresh(&self, r: &RefreshRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_refresh_tokens (token_hash, family_id, scopes, created_us, expires_us, used_us) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&r.token_hash).bind(&r.family_id).bind(&r.scopes).bind(r.created_us).bind(r.expires_us).bind(r.used_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing a refresh token"))
    }

    /// A refresh token by digest.
    pub async fn auth_refresh(&self, token_hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, RefreshRow>(
            "SELECT token_hash, family_id, scopes, created_us, expires_us, used_us FROM auth_refresh_tokens WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(pool).await)
        .map_err(self.err("reading a refresh token"))
    }

    /// Marks a refresh token used; `true` only for the first caller (a second use is reuse).
    pub async fn auth_use_refresh(
        &self,
        token_hash: &[u8],
        now_us: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_refresh_tokens SET used_us = $1 WHERE token_hash = $2 AND used_us IS NULL")
            .bind(now_us).bind(token_hash).execute(pool).await.map(|r| r.rows_affected() == 1))
        .map_err(self.err("rotating a refresh token"))
    }

    // ---- access-token revocation ----

    /// Records a revoked access token id until its expiry.
    pub async fn auth_revoke_jti(&self, jti: &str, expires_us: i64) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_revoked_jti (jti, expires_us) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti).bind(expires_us).execute(pool).await.map(|_| ()))
        .map_err(self.err("revoking an access token"))
    }

    /// Revoked access token ids not yet expired.
    pub async fn auth_revoked_jtis(&self, now_us: i64) -> Result<Vec<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar(
            "SELECT jti FROM auth_revoked_jti WHERE expires_us > $1")
            .bind(now_us).fetch_all(pool).await)
        .map_err(self.err("reading revoked access tokens"))
    }

    // ---- signing keys and metadata ----

    /// Stores a signing key.
    pub async fn auth_insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_keys (kid, alg, public_key, nonce, sealed, created_us, retired_us) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&k.kid).bind(&k.alg).bind(&k.public_key).bind(&k.nonce).bind(&k.sealed).bind(k.created_us).bind(k.retired_us)
            .execute(pool).await.map(|_| ()))
        .map_err(self.err("storing a signing key"))
    }

    /// Every signing key, newest first (ties by kid, descending).
    pub async fn auth_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_as::<_, KeyRow>(
            "SELECT kid, alg, public_key, nonce, sealed, created_us, retired_us FROM auth_keys ORDER BY created_us DESC, kid DESC")
            .fetch_all(pool).await)
        .map_err(self.err("reading signing keys"))
    }

    /// Retires every live key older than the key (`kid`, `created_us`): older by creation time,
    /// then by kid, so that replicas creating keys at once agree on which one stays live.
    pub async fn auth_retire_keys_older_than(
        &self,
        kid: &str,
        created_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "UPDATE auth_keys SET retired_us = $1 WHERE retired_us IS NULL AND (created_us < $2 OR (created_us = $2 AND kid < $3))")
            .bind(now_us).bind(created_us).bind(kid).execute(pool).await.map(|_| ()))
        .map_err(self.err("retiring signing keys"))
    }

    /// A value from `auth_meta`.
    pub async fn auth_meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self.db(), pool => sqlx::query_scalar("SELECT value FROM auth_meta WHERE key = $1")
            .bind(key).fetch_optional(pool).await)
        .map_err(self.err("reading auth metadata"))
    }

    /// Stores `value` under `key` unless one is there; returns what is stored afterwards.
    pub async fn auth_meta_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        dispatch!(self.db(), pool => sqlx::query(
            "INSERT INTO auth_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key).bind(value).execute(pool).await.map(|_| ()))
        .map_err(self.err("initialising auth metadata"))?;
        self.auth_meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Query {
                location: self.location().to_string(),
                doing: "initialising auth metadata",
                source: sqlx::Error::RowNotFound,
            })
    }

    /// Deletes what has lapsed: pending requests, sessions, codes, used or expired refresh
    /// tokens, revoked access-token ids and families past their expiry.
    pub async fn auth_purge_expired(&self, now_us: i64) -> Result<(), StoreError> {
        // Codes are kept a day past their expiry so that a late replay is still recognised as
        // reuse (and revokes what the code produced) rather than as an unknown code.
        let day_us = 86_400_000_000;
        for (q, t) in [
            ("DELETE FROM auth_requests WHERE expires_us <= $1", now_us),
            ("DELETE FROM auth_sessions WHERE expires_us <= $1", now_us),
            (
                "DELETE FROM auth_codes WHERE expires_us <= $1",
                now_us - day_us,
            ),
            (
                "DELETE FROM auth_refresh_tokens WHERE expires_us <= $1",
                now_us,
            ),
            (
                "DELETE FROM auth_revoked_jti WHERE expires_us <= $1",
                now_us,
            ),
            ("DELETE FROM auth_families WHERE expires_us <= $1", now_us),
        ] {
            dispatch!(self.db(), pool => sqlx::query(q).bind(t).execute(pool).await.map(|_| ()))
                .map_err(self.err("purging lapsed auth records"))?;
        }
        Ok(())
    }
}

/// Which families [`Store::auth_revoke_families`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum FamilyFilter<'a> {
    /// One family.
    Id(&'a str),
    /// Every family of a user.
    User(&'a str),
    /// Every family of a client.
    Client(&'a str),
    /// Every family of a user with a client.
    UserClient(&'a str, &'a str),
}
