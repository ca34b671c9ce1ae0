//! Errors: [`AuthError`] for the operator (start-up, CLI), [`OAuthError`] for the client, in the
//! JSON shape RFC 6749 §5.2 (and RFC 7591 §3.2.2, RFC 7009, RFC 8707) specify.

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::StoreError;

/// Errors of the authorization server's set-up and administration. Each says what, where and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The master key file could not be read or written.
    #[error("cannot use the auth master key {path}: {detail}")]
    MasterKeyIo {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The database holds sealed keys but the master key file is gone.
    #[error(
        "the auth master key {0} is missing but the database already holds signing keys sealed under it; restore the file from a backup (a new key would not open them), or point --data-dir at the right directory"
    )]
    MasterKeyMissing(PathBuf),
    /// The master key does not open the database's keys.
    #[error(
        "the auth master key {0} does not match this database (its signing keys do not open with it); restore the right key file or point --data-dir at the right directory"
    )]
    MasterKeyMismatch(PathBuf),
    /// Settings that cannot work.
    #[error("invalid auth settings: {0}")]
    Settings(String),
    /// A secret reference could not be resolved.
    #[error("cannot read {what}: {detail}")]
    Secret {
        /// Which secret.
        what: String,
        /// Why.
        detail: String,
    },
    /// An administrative request named something that does not exist or is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// Federated sign-in (AUTH-6) cannot be set up at start-up: the provider cannot be
    /// discovered, or its client secret cannot be read. The server does not start (fail closed).
    #[error(
        "federated sign-in with the OpenID provider {issuer} cannot be set up: {detail}; check `auth.federation` and that the provider is reachable from the gateway"
    )]
    Federation {
        /// The provider's issuer, as configured.
        issuer: String,
        /// What went wrong.
        detail: String,
    },
    /// The demo password file could not be written.
    #[error("cannot write {path}: {detail}")]
    FileIo {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// An OAuth error response: `{"error": ..., "error_description": ...}` with `Cache-Control:
/// no-store`; `invalid_client` after HTTP Basic also carries `WWW-Authenticate: Basic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The RFC error code.
    pub error: &'static str,
    /// What was wrong and what to do.
    pub description: String,
    /// Add `WWW-Authenticate: Basic` (invalid_client with Basic, RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// Add `WWW-Authenticate: Bearer error="invalid_token"` (RFC 7591 initial access token).
    pub bearer_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, d: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: d.into(),
            basic_challenge: false,
            bearer_challenge: false,
        }
    }
    /// `invalid_request` (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d);
        e.basic_challenge = basic;
        e
    }
    /// `invalid_grant` (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    /// `unauthorized_client` (400).
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }
    /// `invalid_scope` (400).
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    /// `invalid_target` (400, RFC 8707).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }
    /// `invalid_redirect_uri` (400, RFC 7591).
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", d)
    }
    /// `invalid_client_metadata` (400, RFC 7591).
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
    }
    /// `invalid_token` (401) for a missing or wrong initial access token (RFC 7591 §3, RFC 6750).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", d);
        e.bearer_challenge = true;
        e
    }
    /// `access_denied` (403).
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", d)
    }
    /// `unsupported_token_type` (400, RFC 7009).
    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", d)
    }
    /// `server_error` (500): the store failed; the detail goes to the log, not the client.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the authorization server could not complete the request; try again later",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "auth store failure");
        Self::server_error()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        let mut r = (self.status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
            );
        }
        if self.bearer_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        r
    }
}
