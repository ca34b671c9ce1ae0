//! The interactive part of the code flow (AUTH-1, AUTH-7): `GET /oauth/authorize`, the sign-in
//! form (`POST /oauth/login`) and the consent page (`GET`/`POST /oauth/consent`).
//!
//! A bad `client_id` or `redirect_uri` gets an error page and never a redirect (no open
//! redirect); every later error goes back to the client's redirect URI with `error`, `state`
//! and `iss` (RFC 9207). CSRF: each pending request is bound to a browser cookie (`pc_csrf`,
//! stored as a digest); a form's `csrf` is an HMAC of the request id, the stage and that
//! cookie, so a POST without the cookie, with another browser's cookie, or with a token for
//! another request gets 403 and changes nothing. Federated sign-in (AUTH-6, `federated.rs`)
//! ends in `complete_sign_in` too, so both kinds of user sign in the same way.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::auth::{CodeRow, ConsentRow, RequestRow, SessionRow};
use serde::{Deserialize, Serialize};

use crate::clients::{ClientKind, ClientLookupError, find_client};
use crate::crypto::{b64url, ct_eq, hmac, random_token, sha256};
use crate::events::AuthEvent;
use crate::pages::{ClientView, ScopeView, consent_page, error_page, login_page};
use crate::settings::ScopeLevel;
use crate::state::{AppState, Inner};

/// The browser-binding cookie set before sign-in (CSRF), hashed into each pending request.
pub(crate) const CSRF_COOKIE: &str = "pc_csrf";
const SESSION_COOKIE: &str = "pc_session";
const MAX_STATE: usize = 2048;

/// A validated authorization request, kept while the user signs in and decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The client.
    pub client_id: String,
    /// Its declared name.
    pub client_name: Option<String>,
    /// Registered through DCR (name unverified).
    pub unverified: bool,
    /// The exact redirect URI.
    pub redirect_uri: String,
    /// The resource (RFC 8707).
    pub resource: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// The client's state, passed back.
    pub state: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
}

/// The query of `GET /oauth/authorize`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
}

/// Reads one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Sends the browser back to the client with `params`, plus `state` and `iss`.
pub fn redirect_back(inner: &Inner, p: &Pending, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(&p.redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "the redirect URI is not valid",
            );
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = &p.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &inner.issuer);
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    crate::pages::secure(r)
}

fn redirect_error(inner: &Inner, p: &Pending, error: &str, description: &str) -> Response {
    redirect_back(
        inner,
        p,
        &[("error", error), ("error_description", description)],
    )
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    crate::pages::secure(r)
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "authorization flow failure");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-in service could not complete the request. Try again later.",
    )
}

fn csrf_token(inner: &Inner, stage: &str, request_id: &str, browser: &str) -> String {
    b64url(&hmac(
        &inner.csrf_key,
        &[
            b"csrf",
            stage.as_bytes(),
            request_id.as_bytes(),
            browser.as_bytes(),
        ],
    ))
}

