//! The whole code flow on both backends: register, authorize, sign in, consent, code, token,
//! verify, refresh, revoke (AUTH-1, AUTH-2, AUTH-3, AUTH-4, AUTH-7).

mod common;

use axum::http::StatusCode;
use common::*;
use portcullis_auth::AuthEvent;
use portcullis_core::TokenRejection;

async fn whole_flow(b: Backend) {
    let env = Env::new(b).await;
    let app = env.app();

    // AUTH-3: discovery.
    let mut br = Browser::default();
    let md = br
        .get(&app, "/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(md["issuer"], ISSUER);
    assert_eq!(
        md["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(md["client_id_metadata_document_supported"], true);
    assert_eq!(md["authorization_response_iss_parameter_supported"], true);
    assert!(
        md["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "crm:admin")
    );
    let oidc = br
        .get(&app, "/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(oidc["token_endpoint"], format!("{ISSUER}/oauth/token"));
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );

    // AUTH-2: registration.
    let client = register_public(&app, REDIRECT).await;
    assert!(client.starts_with("pc-"));

    // AUTH-1: authorize → login page → consent page → code.
    let (verifier, challenge) = pkce();
    let page = br
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read crm:admin", &challenge, CRM),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for h in [
        "content-security-policy",
        "x-frame-options",
        "cache-control",
        "referrer-policy",
    ] {
        assert!(page.headers.contains_key(h), "{h}");
    }
    assert!(
        page.body.contains("<html lang=\"en\">") && page.body.contains("action=\"/oauth/login\"")
    );
    let r = br
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
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set_cookie: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set_cookie.iter().any(|c| c.starts_with("pc_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{set_cookie:?}"
    );
    let consent = br.get(&app, &r.location().unwrap()).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    // AUTH-7: the client, its redirect host, each scope in plain words, destructive marked.
    assert!(consent.body.contains("Test Client") && consent.body.contains("(unverified)"));
    assert!(consent.body.contains("127.0.0.1"));
    assert!(consent.body.contains("read crm records") && consent.body.contains("Destructive"));
    assert!(
        consent.body.contains("name=\"decision\" value=\"allow\"")
            && consent.body.contains("name=\"decision\" value=\"deny\"")
    );
    let r = br
        .post_form(
            &app,
            "/oauth/consent",
            &[
                ("request_id", &consent.hidden("request_id")),
                ("csrf", &consent.hidden("csrf")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().unwrap().starts_with(REDIRECT));
    let q = r.redirect_params();
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], ISSUER);

    // Token.
    let t = redeem(&app, &client, &q["code"], &verifier, REDIRECT).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.headers["cache-control"], "no-store");
    let t = t.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["scope"], "crm:admin crm:read");
    let at = t["access_token"].as_str().unwrap();

    // AUTH-4: verify.
    let p = env.verify(at, CRM).await.unwrap();
    assert_eq!(p.client_id, client);
    assert_eq!(p.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(p.groups, vec!["sales"]);
    assert_eq!(p.audience, CRM);
    assert_eq!(p.environment.as_deref(), Some("dev"));
    assert!(p.has_scope("crm:write"), "admin covers write");
    assert_eq!(
        env.verify(at, CRM).await.unwrap(),
        p,
        "cached path answers the same"
    );

    // A second authorization skips consent (it is stored).
    let (_, challenge2) = pkce();
    let again = br
        .get(
            &app,
            &authorize_uri(&client, REDIRECT, "crm:read", &challenge2, CRM),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "consent covers it: straight back"
    );
    assert!(again.redirect_params().contains_key("code"));

    // Refresh rotates.
    let rt1 = t["refresh_token"].as_str().unwrap();
    let r2 = refresh(&app, &client, rt1, Some("crm:read")).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    let r2 = r2.json();
    assert_eq!(r2["scope"], "crm:read", "a narrower scope is allowed");
    let rt2 = r2["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    let at2 = r2["access_token"].as_str().unwrap();
    assert!(env.verify(at2, CRM).await.unwrap().has_scope("crm:read"));

    // Revocation (RFC 7009): access token by jti, refresh token by family.
    let r = post_form(
        &app,
        "/oauth/revoke",
        &[("token", at2), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        env.verify(at2, CRM).await.unwrap_err(),
        TokenRejection::Revoked
    );
    assert!(env.verify(at, CRM).await.is_ok(), "only that jti");
    let r = post_form(
        &app,
        "/oauth/revoke",
        &[("token", rt2), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        env.verify(at, CRM).await.unwrap_err(),
        TokenRejection::Revoked,
        "the family's access tokens go too"
    );
    let r = refresh(&app, &client, rt2, None).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = post_form(
        &app,
        "/oauth/revoke",
        &[("token", "no-such-token"), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "unknown tokens: 200");

    let ev = env.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, AuthEvent::LoginSucceeded { .. }))
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, AuthEvent::ConsentGiven { .. }))
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        AuthEvent::TokenIssued {
            grant: "refresh_token",
            ..
        }
    )));
    assert!(ev.iter().any(|e| matches!(
        e,
        AuthEvent::TokenRevoked {
            what: "refresh_token",
            ..
        }
    )));
    let printed = format!("{ev:?}");
    assert!(
        !printed.contains(rt1) && !printed.contains(PASSWORD) && !printed.contains(&q["code"]),
        "no secrets in events"
    );
    env.finish().await;
}

