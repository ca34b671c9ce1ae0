//! Federated sign-in on the login page (AUTH-6): "Sign in with {name}" sends the browser to
//! the upstream OpenID provider (`GET /oauth/federated/start`), which sends it back to
//! `GET /oauth/federated/callback`; the identity it vouches for becomes (or refreshes) a local
//! federated user, who then signs in exactly as a local one does and goes on to consent.
//!
//! The relying-party protocol (PKCE S256, nonce, ID token checks) is `portcullis-federation`'s;
//! this module keeps its pending state and maps identities to users:
//! - The pending login (state, nonce, PKCE verifier) is kept server-side, sealed under the
//!   master key, in the pending-request table under the digest of its `state`; it is bound to
//!   the pending authorization request and to the browser's pre-login cookie, taken once, and
//!   lapses with the authorization request.
//! - Every failure renders the error page and never redirects to the client: the callback's
//!   caller is not authenticated, so nothing it says may reach the client's redirect URI.
//! - A federated user's id is derived from (issuer, subject), so it is stable across sign-ins
//!   and replicas; its user name is namespaced with `:`, a character local user names cannot
//!   hold, so it can never collide with (or be taken for) a local account.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_config::ValidFederation;
use portcullis_core::{Clock, Secret};
use portcullis_federation::{FederatedIdentity, OidcLogin, OidcLoginSettings, PendingLogin};
use portcullis_store::auth::{RequestRow, UserRow};
use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::crypto::{b64url, ct_eq, random_token, sha256};
use crate::events::AuthEvent;
use crate::flow::{
    CSRF_COOKIE, Peer, Pending, complete_sign_in, cookie, peer_ip, see_other, server_error,
};
use crate::pages::error_page;
use crate::state::{AppState, Inner};

/// The path the provider sends the browser back to, under the issuer.
pub(crate) const CALLBACK_PATH: &str = "/oauth/federated/callback";
/// Roles a federated user gets when first provisioned (AZ-2); an administrator may change them.
const DEFAULT_ROLES: [&str; 1] = ["end_user"];
/// Longest `state` accepted at the callback (ours are 43 characters).
const MAX_STATE_LEN: usize = 512;
/// Longest user-name part taken from the identity.
const MAX_NAME_PART: usize = 32;
/// At most this many groups are kept from the identity, each at most `MAX_GROUP_LEN` bytes.
const MAX_GROUPS: usize = 256;
const MAX_GROUP_LEN: usize = 256;
/// Purpose label bound into the sealing of pending logins, so no other sealed value opens here.
const SEAL_PURPOSE: &str = "portcullis-federated-login";

/// Reads the client secret and discovers the provider; any failure names the issuer.
pub(crate) async fn discover(
    f: &ValidFederation,
    clock: Arc<dyn Clock>,
) -> Result<OidcLogin, AuthError> {
    let fail = |detail: String| AuthError::Federation {
        issuer: f.issuer.clone(),
        detail,
    };
    let client_secret = f.resolve_client_secret().map_err(|e| fail(e.to_string()))?;
    let http = portcullis_federation::default_http_client().map_err(|e| fail(e.to_string()))?;
    OidcLogin::discover(
        OidcLoginSettings {
            name: f.name.clone(),
            issuer: f.issuer.clone(),
            client_id: f.client_id.clone(),
            client_secret,
            scopes: f.scopes.clone(),
            groups_claim: f.groups_claim.clone(),
            username_claim: f.username_claim.clone(),
            clock,
        },
        http,
    )
    .await
    .map_err(|e| fail(e.to_string()))
}

/// What is sealed into the pending-login row.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// The pending authorization request the login belongs to.
    request_id: String,
    /// The relying-party state of `portcullis-federation`.
    login: PendingLogin,
}

/// The row id of a pending login: the digest of its `state`, so the table never holds a
/// usable state value. The `fed:` prefix cannot clash with request ids (base64url, no `:`).
fn row_id(state: &str) -> String {
    format!("fed:{}", b64url(&sha256(state.as_bytes())))
}

fn aad(id: &str) -> Vec<u8> {
    format!("{SEAL_PURPOSE}\0{id}").into_bytes()
}

fn seal(inner: &Inner, id: &str, stored: &Stored) -> Result<String, serde_json::Error> {
    let plain = Secret::new(serde_json::to_string(stored)?);
    let (nonce, sealed) = inner.master.seal(plain.expose().as_bytes(), &aad(id));
    Ok(format!("{}.{}", b64url(&nonce), b64url(&sealed)))
}

