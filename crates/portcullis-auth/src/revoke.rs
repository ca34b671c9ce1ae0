//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::auth::FamilyFilter;
use serde::Deserialize;
use serde_json::json;

use crate::clients::{AuthMethod, authenticate, presented};
use crate::crypto::sha256;
use crate::error::OAuthError;
use crate::events::AuthEvent;
use crate::state::{AppState, Inner};

#[derive(Debug, Default, Deserialize)]
struct TokenParam {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn parse(body: &[u8]) -> Result<TokenParam, OAuthError> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded with each parameter at most once",
        )
    })
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The revocation endpoint: a refresh token revokes its family, an access token its `jti`;
/// unknown tokens and tokens of other clients get 200 and change nothing (RFC 7009 §2.2).
pub async fn revoke(State(inner): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match revoke_inner(&inner, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let f = parse(body)?;
    let client = authenticate(
        inner,
        &presented(headers, f.client_id.as_deref(), f.client_secret.as_deref())?,
    )
    .await?;
    let token = f
        .token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if let Some(h) = f.token_type_hint.as_deref()
        && h != "access_token"
        && h != "refresh_token"
    {
        // RFC 7009 §2.2: an unknown hint is ignored; the whole token space is searched.
        tracing::debug!(hint = h, "unknown token_type_hint");
    }
    if let Some(row) = inner.store.auth_refresh(&sha256(token.as_bytes())).await? {
        if let Some(fam) = inner.store.auth_family(&row.family_id).await?
            && fam.client_id == client.client_id
        {
            let ids = inner
                .store
                .auth_revoke_families(FamilyFilter::Id(&fam.id), inner.now_us(), "revoked")
                .await?;
            inner.verifier.revoke_families(ids);
            inner.emit(AuthEvent::TokenRevoked {
                client_id: client.client_id.clone(),
                what: "refresh_token",
                id: fam.id,
            });
        }
        return Ok(());
    }
    if let Ok(c) = inner.verifier.verify_signed(token)
        && c.client_id == client.client_id
    {
        inner
            .store
            .auth_revoke_jti(&c.jti, c.exp * 1_000_000)
            .await?;
        inner.verifier.revoke_jti(&c.jti);
        inner.emit(AuthEvent::TokenRevoked {
            client_id: client.client_id,
            what: "access_token",
            id: c.jti,
        });
    }
    Ok(())
}

/// The introspection endpoint, for confidential clients (resource servers): `active: false`
/// for anything that is not a valid token.
pub async fn introspect(
    State(inner): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match introspect_inner(&inner, &headers, &body).await {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    let f = parse(body)?;
    let p = presented(headers, f.client_id.as_deref(), f.client_secret.as_deref())?;
    if p.method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client: authenticate with its secret",
            false,
        ));
    }
    let client = authenticate(inner, &p).await?;
    let token = f
        .token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if let Ok(c) = inner.verifier.verify_any_audience(token) {
        return Ok(json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "nbf": c.nbf,
            "jti": c.jti, "username": c.name, "env": c.env,
        }));
    }
    let now = inner.now_us();
    if let Some(row) = inner.store.auth_refresh(&sha256(token.as_bytes())).await?
        && row.used_us.is_none()
        && row.expires_us > now
        && let Some(fam) = inner.store.auth_family(&row.family_id).await?
        && fam.revoked_us.is_none()
        && fam.client_id == client.client_id
    {
        return Ok(json!({
            "active": true, "token_type": "refresh_token", "scope": row.scopes, "client_id": fam.client_id,
            "sub": fam.user_id, "aud": fam.resource, "iss": inner.issuer, "exp": row.expires_us / 1_000_000,
        }));
    }
    Ok(json!({"active": false}))
}
