//! Test harness: an AuthServer on SQLite or a fresh PostgreSQL database, a manual clock, and a
//! tiny browser (cookie jar, form scraping) driving the router in-process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use portcullis_auth::*;
use portcullis_core::clock::ManualClock;
use portcullis_core::{Principal, Secret, TokenRejection};
use portcullis_store::{DatabaseUrl, OpenMode, Store};
use tower::ServiceExt;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const CRM: &str = "http://127.0.0.1:8080/mcp/crm";
pub const OTHER: &str = "http://127.0.0.1:8080/mcp/other";
pub const REDIRECT: &str = "http://127.0.0.1:9999/cb";
pub const PASSWORD: &str = "correct horse battery";
const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn resources() -> Vec<ProtectedResource> {
    let s = |c: &str, l: &str, level| ScopeInfo {
        name: format!("{c}:{l}"),
        description: format!("{l} {c} records"),
        level,
    };
    vec![
        ProtectedResource {
            url: CRM.into(),
            name: "CRM".into(),
            scopes: vec![
                s("crm", "read", ScopeLevel::Read),
                s("crm", "write", ScopeLevel::Write),
                s("crm", "admin", ScopeLevel::Admin),
            ],
        },
        ProtectedResource {
            url: OTHER.into(),
            name: "Other".into(),
            scopes: vec![s("other", "read", ScopeLevel::Read)],
        },
    ]
}

pub fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .into()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub clock: ManualClock,
    pub server: AuthServer,
    pub events: Arc<Mutex<Vec<AuthEvent>>>,
    pg: Option<String>,
}

pub async fn pg_create() -> (String, String) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for this test but {PG_ADMIN_URL} is unreachable ({e}); start the server (trust auth, user postgres)")
    });
    let name = format!("portcullis_auth_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    (
        name.clone(),
        format!("postgres://postgres@127.0.0.1:5432/{name}"),
    )
}