fn unseal(inner: &Inner, id: &str, payload: &str) -> Option<Stored> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (nonce, sealed) = payload.split_once('.')?;
    let plain = inner.master.open(
        &b64.decode(nonce).ok()?,
        &b64.decode(sealed).ok()?,
        &aad(id),
    )?;
    serde_json::from_slice(&plain).ok()
}

fn not_configured() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not available",
        "Federated sign-in is not configured on this server.",
    )
}

fn expired() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Request expired",
        "This sign-in request has expired or was already completed. Go back to the application and start again.",
    )
}

fn other_browser() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This sign-in was started in another browser, or its cookie is missing. Go back to the application and start again in this browser.",
    )
}

/// A live pending authorization request (not a pending login row).
async fn live_request(inner: &Inner, id: &str) -> Result<RequestRow, Response> {
    if id.is_empty() || id.len() > 64 || id.contains(':') {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The link has no valid request_id.",
        ));
    }
    match inner.store.auth_request(id).await {
        Ok(Some(r)) if r.expires_us > inner.now_us() => Ok(r),
        Ok(_) => Err(expired()),
        Err(e) => Err(server_error(e)),
    }
}

/// The browser's pre-login cookie, when it is the one `row` was started with.
fn bound_browser<'a>(inner: &Inner, headers: &'a HeaderMap, row: &RequestRow) -> Option<&'a str> {
    cookie(headers, &inner.cookie_name(CSRF_COOKIE))
        .filter(|b| ct_eq(&sha256(b.as_bytes()), &row.browser))
}

/// The query of `GET /oauth/federated/start`.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    request_id: Option<String>,
}

/// `GET /oauth/federated/start?request_id=...`: keeps a pending login bound to the request and
/// this browser, and sends the browser to the provider (303).
pub async fn start(
    State(inner): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(login) = &inner.federation else {
        return not_configured();
    };
    let id = q.ok().and_then(|Query(q)| q.request_id).unwrap_or_default();
    let request = match live_request(&inner, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if bound_browser(&inner, &headers, &request).is_none() {
        return other_browser();
    }
    let (url, pending) = login.begin(&format!("{}{CALLBACK_PATH}", inner.issuer));
    let row_id = row_id(&pending.state);
    let payload = match seal(
        &inner,
        &row_id,
        &Stored {
            request_id: request.id.clone(),
            login: pending,
        },
    ) {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    let row = RequestRow {
        id: row_id,
        browser: request.browser.clone(),
        payload,
        user_id: None,
        // It lapses with the authorization request it belongs to.
        expires_us: request.expires_us,
    };
    if let Err(e) = inner.store.auth_insert_request(&row).await {
        return server_error(e);
    }
    see_other(&url)
}

/// The query of `GET /oauth/federated/callback` (OIDC Core §3.1.2.5, §3.1.2.6; RFC 9207 `iss`).
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// An OAuth error code as the provider sent it, reduced to the RFC 6749 §4.1.2.1 character set
/// and a sane length before it is shown or recorded.
fn error_code(e: &str) -> String {
    e.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// `GET /oauth/federated/callback?code=...&state=...` (or `error=...`): completes the login at
/// the provider, provisions or refreshes the federated user, signs the browser in and goes on
/// to consent. Every failure renders the error page.
pub async fn callback(
    State(inner): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(login) = inner.federation.clone() else {
        return not_configured();
    };
    let source = peer_ip(&peer);
    let failed = |user_id: Option<String>, reason: &'static str| {
        inner.emit(AuthEvent::LoginFailed {
            user_id,
            source: source.map(|s| s.to_string()),
            reason,
        });
    };
    let Ok(Query(q)) = q else {
        failed(None, "federation_bad_callback");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The sign-in response is malformed (a parameter appears twice or is not text).",
        );
    };
    let Some(state) = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN)
    else {
        failed(None, "federation_bad_state");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The sign-in response has no valid state. Go back to the application and start again.",
        );
    };
    // 1. The pending login, by its state: unknown, lapsed or already taken all look the same.
    let id = row_id(state);
    let row = match inner.store.auth_request(&id).await {
        Ok(Some(r)) if r.expires_us > inner.now_us() => r,
        Ok(_) => {
            failed(None, "federation_unknown_state");
            return expired();
        }
        Err(e) => return server_error(e),
    };
    // 2. Bound to the browser that started it (login CSRF, RFC 6749 §10.12). A mismatch leaves
    //    the pending login in place, so a forged callback cannot cancel the user's own.
    let Some(browser) = bound_browser(&inner, &headers, &row) else {
        failed(None, "federation_browser_mismatch");
        return other_browser();
    };
    // 3. Single use: only the caller that removes it goes on.
    match inner.store.auth_take_request(&id).await {
        Ok(true) => {}
        Ok(false) => {
            failed(None, "federation_unknown_state");
            return expired();
        }
        Err(e) => return server_error(e),
    }
    let Some(stored) = unseal(&inner, &id, &row.payload) else {
        return server_error("a pending federated login does not open with the master key");
    };
    let request = match live_request(&inner, &stored.request_id).await {
        Ok(r) => r,
        Err(r) => {
            failed(None, "federation_request_expired");
            return r;
        }
    };
    let Ok(pending) = serde_json::from_str::<Pending>(&request.payload) else {
        return server_error("unreadable pending request");
    };
    let provider = login.display_name();
    if let Some(e) = q.error.as_deref() {
        failed(None, "federation_provider_error");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            &format!(
                "{provider} did not sign you in (error {:?}). Go back to the application and start again, or sign in with a local account.",
                error_code(e)
            ),
        );
    }
    // RFC 9207: a provider that names itself must be the one this login went to (mix-up).
    if q.iss.as_deref().is_some_and(|iss| iss != login.issuer()) {
        failed(None, "federation_issuer_mismatch");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The sign-in response came from another identity provider than the one this sign-in was sent to.",
        );
    }
    let Some(code) = q.code.as_deref() else {
        failed(None, "federation_no_code");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The sign-in response has neither a code nor an error. Go back to the application and start again.",
        );
    };
    let identity = match login.complete(&stored.login, code, state).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(issuer = %login.issuer(), reason = e.reason(), error = %e, "federated sign-in failed");
            failed(None, e.reason());
            let status = if e.is_unavailable() {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            };
            return error_page(
                status,
                "Sign-in failed",
                &format!(
                    "The sign-in with {provider} could not be completed: {e}. Go back to the application and start again."
                ),
            );
        }
    };
    let user = match provision(&inner, provider, &identity).await {
        Ok(u) => u,
        Err(e) => return server_error(e),
    };
    if user.disabled {
        failed(Some(user.id), "disabled");
        return error_page(
            StatusCode::FORBIDDEN,
            "Account disabled",
            "Your account has been disabled by an administrator.",
        );
    }
    complete_sign_in(&inner, &request.id, &pending, &user.id, browser, source).await
}

