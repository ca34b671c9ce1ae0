//! A fake OpenID provider / authorization server on 127.0.0.1:0 (axum), with test keys and
//! knobs for each failure: issuer mismatch in metadata, JWKS down, key rotation, introspection
//! answers. Everything is in-process; nothing sleeps.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_core::clock::ManualClock;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The test clock's start, seconds since the epoch.
pub const T0: i64 = 1_900_000_000;
pub const CLIENT_ID: &str = "portcullis";
pub const CLIENT_SECRET: &str = "s3cret:with/odd chars";
pub const RS_ID: &str = "rs";
pub const RS_SECRET: &str = "rs-secret";
pub const RESOURCE: &str = "https://gw.example.com/mcp/crm";

pub fn clock() -> ManualClock {
    ManualClock::new(chrono::DateTime::from_timestamp(T0, 0).unwrap())
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with its public JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub enc: EncodingKey,
    pub jwk: Value,
    /// The public key bytes, as an attacker would use them for an HS256 forgery.
    pub public: Vec<u8>,
}

impl Key {
    pub fn ec(kid: &str) -> Key {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let (x, y) = (&public[1..33], &public[33..65]);
        Key {
            kid: kid.into(),
            alg: Algorithm::ES256,
            enc: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64(x), "y": b64(y)}),
            public,
        }
    }

    pub fn rsa(kid: &str) -> Key {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let comps = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Key {
            kid: kid.into(),
            alg: Algorithm::RS256,
            enc: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk: json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64(&comps.n), "e": b64(&comps.e)}),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }

    /// Same kid, but "signed" with HS256 keyed by the public key: the key-confusion attack.
    pub fn forge_hs256(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(&self.public)).unwrap()
    }

    /// An unsigned token naming this key.
    pub fn forge_none(&self, claims: &Value) -> String {
        let h = json!({"alg": "none", "kid": self.kid});
        format!(
            "{}.{}.",
            b64(&serde_json::to_vec(&h).unwrap()),
            b64(&serde_json::to_vec(claims).unwrap())
        )
    }
}

#[derive(Default)]
pub struct Provider {
    pub issuer: String,
    pub meta_issuer: Mutex<Option<String>>,
    pub auth_methods: Mutex<Option<Vec<String>>>,
    pub token_endpoint: Mutex<Option<String>>,
    pub jwks: Mutex<Vec<Value>>,
    pub jwks_hits: AtomicUsize,
    pub jwks_down: AtomicBool,
    pub jwks_pad: AtomicUsize,
    pub challenge: Mutex<String>,
    pub next_id_token: Mutex<String>,
    pub token_hits: AtomicUsize,
    pub token_auth: Mutex<Option<String>>,
    pub token_form: Mutex<HashMap<String, String>>,
    pub userinfo: Mutex<Value>,
    pub introspect: Mutex<HashMap<String, Value>>,
    pub introspect_hits: AtomicUsize,
    pub introspect_down: AtomicBool,
}

impl Provider {
    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
    pub fn introspect_hits(&self) -> usize {
        self.introspect_hits.load(Ordering::SeqCst)
    }
    pub fn publish(&self, keys: &[&Key]) {
        *self.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }
}

fn metadata(p: &Provider) -> Value {
    let i = &p.issuer;
    let mut m = json!({
        "issuer": p.meta_issuer.lock().unwrap().clone().unwrap_or_else(|| i.clone()),
        "authorization_endpoint": format!("{i}/authorize?tenant=t1"),
        "token_endpoint": p.token_endpoint.lock().unwrap().clone().unwrap_or_else(|| format!("{i}/token")),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "introspection_endpoint": format!("{i}/introspect"),
        "code_challenge_methods_supported": ["S256"],
    });
    if let Some(methods) = p.auth_methods.lock().unwrap().clone() {
        m["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    m
}

async fn well_known(State(p): State<Arc<Provider>>) -> Json<Value> {
    Json(metadata(&p))
}

async fn jwks(State(p): State<Arc<Provider>>) -> Response {
    p.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if p.jwks_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let pad = "x".repeat(p.jwks_pad.load(Ordering::SeqCst));
    Json(json!({"keys": p.jwks.lock().unwrap().clone(), "pad": pad})).into_response()
}

pub fn s256(v: &str) -> String {
    b64(&Sha256::digest(v.as_bytes()))
}

async fn token(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    p.token_hits.fetch_add(1, Ordering::SeqCst);
    *p.token_auth.lock().unwrap() = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    *p.token_form.lock().unwrap() = form.clone();
    let bad = |d: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": d})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("code").map(String::as_str) != Some("good-code")
    {
        return bad("unknown code");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if s256(&verifier) != *p.challenge.lock().unwrap() {
        return bad("PKCE verification failed");
    }
    Json(
        json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
        "id_token": p.next_id_token.lock().unwrap().clone()}),
    )
    .into_response()
}

async fn userinfo(State(p): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    if headers.get("authorization").map(|v| v.to_str().unwrap()) != Some("Bearer at-1") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(p.userinfo.lock().unwrap().clone()).into_response()
}

async fn introspect(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if p.introspect_down.load(Ordering::SeqCst) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{RS_ID}:{RS_SECRET}"))
    );
    if headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        != Some(want)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    p.introspect_hits.fetch_add(1, Ordering::SeqCst);
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = p
        .introspect
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    Json(answer).into_response()
}

/// Starts the fake provider; it runs until the test's runtime ends.
pub async fn start() -> Arc<Provider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let p = Arc::new(Provider {
        issuer,
        ..Default::default()
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(well_known))
        .route("/.well-known/oauth-authorization-server", get(well_known))
        .route("/jwks", get(jwks))
        .route(
            "/moved/.well-known/openid-configuration",
            get(|| async {
                axum::response::Redirect::temporary("/.well-known/openid-configuration")
            }),
        )
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .route("/introspect", post(introspect))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    p
}

/// An address nothing listens on (bound, then dropped).
pub async fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
