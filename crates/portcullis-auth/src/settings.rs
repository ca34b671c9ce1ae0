//! What the authorization server protects ([`ProtectedResource`]) and how it behaves
//! ([`AuthSettings`], built from the config's `auth:` section).

use std::time::Duration;

use portcullis_config::{RegistrationMode, SecretSource, ValidAuth, ValidFederation};
use portcullis_core::Secret;

use crate::AuthError;

/// One protected MCP endpoint the AS issues tokens for (RFC 8707 resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// Canonical URL, for example `http://127.0.0.1:8080/mcp/crm`; the tokens' `aud`.
    pub url: String,
    /// A name fit to show on the consent page.
    pub name: String,
    /// The scopes it knows.
    pub scopes: Vec<ScopeInfo>,
}

/// One scope of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The scope, for example `crm:read`.
    pub name: String,
    /// Plain words for the consent page.
    pub description: String,
    /// How much it allows.
    pub level: ScopeLevel,
}

/// How much a scope allows; write and admin are marked on the consent page (AUTH-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeLevel {
    /// Reads only.
    Read,
    /// Changes data.
    Write,
    /// Destructive or administrative.
    Admin,
}

/// Who may register clients (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Only with this initial access token.
    Token(Secret),
    /// Only with the initial access token at this reference, read when the server opens (a
    /// missing variable or file stops start-up).
    TokenFrom(SecretSource),
    /// Nobody.
    Closed,
}

/// The authorization server's behaviour.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The environment tokens are bound to (`env` claim, AZ-4).
    pub environment: String,
    /// Access-token lifetime (AUTH-9: at most an hour unless raised explicitly in config).
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// Who may register.
    pub registration: Registration,
    /// Accept URL client ids (Client ID Metadata Documents).
    pub client_metadata_documents: bool,
    /// Accept `http://127.0.0.1:PORT/...` documents (tests, local development).
    pub allow_insecure_loopback: bool,
    /// How often signing keys rotate.
    pub key_rotation: Duration,
    /// Failed sign-ins allowed per user name per window (four times as many per source).
    pub login_attempts: u32,
    /// The throttle window.
    pub login_window: Duration,
    /// How long a signed-in browser session lasts.
    pub session_ttl: Duration,
    /// How long an authorization code may wait to be redeemed.
    pub code_ttl: Duration,
    /// How long a pending authorization request (login, consent) may take.
    pub request_ttl: Duration,
    /// Federated sign-in to an upstream OpenID provider (AUTH-6): the login page offers "Sign
    /// in with {name}". [`crate::AuthServer::open`] reads its client secret and discovers the
    /// provider, and refuses to start when either fails.
    pub federation: Option<ValidFederation>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            environment: "dev".into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            registration: Registration::Open,
            client_metadata_documents: true,
            allow_insecure_loopback: false,
            key_rotation: Duration::from_secs(30 * 86_400),
            login_attempts: 5,
            login_window: Duration::from_secs(300),
            session_ttl: Duration::from_secs(8 * 3600),
            code_ttl: Duration::from_secs(60),
            request_ttl: Duration::from_secs(600),
            federation: None,
        }
    }
}

impl AuthSettings {
    /// Settings from the validated config. The registration token reference is resolved by
    /// [`crate::AuthServer::open`], so a missing variable or file fails at start-up.
    pub fn from_config(v: &ValidAuth) -> Self {
        let registration = match (v.registration, &v.registration_token) {
            (RegistrationMode::Open, _) => Registration::Open,
            (RegistrationMode::Closed, _) => Registration::Closed,
            (RegistrationMode::Token, Some(src)) => Registration::TokenFrom(src.clone()),
            // Validation guarantees a reference; without one nobody may register (fail closed).
            (RegistrationMode::Token, None) => Registration::Closed,
        };
        Self {
            environment: v.environment.as_str().to_string(),
            access_token_ttl: v.access_token_ttl,
            refresh_token_ttl: v.refresh_token_ttl,
            registration,
            client_metadata_documents: v.client_metadata_documents,
            allow_insecure_loopback: v.allow_insecure_loopback,
            key_rotation: v.key_rotation,
            login_attempts: v.login_attempts,
            login_window: v.login_window,
            federation: v.federation.clone(),
            ..Self::default()
        }
    }

