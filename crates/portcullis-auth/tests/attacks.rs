//! The attack suite: each case asserts the exact rejection (AUTH-1, AUTH-2, AUTH-4, AUTH-7).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::{AuthServer, AuthSettings, Claims};
use portcullis_core::TokenRejection;
use portcullis_core::clock::ManualClock;

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> serde_json::Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

async fn access_token(env: &Env) -> String {
    let (_, t) = full_grant(env, "crm:read").await;
    t["access_token"].as_str().unwrap().to_string()
}

// ---- PKCE (AUTH-1) ----

#[tokio::test]
async fn pkce_missing_or_plain_is_refused_by_redirect() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let mut b = Browser::default();
    let no_pkce = format!(
        "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&state=s1&resource={}",
        urlencode(REDIRECT),
        urlencode(CRM)
    );
    let r = b.get(&app, &no_pkce).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let q = r.redirect_params();
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("code_challenge"));
    assert_eq!(q["state"], "s1");
    assert_eq!(q["iss"], ISSUER);
    let (_, challenge) = pkce();
    let plain =
        authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM).replace("S256", "plain");
    let q = b.get(&app, &plain).await.redirect_params();
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("plain"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let (code, _) = get_code(&env, &client, REDIRECT, "crm:read", &challenge).await;
    let (other_verifier, _) = pkce();
    let r = redeem(&app, &client, &code, &other_verifier, REDIRECT).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE")
    );
}

// ---- codes ----

#[tokio::test]
async fn reused_code_is_refused_and_revokes_its_tokens() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &client, REDIRECT, "crm:read", &challenge).await;
    let first = redeem(&app, &client, &code, &verifier, REDIRECT)
        .await
        .json();
    let at = first["access_token"].as_str().unwrap();
    assert!(env.verify(at, CRM).await.is_ok());
    let again = redeem(&app, &client, &code, &verifier, REDIRECT).await;
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(
        env.verify(at, CRM).await.unwrap_err(),
        TokenRejection::Revoked
    );
    let r = refresh(
        &app,
        &client,
        first["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn code_redeemed_by_another_client_or_late_is_refused() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let a = register_public(&app, REDIRECT).await;
    let b = register_public(&app, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &a, REDIRECT, "crm:read", &challenge).await;
    let r = redeem(&app, &b, &code, &verifier, REDIRECT).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("another client")
    );
    // Expiry: 60 s.
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &a, REDIRECT, "crm:read", &challenge).await;
    env.advance(61);
    let r = redeem(&app, &a, &code, &verifier, REDIRECT).await;
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // Redirect URI binding.
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &a, REDIRECT, "crm:read", &challenge).await;
    let r = redeem(&app, &a, &code, &verifier, "http://127.0.0.1:9999/other").await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

// ---- redirect URIs and open redirects (AUTH-2) ----

#[tokio::test]
async fn bad_redirect_uris_get_an_error_page_and_never_redirect() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    for bad in [
        "https://evil.example/cb",
        "http://127.0.0.1:9999/cb/other",
        "http://127.0.0.1:9999/c",
        "javascript:alert(1)",
    ] {
        let r = b
            .get(
                &app,
                &authorize_uri(&client, bad, "crm:read", &challenge, CRM),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.location().is_none(), "{bad}: no redirect");
        assert!(
            r.body.contains("not one this application registered"),
            "{bad}"
        );
    }
    // Unknown client: page, no redirect, even with a redirect_uri given.
    let r = b
        .get(
            &app,
            &authorize_uri("pc-nope", REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location().is_none());
}

