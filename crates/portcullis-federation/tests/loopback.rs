//! Federated login and external token verification against an in-process provider on
//! 127.0.0.1:0 (AUTH-6, AUTH-4): discovery, JWKS, code exchange, userinfo, introspection and
//! each way they can fail.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_core::{Secret, TokenRejection, TokenVerifier};
use portcullis_federation::{
    ClientAuth, ExternalIssuerSettings, ExternalVerifier, FederationError, IntrospectionSettings,
    OidcLogin, OidcLoginSettings, PendingLogin, VerifierChain, default_http_client,
};
use serde_json::{Value, json};
use support::*;

fn login_settings(p: &Provider, clock: &portcullis_core::clock::ManualClock) -> OidcLoginSettings {
    OidcLoginSettings {
        name: "Example IdP".into(),
        issuer: p.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        scopes: vec!["profile".into(), "openid".into(), "email".into()],
        groups_claim: None,
        username_claim: None,
        clock: Arc::new(clock.clone()),
    }
}

async fn login_setup() -> (
    Arc<Provider>,
    Key,
    portcullis_core::clock::ManualClock,
    OidcLogin,
) {
    let p = start().await;
    let key = Key::ec("k1");
    p.publish(&[&key]);
    *p.userinfo.lock().unwrap() =
        json!({"sub": "u-1", "name": "Alice Liddell", "email": "other@example.com"});
    let clock = clock();
    let login = OidcLogin::discover(login_settings(&p, &clock), default_http_client().unwrap())
        .await
        .unwrap();
    (p, key, clock, login)
}

fn id_claims(p: &Provider, nonce: &str) -> Value {
    json!({"iss": p.issuer, "sub": "u-1", "aud": CLIENT_ID, "exp": T0 + 300, "iat": T0, "nonce": nonce,
        "preferred_username": "alice", "email": "alice@example.com", "groups": ["engineering", "ops"]})
}

/// Starts a login and primes the provider with its PKCE challenge and an ID token.
fn begin(
    p: &Provider,
    login: &OidcLogin,
    id_token: impl FnOnce(&PendingLogin) -> String,
) -> PendingLogin {
    let (url, pending) = login.begin("https://gw.example.com/login/callback");
    let url = reqwest::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    *p.challenge.lock().unwrap() = q["code_challenge"].clone();
    *p.next_id_token.lock().unwrap() = id_token(&pending);
    pending
}

#[tokio::test]
async fn discovery_and_begin_build_a_pkce_s256_authorization_request() {
    let (p, _key, _clock, login) = login_setup().await;
    assert_eq!(login.display_name(), "Example IdP");
    assert_eq!(login.client_auth(), ClientAuth::SecretBasic);
    let (url, pending) = login.begin("https://gw.example.com/login/callback");
    let url = reqwest::Url::parse(&url).unwrap();
    assert_eq!(url.path(), "/authorize");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["tenant"], "t1", "the endpoint's own query is kept");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], "https://gw.example.com/login/callback");
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["state"], pending.state);
    assert_eq!(q["nonce"], pending.nonce);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], s256(pending.pkce_verifier.expose()));
    assert_eq!(pending.created_at, T0);
    assert_ne!(pending.state, pending.nonce);
    assert!(!url.as_str().contains(pending.pkce_verifier.expose()));
    // The AS stores the pending login: it must survive a serde round trip.
    let stored = serde_json::to_string(&pending).unwrap();
    assert_eq!(
        serde_json::from_str::<PendingLogin>(&stored).unwrap(),
        pending
    );
    assert_eq!(p.jwks_hits(), 1, "discovery loads the JWKS");
}

#[tokio::test]
async fn discovery_refuses_an_issuer_mismatch() {
    let p = start().await;
    p.publish(&[&Key::ec("k1")]);
    *p.meta_issuer.lock().unwrap() = Some(format!("{}/other", p.issuer));
    let err = OidcLogin::discover(login_settings(&p, &clock()), default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::IssuerMismatch { .. }),
        "{err}"
    );
    // A trailing slash is a different issuer too: equality is exact.
    let mut s = login_settings(&p, &clock());
    s.issuer = format!("{}/", p.issuer);
    *p.meta_issuer.lock().unwrap() = None;
    let err = OidcLogin::discover(s, default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::IssuerMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn discovery_refuses_cleartext_endpoints_and_unreachable_providers() {
    let p = start().await;
    p.publish(&[&Key::ec("k1")]);
    *p.token_endpoint.lock().unwrap() = Some("http://idp.example.com/token".into());
    let err = OidcLogin::discover(login_settings(&p, &clock()), default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::InsecureUrl { .. }), "{err}");
    let mut s = login_settings(&p, &clock());
    s.issuer = dead_url().await;
    let err = OidcLogin::discover(s, default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::Unreachable { .. }), "{err}");
    let mut s = login_settings(&p, &clock());
    s.issuer = "http://idp.example.com".into();
    let err = OidcLogin::discover(s, default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::InsecureUrl { .. }), "{err}");
}