fn valid_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `GET /oauth/authorize`.
pub async fn authorize(
    State(inner): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The authorization request is malformed (a parameter appears twice or is not text).",
        );
    };
    // 1. Client and redirect URI: errors here are shown, never redirected.
    let Some(client_id) = q.client_id.as_deref().filter(|s| !s.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The request has no client_id.",
        );
    };
    let client = match find_client(&inner, client_id).await {
        Ok(Some(c)) if !c.revoked => c,
        Ok(Some(_)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Application revoked",
                "This application has been revoked by an administrator.",
            );
        }
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "The client_id is not registered with this server.",
            );
        }
        Err(ClientLookupError::Document(why)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown application",
                &format!("The application's metadata document was refused: {why}."),
            );
        }
        Err(ClientLookupError::Store(e)) => return server_error(e),
    };
    let Some(redirect_uri) = q.redirect_uri.as_deref() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The request has no redirect_uri.",
        );
    };
    // AUTH-2: exact match, no prefix or normalisation.
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The redirect_uri is not one this application registered.",
        );
    }
    let state = q.state.clone();
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The state parameter is too long.",
        );
    }
    let mut p = Pending {
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        unverified: client.kind == ClientKind::Registered,
        redirect_uri: redirect_uri.to_string(),
        resource: String::new(),
        scopes: vec![],
        state,
        code_challenge: String::new(),
    };
    // 2. Everything else goes back to the client.
    if q.response_type.as_deref() != Some("code") {
        return redirect_error(
            &inner,
            &p,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if !client.allows_grant("authorization_code") {
        return redirect_error(
            &inner,
            &p,
            "unauthorized_client",
            "this client is not registered for the authorization_code grant",
        );
    }
    // AUTH-1: PKCE with S256 only.
    let Some(challenge) = q.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
        return redirect_error(
            &inner,
            &p,
            "invalid_request",
            "code_challenge is required (PKCE with code_challenge_method=S256)",
        );
    };
    match q.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") => {
            return redirect_error(
                &inner,
                &p,
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256",
            );
        }
        _ => {
            return redirect_error(
                &inner,
                &p,
                "invalid_request",
                "code_challenge_method=S256 is required",
            );
        }
    }
    if challenge.len() != 43 || !valid_pkce_value(challenge) {
        return redirect_error(
            &inner,
            &p,
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        );
    }
    p.code_challenge = challenge.to_string();
    // RFC 8707: the resource must be one we protect.
    let Some(resource) = q.resource.as_deref() else {
        return redirect_error(
            &inner,
            &p,
            "invalid_target",
            "resource is required: the URL of the MCP endpoint the token is for (RFC 8707)",
        );
    };
    let Some(res) = inner.resource(resource) else {
        return redirect_error(
            &inner,
            &p,
            "invalid_target",
            "resource is not an MCP endpoint this server issues tokens for",
        );
    };
    p.resource = res.url.clone();
    let scopes: Vec<String> = match q.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
        None => res
            .scopes
            .iter()
            .filter(|s| s.level == ScopeLevel::Read)
            .map(|s| s.name.clone())
            .collect(),
    };
    if scopes.is_empty() || scopes.len() > 32 {
        return redirect_error(
            &inner,
            &p,
            "invalid_scope",
            "no scope requested and the resource has no default read scope",
        );
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| !res.scopes.iter().any(|k| &k.name == *s))
    {
        return redirect_error(
            &inner,
            &p,
            "invalid_scope",
            &format!("scope {bad:?} is not offered for this resource"),
        );
    }
    let mut scopes = scopes;
    scopes.sort();
    scopes.dedup();
    p.scopes = scopes;

    // 3. Store the request, bound to this browser.
    let (browser, new_cookie) = match cookie(&headers, &inner.cookie_name(CSRF_COOKIE)) {
        Some(c) if c.len() == 43 => (c.to_string(), None),
        _ => {
            let c = random_token();
            (c.clone(), Some(c))
        }
    };
    let request_id = random_token();
    let now = inner.now_us();
    let row = RequestRow {
        id: request_id.clone(),
        browser: sha256(browser.as_bytes()).to_vec(),
        payload: serde_json::to_string(&p).unwrap_or_default(),
        user_id: None,
        expires_us: now + inner.settings.request_ttl.as_micros() as i64,
    };
    if let Err(e) = inner.store.auth_insert_request(&row).await {
        return server_error(e);
    }
    let mut resp = match signed_in_user(&inner, &headers).await {
        Ok(Some(user_id)) => {
            if let Err(e) = inner
                .store
                .auth_set_request_user(&request_id, &user_id)
                .await
            {
                return server_error(e);
            }
            match after_sign_in(&inner, &request_id, &p, &user_id, &browser).await {
                Ok(r) => r,
                Err(r) => return r,
            }
        }
        Ok(None) => login_page(
            &request_id,
            &csrf_token(&inner, "login", &request_id, &browser),
            &view(&p),
            federated_name(&inner),
            None,
            StatusCode::OK,
        ),
        Err(r) => return r,
    };
    if let Some(c) = new_cookie
        && let Ok(v) = HeaderValue::from_str(&inner.cookie(
            CSRF_COOKIE,
            &c,
            inner.settings.session_ttl.as_secs() as i64,
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) fn view(p: &Pending) -> ClientView<'_> {
    let host = url::Url::parse(&p.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    ClientView {
        name: p.client_name.as_deref(),
        client_id: &p.client_id,
        unverified: p.unverified,
        redirect_host: host.unwrap_or_default(),
    }
}

/// The signed-in user of this browser, if its session is valid and the user enabled.
async fn signed_in_user(inner: &Inner, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(sid) = cookie(headers, &inner.cookie_name(SESSION_COOKIE)) else {
        return Ok(None);
    };
    let s = inner
        .store
        .auth_session(&sha256(sid.as_bytes()))
        .await
        .map_err(server_error)?;
    let Some(s) = s.filter(|s| s.expires_us > inner.now_us()) else {
        return Ok(None);
    };
    let u = inner
        .store
        .auth_user(&s.user_id)
        .await
        .map_err(server_error)?;
    Ok(u.filter(|u| !u.disabled).map(|u| u.id))
}

/// Once the user is known: straight back with a code when a stored consent covers the request,
/// else the consent page.
async fn after_sign_in(
    inner: &Inner,
    request_id: &str,
    p: &Pending,
    user_id: &str,
    browser: &str,
) -> Result<Response, Response> {
    let consent = inner
        .store
        .auth_consent(user_id, &p.client_id, &p.resource)
        .await
        .map_err(server_error)?;
    let covered = consent.is_some_and(|c| {
        let have: Vec<&str> = c.scopes.split(' ').collect();
        p.scopes.iter().all(|s| have.contains(&s.as_str()))
    });
    if covered {
        if !inner
            .store
            .auth_take_request(request_id)
            .await
            .map_err(server_error)?
        {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Request already used",
                "This sign-in request was already completed.",
            ));
        }
        return issue_code(inner, p, user_id).await;
    }
    consent_view(inner, request_id, p, user_id, browser).await
}