#[tokio::test]
async fn registration_refuses_unsafe_redirects_with_the_rfc_error() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    for (bad, why) in [
        ("http://evil.example/cb", "not loopback"),
        ("javascript:alert(1)", "javascript:"),
        ("data:text/html,x", "data:"),
        ("myapp://cb", "custom schemes"),
        ("https://app.example/cb#x", "fragment"),
    ] {
        let r = post_json(
            &app,
            "/oauth/register",
            &serde_json::json!({"redirect_uris": [bad], "token_endpoint_auth_method": "none"}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["error"], "invalid_redirect_uri", "{bad}");
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(why),
            "{bad}: {}",
            r.body
        );
    }
    let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
    let r = post_json(
        &app,
        "/oauth/register",
        &serde_json::json!({"redirect_uris": many}),
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_redirect_uri");
    let r = post_json(
        &app,
        "/oauth/register",
        &serde_json::json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client_metadata");
    let r = post_json(
        &app,
        "/oauth/register",
        &serde_json::json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(500)}),
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client_metadata");
    let r = send(
        &app,
        axum::http::Request::post("/oauth/register")
            .body(axum::body::Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client_metadata");
    let r = send(
        &app,
        axum::http::Request::post("/oauth/register")
            .body(axum::body::Body::from(vec![b' '; 70_000]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn registration_policy_token_and_closed() {
    let s = AuthSettings {
        registration: portcullis_auth::Registration::Token(portcullis_core::Secret::new(
            "initial-access-token-123",
        )),
        ..AuthSettings::default()
    };
    let env = Env::with(Backend::Sqlite, s).await;
    let app = env.app();
    let body =
        serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    let r = post_json(&app, "/oauth/register", &body, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_token");
    let r = post_json(&app, "/oauth/register", &body, Some("wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post_json(
        &app,
        "/oauth/register",
        &body,
        Some("initial-access-token-123"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let s = AuthSettings {
        registration: portcullis_auth::Registration::Closed,
        ..AuthSettings::default()
    };
    let env = Env::with(Backend::Sqlite, s).await;
    let r = post_json(&env.app(), "/oauth/register", &body, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "access_denied");
    let md = Browser::default()
        .get(&env.app(), "/.well-known/oauth-authorization-server")
        .await
        .json();
    assert!(
        md.get("registration_endpoint").is_none(),
        "closed registration is not advertised"
    );
}

// ---- resource and scope ----

#[tokio::test]
async fn unknown_resource_and_scope_are_refused() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let q = b
        .get(
            &app,
            &authorize_uri(
                &client,
                REDIRECT,
                "crm:read",
                &challenge,
                "http://127.0.0.1:8080/mcp/nope",
            ),
        )
        .await
        .redirect_params();
    assert_eq!(q["error"], "invalid_target");
    let q = b
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "other:read", &challenge, CRM),
        )
        .await
        .redirect_params();
    assert_eq!(q["error"], "invalid_scope");
}

#[tokio::test]
async fn scope_escalation_at_refresh_is_invalid_scope() {
    let env = Env::new(Backend::Sqlite).await;
    let (client, t) = full_grant(&env, "crm:read").await;
    let r = refresh(
        &env.app(),
        &client,
        t["refresh_token"].as_str().unwrap(),
        Some("crm:read crm:write"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family_and_its_access_tokens() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let (client, t) = full_grant(&env, "crm:read").await;
    let rt1 = t["refresh_token"].as_str().unwrap();
    let t2 = refresh(&app, &client, rt1, None).await.json();
    let at2 = t2["access_token"].as_str().unwrap();
    assert!(env.verify(at2, CRM).await.is_ok());
    let reuse = refresh(&app, &client, rt1, None).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert!(
        reuse.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        env.verify(at2, CRM).await.unwrap_err(),
        TokenRejection::Revoked
    );
    assert_eq!(
        env.verify(t["access_token"].as_str().unwrap(), CRM)
            .await
            .unwrap_err(),
        TokenRejection::Revoked
    );
    let r = refresh(&app, &client, t2["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "the newest token of the family is dead too"
    );
    assert!(env.events.lock().unwrap().iter().any(|e| matches!(
        e,
        portcullis_auth::AuthEvent::ReuseDetected {
            what: "refresh_token",
            ..
        }
    )));
}

// ---- forged and misbound JWTs (AUTH-4) ----

#[tokio::test]
async fn alg_none_hs256_with_public_key_and_unknown_kid_are_refused() {
    let env = Env::new(Backend::Sqlite).await;
    let at = access_token(&env).await;
    let claims = claims_of(&at);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    assert!(matches!(
        env.verify(&none, CRM).await,
        Err(TokenRejection::Malformed(_))
    ));

    // HS256 with our public key (as JWK coordinates and as the raw point) as the HMAC secret.
    let jwks = Browser::default()
        .get(&env.app(), "/oauth/jwks")
        .await
        .json();
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    for secret in [point.clone(), jwk.to_string().into_bytes()] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.to_string());
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(
            env.verify(&forged, CRM).await.unwrap_err(),
            TokenRejection::BadSignature
        );
    }

    // ES256 with a key of our own: unknown kid, then our kid (bad signature).
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("not-ours".into());
    let forged = jsonwebtoken::encode(&h, &claims, &key).unwrap();
    assert_eq!(
        env.verify(&forged, CRM).await.unwrap_err(),
        TokenRejection::UnknownKey
    );
    h.kid = Some(kid.into());
    let forged = jsonwebtoken::encode(&h, &claims, &key).unwrap();
    assert_eq!(
        env.verify(&forged, CRM).await.unwrap_err(),
        TokenRejection::BadSignature
    );

    // Tampered payload under a genuine signature.
    let mut parts: Vec<&str> = at.split('.').collect();
    let mut c2 = claims.clone();
    c2.scope = "crm:admin".into();
    let p2 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c2).unwrap());
    parts[1] = &p2;
    assert_eq!(
        env.verify(&parts.join("."), CRM).await.unwrap_err(),
        TokenRejection::BadSignature
    );
    assert!(matches!(
        env.verify("garbage", CRM).await,
        Err(TokenRejection::Malformed(_))
    ));
    assert_eq!(header_of(&at)["alg"], "ES256");
}

#[tokio::test]
async fn expired_wrong_audience_not_yet_valid_and_wrong_issuer() {
    let env = Env::new(Backend::Sqlite).await;
    let at = access_token(&env).await;
    assert_eq!(
        env.verify(&at, OTHER).await.unwrap_err(),
        TokenRejection::WrongAudience(OTHER.into())
    );
    assert_eq!(
        env.verify(&at, "http://127.0.0.1:8080/mcp/crm/")
            .await
            .unwrap_err(),
        TokenRejection::WrongAudience("http://127.0.0.1:8080/mcp/crm/".into()),
        "exactly"
    );

    // A verifier whose clock is earlier than the token's nbf (same keys, same database).
    let early = ManualClock::new(start() - chrono::Duration::seconds(100));
    let s = AuthServer::open(
        AuthSettings::default(),
        env.store.clone(),
        env.dir.path(),
        ISSUER.into(),
        resources(),
        Arc::new(early),
    )
    .await
    .unwrap();
    assert_eq!(
        s.verifier().verify(&at, CRM).await.unwrap_err(),
        TokenRejection::NotYetValid
    );
    // Another issuer on the same keys.
    let clock = ManualClock::new(start());
    let s = AuthServer::open(
        AuthSettings::default(),
        env.store.clone(),
        env.dir.path(),
        "http://127.0.0.1:9090".into(),
        resources(),
        Arc::new(clock),
    )
    .await
    .unwrap();
    assert_eq!(
        s.verifier().verify(&at, CRM).await.unwrap_err(),
        TokenRejection::WrongIssuer
    );

    assert!(env.verify(&at, CRM).await.is_ok(), "cached");
    env.advance(3600);
    assert_eq!(
        env.verify(&at, CRM).await.unwrap_err(),
        TokenRejection::Expired,
        "expiry is checked on the cached path too"
    );
}

// ---- CSRF on the forms ----

#[tokio::test]
async fn csrf_on_login_and_consent() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    let (rid, csrf) = (page.hidden("request_id"), page.hidden("csrf"));
    let login = |csrf: String| {
        vec![
            ("request_id".to_string(), rid.clone()),
            ("csrf".to_string(), csrf),
            ("username".into(), "alice".into()),
            ("password".into(), PASSWORD.into()),
        ]
    };
    let as_ref = |v: &Vec<(String, String)>| {
        v.iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let f = as_ref(&login("wrong".into()));
    let f: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        b.post_form(&app, "/oauth/login", &f).await.status,
        StatusCode::FORBIDDEN,
        "wrong token"
    );
    let no_token: Vec<(&str, &str)> = f.iter().filter(|(k, _)| *k != "csrf").cloned().collect();
    assert_eq!(
        b.post_form(&app, "/oauth/login", &no_token).await.status,
        StatusCode::FORBIDDEN,
        "missing token"
    );
    let good = as_ref(&login(csrf.clone()));
    let good: Vec<(&str, &str)> = good.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut stranger = Browser::default();
    let r = stranger.post_form(&app, "/oauth/login", &good).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "missing cookie");
    assert!(
        r.headers.get("set-cookie").is_none(),
        "no session for a refused POST"
    );
    // Nothing changed: the right browser still signs in.
    let r = b.post_form(&app, "/oauth/login", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let consent = b.get(&app, &r.location().unwrap()).await;
    let (rid, ccsrf) = (consent.hidden("request_id"), consent.hidden("csrf"));
    assert_ne!(ccsrf, csrf, "a token per stage");
    let r = b
        .post_form(
            &app,
            "/oauth/consent",
            &[("request_id", &rid), ("csrf", &csrf), ("decision", "allow")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the login token does not work for consent"
    );
    let r = b
        .post_form(
            &app,
            "/oauth/consent",
            &[("request_id", &rid), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut cookieless = b.clone();
    cookieless.cookies.remove("pc_csrf");
    let r = cookieless
        .post_form(
            &app,
            "/oauth/consent",
            &[
                ("request_id", &rid),
                ("csrf", &ccsrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "missing cookie");
    let r = b
        .post_form(
            &app,
            "/oauth/consent",
            &[("request_id", &rid), ("csrf", &ccsrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.redirect_params()["error"], "access_denied");
    assert_eq!(r.redirect_params()["state"], "st-123");
}

// ---- users and clients ----

#[tokio::test]
async fn failed_logins_are_generic_and_throttled() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    let (rid, csrf) = (page.hidden("request_id"), page.hidden("csrf"));
    let try_login = |u: &'static str, p: &'static str| {
        let (rid, csrf) = (rid.clone(), csrf.clone());
        let mut b = b.clone();
        let app = app.clone();
        async move {
            b.post_form(
                &app,
                "/oauth/login",
                &[
                    ("request_id", &rid),
                    ("csrf", &csrf),
                    ("username", u),
                    ("password", p),
                ],
            )
            .await
        }
    };
    let wrong_pw = try_login("alice", "nope-nope-nope").await;
    let no_user = try_login("mallory", "nope-nope-nope").await;
    assert_eq!(wrong_pw.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_user.status, StatusCode::UNAUTHORIZED);
    let msg = |r: &Resp| {
        r.body[r.body.find("role=\"alert\"").unwrap()..]
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(msg(&wrong_pw), msg(&no_user), "never says which was wrong");
    for _ in 0..4 {
        try_login("alice", "nope-nope-nope").await;
    }
    let r = try_login("alice", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "throttled even with the right password"
    );
    env.advance(301);
    let r = try_login("alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the window passed");
}

#[tokio::test]
async fn disabled_user_cannot_sign_in_and_their_tokens_stop() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let (client, t) = full_grant(&env, "crm:read").await;
    env.server
        .admin()
        .set_user_disabled("alice", true)
        .await
        .unwrap();
    let r = refresh(&app, &client, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        env.verify(t["access_token"].as_str().unwrap(), CRM)
            .await
            .unwrap_err(),
        TokenRejection::Revoked
    );
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    let r = b
        .post_form(
            &app,
            "/oauth/login",
            &[
                ("request_id", &page.hidden("request_id")),
                ("csrf", &page.hidden("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_client_and_revoked_consent_end_refresh() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let (client, t) = full_grant(&env, "crm:read").await;
    let admin = env.server.admin();
    let consents = admin.consents(Some("alice")).await.unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].scopes, vec!["crm:read"]);
    admin.revoke_consent("alice", &client).await.unwrap();
    let r = refresh(&app, &client, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        env.verify(t["access_token"].as_str().unwrap(), CRM)
            .await
            .unwrap_err(),
        TokenRejection::Revoked
    );

    let (client, t) = full_grant(&env, "crm:read").await;
    admin.revoke_client(&client).await.unwrap();
    let r = refresh(&app, &client, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(
        env.verify(t["access_token"].as_str().unwrap(), CRM)
            .await
            .unwrap_err(),
        TokenRejection::Revoked
    );
    assert!(
        admin
            .clients()
            .await
            .unwrap()
            .iter()
            .any(|c| c.client_id == client && c.revoked_at.is_some())
    );
}

// ---- key rotation (AUTH-9) ----

#[tokio::test]
async fn key_rotation_keeps_old_tokens_within_the_overlap() {
    let s = AuthSettings {
        key_rotation: std::time::Duration::from_secs(3600),
        ..AuthSettings::default()
    };
    let env = Env::with(Backend::Sqlite, s).await;
    let app = env.app();
    env.advance(3000);
    let old = access_token(&env).await;
    let old_kid = header_of(&old)["kid"].as_str().unwrap().to_string();
    env.advance(700);
    env.server.rotate_keys_if_due().await.unwrap();
    let jwks = Browser::default().get(&app, "/oauth/jwks").await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&old_kid.as_str()));
    let new = access_token(&env).await;
    assert_ne!(header_of(&new)["kid"], old_kid.as_str());
    assert!(
        env.verify(&old, CRM).await.is_ok(),
        "old key still accepted within the overlap"
    );
    assert!(env.verify(&new, CRM).await.is_ok());
    env.advance(3700);
    env.server.rotate_keys_if_due().await.unwrap();
    let jwks = Browser::default().get(&app, "/oauth/jwks").await.json();
    assert!(
        !jwks.to_string().contains(&old_kid),
        "retired key dropped after the overlap"
    );
}

#[tokio::test]
async fn missing_master_key_for_an_existing_database_is_an_error() {
    let env = Env::new(Backend::Sqlite).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.dir.path().join("auth-master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the master key is private");
    std::fs::remove_file(env.dir.path().join("auth-master.key")).unwrap();
    let e = AuthServer::open(
        AuthSettings::default(),
        env.store.clone(),
        env.dir.path(),
        ISSUER.into(),
        resources(),
        Arc::new(ManualClock::new(start())),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, portcullis_auth::AuthError::MasterKeyMissing(_)),
        "{e}"
    );
    std::fs::write(
        env.dir.path().join("auth-master.key"),
        format!("{}\n", "ab".repeat(32)),
    )
    .unwrap();
    let e = AuthServer::open(
        AuthSettings::default(),
        env.store.clone(),
        env.dir.path(),
        ISSUER.into(),
        resources(),
        Arc::new(ManualClock::new(start())),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, portcullis_auth::AuthError::MasterKeyMismatch(_)),
        "{e}"
    );
}

// ---- malformed input never panics and gets the specified error ----

#[tokio::test]
async fn malformed_requests_get_the_rfc_errors() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let client = register_public(&app, REDIRECT).await;
    let r = post_form(
        &app,
        "/oauth/token",
        &[("grant_type", "password"), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let r = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_request", "repeated parameter");
    let r = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "pc-unknown"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = post_form(
        &app,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_request", "no code");
    let r = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", "x"),
        ],
        None,
    )
    .await;
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );
    let mut b = Browser::default();
    let r = b
        .post_form(
            &app,
            "/oauth/login",
            &[("request_id", "nope"), ("csrf", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &app,
        axum::http::Request::post("/oauth/login")
            .body(axum::body::Body::from("request_id=a&request_id=b"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = b
        .get(&app, "/oauth/authorize?client_id=a&client_id=b")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location().is_none());
    let r = b.get(&app, "/oauth/consent").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Oversized credentials fail like wrong ones.
    let (_, challenge) = pkce();
    let page = b
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge, CRM),
        )
        .await;
    let long = "a".repeat(5000);
    let r = b
        .post_form(
            &app,
            "/oauth/login",
            &[
                ("request_id", &page.hidden("request_id")),
                ("csrf", &page.hidden("csrf")),
                ("username", &long),
                ("password", &long),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn https_issuer_uses_host_prefixed_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(Backend::Sqlite, dir.path()).await;
    let mut res = resources();
    res[0].url = "https://gw.example/mcp/crm".into();
    let s = AuthServer::open(
        AuthSettings::default(),
        store,
        dir.path(),
        "https://gw.example".into(),
        res,
        Arc::new(ManualClock::new(start())),
    )
    .await
    .unwrap();
    let app = s.router();
    let client = register_public(&app, REDIRECT).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let r = b
        .get(
            &app,
            &authorize_uri(
                &client,
                REDIRECT,
                "crm:read",
                &challenge,
                "https://gw.example/mcp/crm",
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let c = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        c.starts_with("__Host-pc_csrf=")
            && c.contains("; Secure")
            && c.contains("Path=/")
            && c.contains("HttpOnly"),
        "{c}"
    );
    let md = b
        .get(&app, "/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(
        md["authorization_endpoint"],
        "https://gw.example/oauth/authorize"
    );
}