#[tokio::test]
async fn login_completes_and_maps_claims_with_client_secret_basic() {
    let (p, key, _clock, login) = login_setup().await;
    let pending = begin(&p, &login, |pl| key.sign(&id_claims(&p, &pl.nonce)));
    let id = login
        .complete(&pending, "good-code", &pending.state.clone())
        .await
        .unwrap();
    assert_eq!(id.issuer, p.issuer);
    assert_eq!(id.subject, "u-1");
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(
        id.email.as_deref(),
        Some("alice@example.com"),
        "ID token claims win over userinfo"
    );
    assert_eq!(
        id.name.as_deref(),
        Some("Alice Liddell"),
        "userinfo fills what the ID token lacks"
    );
    assert_eq!(id.groups, ["engineering", "ops"]);
    let basic = p.token_auth.lock().unwrap().clone().unwrap();
    let decoded = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            basic.strip_prefix("Basic ").unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        decoded, "portcullis:s3cret%3Awith%2Fodd+chars",
        "RFC 6749 §2.3.1 encoding"
    );
    let form = p.token_form.lock().unwrap().clone();
    assert_eq!(
        form["redirect_uri"],
        "https://gw.example.com/login/callback"
    );
    assert!(!form.contains_key("client_secret"));
}

#[tokio::test]
async fn login_uses_client_secret_post_when_that_is_all_the_provider_supports() {
    let p = start().await;
    let key = Key::rsa("r1");
    p.publish(&[&key]);
    *p.auth_methods.lock().unwrap() =
        Some(vec!["client_secret_post".into(), "private_key_jwt".into()]);
    let clock = clock();
    let mut settings = login_settings(&p, &clock);
    settings.groups_claim = Some("roles".into());
    settings.username_claim = Some("email".into());
    let login = OidcLogin::discover(settings, default_http_client().unwrap())
        .await
        .unwrap()
        .with_userinfo(false);
    assert_eq!(login.client_auth(), ClientAuth::SecretPost);
    let pending = begin(&p, &login, |pl| {
        let mut c = id_claims(&p, &pl.nonce);
        c["roles"] = json!("admins");
        key.sign(&c)
    });
    let id = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap();
    assert_eq!(id.groups, ["admins"]);
    assert_eq!(id.username.as_deref(), Some("alice@example.com"));
    assert_eq!(id.name, None, "userinfo is off");
    assert!(p.token_auth.lock().unwrap().is_none());
    let form = p.token_form.lock().unwrap().clone();
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
}

