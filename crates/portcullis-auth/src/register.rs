//! `POST /oauth/register`: dynamic client registration (RFC 7591, AUTH-2). Who may register is a
//! setting (open, initial access token, closed). Every field is checked and bounded; a secret,
//! for confidential clients, is returned once and stored as a SHA-256 digest.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::clients::AuthMethod;
use crate::crypto::{b64url, ct_eq, random_bytes, random_token, sha256};
use crate::error::OAuthError;
use crate::events::AuthEvent;
use crate::redirect::check_redirect_uri;
use crate::settings::Registration;
use crate::state::AppState;

/// Most redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME: usize = 200;
const MAX_URL: usize = 2000;

/// A checked registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Auth method.
    pub auth_method: AuthMethod,
    /// Name.
    pub client_name: Option<String>,
    /// Requested scope, if any.
    pub scope: Option<String>,
    /// Other metadata echoed back (bounded strings only).
    pub extra: Map<String, Value>,
}

fn meta(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client_metadata(d)
}

fn opt_str(o: &Map<String, Value>, k: &str, max: usize) -> Result<Option<String>, OAuthError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(meta(format!(
            "`{k}` must be at most {max} characters without control characters"
        ))),
        Some(_) => Err(meta(format!("`{k}` must be a string"))),
    }
}

fn str_list(
    o: &Map<String, Value>,
    k: &str,
    max_items: usize,
    max_len: usize,
) -> Result<Option<Vec<String>>, OAuthError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            if a.len() > max_items {
                return Err(meta(format!("`{k}` may hold at most {max_items} entries")));
            }
            a.iter()
                .map(|v| match v {
                    Value::String(s) if s.len() <= max_len => Ok(s.clone()),
                    _ => Err(meta(format!(
                        "`{k}` must be an array of strings of at most {max_len} characters"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(meta(format!("`{k}` must be an array of strings"))),
    }
}

/// Checks client metadata (shared by registration and metadata documents); `known_scopes` are
/// the scopes a `scope` field may name.
pub fn check_metadata(
    o: &Map<String, Value>,
    known_scopes: &[String],
) -> Result<Registered, OAuthError> {
    let redirect_uris = str_list(o, "redirect_uris", usize::MAX, usize::MAX)?.ok_or_else(|| {
        OAuthError::invalid_redirect_uri(
            "`redirect_uris` is required: at least one https or loopback http URI",
        )
    })?;
    if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "give 1 to {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    for u in &redirect_uris {
        check_redirect_uri(u).map_err(OAuthError::invalid_redirect_uri)?;
    }
    let auth_method = match opt_str(o, "token_endpoint_auth_method", 64)? {
        // RFC 7591 §2: the default is client_secret_basic.
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(&m).ok_or_else(|| {
            meta(format!("token_endpoint_auth_method {m:?} is not supported; use none (public client with PKCE), client_secret_basic or client_secret_post"))
        })?,
    };
    let grant_types =
        str_list(o, "grant_types", 8, 64)?.unwrap_or_else(|| vec!["authorization_code".into()]);
    for g in &grant_types {
        if g != "authorization_code" && g != "refresh_token" {
            return Err(meta(format!(
                "grant type {g:?} is not supported; use authorization_code and refresh_token (no implicit or password grant, AUTH-1)"
            )));
        }
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(meta("grant_types must include authorization_code"));
    }
    let response_types =
        str_list(o, "response_types", 8, 64)?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") || response_types.is_empty() {
        return Err(meta(
            "response_types must be [\"code\"]: only the authorization code flow is supported",
        ));
    }
    let client_name = opt_str(o, "client_name", MAX_NAME)?;
    let scope = opt_str(o, "scope", 2000)?;
    if let Some(s) = &scope {
        for w in s.split(' ').filter(|w| !w.is_empty()) {
            if !known_scopes.iter().any(|k| k == w) {
                return Err(meta(format!(
                    "scope {w:?} is not offered by this server; see scopes_supported in its metadata"
                )));
            }
        }
    }
    let mut extra = Map::new();
    for k in [
        "client_uri",
        "logo_uri",
        "tos_uri",
        "policy_uri",
        "software_id",
        "software_version",
    ] {
        if let Some(v) = opt_str(o, k, MAX_URL)? {
            extra.insert(k.into(), Value::String(v));
        }
    }
    if let Some(c) = str_list(o, "contacts", 10, 320)? {
        extra.insert("contacts".into(), json!(c));
    }
    Ok(Registered {
        redirect_uris,
        grant_types,
        auth_method,
        client_name,
        scope,
        extra,
    })
}

/// The registration endpoint.
pub async fn register(State(inner): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match register_inner(&inner, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn register_inner(
    inner: &crate::state::Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    match &inner.settings.registration {
        Registration::Open => {}
        // `open` resolves references; an unresolved one fails closed.
        Registration::Closed | Registration::TokenFrom(_) => {
            return Err(OAuthError::access_denied(
                "dynamic client registration is closed on this server; ask an administrator, or use a client ID metadata document URL as client_id",
            ));
        }
        // RFC 7591 §3: the initial access token is a bearer token.
        Registration::Token(t) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !ct_eq(
                &sha256(given.trim().as_bytes()),
                &sha256(t.expose().as_bytes()),
            ) {
                return Err(OAuthError::invalid_token(
                    "registration needs an initial access token: send Authorization: Bearer <token> (ask an administrator for it)",
                ));
            }
        }
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        meta(format!(
            "the body is not valid JSON ({e}); send a JSON object of client metadata"
        ))
    })?;
    let Value::Object(o) = v else {
        return Err(meta("the body must be a JSON object of client metadata"));
    };
    let r = check_metadata(&o, &inner.all_scopes())?;
    let client_id = format!("pc-{}", b64url(&random_bytes::<16>()));
    let secret = (r.auth_method != AuthMethod::None).then(random_token);
    let now_s = inner.now_s();
    let mut out = r.extra.clone();
    out.insert("client_id".into(), json!(client_id));
    out.insert("client_id_issued_at".into(), json!(now_s));
    out.insert("redirect_uris".into(), json!(r.redirect_uris));
    out.insert("grant_types".into(), json!(r.grant_types));
    out.insert("response_types".into(), json!(["code"]));
    out.insert(
        "token_endpoint_auth_method".into(),
        json!(r.auth_method.as_str()),
    );
    if let Some(n) = &r.client_name {
        out.insert("client_name".into(), json!(n));
    }
    if let Some(s) = &r.scope {
        out.insert("scope".into(), json!(s));
    }
    let stored = Value::Object(out.clone()).to_string();
    inner
        .store
        .auth_insert_client(&portcullis_store::auth::ClientRow {
            client_id: client_id.clone(),
            client_name: r.client_name.clone(),
            redirect_uris: json!(r.redirect_uris).to_string(),
            grant_types: json!(r.grant_types).to_string(),
            auth_method: r.auth_method.as_str().into(),
            secret_hash: secret.as_ref().map(|s| sha256(s.as_bytes()).to_vec()),
            metadata: stored,
            created_us: inner.now_us(),
            revoked_us: None,
        })
        .await?;
    if let Some(s) = secret {
        out.insert("client_secret".into(), json!(s));
        out.insert("client_secret_expires_at".into(), json!(0));
    }
    inner.emit(AuthEvent::ClientRegistered {
        client_id,
        client_name: r.client_name,
    });
    let mut resp = (StatusCode::CREATED, axum::Json(Value::Object(out))).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