pub async fn pg_drop(name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

pub async fn open_store(b: Backend, dir: &std::path::Path) -> (Store, Option<String>) {
    match b {
        Backend::Sqlite => (
            Store::open(&DatabaseUrl::embedded(dir), OpenMode::CreateIfMissing)
                .await
                .unwrap(),
            None,
        ),
        Backend::Postgres => {
            let (name, url) = pg_create().await;
            (
                Store::open(&url.parse().unwrap(), OpenMode::CreateIfMissing)
                    .await
                    .unwrap(),
                Some(name),
            )
        }
    }
}

impl Env {
    pub async fn new(b: Backend) -> Self {
        Self::with(b, AuthSettings::default()).await
    }

    pub async fn with(b: Backend, settings: AuthSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (store, pg) = open_store(b, dir.path()).await;
        let clock = ManualClock::new(start());
        let server = AuthServer::open(
            settings,
            store.clone(),
            dir.path(),
            ISSUER.into(),
            resources(),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let server = server.with_event_sink(Arc::new(move |e| ev.lock().unwrap().push(e)));
        server
            .admin()
            .add_user(NewUser {
                username: "alice".into(),
                display_name: Some("Alice Example".into()),
                groups: vec!["sales".into()],
                roles: vec!["end_user".into()],
                password: Secret::new(PASSWORD),
            })
            .await
            .unwrap();
        Self {
            dir,
            store,
            clock,
            server,
            events,
            pg,
        }
    }

    pub async fn finish(self) {
        if let Some(name) = &self.pg {
            self.store.close().await;
            pg_drop(name).await;
        }
    }

    pub fn app(&self) -> Router {
        self.server.router()
    }

    pub async fn verify(&self, token: &str, resource: &str) -> Result<Principal, TokenRejection> {
        self.server.verifier().verify(token, resource).await
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(std::time::Duration::from_secs(secs));
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
    }
    /// The query parameters of the Location header.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self.location().expect("a redirect");
        url::Url::parse(&loc)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }
    pub fn hidden(&self, name: &str) -> String {
        let pat = format!("name=\"{name}\" value=\"");
        let i = self
            .body
            .find(&pat)
            .unwrap_or_else(|| panic!("no hidden {name} in {}", self.body))
            + pat.len();
        self.body[i..].split('"').next().unwrap().to_string()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

/// A browser: keeps cookies.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn absorb(&mut self, r: &Resp) {
        for v in r.headers.get_all(header::SET_COOKIE) {
            let s = v.to_str().unwrap();
            let kv = s.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.insert(k.to_string(), v.to_string());
        }
    }
    pub async fn get(&mut self, app: &Router, uri: &str) -> Resp {
        let req = Request::get(uri)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        let r = send(app, req).await;
        self.absorb(&r);
        r
    }
    pub async fn post_form(&mut self, app: &Router, uri: &str, form: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = Request::post(uri)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let r = send(app, req).await;
        self.absorb(&r);
        r
    }
}

pub async fn post_json(
    app: &Router,
    uri: &str,
    v: &serde_json::Value,
    bearer: Option<&str>,
) -> Resp {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(app, b.body(Body::from(v.to_string())).unwrap()).await
}

pub async fn post_form(
    app: &Router,
    uri: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Resp {
    let mut b =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        b = b.header(header::AUTHORIZATION, format!("Basic {v}"));
    }
    send(
        app,
        b.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap(),
    )
    .await
}

pub fn pkce() -> (String, String) {
    let verifier = portcullis_auth::crypto::random_token();
    let challenge =
        portcullis_auth::crypto::b64url(&portcullis_auth::crypto::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// Registers a public client with `redirect`; returns its id.
pub async fn register_public(app: &Router, redirect: &str) -> String {
    let r = post_json(
        app,
        "/oauth/register",
        &serde_json::json!({
            "redirect_uris": [redirect], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "client_name": "Test Client"
        }),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["client_id"].as_str().unwrap().to_string()
}

pub fn authorize_uri(
    client_id: &str,
    redirect: &str,
    scope: &str,
    challenge: &str,
    resource: &str,
) -> String {
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("resource", resource),
    ])
    .unwrap();
    format!("/oauth/authorize?{q}")
}

/// Authorize, sign in as alice, allow; returns the code (and the browser, signed in).
pub async fn get_code(
    env: &Env,
    client_id: &str,
    redirect: &str,
    scope: &str,
    challenge: &str,
) -> (String, Browser) {
    let app = env.app();
    let mut b = Browser::default();
    let page = b
        .get(
            &app,
            &authorize_uri(client_id, redirect, scope, challenge, CRM),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let rid = page.hidden("request_id");
    let csrf = page.hidden("csrf");
    let r = b
        .post_form(
            &app,
            "/oauth/login",
            &[
                ("request_id", &rid),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.location().unwrap();
    let code = if loc.starts_with("/oauth/consent") {
        let page = b.get(&app, &loc).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let r = b
            .post_form(
                &app,
                "/oauth/consent",
                &[
                    ("request_id", &page.hidden("request_id")),
                    ("csrf", &page.hidden("csrf")),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        r.redirect_params()["code"].clone()
    } else {
        r.redirect_params()["code"].clone()
    };
    (code, b)
}

pub async fn redeem(
    app: &Router,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Resp {
    post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("resource", CRM),
        ],
        None,
    )
    .await
}

pub async fn refresh(app: &Router, client_id: &str, rt: &str, scope: Option<&str>) -> Resp {
    let mut f = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", client_id),
    ];
    if let Some(s) = scope {
        f.push(("scope", s));
    }
    post_form(app, "/oauth/token", &f, None).await
}

/// Register, authorize, sign in, consent, redeem: returns (client_id, token response).
pub async fn full_grant(env: &Env, scope: &str) -> (String, serde_json::Value) {
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(env, &client, REDIRECT, scope, &challenge).await;
    let r = redeem(&app, &client, &code, &verifier, REDIRECT).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (client, r.json())
}