#[tokio::test]
async fn a_state_mismatch_is_refused_before_the_code_is_spent() {
    let (p, key, _clock, login) = login_setup().await;
    let pending = begin(&p, &login, |pl| key.sign(&id_claims(&p, &pl.nonce)));
    let mut wrong = pending.state.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    for state in [wrong.as_str(), "", &pending.state[..10]] {
        let err = login
            .complete(&pending, "good-code", state)
            .await
            .unwrap_err();
        assert_eq!(err, FederationError::StateMismatch);
    }
    assert_eq!(p.token_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let (p, key, _clock, login) = login_setup().await;
    let pending = begin(&p, &login, |_| key.sign(&id_claims(&p, "replayed-nonce")));
    let err = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap_err();
    assert_eq!(err, FederationError::NonceMismatch);
    let pending = begin(&p, &login, |_| {
        let mut c = id_claims(&p, "");
        c.as_object_mut().unwrap().remove("nonce");
        key.sign(&c)
    });
    let err = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap_err();
    assert_eq!(err, FederationError::NonceMismatch);
}

#[tokio::test]
async fn id_tokens_that_fail_any_check_are_refused() {
    let (p, key, _clock, login) = login_setup().await;
    let other = Key::ec("k1"); // same kid, other key: a bad signature
    type Case = (&'static str, Box<dyn Fn(&Value) -> String>, TokenRejection);
    let k = key.clone();
    let cases: Vec<Case> = vec![
        (
            "bad signature",
            Box::new(move |c| other.sign(c)),
            TokenRejection::BadSignature,
        ),
        (
            "HS256 keyed with the public key",
            Box::new({
                let k = k.clone();
                move |c| k.forge_hs256(c)
            }),
            TokenRejection::BadSignature,
        ),
        (
            "alg none",
            Box::new({
                let k = k.clone();
                move |c| k.forge_none(c)
            }),
            TokenRejection::Malformed("unsigned tokens (alg none) are refused".into()),
        ),
        (
            "unknown kid",
            Box::new(|c| Key::ec("k9").sign(c)),
            TokenRejection::UnknownKey,
        ),
    ];
    for (what, make, want) in cases {
        let pending = begin(&p, &login, |pl| make(&id_claims(&p, &pl.nonce)));
        let err = login
            .complete(&pending, "good-code", &pending.state)
            .await
            .unwrap_err();
        assert_eq!(err, FederationError::IdToken(want), "{what}");
    }
    type Edit = (&'static str, fn(&mut Value), TokenRejection);
    let edits: Vec<Edit> = vec![
        (
            "wrong issuer",
            |c| c["iss"] = json!("https://evil.example.com"),
            TokenRejection::WrongIssuer,
        ),
        (
            "wrong audience",
            |c| c["aud"] = json!("someone-else"),
            TokenRejection::WrongAudience(CLIENT_ID.into()),
        ),
        (
            "several audiences, no azp",
            |c| c["aud"] = json!([CLIENT_ID, "api"]),
            TokenRejection::WrongAudience(CLIENT_ID.into()),
        ),
        (
            "azp of another client",
            |c| c["azp"] = json!("other"),
            TokenRejection::WrongAudience(CLIENT_ID.into()),
        ),
        (
            "expired",
            |c| c["exp"] = json!(T0 - 61),
            TokenRejection::Expired,
        ),
        (
            "issued in the future",
            |c| c["iat"] = json!(T0 + 120),
            TokenRejection::NotYetValid,
        ),
        (
            "no iat",
            |c| {
                c.as_object_mut().unwrap().remove("iat");
            },
            TokenRejection::Malformed("the ID token has no `iat`".into()),
        ),
    ];
    for (what, edit, want) in edits {
        let pending = begin(&p, &login, |pl| {
            let mut c = id_claims(&p, &pl.nonce);
            edit(&mut c);
            key.sign(&c)
        });
        let err = login
            .complete(&pending, "good-code", &pending.state)
            .await
            .unwrap_err();
        assert_eq!(err, FederationError::IdToken(want), "{what}");
    }
    // Several audiences with the right azp, and a skew within tolerance, are fine.
    let pending = begin(&p, &login, |pl| {
        let mut c = id_claims(&p, &pl.nonce);
        c["aud"] = json!([CLIENT_ID, "api"]);
        c["azp"] = json!(CLIENT_ID);
        c["exp"] = json!(T0 - 30);
        c["iat"] = json!(T0 + 30);
        key.sign(&c)
    });
    login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn provider_errors_and_stale_logins_are_reported() {
    let (p, key, clock, login) = login_setup().await;
    let pending = begin(&p, &login, |pl| key.sign(&id_claims(&p, &pl.nonce)));
    let err = login
        .complete(&pending, "used-code", &pending.state)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FederationError::TokenEndpoint { error, .. } if error == "invalid_grant"),
        "{err}"
    );
    // PKCE: the provider refuses a verifier that is not the one the challenge was made from.
    let mut tampered = pending.clone();
    tampered.pkce_verifier = Secret::new("x".repeat(43));
    let err = login
        .complete(&tampered, "good-code", &tampered.state)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FederationError::TokenEndpoint { description, .. } if description.contains("PKCE")),
        "{err}"
    );
    clock.advance(Duration::from_secs(601));
    let err = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap_err();
    assert_eq!(err, FederationError::LoginExpired);
    // A userinfo answer for another subject is refused.
    let (p, key, _clock, login) = login_setup().await;
    *p.userinfo.lock().unwrap() = json!({"sub": "u-2"});
    let pending = begin(&p, &login, |pl| key.sign(&id_claims(&p, &pl.nonce)));
    let err = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap_err();
    assert_eq!(err, FederationError::UserinfoSubjectMismatch);
}

