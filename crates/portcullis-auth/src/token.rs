//! `POST /oauth/token` (AUTH-1): the authorization code grant with PKCE S256, and refresh with
//! rotation. A code is single use, lives 60 s, and is bound to client, redirect URI and
//! resource; presenting it again revokes every token issued from it (RFC 6749 §4.1.2). Every
//! refresh rotates the token; presenting a rotated one revokes its whole family, access tokens
//! included (RFC 9700 §4.14.2). Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Header};
use portcullis_store::auth::{FamilyFilter, FamilyRow, RefreshRow, UserRow};
use serde::Deserialize;
use serde_json::json;

use crate::clients::{Client, authenticate, presented};
use crate::crypto::{b64url, ct_eq, random_bytes, random_token, sha256};
use crate::error::OAuthError;
use crate::events::AuthEvent;
use crate::state::{AppState, Inner};
use crate::verifier::Claims;

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// The token endpoint.
pub async fn token(State(inner): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match token_inner(&inner, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let f: TokenForm = serde_urlencoded::from_bytes(body).map_err(|_| {
        OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded with each parameter at most once",
        )
    })?;
    let p = presented(headers, f.client_id.as_deref(), f.client_secret.as_deref())?;
    let client = authenticate(inner, &p).await?;
    match f.grant_type.as_deref() {
        Some("authorization_code") => code_grant(inner, &client, &f).await,
        Some("refresh_token") => refresh_grant(inner, &client, &f).await,
        Some(g) => Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {g:?} is not supported; use authorization_code or refresh_token (no implicit or password grant)"
        ))),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}

fn valid_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

async fn revoke_family(
    inner: &Inner,
    family: &str,
    client_id: &str,
    what: &'static str,
) -> Result<(), OAuthError> {
    let ids = inner
        .store
        .auth_revoke_families(FamilyFilter::Id(family), inner.now_us(), what)
        .await?;
    inner.verifier.revoke_families(ids);
    inner.emit(AuthEvent::ReuseDetected {
        family: family.to_string(),
        client_id: client_id.to_string(),
        what,
    });
    Ok(())
}

async fn code_grant(inner: &Inner, client: &Client, f: &TokenForm) -> Result<Response, OAuthError> {
    let code = f
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = f
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE, RFC 7636)"))?;
    let hash = sha256(code.as_bytes());
    let now = inner.now_us();
    let row = inner.store.auth_code(&hash).await?.ok_or_else(|| {
        OAuthError::invalid_grant("the authorization code is unknown or has expired")
    })?;
    // Single use, even across replicas: only one caller flips used_us.
    if !inner.store.auth_use_code(&hash, now).await? {
        revoke_family(
            inner,
            &row.family_id,
            &client.client_id,
            "authorization_code",
        )
        .await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it has been revoked",
        ));
    }
    if row.expires_us <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        ));
    }
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if f.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must equal the one of the authorization request",
        ));
    }
    if let Some(r) = &f.resource
        && r != &row.resource
    {
        return Err(OAuthError::invalid_target(
            "resource differs from the one the code was issued for",
        ));
    }
    // AUTH-1: PKCE S256.
    if !valid_verifier(verifier)
        || !ct_eq(
            b64url(&sha256(verifier.as_bytes())).as_bytes(),
            row.code_challenge.as_bytes(),
        )
    {
        return Err(OAuthError::invalid_grant(
            "PKCE verification failed: code_verifier does not match code_challenge",
        ));
    }
    let user = live_user(inner, &row.user_id).await?;
    let family = FamilyRow {
        id: row.family_id.clone(),
        user_id: user.id.clone(),
        client_id: client.client_id.clone(),
        resource: row.resource.clone(),
        scopes: row.scopes.clone(),
        created_us: now,
        expires_us: now + inner.settings.refresh_token_ttl.as_micros() as i64,
        revoked_us: None,
        reason: None,
    };
    inner.store.auth_insert_family(&family).await?;
    let scopes: Vec<String> = row
        .scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    issue(
        inner,
        client,
        &user,
        &family,
        &scopes,
        Some(&row.scopes),
        "authorization_code",
    )
    .await
}

async fn live_user(inner: &Inner, user_id: &str) -> Result<UserRow, OAuthError> {
    match inner.store.auth_user(user_id).await? {
        Some(u) if !u.disabled => Ok(u),
        Some(_) => Err(OAuthError::invalid_grant("the user has been disabled")),
        None => Err(OAuthError::invalid_grant("the user no longer exists")),
    }
}

