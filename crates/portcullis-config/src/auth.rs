//! The `auth:` section (AUTH-1, AUTH-2, AUTH-9): the built-in OAuth 2.1 authorization server's
//! settings, as written and validated. Secrets appear only by reference (`{env: NAME}` or
//! `{file: PATH}`), never literally (AUTH-8). Federation and external issuers are added beside
//! these fields by their own modules.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::credential::{SecretRefConfig, SecretSource};
use crate::validate::{ConfigError, Environment};

/// The JSON Schema of a secret reference (literal values are not offered to editors).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum TokenRefSchema {
    /// The name of an environment variable holding the token.
    Env {
        /// Variable name.
        env: String,
    },
    /// A file holding the token (surrounding whitespace is ignored).
    File {
        /// Path to the file.
        file: String,
    },
}

/// Who may register OAuth clients dynamically (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone who can reach the gateway (what MCP clients expect).
    #[default]
    Open,
    /// Only a caller presenting the initial access token (RFC 7591 §3) in `registration_token`.
    Token,
    /// Nobody: clients come from client metadata documents or an administrator.
    Closed,
}

/// `auth.client_metadata_documents`: clients identified by an https URL (the MCP "Client ID
/// Metadata Documents" scheme).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientMetadataConfig {
    /// Accept URL client ids (default true).
    pub enabled: Option<bool>,
    /// Also accept `http://127.0.0.1:PORT/...` documents, for tests and local development only
    /// (default false; refused when `environment` is `prod`).
    #[schemars(with = "Option<bool>")]
    pub allow_insecure_loopback: Option<Spanned<bool>>,
}

/// `auth.login_throttle`: failed sign-ins allowed per user name (and four times as many per
/// source address) within a window, before further attempts are refused until it passes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginThrottleConfig {
    /// Failed attempts allowed per window (default 5, 1 to 100).
    #[schemars(with = "Option<u64>")]
    pub attempts: Option<Spanned<u64>>,
    /// The window, in seconds (default 300, 10 to 86400).
    #[schemars(with = "Option<u64>")]
    pub window_secs: Option<Spanned<u64>>,
}

/// The `auth:` section as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Run the built-in authorization server (default true).
    pub enabled: Option<bool>,
    /// Access-token lifetime in seconds (default 3600, 60 to 3600; up to 86400 with
    /// `allow_long_access_tokens`).
    #[schemars(with = "Option<u64>")]
    pub access_token_ttl_secs: Option<Spanned<u64>>,
    /// Lets `access_token_ttl_secs` exceed one hour (AUTH-9 says short-lived; default false).
    pub allow_long_access_tokens: Option<bool>,
    /// Refresh-token lifetime in seconds (default 30 days, 300 to 365 days).
    #[schemars(with = "Option<u64>")]
    pub refresh_token_ttl_secs: Option<Spanned<u64>>,
    /// Who may register clients: `open` (default), `token` or `closed`.
    #[schemars(with = "Option<RegistrationMode>")]
    pub registration: Option<Spanned<RegistrationMode>>,
    /// The initial access token for `registration: token`: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<TokenRefSchema>")]
    pub registration_token: Option<Spanned<SecretRefConfig>>,
    /// Client ID Metadata Documents.
    #[serde(default)]
    pub client_metadata_documents: ClientMetadataConfig,
    /// Signing keys rotate this often, in days (default 30, 1 to 365).
    #[schemars(with = "Option<u64>")]
    pub key_rotation_days: Option<Spanned<u64>>,
    /// Failed sign-in throttling.
    #[serde(default)]
    pub login_throttle: LoginThrottleConfig,
    /// Sign in with an upstream OpenID Connect provider (AUTH-6).
    pub federation: Option<crate::federation::FederationConfig>,
    /// External authorization servers whose access tokens are accepted (AUTH-6).
    pub external: Option<Vec<crate::federation::ExternalIssuerConfig>>,
}

/// The `auth:` section after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuth {
    /// Whether the authorization server runs.
    pub enabled: bool,
    /// The environment tokens are bound to (AZ-4), the gateway's.
    pub environment: Environment,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// Who may register.
    pub registration: RegistrationMode,
    /// Where the initial access token is (set when `registration` is `token`).
    pub registration_token: Option<SecretSource>,
    /// URL client ids accepted.
    pub client_metadata_documents: bool,
    /// `http://127.0.0.1` documents accepted.
    pub allow_insecure_loopback: bool,
    /// Key rotation period.
    pub key_rotation: Duration,
    /// Failed attempts per window.
    pub login_attempts: u32,
    /// The throttle window.
    pub login_window: Duration,
    /// Federated sign-in to an upstream OpenID provider, when configured (AUTH-6).
    pub federation: Option<crate::federation::ValidFederation>,
    /// External authorization servers whose access tokens are accepted (AUTH-6); the gateway
    /// builds a verifier for each.
    pub external: Vec<crate::federation::ValidExternalIssuer>,
}