// ---- ExternalVerifier (AUTH-4, AUTH-6) ----

fn ext_settings(
    p: &Provider,
    clock: &portcullis_core::clock::ManualClock,
) -> ExternalIssuerSettings {
    ExternalIssuerSettings {
        issuer: p.issuer.clone(),
        jwks_uri: None,
        introspection: Some(IntrospectionSettings {
            endpoint: format!("{}/introspect", p.issuer),
            client_id: RS_ID.into(),
            client_secret: Secret::new(RS_SECRET),
        }),
        audiences: vec![],
        scope_claim: None,
        groups_claim: Some("groups".into()),
        roles_claim: Some("roles".into()),
        clock: Arc::new(clock.clone()),
    }
}

fn at_claims(p: &Provider) -> Value {
    json!({"iss": p.issuer, "sub": "u-1", "aud": [RESOURCE, "other"], "exp": T0 + 300, "iat": T0, "nbf": T0,
        "client_id": "chatgpt", "scope": "crm:read crm:write", "jti": "at-123",
        "groups": ["engineering"], "roles": "developer", "preferred_username": "alice"})
}

async fn verifier_setup() -> (
    Arc<Provider>,
    Key,
    portcullis_core::clock::ManualClock,
    ExternalVerifier,
) {
    let p = start().await;
    let key = Key::ec("k1");
    p.publish(&[&key]);
    let clock = clock();
    let v = ExternalVerifier::new(ext_settings(&p, &clock), default_http_client().unwrap())
        .await
        .unwrap();
    (p, key, clock, v)
}

#[tokio::test]
async fn a_jwt_access_token_for_the_resource_becomes_a_principal() {
    let (p, key, _clock, v) = verifier_setup().await;
    assert_eq!(
        p.jwks_hits(),
        1,
        "the JWKS is discovered (RFC 8414) and loaded at start-up"
    );
    let principal = v.verify(&key.sign(&at_claims(&p)), RESOURCE).await.unwrap();
    assert_eq!(principal.subject, format!("{}|u-1", p.issuer));
    assert_eq!(principal.client_id, "chatgpt");
    assert_eq!(principal.scopes, ["crm:read", "crm:write"]);
    assert_eq!(principal.groups, ["engineering"]);
    assert_eq!(principal.roles, ["developer"]);
    assert_eq!(principal.audience, RESOURCE);
    assert_eq!(principal.issuer, p.issuer);
    assert_eq!(principal.token_id, "at-123");
    assert_eq!(principal.expires_at, T0 + 300);
    assert_eq!(principal.display_name.as_deref(), Some("alice"));
    // `scp` arrays and `azp` are read too.
    let mut c = at_claims(&p);
    let o = c.as_object_mut().unwrap();
    o.remove("scope");
    o.remove("client_id");
    o.insert("scp".into(), json!(["crm:read"]));
    o.insert("azp".into(), json!("gpt-action"));
    let principal = v.verify(&key.sign(&c), RESOURCE).await.unwrap();
    assert_eq!(
        (principal.scopes, principal.client_id.as_str()),
        (vec!["crm:read".to_string()], "gpt-action")
    );
    assert_eq!(p.jwks_hits(), 1);
}

