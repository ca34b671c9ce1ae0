//! Discovery (AUTH-3): RFC 8414 authorization server metadata, the OpenID configuration
//! variant, and the JWKS with current and overlapping retired keys (AUTH-9).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::{AppState, Inner};

/// The RFC 8414 document.
pub fn as_metadata(inner: &Inner) -> Value {
    let i = &inner.issuer;
    let mut v = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "registration_endpoint": format!("{i}/oauth/register"),
        "revocation_endpoint": format!("{i}/oauth/revoke"),
        "introspection_endpoint": format!("{i}/oauth/introspect"),
        "jwks_uri": format!("{i}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": inner.all_scopes(),
        "authorization_response_iss_parameter_supported": true,
    });
    // A closed registration is not advertised, so clients go straight to another way in.
    if matches!(
        inner.settings.registration,
        crate::settings::Registration::Closed
    ) && let Some(o) = v.as_object_mut()
    {
        o.remove("registration_endpoint");
    }
    if inner.settings.client_metadata_documents {
        v["client_id_metadata_document_supported"] = json!(true);
    }
    v
}

fn json_response(v: Value, cache: &'static str) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn oauth_metadata(State(inner): State<AppState>) -> Response {
    json_response(as_metadata(&inner), "max-age=300")
}

/// `GET /.well-known/openid-configuration`: the same document plus the OpenID fields that are
/// true of it (no ID tokens or userinfo are offered, so none are claimed).
pub async fn openid_configuration(State(inner): State<AppState>) -> Response {
    let mut v = as_metadata(&inner);
    v["subject_types_supported"] = json!(["public"]);
    v["claims_supported"] = json!([
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scope",
        "name",
        "groups",
        "roles",
        "env"
    ]);
    json_response(v, "max-age=300")
}

/// `GET /oauth/jwks`.
pub async fn jwks(State(inner): State<AppState>) -> Response {
    let keys = inner.keys.read().public.clone();
    let mut list: Vec<&crate::keys::PublicKey> = keys.values().collect();
    list.sort_by(|a, b| a.kid.cmp(&b.kid));
    json_response(
        json!({"keys": list.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
        "max-age=60",
    )
}