    /// Reads a registration token reference, replacing it with the token.
    pub fn resolve(&mut self) -> Result<(), AuthError> {
        if let Registration::TokenFrom(src) = &self.registration {
            self.registration = Registration::Token(resolve_secret(src)?);
        }
        Ok(())
    }

    /// Refuses settings that would weaken the server (AUTH-9) or cannot work.
    pub fn check(&self) -> Result<(), AuthError> {
        let s = |m: &str| Err(AuthError::Settings(m.to_string()));
        if matches!(self.registration, Registration::TokenFrom(_)) {
            return s(
                "the registration token reference is not resolved: call AuthSettings::resolve",
            );
        }
        if self.access_token_ttl < Duration::from_secs(60)
            || self.access_token_ttl > Duration::from_secs(86_400)
        {
            return s("access_token_ttl must be between 60 s and 86400 s");
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            return s("refresh_token_ttl must not be shorter than access_token_ttl");
        }
        if self.allow_insecure_loopback && self.environment == "prod" {
            return s("allow_insecure_loopback is refused in the prod environment");
        }
        if self.key_rotation < Duration::from_secs(3600) {
            return s("key_rotation must be at least an hour");
        }
        if self.login_attempts == 0 {
            return s("login_attempts must be at least 1");
        }
        if let Registration::Token(t) = &self.registration
            && t.expose().len() < 16
        {
            return s("the registration token must be at least 16 characters");
        }
        Ok(())
    }
}

fn resolve_secret(src: &SecretSource) -> Result<Secret, AuthError> {
    let (what, value) = match src {
        SecretSource::Env(name) => (
            format!("the registration token from environment variable {name}"),
            std::env::var(name).map_err(|e| e.to_string()),
        ),
        SecretSource::File(p) => (
            format!("the registration token from {}", p.display()),
            std::fs::read_to_string(p).map_err(|e| e.to_string()),
        ),
    };
    let v = value.map_err(|detail| AuthError::Secret {
        what: what.clone(),
        detail,
    })?;
    let v = v.trim();
    if v.is_empty() {
        return Err(AuthError::Secret {
            what,
            detail: "it is empty".into(),
        });
    }
    Ok(Secret::new(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_token_reference_is_resolved_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("reg");
        std::fs::write(&p, "a-registration-token-of-some-length\n").unwrap();
        let v = ValidAuth {
            registration: RegistrationMode::Token,
            registration_token: Some(SecretSource::File(p.clone())),
            ..ValidAuth::default()
        };
        let mut s = AuthSettings::from_config(&v);
        assert!(s.check().is_err(), "unresolved");
        s.resolve().unwrap();
        assert_eq!(
            s.registration,
            Registration::Token(Secret::new("a-registration-token-of-some-length"))
        );
        s.check().unwrap();
        let mut missing = AuthSettings::from_config(&ValidAuth {
            registration_token: Some(SecretSource::File(dir.path().join("none"))),
            ..v
        });
        let e = missing.resolve().unwrap_err();
        assert!(e.to_string().contains("registration token"), "{e}");
    }

    // AUTH-9: the config's limits are enforced here too.
    #[test]
    fn weak_settings_are_refused() {
        let s = AuthSettings {
            access_token_ttl: Duration::from_secs(10),
            ..AuthSettings::default()
        };
        assert!(s.check().is_err());
        let s = AuthSettings {
            allow_insecure_loopback: true,
            environment: "prod".into(),
            ..AuthSettings::default()
        };
        assert!(s.check().is_err());
    }
}
