//! Who is calling (AUTH-4, AZ-1): the [`Principal`] a verified access token stands for, the
//! reasons a token is refused ([`TokenRejection`]), and the [`TokenVerifier`] seam between the
//! gateway (resource server) and whatever checks tokens (the built-in authorization server, an
//! external one through its JWKS or introspection). No I/O lives here.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// The caller of one request, as its verified access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable user id (`sub`): a local user's id, or `issuer|sub` for a federated or external one.
    pub subject: String,
    /// A name fit to show (local user name, or the federated `preferred_username`/`email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Groups the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Roles (AZ-2) the user holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The OAuth client the token was issued to (`client_id`).
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The resource (audience) the token is bound to (RFC 8707): one MCP endpoint URL.
    pub audience: String,
    /// Who issued the token.
    pub issuer: String,
    /// The token's id (`jti`), for revocation and audit; never the token itself.
    pub token_id: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// The environment (AZ-4) the token belongs to, when the issuer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl Principal {
    /// Whether the token grants `scope`, directly or through a wider level of the same
    /// connector: `c:admin` includes `c:write`, which includes `c:read`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| scope_covers(s, scope))
    }
}

/// Whether a granted scope covers a needed one: equal, or the same connector at a wider level
/// (`admin` ⊇ `write` ⊇ `read`).
pub fn scope_covers(granted: &str, needed: &str) -> bool {
    if granted == needed {
        return true;
    }
    let (Some((gc, gl)), Some((nc, nl))) = (granted.rsplit_once(':'), needed.rsplit_once(':'))
    else {
        return false;
    };
    let rank = |l: &str| match l {
        "read" => Some(0),
        "write" => Some(1),
        "admin" => Some(2),
        _ => None,
    };
    gc == nc && matches!((rank(gl), rank(nl)), (Some(g), Some(n)) if g >= n)
}

/// Why a bearer token was refused. Every variant maps to 401 `invalid_token`
/// (RFC 6750 §3.1) except [`TokenRejection::Unavailable`], which is a 503: the verifier could
/// not decide, so the gateway fails closed without blaming the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// No `Authorization: Bearer` header.
    #[error("no access token: send Authorization: Bearer <token>")]
    Missing,
    /// Not a well-formed token (not a JWT, bad encoding, missing claims, `alg: none`...).
    #[error("malformed access token: {0}")]
    Malformed(String),
    /// The signature does not verify, or the algorithm is not the key's.
    #[error("access token signature is invalid")]
    BadSignature,
    /// The token names a signing key (`kid`) the issuer does not publish.
    #[error("access token is signed with an unknown key")]
    UnknownKey,
    /// Past its `exp`.
    #[error("access token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("access token is not valid yet")]
    NotYetValid,
    /// Issued by an issuer this gateway does not trust.
    #[error("access token was issued by an untrusted issuer")]
    WrongIssuer,
    /// Bound to another resource (RFC 8707).
    #[error("access token is for another resource, not {0}")]
    WrongAudience(String),
    /// Revoked (RFC 7009), or its refresh family was revoked.
    #[error("access token has been revoked")]
    Revoked,
    /// The token belongs to another environment (AZ-4).
    #[error("access token belongs to another environment")]
    WrongEnvironment,
    /// The verifier could not reach what it needs (JWKS, introspection endpoint, store).
    #[error("token verification is unavailable: {0}")]
    Unavailable(String),
}

impl TokenRejection {
    /// A short machine-readable reason, for audit events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed(_) => "token_malformed",
            Self::BadSignature => "token_bad_signature",
            Self::UnknownKey => "token_unknown_key",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongIssuer => "token_wrong_issuer",
            Self::WrongAudience(_) => "token_wrong_audience",
            Self::Revoked => "token_revoked",
            Self::WrongEnvironment => "token_wrong_environment",
            Self::Unavailable(_) => "token_verifier_unavailable",
        }
    }
}

/// A boxed future, so the trait stays object-safe.
pub type VerifyFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Principal, TokenRejection>> + Send + 'a>>;

/// Checks bearer tokens for one gateway (AUTH-4). Implementations verify signature, issuer,
/// audience (`resource` must be the token's audience exactly), expiry, not-before and
/// revocation, and must not log the token.
pub trait TokenVerifier: Send + Sync {
    /// Verifies `token` (the bearer value, without the `Bearer ` prefix) for `resource`, the
    /// canonical URL of the MCP endpoint being called.
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_levels_cover_narrower_ones_of_the_same_connector_only() {
        assert!(scope_covers("crm:admin", "crm:read"));
        assert!(scope_covers("crm:admin", "crm:write"));
        assert!(scope_covers("crm:write", "crm:read"));
        assert!(!scope_covers("crm:read", "crm:write"));
        assert!(!scope_covers("crm:write", "crm:admin"));
        assert!(!scope_covers("other:admin", "crm:read"));
        assert!(!scope_covers("crm:custom", "crm:read"));
        assert!(scope_covers("crm:custom", "crm:custom"));
        assert!(!scope_covers("crm", "crm:read"));
    }
}

/// A secret value (password, token, key, client secret): its `Debug` and `Display` never show it,
/// so it cannot end up in a log by accident. Read it with [`Secret::expose`] where it is used.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Secret;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }
}