async fn consent_view(
    inner: &Inner,
    request_id: &str,
    p: &Pending,
    user_id: &str,
    browser: &str,
) -> Result<Response, Response> {
    let Some(res) = inner.resource(&p.resource) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The resource is no longer served.",
        ));
    };
    let user = inner.store.auth_user(user_id).await.map_err(server_error)?;
    let user_name = user
        .map(|u| u.display_name.unwrap_or(u.username))
        .unwrap_or_default();
    let scopes: Vec<ScopeView<'_>> = p
        .scopes
        .iter()
        .filter_map(|s| res.scopes.iter().find(|k| &k.name == s))
        .map(|k| ScopeView {
            name: &k.name,
            description: &k.description,
            level: k.level,
        })
        .collect();
    Ok(consent_page(
        request_id,
        &csrf_token(inner, "consent", request_id, browser),
        &view(p),
        &res.name,
        &user_name,
        &scopes,
    ))
}

async fn issue_code(inner: &Inner, p: &Pending, user_id: &str) -> Result<Response, Response> {
    let code = random_token();
    let now = inner.now_us();
    let row = CodeRow {
        code_hash: sha256(code.as_bytes()).to_vec(),
        client_id: p.client_id.clone(),
        user_id: user_id.to_string(),
        redirect_uri: p.redirect_uri.clone(),
        resource: p.resource.clone(),
        scopes: p.scopes.join(" "),
        code_challenge: p.code_challenge.clone(),
        family_id: b64url(&crate::crypto::random_bytes::<16>()),
        expires_us: now + inner.settings.code_ttl.as_micros() as i64,
        used_us: None,
    };
    inner
        .store
        .auth_insert_code(&row)
        .await
        .map_err(server_error)?;
    Ok(redirect_back(inner, p, &[("code", &code)]))
}

/// A pending request checked against the form's CSRF token and the browser cookie.
struct Checked {
    pending: Pending,
    row: RequestRow,
    browser: String,
}