impl Default for ValidAuth {
    fn default() -> Self {
        Self {
            enabled: true,
            environment: Environment::Dev,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            registration: RegistrationMode::Open,
            registration_token: None,
            client_metadata_documents: true,
            allow_insecure_loopback: false,
            key_rotation: Duration::from_secs(30 * 86_400),
            login_attempts: 5,
            login_window: Duration::from_secs(300),
            federation: None,
            external: Vec::new(),
        }
    }
}

fn at<T>(file: &str, span: &Spanned<T>, message: String) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: span.referenced.line(),
        column: span.referenced.column(),
        message,
    }
}

fn bounded(
    file: &str,
    v: &Option<Spanned<u64>>,
    name: &str,
    default: u64,
    (min, max): (u64, u64),
    hint: &str,
) -> Result<u64, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    if v.value < min || v.value > max {
        return Err(at(
            file,
            v,
            format!(
                "`auth.{name}` must be between {min} and {max}, found {}{hint}",
                v.value
            ),
        ));
    }
    Ok(v.value)
}

/// Validates the `auth:` section; `environment` is the gateway's (top-level `environment`).
pub(crate) fn validate_auth(
    raw: &AuthConfig,
    file: &str,
    environment: Environment,
) -> Result<ValidAuth, ConfigError> {
    let long = raw.allow_long_access_tokens.unwrap_or(false);
    // AUTH-9: one hour at most unless the operator says explicitly that they want longer.
    let access = bounded(
        file,
        &raw.access_token_ttl_secs,
        "access_token_ttl_secs",
        3600,
        (60, if long { 86_400 } else { 3600 }),
        if long {
            ""
        } else {
            " (set `auth.allow_long_access_tokens: true` to allow up to 86400)"
        },
    )?;
    let refresh = bounded(
        file,
        &raw.refresh_token_ttl_secs,
        "refresh_token_ttl_secs",
        30 * 86_400,
        (300, 365 * 86_400),
        "",
    )?;
    if refresh < access {
        return Err(ConfigError {
            file: file.to_string(),
            line: raw
                .refresh_token_ttl_secs
                .as_ref()
                .map_or(0, |s| s.referenced.line()),
            column: raw
                .refresh_token_ttl_secs
                .as_ref()
                .map_or(0, |s| s.referenced.column()),
            message: format!(
                "`auth.refresh_token_ttl_secs` ({refresh}) is shorter than `auth.access_token_ttl_secs` ({access}): raise it"
            ),
        });
    }
    let registration = raw
        .registration
        .as_ref()
        .map_or(RegistrationMode::Open, |r| r.value);
    match (registration, &raw.registration_token) {
        (RegistrationMode::Token, None) => {
            let span = raw.registration.as_ref().expect("token mode was written");
            return Err(at(
                file,
                span,
                "`auth.registration: token` needs `auth.registration_token: {env: NAME}` or `{file: PATH}`, the initial access token clients must present".into(),
            ));
        }
        (m, Some(_)) if m != RegistrationMode::Token => {
            return Err(ConfigError {
                file: file.to_string(),
                line: raw.registration.as_ref().map_or(0, |s| s.referenced.line()),
                column: raw.registration.as_ref().map_or(0, |s| s.referenced.column()),
                message: "`auth.registration_token` is only used with `auth.registration: token`: remove it or set the mode".into(),
            });
        }
        _ => {}
    }
    let registration_token = match &raw.registration_token {
        None => None,
        Some(r) => Some(match &r.value {
            // AUTH-8: no long-lived secret in plain text in the config file.
            SecretRefConfig::Literal => {
                return Err(at(
                    file,
                    r,
                    "`auth.registration_token` is written in the config file; secrets may not be (AUTH-8): use {env: NAME} or {file: PATH}".into(),
                ));
            }
            SecretRefConfig::Env(name) if name.is_empty() || name.contains(['=', '\0']) => {
                return Err(at(
                    file,
                    r,
                    format!(
                        "`auth.registration_token` names an invalid environment variable {name:?}"
                    ),
                ));
            }
            SecretRefConfig::Env(name) => SecretSource::Env(name.clone()),
            SecretRefConfig::File(p) if p.trim().is_empty() => {
                return Err(at(
                    file,
                    r,
                    "`auth.registration_token.file` is empty: give the path".into(),
                ));
            }
            SecretRefConfig::File(p) => SecretSource::File(p.into()),
        }),
    };
    let cimd = &raw.client_metadata_documents;
    let insecure = cimd
        .allow_insecure_loopback
        .as_ref()
        .is_some_and(|s| s.value);
    if insecure && environment == Environment::Prod {
        let span = cimd.allow_insecure_loopback.as_ref().expect("set");
        return Err(at(
            file,
            span,
            "`auth.client_metadata_documents.allow_insecure_loopback` is for tests and local development and is refused when `environment` is prod".into(),
        ));
    }
    let rotation = bounded(
        file,
        &raw.key_rotation_days,
        "key_rotation_days",
        30,
        (1, 365),
        "",
    )?;
    let attempts = bounded(
        file,
        &raw.login_throttle.attempts,
        "login_throttle.attempts",
        5,
        (1, 100),
        "",
    )?;
    let window = bounded(
        file,
        &raw.login_throttle.window_secs,
        "login_throttle.window_secs",
        300,
        (10, 86_400),
        "",
    )?;
    // AUTH-6: both sections are validated by their own module, with the gateway's environment
    // (plain http to a provider only on loopback, and never in prod).
    let federation =
        crate::federation::validate_federation(raw.federation.as_ref(), file, environment)?;
    let external = crate::federation::validate_external(raw.external.as_ref(), file, environment)?;
    Ok(ValidAuth {
        enabled: raw.enabled.unwrap_or(true),
        environment,
        access_token_ttl: Duration::from_secs(access),
        refresh_token_ttl: Duration::from_secs(refresh),
        registration,
        registration_token,
        client_metadata_documents: cimd.enabled.unwrap_or(true),
        allow_insecure_loopback: insecure,
        key_rotation: Duration::from_secs(rotation * 86_400),
        login_attempts: attempts as u32,
        login_window: Duration::from_secs(window),
        federation,
        external,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;

    fn err(yaml: &str) -> ConfigError {
        load_str(yaml, "t.yaml").expect_err("should be refused")
    }

    #[test]
    fn defaults_when_absent() {
        let c = load_str("connectors: {}\n", "t").unwrap();
        assert_eq!(c.auth, ValidAuth::default());
        assert_eq!(c.auth.access_token_ttl.as_secs(), 3600);
    }

    #[test]
    fn full_section_loads() {
        let c = load_str(
            "auth:\n  access_token_ttl_secs: 600\n  registration: token\n  registration_token: {env: PC_REG}\n  client_metadata_documents:\n    allow_insecure_loopback: true\n  key_rotation_days: 7\n  login_throttle:\n    attempts: 3\n    window_secs: 60\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.auth.access_token_ttl.as_secs(), 600);
        assert_eq!(c.auth.registration, RegistrationMode::Token);
        assert_eq!(
            c.auth.registration_token,
            Some(SecretSource::Env("PC_REG".into()))
        );
        assert!(c.auth.allow_insecure_loopback);
        assert_eq!(c.auth.login_attempts, 3);
    }

    // AUTH-9: access tokens are at most an hour unless raised explicitly.
    #[test]
    fn access_ttl_over_an_hour_needs_the_explicit_setting() {
        let e = err("auth:\n  access_token_ttl_secs: 7200\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("allow_long_access_tokens"), "{e}");
        let c = load_str(
            "auth:\n  access_token_ttl_secs: 7200\n  allow_long_access_tokens: true\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.auth.access_token_ttl.as_secs(), 7200);
        let e = err("auth:\n  access_token_ttl_secs: 90000\n  allow_long_access_tokens: true\n");
        assert!(e.message.contains("86400"), "{e}");
    }

    #[test]
    fn token_registration_needs_a_reference_and_literals_are_refused() {
        let e = err("auth:\n  registration: token\n");
        assert!(e.message.contains("registration_token"), "{e}");
        let e = err("auth:\n  registration: token\n  registration_token: hunter2\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.message.contains("AUTH-8") && !e.message.contains("hunter2"),
            "{e}"
        );
        let e = err("auth:\n  registration_token: {file: /x}\n");
        assert!(e.message.contains("only used with"), "{e}");
    }

    #[test]
    fn insecure_loopback_is_refused_in_prod() {
        let e = err(
            "environment: prod\nauth:\n  client_metadata_documents:\n    allow_insecure_loopback: true\n",
        );
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("prod"), "{e}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_located() {
        let e = err("auth:\n  colour: red\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("auth:\n  registration: sometimes\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("auth:\n  login_throttle:\n    attempts: 0\n");
        assert_eq!(e.line, 3, "{e}");
    }

    // AUTH-6: the federation and external sections reach `ValidAuth`, validated with the
    // gateway's environment.
    #[test]
    fn federation_and_external_issuers_are_validated_into_valid_auth() {
        let c = load_str(
            "auth:\n  federation:\n    name: Okta\n    issuer: https://idp.example.com\n    client_id: pc\n    client_secret: {env: PC_OIDC}\n  external:\n    - issuer: https://as.example.com\n      audiences: [api://pc]\n",
            "t",
        )
        .unwrap();
        let f = c.auth.federation.expect("federation validated");
        assert_eq!(f.name, "Okta");
        assert_eq!(f.client_secret, Some(SecretSource::Env("PC_OIDC".into())));
        assert_eq!(c.auth.external.len(), 1);
        assert_eq!(c.auth.external[0].issuer, "https://as.example.com");
        let e = err(
            "environment: prod\nauth:\n  federation:\n    name: X\n    issuer: http://127.0.0.1:9000\n    client_id: pc\n",
        );
        assert_eq!(e.line, 5, "{e}");
        let e = err(
            "auth:\n  external:\n    - issuer: https://as.example.com\n    - issuer: https://as.example.com\n",
        );
        assert_eq!(e.line, 4, "{e}");
        let e = err(
            "auth:\n  federation:\n    name: X\n    issuer: https://idp.example.com\n    client_id: pc\n    client_secret: hunter2\n",
        );
        assert!(
            e.message.contains("AUTH-8") && !e.message.contains("hunter2"),
            "{e}"
        );
    }
}