/// The local user id of a federated identity: a UUID (version 8, RFC 9562) from the digest of
/// (issuer, subject), so the same person at the same provider is always the same user, and no
/// separator inside either part can make two identities share an id.
pub(crate) fn user_id(issuer: &str, subject: &str) -> String {
    let digest = sha256(
        format!(
            "portcullis-federated-user\0{}\0{issuer}\0{subject}",
            issuer.len()
        )
        .as_bytes(),
    );
    let mut b: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Keeps the characters local user names allow, replacing the others, within `max` bytes.
fn name_part(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(max)
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// The user name of a new federated user: `{provider}:{name}`. Local names cannot hold `:`
/// (see `admin::valid_username`), so no federated user can take a local user's name or be taken
/// for one; `attempt` > 0 adds part of the id, for another identity that already has the name.
pub(crate) fn username(
    provider: &str,
    identity: &FederatedIdentity,
    id: &str,
    attempt: u8,
) -> String {
    let ns = Some(name_part(provider, 20))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sso".into());
    let base = identity
        .username
        .as_deref()
        .map(|u| name_part(u, MAX_NAME_PART))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| name_part(&identity.subject, MAX_NAME_PART));
    let base = if base.is_empty() { "user".into() } else { base };
    match attempt {
        0 => format!("{ns}:{base}"),
        _ => format!("{ns}:{base}-{}", &id[..8]),
    }
}

/// The groups kept from an identity: non-empty, without control characters, bounded,
/// deduplicated, in the provider's order.
fn groups(identity: &FederatedIdentity) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in &identity.groups {
        if g.is_empty() || g.len() > MAX_GROUP_LEN || g.chars().any(char::is_control) {
            continue;
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
        if out.len() == MAX_GROUPS {
            break;
        }
    }
    out
}

fn display_name(identity: &FederatedIdentity) -> Option<String> {
    identity
        .name
        .as_deref()
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect::<String>()
        })
        .filter(|n| !n.trim().is_empty())
}