#[tokio::test]
async fn whole_flow_on_sqlite() {
    whole_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn whole_flow_on_postgres() {
    whole_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn confidential_client_with_basic_and_introspection() {
    let env = Env::new(Backend::Sqlite).await;
    let app = env.app();
    let r = post_json(&app, "/oauth/register", &serde_json::json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]}), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let reg = r.json();
    assert_eq!(
        reg["token_endpoint_auth_method"], "client_secret_basic",
        "RFC 7591 default"
    );
    let (id, secret) = (
        reg["client_id"].as_str().unwrap().to_string(),
        reg["client_secret"].as_str().unwrap().to_string(),
    );
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &id, REDIRECT, "crm:read", &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let bad = post_form(&app, "/oauth/token", &form, Some((&id, "wrong"))).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json()["error"], "invalid_client");
    assert!(
        bad.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let (_, challenge) = pkce();
    let _ = challenge;
    // The code was burnt by nothing: client authentication failed before it was looked at.
    let ok = post_form(&app, "/oauth/token", &form, Some((&id, &secret))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let at = ok.json()["access_token"].as_str().unwrap().to_string();
    // RFC 7662.
    let i = post_form(
        &app,
        "/oauth/introspect",
        &[("token", &at)],
        Some((&id, &secret)),
    )
    .await
    .json();
    assert_eq!(i["active"], true);
    assert_eq!(i["aud"], CRM);
    let i = post_form(
        &app,
        "/oauth/introspect",
        &[("token", "garbage")],
        Some((&id, &secret)),
    )
    .await
    .json();
    assert_eq!(i["active"], false);
    let pub_client = register_public(&app, REDIRECT).await;
    let r = post_form(
        &app,
        "/oauth/introspect",
        &[("token", &at), ("client_id", &pub_client)],
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "public clients may not introspect"
    );
    env.finish().await;
}

#[tokio::test]
async fn demo_user_is_created_once_with_a_private_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_store(Backend::Sqlite, dir.path()).await;
    let clock = portcullis_core::clock::ManualClock::new(start());
    let s = portcullis_auth::AuthServer::open(
        Default::default(),
        store,
        dir.path(),
        ISSUER.into(),
        resources(),
        std::sync::Arc::new(clock),
    )
    .await
    .unwrap();
    let pw = s.ensure_demo_user().await.unwrap().expect("created");
    let path = dir.path().join("demo-password");
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), pw);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        s.ensure_demo_user().await.unwrap(),
        None,
        "a user exists now"
    );
    assert_eq!(s.admin().users().await.unwrap()[0].username, "demo");
}