async fn refresh_grant(
    inner: &Inner,
    client: &Client,
    f: &TokenForm,
) -> Result<Response, OAuthError> {
    let token = f
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let hash = sha256(token.as_bytes());
    let now = inner.now_us();
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let row = inner.store.auth_refresh(&hash).await?.ok_or_else(invalid)?;
    let fam = inner
        .store
        .auth_family(&row.family_id)
        .await?
        .ok_or_else(invalid)?;
    if fam.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client(
            "this client is not registered for the refresh_token grant",
        ));
    }
    if fam.revoked_us.is_some() {
        return Err(invalid());
    }
    // AUTH-1: a rotated token presented again means it leaked: revoke the family.
    if row.used_us.is_some() || !inner.store.auth_use_refresh(&hash, now).await? {
        revoke_family(inner, &fam.id, &client.client_id, "refresh_token").await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used; its whole token family has been revoked, sign in again",
        ));
    }
    if row.expires_us <= now {
        return Err(invalid());
    }
    if let Some(r) = &f.resource
        && r != &fam.resource
    {
        return Err(OAuthError::invalid_target(
            "resource differs from the one bound at authorization",
        ));
    }
    let granted: Vec<&str> = row.scopes.split(' ').filter(|s| !s.is_empty()).collect();
    let scopes: Vec<String> = match f.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => granted.iter().map(|s| s.to_string()).collect(),
        Some(s) => {
            let asked: Vec<String> = s
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(w) = asked.iter().find(|w| !granted.contains(&w.as_str())) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {w:?} was not granted; a refresh may only narrow the scope"
                )));
            }
            asked
        }
    };
    let user = live_user(inner, &fam.user_id).await?;
    // AUTH-7: a revoked consent ends refreshes even if a family escaped revocation.
    let consent = inner
        .store
        .auth_consent(&user.id, &client.client_id, &fam.resource)
        .await?;
    if !consent.is_some_and(|c| {
        let have: Vec<&str> = c.scopes.split(' ').collect();
        scopes.iter().all(|s| have.contains(&s.as_str()))
    }) {
        return Err(OAuthError::invalid_grant(
            "the user's consent for this client has been revoked",
        ));
    }
    let new_expiry = now + inner.settings.refresh_token_ttl.as_micros() as i64;
    inner.store.auth_extend_family(&fam.id, new_expiry).await?;
    issue(
        inner,
        client,
        &user,
        &fam,
        &scopes,
        Some(&row.scopes),
        "refresh_token",
    )
    .await
}

/// Signs an access token and, when the client may refresh, stores a new refresh token.
async fn issue(
    inner: &Inner,
    client: &Client,
    user: &UserRow,
    fam: &FamilyRow,
    scopes: &[String],
    refresh_scopes: Option<&str>,
    grant: &'static str,
) -> Result<Response, OAuthError> {
    let now_s = inner.now_s();
    let ttl = inner.settings.access_token_ttl.as_secs() as i64;
    let claims = Claims {
        iss: inner.issuer.clone(),
        sub: user.id.clone(),
        aud: fam.resource.clone(),
        client_id: client.client_id.clone(),
        scope: scopes.join(" "),
        exp: now_s + ttl,
        iat: now_s,
        nbf: now_s,
        jti: b64url(&random_bytes::<16>()),
        name: Some(
            user.display_name
                .clone()
                .unwrap_or_else(|| user.username.clone()),
        ),
        groups: serde_json::from_str(&user.groups_json).unwrap_or_default(),
        roles: serde_json::from_str(&user.roles_json).unwrap_or_default(),
        env: inner.settings.environment.clone(),
        fam: fam.id.clone(),
    };
    let access = sign(inner, &claims)?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": claims.scope,
    });
    if client.allows_grant("refresh_token")
        && let Some(rs) = refresh_scopes
    {
        let rt = random_token();
        let now = inner.now_us();
        inner
            .store
            .auth_insert_refresh(&RefreshRow {
                token_hash: sha256(rt.as_bytes()).to_vec(),
                family_id: fam.id.clone(),
                scopes: rs.to_string(),
                created_us: now,
                expires_us: now + inner.settings.refresh_token_ttl.as_micros() as i64,
                used_us: None,
            })
            .await?;
        body["refresh_token"] = json!(rt);
    }
    inner.emit(AuthEvent::TokenIssued {
        user_id: user.id.clone(),
        client_id: client.client_id.clone(),
        resource: fam.resource.clone(),
        scopes: scopes.to_vec(),
        family: fam.id.clone(),
        jti: claims.jti.clone(),
        grant,
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// Signs claims with the current key (ES256, `typ: at+jwt`, RFC 9068).
pub fn sign(inner: &Inner, claims: &Claims) -> Result<String, OAuthError> {
    let keys = inner.keys.read().clone();
    sign_with(&keys, claims).map_err(|e| {
        tracing::error!(error = %e, "signing an access token failed");
        OAuthError::server_error()
    })
}

/// Signs claims with the current key of `keys`.
pub fn sign_with(
    keys: &crate::keys::KeySet,
    claims: &Claims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(keys.current_kid.clone());
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&h, claims, &keys.encoding)
}