#[tokio::test]
async fn access_tokens_that_fail_any_check_are_refused() {
    let (p, key, _clock, v) = verifier_setup().await;
    let check = |c: Value| key.sign(&c);
    let mut wrong_aud = at_claims(&p);
    wrong_aud["aud"] = json!("https://gw.example.com/mcp/other");
    assert_eq!(
        v.verify(&check(wrong_aud), RESOURCE).await,
        Err(TokenRejection::WrongAudience(RESOURCE.into()))
    );
    let mut no_aud = at_claims(&p);
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        v.verify(&check(no_aud), RESOURCE).await,
        Err(TokenRejection::WrongAudience(RESOURCE.into()))
    );
    assert_eq!(
        v.verify(&check(at_claims(&p)), "https://gw.example.com/mcp/other")
            .await,
        Err(TokenRejection::WrongAudience(
            "https://gw.example.com/mcp/other".into()
        ))
    );
    let mut expired = at_claims(&p);
    expired["exp"] = json!(T0 - 31);
    assert_eq!(
        v.verify(&check(expired), RESOURCE).await,
        Err(TokenRejection::Expired)
    );
    let mut early = at_claims(&p);
    early["nbf"] = json!(T0 + 31);
    assert_eq!(
        v.verify(&check(early), RESOURCE).await,
        Err(TokenRejection::NotYetValid)
    );
    let mut within_skew = at_claims(&p);
    within_skew["nbf"] = json!(T0 + 29);
    assert!(v.verify(&check(within_skew), RESOURCE).await.is_ok());
    let mut foreign = at_claims(&p);
    foreign["iss"] = json!("https://evil.example.com");
    assert_eq!(
        v.verify(&check(foreign), RESOURCE).await,
        Err(TokenRejection::WrongIssuer)
    );
    let mut no_client = at_claims(&p);
    no_client.as_object_mut().unwrap().remove("client_id");
    assert!(matches!(
        v.verify(&check(no_client), RESOURCE).await,
        Err(TokenRejection::Malformed(_))
    ));
    let mut no_exp = at_claims(&p);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        v.verify(&check(no_exp), RESOURCE).await,
        Err(TokenRejection::Malformed(_))
    ));
    assert_eq!(
        v.verify(&key.forge_hs256(&at_claims(&p)), RESOURCE).await,
        Err(TokenRejection::BadSignature)
    );
    assert!(
        matches!(v.verify(&key.forge_none(&at_claims(&p)), RESOURCE).await, Err(TokenRejection::Malformed(m)) if m.contains("alg none"))
    );
    assert_eq!(
        v.verify(&Key::ec("k1").sign(&at_claims(&p)), RESOURCE)
            .await,
        Err(TokenRejection::BadSignature)
    );
    assert_eq!(v.verify("", RESOURCE).await, Err(TokenRejection::Missing));
    assert_eq!(p.jwks_hits(), 1, "no refusal above refetched the JWKS");
}

