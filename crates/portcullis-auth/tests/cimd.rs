//! Client ID Metadata Documents: a document served on loopback (allow_insecure_loopback) lets a
//! client complete the flow with its URL as client_id; a document whose client_id differs from
//! its URL is refused.

mod common;

use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use portcullis_auth::AuthSettings;

/// Serves `doc(base_url)` at /client.json on an OS-chosen loopback port; returns the base URL.
async fn serve(doc: impl Fn(&str) -> serde_json::Value + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let body = doc(&base).to_string();
    let app = axum::Router::new().route(
        "/client.json",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=120"),
                    ],
                    body,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn settings() -> AuthSettings {
    AuthSettings {
        allow_insecure_loopback: true,
        ..AuthSettings::default()
    }
}

#[tokio::test]
async fn metadata_document_client_completes_the_flow() {
    let base = serve(|b| {
        serde_json::json!({
            "client_id": format!("{b}/client.json"),
            "client_name": "Doc Client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none"
        })
    })
    .await;
    let env = Env::with(Backend::Sqlite, settings()).await;
    let app = env.app();
    let client_id = format!("{base}/client.json");
    let (verifier, challenge) = pkce();
    let (code, _) = get_code(&env, &client_id, REDIRECT, "crm:read", &challenge).await;
    let r = redeem(&app, &client_id, &code, &verifier, REDIRECT).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = env
        .verify(r.json()["access_token"].as_str().unwrap(), CRM)
        .await
        .unwrap();
    assert_eq!(p.client_id, client_id);
    let r = refresh(
        &app,
        &client_id,
        r.json()["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    env.finish().await;
}

#[tokio::test]
async fn a_document_whose_client_id_differs_is_refused() {
    let base = serve(|_| serde_json::json!({"client_id": "https://elsewhere.example/client.json", "redirect_uris": [REDIRECT]})).await;
    let env = Env::with(Backend::Sqlite, settings()).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let r = b
        .get(
            &env.app(),
            &authorize_uri(
                &format!("{base}/client.json"),
                REDIRECT,
                "crm:read",
                &challenge,
                CRM,
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location().is_none());
    assert!(r.body.contains("does not equal its URL"), "{}", r.body);
}

#[tokio::test]
async fn loopback_documents_need_the_setting() {
    let base = serve(|b| serde_json::json!({"client_id": format!("{b}/client.json"), "redirect_uris": [REDIRECT]})).await;
    let env = Env::new(Backend::Sqlite).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let r = b
        .get(
            &env.app(),
            &authorize_uri(
                &format!("{base}/client.json"),
                REDIRECT,
                "crm:read",
                &challenge,
                CRM,
            ),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "http://127.0.0.1 is not a document URL without allow_insecure_loopback"
    );
    assert!(r.location().is_none());
}

#[tokio::test]
async fn consent_page_names_the_document_host_not_unverified() {
    let base = serve(|b| serde_json::json!({"client_id": format!("{b}/client.json"), "client_name": "Doc Client", "redirect_uris": [REDIRECT]})).await;
    let env = Env::with(Backend::Sqlite, settings()).await;
    let app = env.app();
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &app,
            &authorize_uri(
                &format!("{base}/client.json"),
                REDIRECT,
                "crm:read",
                &challenge,
                CRM,
            ),
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
    let consent = b.get(&app, &r.location().unwrap()).await;
    assert!(
        consent.body.contains("Doc Client") && consent.body.contains("identified by 127.0.0.1"),
        "{}",
        consent.body
    );
    assert!(!consent.body.contains("(unverified)"));
}
