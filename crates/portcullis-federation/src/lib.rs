//! External identity for Portcullis (AUTH-6).
//!
//! - [`OidcLogin`]: federated login to an upstream OpenID Connect provider (the relying-party
//!   side of the authorization code flow with PKCE S256 and a nonce), used by the built-in
//!   authorization server's login page.
//! - [`ExternalVerifier`]: access tokens of an external authorization server, verified by its
//!   JWKS (JWTs) or by RFC 7662 introspection (opaque tokens); a [`TokenVerifier`] for the
//!   gateway. [`VerifierChain`] routes tokens among several issuers.
//!
//! Why `jsonwebtoken` and not `openidconnect`: `openidconnect` 4 verifies signatures with the
//! RustCrypto crates (`rsa`, `p256`, `ed25519-dalek`), a second crypto stack beside aws-lc-rs
//! that DEPENDENCIES.md rules out, and it offers nothing for access tokens (JWKS caching with a
//! refetch limit, RFC 8707 audiences, introspection), which this crate needs anyway. So the
//! flow (discovery, PKCE, code exchange, ID token checks of OIDC Core §3.1.3.7) is ours, on
//! `reqwest` 0.13 and `jsonwebtoken` 11 with the aws-lc-rs backend, whose signature primitive
//! is the only part of it used (claims are checked here with the injected clock).
//!
//! [`TokenVerifier`]: portcullis_core::TokenVerifier

mod chain;
mod claims;
mod error;
mod http;
mod introspection;
mod jwks;
mod jwt;
mod login;
mod metadata;
mod random;
mod verifier;

pub use chain::VerifierChain;
pub use error::FederationError;
pub use http::{
    ClientAuth, JWKS_BODY_LIMIT, REQUEST_TIMEOUT, SMALL_BODY_LIMIT, default_http_client,
};
pub use introspection::IntrospectionSettings;
pub use jwks::REFETCH_INTERVAL_SECS;
pub use login::{FederatedIdentity, OidcLogin, OidcLoginSettings, PendingLogin, ProviderTokens};
pub use random::{RandomSource, os_random};
pub use verifier::{ExternalIssuerSettings, ExternalVerifier};

/// The HTTP client used for every call to a provider: reqwest 0.13 with rustls (aws-lc-rs).
/// Build one with [`default_http_client`] (no redirects, timeouts).
pub type HttpClient = reqwest::Client;