async fn check_form(
    inner: &Inner,
    headers: &HeaderMap,
    stage: &str,
    request_id: Option<&str>,
    csrf: Option<&str>,
) -> Result<Checked, Response> {
    let forbidden = || {
        error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form could not be verified (missing or wrong security token or cookie). Go back to the application and start again.",
        )
    };
    let Some(request_id) = request_id.filter(|s| !s.is_empty() && s.len() <= 64) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The form has no request_id.",
        ));
    };
    let row = inner
        .store
        .auth_request(request_id)
        .await
        .map_err(server_error)?;
    let Some(row) = row.filter(|r| r.expires_us > inner.now_us()) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Request expired",
            "This sign-in request has expired or was already completed. Go back to the application and start again.",
        ));
    };
    let browser = cookie(headers, &inner.cookie_name(CSRF_COOKIE)).ok_or_else(forbidden)?;
    if !ct_eq(&sha256(browser.as_bytes()), &row.browser) {
        return Err(forbidden());
    }
    let expected = csrf_token(inner, stage, request_id, browser);
    if !csrf.is_some_and(|c| ct_eq(c.as_bytes(), expected.as_bytes())) {
        return Err(forbidden());
    }
    let pending: Pending = serde_json::from_str(&row.payload).map_err(server_error)?;
    Ok(Checked {
        pending,
        row,
        browser: browser.to_string(),
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    request_id: Option<String>,
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The peer address, when the server was started with connect info.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

pub(crate) fn peer_ip(peer: &Peer) -> Option<IpAddr> {
    peer.as_ref().map(|Extension(ConnectInfo(a))| a.ip())
}

/// `POST /oauth/login`.
pub async fn login(
    State(inner): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(f) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The sign-in form is malformed.",
        );
    };
    let c = match check_form(
        &inner,
        &headers,
        "login",
        f.request_id.as_deref(),
        f.csrf.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let source = peer_ip(&peer);
    let username = f.username.unwrap_or_default();
    let password = portcullis_core::Secret::new(f.password.unwrap_or_default());
    let csrf = csrf_token(&inner, "login", &c.row.id, &c.browser);
    // Never say which of the two was wrong, nor whether the name exists (AUTH-1 hygiene).
    let failed = |status| {
        login_page(
            &c.row.id,
            &csrf,
            &view(&c.pending),
            federated_name(&inner),
            Some(
                "Sign-in failed. Check your user name and password; after several failed attempts, wait a few minutes.",
            ),
            status,
        )
    };
    if username.is_empty() || username.len() > 128 || password.expose().len() > 1024 {
        return failed(StatusCode::UNAUTHORIZED);
    }
    let now = inner.now_us();
    let user = match inner.store.auth_user_by_name(&username).await {
        Ok(u) => u,
        Err(e) => return server_error(e),
    };
    if inner.throttle.blocked(&username, source, now) {
        inner.emit(AuthEvent::LoginFailed {
            user_id: user.map(|u| u.id),
            source: source.map(|s| s.to_string()),
            reason: "throttled",
        });
        return failed(StatusCode::TOO_MANY_REQUESTS);
    }
    let hash = user
        .as_ref()
        .map_or(inner.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = crate::passwords::verify(password, hash).await && user.is_some();
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        other => {
            inner.throttle.fail(&username, source, now);
            let reason = if other.as_ref().is_some_and(|u| u.disabled) && ok {
                "disabled"
            } else {
                "bad_credentials"
            };
            inner.emit(AuthEvent::LoginFailed {
                user_id: other.map(|u| u.id),
                source: source.map(|s| s.to_string()),
                reason,
            });
            return failed(StatusCode::UNAUTHORIZED);
        }
    };
    inner.throttle.succeed(&username);
    complete_sign_in(&inner, &c.row.id, &c.pending, &user.id, &c.browser, source).await
}

/// The provider name for the login page's "Sign in with {name}" button, when federated sign-in
/// is configured (AUTH-6).
fn federated_name(inner: &Inner) -> Option<&str> {
    inner.federation.as_ref().map(|f| f.display_name())
}

/// What follows a successful sign-in, local or federated alike: a new browser session, the
/// request bound to the user, `LoginSucceeded`, then straight back with a code when a stored
/// consent covers the request, else the consent page (303).
pub(crate) async fn complete_sign_in(
    inner: &Inner,
    request_id: &str,
    pending: &Pending,
    user_id: &str,
    browser: &str,
    source: Option<IpAddr>,
) -> Response {
    let now = inner.now_us();
    let sid = random_token();
    let session = SessionRow {
        id_hash: sha256(sid.as_bytes()).to_vec(),
        user_id: user_id.to_string(),
        created_us: now,
        expires_us: now + inner.settings.session_ttl.as_micros() as i64,
    };
    if let Err(e) = inner.store.auth_insert_session(&session).await {
        return server_error(e);
    }
    if let Err(e) = inner.store.auth_set_request_user(request_id, user_id).await {
        return server_error(e);
    }
    inner.emit(AuthEvent::LoginSucceeded {
        user_id: user_id.to_string(),
        source: source.map(|s| s.to_string()),
    });
    let consent = match inner
        .store
        .auth_consent(user_id, &pending.client_id, &pending.resource)
        .await
    {
        Ok(x) => x,
        Err(e) => return server_error(e),
    };
    let covered = consent.is_some_and(|k| {
        let have: Vec<&str> = k.scopes.split(' ').collect();
        pending.scopes.iter().all(|s| have.contains(&s.as_str()))
    });
    let mut resp = if covered {
        match after_sign_in(inner, request_id, pending, user_id, browser).await {
            Ok(r) | Err(r) => r,
        }
    } else {
        see_other(&format!("/oauth/consent?request_id={request_id}"))
    };
    if let Ok(v) = HeaderValue::from_str(&inner.cookie(
        SESSION_COOKIE,
        &sid,
        inner.settings.session_ttl.as_secs() as i64,
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The query of `GET /oauth/consent`.
#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    request_id: Option<String>,
}

/// `GET /oauth/consent?request_id=...`: the consent page, for the user who signed in.
pub async fn consent_get(
    State(inner): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ConsentQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(id) = q
        .ok()
        .and_then(|Query(q)| q.request_id)
        .filter(|s| !s.is_empty() && s.len() <= 64)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The consent page needs a request_id.",
        );
    };
    let row = match inner.store.auth_request(&id).await {
        Ok(Some(r)) if r.expires_us > inner.now_us() => r,
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Request expired",
                "This sign-in request has expired or was already completed. Go back to the application and start again.",
            );
        }
        Err(e) => return server_error(e),
    };
    let Some(browser) = cookie(&headers, &inner.cookie_name(CSRF_COOKIE))
        .filter(|b| ct_eq(&sha256(b.as_bytes()), &row.browser))
    else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This sign-in request was started in another browser.",
        );
    };
    let user = match signed_in_user(&inner, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if user.is_none() || user != row.user_id {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign in first",
            "Sign in before deciding on access.",
        );
    }
    let Ok(p) = serde_json::from_str::<Pending>(&row.payload) else {
        return server_error("unreadable pending request");
    };
    match consent_view(
        &inner,
        &id,
        &p,
        user.as_deref().unwrap_or_default(),
        browser,
    )
    .await
    {
        Ok(r) | Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    request_id: Option<String>,
    csrf: Option<String>,
    decision: Option<String>,
}

