//! What can go wrong while discovering a provider or completing a federated login (AUTH-6).
//! Every message says what failed, where, and what to do; none carries a secret, a token or
//! a code.

use portcullis_core::TokenRejection;

/// A failure of discovery, login or set-up. Token verification at request time reports
/// [`TokenRejection`] instead, through the [`portcullis_core::TokenVerifier`] trait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// A setting is unusable (empty issuer, bad URL...).
    #[error("invalid federation setting `{setting}`: {detail}")]
    InvalidSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it and what to do.
        detail: String,
    },
    /// A URL is neither https nor loopback http; tokens and codes must not travel in clear.
    #[error(
        "refusing to contact {url}: only https (or http on a loopback address) is allowed; fix the issuer or the provider's metadata"
    )]
    InsecureUrl {
        /// The refused URL.
        url: String,
    },
    /// The endpoint could not be reached or did not answer in time.
    #[error(
        "cannot reach {url}: {detail}; check that the provider is up and reachable from the gateway"
    )]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// The endpoint answered with an unexpected HTTP status.
    #[error("{url} answered HTTP {status}{detail}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status code.
        status: u16,
        /// The OAuth error code and description, when the body carried them (never the body itself).
        detail: String,
    },
    /// The endpoint tried to redirect; metadata, keys and tokens are never fetched through redirects.
    #[error("{url} answered with a redirect; configure the final URL (redirects are not followed)")]
    Redirected {
        /// The endpoint.
        url: String,
    },
    /// The response was larger than the cap for its kind.
    #[error("{url} sent more than {limit} bytes; refusing the response")]
    TooLarge {
        /// The endpoint.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The response was not the JSON document expected.
    #[error("{url} sent an invalid response: {detail}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The discovered metadata names another issuer than the configured one (OIDC Discovery §4.3,
    /// RFC 8414 §3.3): a mix-up or impersonation attempt, or a typo in the config.
    #[error(
        "the provider's metadata says issuer `{found}`, but `{expected}` is configured; they must be equal exactly"
    )]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the metadata.
        found: String,
    },
    /// The callback's `state` is not the one this login started with (CSRF or a stale tab).
    #[error("the login callback's state does not match the pending login; start the login again")]
    StateMismatch,
    /// The pending login is too old to complete.
    #[error("the pending login expired; start the login again")]
    LoginExpired,
    /// The provider reported an error at its token endpoint (RFC 6749 §5.2).
    #[error("the provider refused the authorization code: {error}{description}")]
    TokenEndpoint {
        /// The OAuth error code.
        error: String,
        /// `: description` when the provider gave one.
        description: String,
    },
    /// The ID token failed validation (OIDC Core §3.1.3.7).
    #[error("the provider's ID token is invalid: {0}")]
    IdToken(TokenRejection),
    /// The ID token's nonce is not the one this login sent (replay).
    #[error("the ID token's nonce does not match the pending login; start the login again")]
    NonceMismatch,
    /// The userinfo response names another subject than the ID token (OIDC Core §5.3.4).
    #[error("the userinfo response is for another subject than the ID token")]
    UserinfoSubjectMismatch,
}

impl FederationError {
    /// A short machine-readable reason, for audit events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSetting { .. } => "federation_invalid_setting",
            Self::InsecureUrl { .. } => "federation_insecure_url",
            Self::Unreachable { .. } => "federation_unreachable",
            Self::Status { .. } => "federation_http_status",
            Self::Redirected { .. } => "federation_redirected",
            Self::TooLarge { .. } => "federation_too_large",
            Self::InvalidResponse { .. } => "federation_invalid_response",
            Self::IssuerMismatch { .. } => "federation_issuer_mismatch",
            Self::StateMismatch => "federation_state_mismatch",
            Self::LoginExpired => "federation_login_expired",
            Self::TokenEndpoint { .. } => "federation_token_endpoint_error",
            Self::IdToken(_) => "federation_id_token_invalid",
            Self::NonceMismatch => "federation_nonce_mismatch",
            Self::UserinfoSubjectMismatch => "federation_userinfo_subject_mismatch",
        }
    }

    /// Whether the failure is the provider being unreachable or misbehaving at transport level,
    /// as opposed to a refusal; the verifier turns these into [`TokenRejection::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Status { .. }
                | Self::Redirected { .. }
                | Self::TooLarge { .. }
                | Self::InvalidResponse { .. }
        )
    }
}