/// Finds the federated user of `identity`, refreshing its name and groups from the provider,
/// or creates it with the default roles. Roles and the disabled flag stay the administrator's.
async fn provision(
    inner: &Inner,
    provider: &str,
    identity: &FederatedIdentity,
) -> Result<UserRow, AuthError> {
    let id = user_id(&identity.issuer, &identity.subject);
    let groups = groups(identity);
    let groups_json = serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into());
    let name = display_name(identity);
    if let Some(mut u) = inner.store.auth_user(&id).await? {
        if u.groups_json != groups_json || u.display_name != name {
            inner
                .store
                .auth_update_user_profile(&id, name.as_deref(), &groups_json)
                .await?;
            u.groups_json = groups_json;
            u.display_name = name;
        }
        return Ok(u);
    }
    // The password is random and forgotten at once: a federated user cannot sign in locally,
    // and a local attempt costs the same argon2 time as any other (no user-name oracle).
    let unusable = Secret::new(random_token());
    let password_hash = tokio::task::spawn_blocking(move || crate::passwords::hash(&unusable))
        .await
        .map_err(|e| AuthError::Settings(format!("hashing failed: {e}")))?;
    let mut row = UserRow {
        id: id.clone(),
        username: String::new(),
        display_name: name,
        groups_json,
        roles_json: serde_json::to_string(&DEFAULT_ROLES).unwrap_or_else(|_| "[]".into()),
        password_hash,
        disabled: false,
        created_us: inner.now_us(),
    };
    for attempt in 0..2 {
        row.username = username(provider, identity, &id, attempt);
        if inner.store.auth_insert_user(&row).await? {
            return Ok(row);
        }
        // Another replica may have created this very user meanwhile: then it is ours.
        if let Some(u) = inner.store.auth_user(&id).await? {
            return Ok(u);
        }
    }
    Err(AuthError::Invalid(format!(
        "cannot provision a federated user from {}: the user names {:?} and {:?} are taken",
        identity.issuer,
        username(provider, identity, &id, 0),
        username(provider, identity, &id, 1)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(username: Option<&str>, subject: &str) -> FederatedIdentity {
        FederatedIdentity {
            issuer: "https://idp.example.com".into(),
            subject: subject.into(),
            username: username.map(str::to_string),
            email: None,
            name: None,
            groups: vec![],
        }
    }

    // AUTH-6: one local user per (issuer, subject), whatever the separators inside them.
    #[test]
    fn user_ids_are_stable_per_issuer_and_subject() {
        let a = user_id("https://idp.example.com", "alice");
        assert_eq!(a, user_id("https://idp.example.com", "alice"));
        assert_ne!(a, user_id("https://idp.example.com", "bob"));
        assert_ne!(a, user_id("https://other.example.com", "alice"));
        assert_ne!(
            user_id("https://a|b", "c"),
            user_id("https://a", "b|c"),
            "no separator ambiguity"
        );
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 8);
    }

    // AUTH-6: federated names are namespaced with `:`, which local names cannot hold.
    #[test]
    fn user_names_are_namespaced_and_sanitised() {
        let id = user_id("https://idp.example.com", "alice");
        let i = identity(Some("Alice"), "alice");
        assert_eq!(username("Okta", &i, &id, 0), "okta:alice");
        assert_eq!(
            username("Okta", &i, &id, 1),
            format!("okta:alice-{}", &id[..8])
        );
        let odd = identity(Some("a b/<c>"), "s");
        assert_eq!(username("My IdP", &odd, &id, 0), "my_idp:a_b__c");
        let none = identity(None, "sub-123");
        assert_eq!(username("", &none, &id, 0), "sso:sub-123");
        let empty = identity(Some("///"), "!!!");
        assert_eq!(username("x", &empty, &id, 0), "x:user");
        assert!(username("x", &identity(Some(&"a".repeat(500)), "s"), &id, 0).len() <= 64);
    }

    #[test]
    fn groups_are_bounded_and_deduplicated() {
        let mut i = identity(None, "s");
        i.groups = vec![
            "eng".into(),
            "".into(),
            "eng".into(),
            "bad\nname".into(),
            "x".repeat(300),
            "ops".into(),
        ];
        assert_eq!(groups(&i), ["eng", "ops"]);
    }

    #[test]
    fn provider_error_codes_are_reduced() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>x</script>"), "scriptxscript");
    }
}