/// `POST /oauth/consent`: allow or deny.
pub async fn consent_post(
    State(inner): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(f) = serde_urlencoded::from_bytes::<ConsentForm>(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The consent form is malformed.",
        );
    };
    let c = match check_form(
        &inner,
        &headers,
        "consent",
        f.request_id.as_deref(),
        f.csrf.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = match signed_in_user(&inner, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(user_id) = user.filter(|u| Some(u) == c.row.user_id.as_ref()) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign in first",
            "Sign in before deciding on access.",
        );
    };
    let decision = match f.decision.as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Choose Allow or Deny.",
            );
        }
    };
    match inner.store.auth_take_request(&c.row.id).await {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Request already used",
                "This sign-in request was already completed.",
            );
        }
        Err(e) => return server_error(e),
    }
    let p = &c.pending;
    if !decision {
        inner.emit(AuthEvent::ConsentDenied {
            user_id,
            client_id: p.client_id.clone(),
        });
        return redirect_error(&inner, p, "access_denied", "the user denied access");
    }
    // AUTH-7: record what was consented to, widening an earlier consent.
    let mut scopes = p.scopes.clone();
    if let Ok(Some(old)) = inner
        .store
        .auth_consent(&user_id, &p.client_id, &p.resource)
        .await
    {
        scopes.extend(
            old.scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    scopes.sort();
    scopes.dedup();
    let row = ConsentRow {
        user_id: user_id.clone(),
        client_id: p.client_id.clone(),
        resource: p.resource.clone(),
        scopes: scopes.join(" "),
        granted_us: inner.now_us(),
    };
    if let Err(e) = inner.store.auth_upsert_consent(&row).await {
        return server_error(e);
    }
    inner.emit(AuthEvent::ConsentGiven {
        user_id: user_id.clone(),
        client_id: p.client_id.clone(),
        resource: p.resource.clone(),
        scopes: p.scopes.clone(),
    });
    match issue_code(&inner, p, &user_id).await {
        Ok(r) | Err(r) => r,
    }
}