#[tokio::test]
async fn configured_audiences_map_to_the_resource() {
    let p = start().await;
    let key = Key::ec("k1");
    p.publish(&[&key]);
    let clock = clock();
    let mut s = ext_settings(&p, &clock);
    s.audiences = vec!["api://portcullis".into()];
    s.jwks_uri = Some(format!("{}/jwks", p.issuer));
    s.scope_claim = Some("scp".into());
    let v = ExternalVerifier::new(s, default_http_client().unwrap())
        .await
        .unwrap();
    let mut c = at_claims(&p);
    c["aud"] = json!("api://portcullis");
    c["scp"] = json!("crm:admin");
    let principal = v.verify(&key.sign(&c), RESOURCE).await.unwrap();
    assert_eq!(principal.audience, RESOURCE);
    assert_eq!(
        principal.scopes,
        ["crm:admin"],
        "only the configured scope claim is read"
    );
    c["aud"] = json!("api://elsewhere");
    assert_eq!(
        v.verify(&key.sign(&c), RESOURCE).await,
        Err(TokenRejection::WrongAudience(RESOURCE.into()))
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_30_seconds() {
    let (p, key, clock, v) = verifier_setup().await;
    let rotated = Key::ec("k2");
    let token = rotated.sign(&at_claims(&p));
    assert_eq!(
        v.verify(&token, RESOURCE).await,
        Err(TokenRejection::UnknownKey)
    );
    assert_eq!(
        p.jwks_hits(),
        1,
        "the start-up load counts: no refetch within 30 s of it"
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        v.verify(&token, RESOURCE).await,
        Err(TokenRejection::UnknownKey)
    );
    assert_eq!(p.jwks_hits(), 2, "one refetch for the unknown kid");
    // The issuer rotates its keys now, but within 30 s nobody can make us ask again.
    p.publish(&[&key, &rotated]);
    for _ in 0..20 {
        assert_eq!(
            v.verify(&token, RESOURCE).await,
            Err(TokenRejection::UnknownKey)
        );
    }
    assert_eq!(p.jwks_hits(), 2, "no amplification");
    clock.advance(Duration::from_secs(30));
    assert!(
        v.verify(&token, RESOURCE).await.is_ok(),
        "after 30 s the rotated key is fetched"
    );
    assert_eq!(p.jwks_hits(), 3);
    assert!(v.verify(&key.sign(&at_claims(&p)), RESOURCE).await.is_ok());
    assert_eq!(p.jwks_hits(), 3);
}

#[tokio::test]
async fn a_jwks_that_is_down_makes_verification_unavailable() {
    let p = start().await;
    let key = Key::ec("k1");
    p.publish(&[&key]);
    p.jwks_down.store(true, Ordering::SeqCst);
    let clock = clock();
    // Start-up does not fail: the gateway comes up and fails closed per request.
    let v = ExternalVerifier::new(ext_settings(&p, &clock), default_http_client().unwrap())
        .await
        .unwrap();
    let token = key.sign(&at_claims(&p));
    assert!(matches!(
        v.verify(&token, RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
    let hits = p.jwks_hits();
    assert!(matches!(
        v.verify(&token, RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
    assert_eq!(p.jwks_hits(), hits, "a down JWKS is not hammered either");
    p.jwks_down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    assert!(v.verify(&token, RESOURCE).await.is_ok());
    // An explicitly configured JWKS URL where nothing listens: unavailable too.
    let mut s = ext_settings(&p, &clock);
    s.jwks_uri = Some(format!("{}/jwks", dead_url().await));
    let v = ExternalVerifier::new(s, default_http_client().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        v.verify(&token, RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached_briefly() {
    let (p, _key, clock, v) = verifier_setup().await;
    p.introspect.lock().unwrap().insert(
        "opaque-1".into(),
        json!({"active": true, "sub": "u-7", "aud": RESOURCE, "client_id": "cli", "scope": "crm:read",
            "exp": T0 + 45, "username": "bob"}),
    );
    let principal = v.verify("opaque-1", RESOURCE).await.unwrap();
    assert_eq!(principal.subject, format!("{}|u-7", p.issuer));
    assert_eq!(principal.display_name.as_deref(), Some("bob"));
    assert!(principal.token_id.starts_with("sha256:"));
    assert!(!principal.token_id.contains("opaque-1"));
    v.verify("opaque-1", RESOURCE).await.unwrap();
    assert_eq!(p.introspect_hits(), 1, "the answer is cached");
    assert_eq!(
        v.verify("opaque-1", "https://gw.example.com/mcp/other")
            .await,
        Err(TokenRejection::WrongAudience(
            "https://gw.example.com/mcp/other".into()
        ))
    );
    assert_eq!(p.introspect_hits(), 1);
    // Never past exp: at T0+45 the cached answer is gone and the AS is asked again.
    p.introspect
        .lock()
        .unwrap()
        .insert("opaque-1".into(), json!({"active": false}));
    clock.advance(Duration::from_secs(45));
    assert_eq!(
        v.verify("opaque-1", RESOURCE).await,
        Err(TokenRejection::Revoked)
    );
    assert_eq!(p.introspect_hits(), 2);
    assert_eq!(
        v.verify("never-issued", RESOURCE).await,
        Err(TokenRejection::Revoked)
    );
    assert_eq!(
        v.verify("never-issued", RESOURCE).await,
        Err(TokenRejection::Revoked)
    );
    assert_eq!(
        p.introspect_hits(),
        3,
        "negative answers are cached briefly too"
    );
    p.introspect_down.store(true, Ordering::SeqCst);
    assert!(matches!(
        v.verify("opaque-2", RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
}

#[tokio::test]
async fn introspection_with_wrong_credentials_is_unavailable_not_the_tokens_fault() {
    let p = start().await;
    p.publish(&[&Key::ec("k1")]);
    let clock = clock();
    let mut s = ext_settings(&p, &clock);
    s.introspection.as_mut().unwrap().client_secret = Secret::new("wrong");
    let v = ExternalVerifier::new(s, default_http_client().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        v.verify("opaque-1", RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
    // Without introspection, opaque tokens are malformed.
    let mut s = ext_settings(&p, &clock);
    s.introspection = None;
    let v = ExternalVerifier::new(s, default_http_client().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        v.verify("opaque-1", RESOURCE).await,
        Err(TokenRejection::Malformed(_))
    ));
}

#[tokio::test]
async fn the_chain_routes_by_issuer_and_keeps_opaque_tokens_away_from_strangers() {
    let (p1, k1, _c1, v1) = verifier_setup().await;
    let (p2, k2, _c2, v2) = verifier_setup().await;
    p2.introspect.lock().unwrap().insert(
        "opaque-2".into(),
        json!({"active": true, "sub": "u-2", "aud": RESOURCE, "client_id": "c", "iss": p2.issuer}),
    );
    let (v1, v2) = (Arc::new(v1), Arc::new(v2));
    let chain = VerifierChain::new(vec![(
        p1.issuer.clone(),
        v1.clone() as Arc<dyn TokenVerifier>,
    )]);
    let (mut chain, found) = chain.with_opaque("https://unknown.example.com");
    assert!(!found);
    chain.push_external(v2.clone());
    assert_eq!(
        chain
            .verify(&k1.sign(&at_claims(&p1)), RESOURCE)
            .await
            .unwrap()
            .issuer,
        p1.issuer
    );
    assert_eq!(
        chain
            .verify(&k2.sign(&at_claims(&p2)), RESOURCE)
            .await
            .unwrap()
            .issuer,
        p2.issuer
    );
    // A token of issuer 2 signed with issuer 1's key: routed to 2, whose keys refuse it.
    assert!(
        chain
            .verify(&k1.sign(&at_claims(&p2)), RESOURCE)
            .await
            .is_err()
    );
    let mut stranger = at_claims(&p1);
    stranger["iss"] = json!("https://evil.example.com");
    assert_eq!(
        chain.verify(&k1.sign(&stranger), RESOURCE).await,
        Err(TokenRejection::WrongIssuer)
    );
    assert_eq!(
        chain.verify("opaque-2", RESOURCE).await.unwrap().subject,
        format!("{}|u-2", p2.issuer)
    );
    assert_eq!(
        p1.introspect_hits(),
        0,
        "issuer 1 was not registered for opaque tokens"
    );
    assert_eq!(
        chain.verify("opaque-x", RESOURCE).await,
        Err(TokenRejection::Revoked)
    );
    p2.introspect_down.store(true, Ordering::SeqCst);
    assert!(matches!(
        chain.verify("opaque-y", RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
    let empty = VerifierChain::new(vec![]);
    assert!(matches!(
        empty.verify("opaque-y", RESOURCE).await,
        Err(TokenRejection::Malformed(_))
    ));
}

#[tokio::test]
async fn redirects_and_oversized_documents_are_refused() {
    let p = start().await;
    p.publish(&[&Key::ec("k1")]);
    let mut s = login_settings(&p, &clock());
    s.issuer = format!("{}/moved", p.issuer);
    let err = OidcLogin::discover(s.clone(), default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::Redirected { .. }), "{err}");
    // Even a client that follows redirects gets the refusal.
    let err = OidcLogin::discover(s, reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::Redirected { .. }), "{err}");
    p.jwks_pad
        .store(portcullis_federation::JWKS_BODY_LIMIT, Ordering::SeqCst);
    let err = OidcLogin::discover(login_settings(&p, &clock()), default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn an_unverified_email_is_not_passed_on() {
    let (p, key, _clock, login) = login_setup().await;
    let pending = begin(&p, &login, |pl| {
        let mut c = id_claims(&p, &pl.nonce);
        c["email_verified"] = json!(false);
        key.sign(&c)
    });
    let id = login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap();
    assert_eq!(id.email, None);
}

#[tokio::test]
async fn an_introspected_refresh_token_is_not_an_access_token() {
    let (p, _key, _clock, v) = verifier_setup().await;
    p.introspect.lock().unwrap().insert(
        "refresh-1".into(),
        json!({"active": true, "token_type": "refresh_token", "sub": "u-1", "aud": RESOURCE, "client_id": "c"}),
    );
    assert!(matches!(
        v.verify("refresh-1", RESOURCE).await,
        Err(TokenRejection::Malformed(_))
    ));
}

#[test]
fn the_login_and_verifier_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn check(login: &OidcLogin, pending: &PendingLogin, v: &ExternalVerifier) {
        send(&login.complete(pending, "c", "s"));
        send(&v.verify("t", RESOURCE));
    }
    fn sync<T: Send + Sync + Clone>() {}
    sync::<OidcLogin>();
    sync::<VerifierChain>();
    let _ = check;
}

#[tokio::test]
async fn a_single_published_key_without_kid_verifies_tokens_that_name_one() {
    let p = start().await;
    let key = Key::ec("k1");
    let mut jwk = key.jwk.clone();
    jwk.as_object_mut().unwrap().remove("kid");
    *p.jwks.lock().unwrap() = vec![jwk];
    let clock = clock();
    let v = ExternalVerifier::new(ext_settings(&p, &clock), default_http_client().unwrap())
        .await
        .unwrap();
    assert!(v.verify(&key.sign(&at_claims(&p)), RESOURCE).await.is_ok());
    assert_eq!(
        v.verify(&Key::ec("k1").sign(&at_claims(&p)), RESOURCE)
            .await,
        Err(TokenRejection::BadSignature)
    );
}

#[tokio::test]
async fn an_issuer_without_metadata_needs_a_jwks_uri_or_introspection() {
    let clock = clock();
    let dead = dead_url().await;
    let settings = ExternalIssuerSettings {
        issuer: dead.clone(),
        jwks_uri: None,
        introspection: None,
        audiences: vec![],
        scope_claim: None,
        groups_claim: None,
        roles_claim: None,
        clock: Arc::new(clock.clone()),
    };
    let err = ExternalVerifier::new(settings.clone(), default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::Unreachable { .. }), "{err}");
    let with_introspection = ExternalIssuerSettings {
        introspection: Some(IntrospectionSettings {
            endpoint: format!("{dead}/introspect"),
            client_id: RS_ID.into(),
            client_secret: Secret::new(RS_SECRET),
        }),
        ..settings
    };
    let v = ExternalVerifier::new(with_introspection, default_http_client().unwrap())
        .await
        .unwrap();
    assert!(v.introspects());
    assert!(matches!(
        v.verify("opaque", RESOURCE).await,
        Err(TokenRejection::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tokens_with_unknown_kids_cause_one_fetch() {
    let (p, _key, clock, v) = verifier_setup().await;
    clock.advance(Duration::from_secs(30));
    let v = Arc::new(v);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let v = v.clone();
        let token = Key::ec(&format!("unknown-{i}")).sign(&at_claims(&p));
        tasks.spawn(async move { v.verify(&token, RESOURCE).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Err(TokenRejection::UnknownKey));
    }
    assert_eq!(
        p.jwks_hits(),
        2,
        "the start-up load and one refetch, whatever the interleaving"
    );
}

#[tokio::test]
async fn identities_and_tokens_do_not_print_personal_data_or_secrets() {
    let (p, key, _clock, login) = login_setup().await;
    let pending = begin(&p, &login, |pl| key.sign(&id_claims(&p, &pl.nonce)));
    let (id, tokens) = login
        .complete_with_tokens(&pending, "good-code", &pending.state)
        .await
        .unwrap();
    let printed = format!("{id:?} {tokens:?} {pending:?} {login:?}");
    for leak in [
        "alice",
        "Alice",
        "at-1",
        pending.pkce_verifier.expose(),
        CLIENT_SECRET,
    ] {
        assert!(!printed.contains(leak), "{leak} printed in {printed}");
    }
    assert!(printed.contains("engineering") && printed.contains("u-1"));
}

#[tokio::test]
async fn a_public_client_sends_its_id_and_pkce_only_and_extras_cannot_override_the_protocol() {
    let p = start().await;
    let key = Key::ec("k1");
    p.publish(&[&key]);
    let clock = clock();
    let mut settings = login_settings(&p, &clock);
    settings.client_secret = None;
    let login = OidcLogin::discover(settings, default_http_client().unwrap())
        .await
        .unwrap()
        .with_userinfo(false);
    assert_eq!(login.client_auth(), ClientAuth::None);
    let (url, pending) = login.begin_with(
        "https://gw.example.com/cb",
        &[
            ("resource", RESOURCE),
            ("state", "attacker"),
            ("code_challenge_method", "plain"),
        ],
    );
    let url = reqwest::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let all = |k: &str| {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("resource"), [RESOURCE]);
    assert_eq!(all("state"), [pending.state.as_str()]);
    assert_eq!(all("code_challenge_method"), ["S256"]);
    *p.challenge.lock().unwrap() = all("code_challenge")[0].clone();
    *p.next_id_token.lock().unwrap() = key.sign(&id_claims(&p, &pending.nonce));
    login
        .complete(&pending, "good-code", &pending.state)
        .await
        .unwrap();
    assert!(p.token_auth.lock().unwrap().is_none());
    let form = p.token_form.lock().unwrap().clone();
    assert_eq!(form["client_id"], CLIENT_ID);
    assert!(!form.contains_key("client_secret"));
    assert_eq!(form["code_verifier"], pending.pkce_verifier.expose());
}
