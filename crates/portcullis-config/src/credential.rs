//! Upstream credentials (AUTH-8): what the gateway sends to a connector in place of the client's
//! token. Secrets are never written in the file: each is a reference to an environment variable
//! or a file, resolved at start-up into a [`Secret`]; file secrets are re-read when the file
//! changes, so a rotated secret takes effect without a restart.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use portcullis_core::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::model::ConnectorConfig;
use crate::validate::{ConfigError, ConnectorKind};

/// The kind of an upstream credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// A static bearer token, sent as `Authorization: Bearer <token>`.
    Bearer,
    /// A static API key, sent in the header `header`.
    ApiKey,
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4) at `token_url`.
    ClientCredentials,
    /// OAuth 2.0 token exchange (RFC 8693): the caller's verified token is exchanged at
    /// `token_url` for a token meant for this connector.
    TokenExchange,
}

impl CredentialType {
    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::ApiKey => "api_key",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "token_exchange",
        }
    }
}

/// How the gateway authenticates to a token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (the default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Where a secret comes from, as written: `{env: NAME}` or `{file: PATH}`. A plain string is
/// read too, only so that it can be refused with a clear message (AUTH-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRefConfig {
    /// `{env: NAME}`.
    Env(String),
    /// `{file: PATH}`.
    File(String),
    /// A secret written in the file itself; always refused.
    Literal,
}

/// The JSON Schema of a secret reference (literals are not offered to editors).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum SecretRefSchema {
    /// The name of an environment variable holding the secret.
    Env {
        /// Variable name.
        env: String,
    },
    /// A file holding the secret (surrounding whitespace is ignored); re-read when it changes.
    File {
        /// Path to the file.
        file: String,
    },
}

impl<'de> Deserialize<'de> for SecretRefConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRefConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a secret reference, {env: NAME} or {file: PATH}")
            }
            // The value itself is dropped at once: it must not reach an error message or a log.
            fn visit_str<E: de::Error>(self, _v: &str) -> Result<Self::Value, E> {
                Ok(SecretRefConfig::Literal)
            }
            fn visit_i64<E: de::Error>(self, _v: i64) -> Result<Self::Value, E> {
                Ok(SecretRefConfig::Literal)
            }
            fn visit_u64<E: de::Error>(self, _v: u64) -> Result<Self::Value, E> {
                Ok(SecretRefConfig::Literal)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<SecretRefConfig> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let r = match key.as_str() {
                        "env" => SecretRefConfig::Env(value),
                        "file" => SecretRefConfig::File(value),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown field `{other}` in a secret reference, expected `env` or `file`"
                            )));
                        }
                    };
                    if found.replace(r).is_some() {
                        return Err(de::Error::custom(
                            "a secret reference takes exactly one of `env` or `file`",
                        ));
                    }
                }
                found.ok_or_else(|| {
                    de::Error::custom("a secret reference needs `env: NAME` or `file: PATH`")
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A connector's upstream credential, as written. Which fields apply depends on `type`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// `bearer`, `api_key`, `client_credentials` or `token_exchange`.
    #[serde(rename = "type")]
    #[schemars(with = "CredentialType")]
    pub kind: Spanned<CredentialType>,
    /// (bearer) The token: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub token: Option<Spanned<SecretRefConfig>>,
    /// (api_key) The header that carries the key, like `X-Api-Key`.
    #[schemars(with = "Option<String>")]
    pub header: Option<Spanned<String>>,
    /// (api_key) The key: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub value: Option<Spanned<SecretRefConfig>>,
    /// (client_credentials, token_exchange) The token endpoint: https, or http on loopback.
    #[schemars(with = "Option<String>")]
    pub token_url: Option<Spanned<String>>,
    /// (client_credentials, token_exchange) The gateway's client id at the token endpoint.
    #[schemars(with = "Option<String>")]
    pub client_id: Option<Spanned<String>>,
    /// (client_credentials, token_exchange) Its client secret: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub client_secret: Option<Spanned<SecretRefConfig>>,
    /// (client_credentials, token_exchange) Space-separated scopes to ask for.
    #[schemars(with = "Option<String>")]
    pub scope: Option<Spanned<String>>,
    /// (client_credentials, token_exchange) The resource indicator (RFC 8707) to ask for: an
    /// absolute URI, usually the connector's URL.
    #[schemars(with = "Option<String>")]
    pub resource: Option<Spanned<String>>,
    /// (token_exchange) The audience (RFC 8693 §2.1) to ask for.
    #[schemars(with = "Option<String>")]
    pub audience: Option<Spanned<String>>,
    /// (client_credentials, token_exchange) `client_secret_basic` (default) or
    /// `client_secret_post`.
    pub auth_method: Option<AuthMethod>,
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set: export it before starting Portcullis")]
    EnvMissing(String),
    /// The variable or file holds nothing but whitespace.
    #[error("{0} is empty: put the secret in it")]
    Empty(String),
    /// The file cannot be read.
    #[error("cannot read secret file {path}: {detail}; check the path and its permissions")]
    File {
        /// The file.
        path: String,
        /// What the OS said.
        detail: String,
    },
}

/// Where a resolved secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, read once at start-up.
    Env(String),
    /// A file, re-read when its modification time or size changes.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(n) => write!(f, "environment variable {n}"),
            Self::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

#[derive(Default)]
struct FileState {
    stamp: Option<(Option<SystemTime>, u64)>,
    value: Option<Secret>,
}

/// A secret the gateway holds (AUTH-8), resolved from its [`SecretSource`]. Cheap to clone;
/// clones share the cached file contents. Two values are equal when they name the same source.
#[derive(Clone)]
pub struct SecretValue {
    source: SecretSource,
    env_value: Option<Secret>,
    file: Arc<Mutex<FileState>>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({}, <redacted>)", self.source)
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for SecretValue {}

impl SecretValue {
    /// Resolves a secret from the environment variable `name`, with `lookup` standing in for
    /// the process environment (tests inject one).
    pub fn from_env_with(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        let v = lookup(name).ok_or_else(|| SecretError::EnvMissing(name.to_string()))?;
        let v = v.trim();
        if v.is_empty() {
            return Err(SecretError::Empty(format!("environment variable {name}")));
        }
        Ok(Self {
            source: SecretSource::Env(name.to_string()),
            env_value: Some(Secret::new(v)),
            file: Arc::default(),
        })
    }

    /// Resolves a secret from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, SecretError> {
        Self::from_env_with(name, |n| std::env::var(n).ok())
    }

    /// Resolves a secret from a file, reading it now so a bad path fails at start-up.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, SecretError> {
        let v = Self {
            source: SecretSource::File(path.into()),
            env_value: None,
            file: Arc::default(),
        };
        v.get()?;
        Ok(v)
    }

    /// Where it comes from (safe to log).
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The current secret. A file secret is re-read when the file changed since the last read
    /// (rotation without restart); a file that became unreadable or empty is an error, never a
    /// silent fallback to the old value, so a revoked secret is not used on (fail closed).
    pub fn get(&self) -> Result<Secret, SecretError> {
        let path = match &self.source {
            SecretSource::Env(_) => {
                return Ok(self.env_value.clone().unwrap_or_default());
            }
            SecretSource::File(p) => p,
        };
        let file_err = |e: std::io::Error| SecretError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(file_err)?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut st = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if st.stamp == Some(stamp)
            && let Some(v) = &st.value
        {
            return Ok(v.clone());
        }
        let text = std::fs::read_to_string(path).map_err(file_err)?;
        let text = text.trim();
        if text.is_empty() {
            st.stamp = None;
            st.value = None;
            return Err(SecretError::Empty(format!("file {}", path.display())));
        }
        let v = Secret::new(text);
        st.stamp = Some(stamp);
        st.value = Some(v.clone());
        Ok(v)
    }
}

/// An OAuth client the gateway is at a token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The token endpoint (https, or http on loopback).
    pub token_url: http::Uri,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretValue,
    /// How the client authenticates.
    pub auth_method: AuthMethod,
    /// Scopes to ask for, space-separated.
    pub scope: Option<String>,
    /// Resource indicator to ask for (RFC 8707).
    pub resource: Option<String>,
}

/// A validated upstream credential (AUTH-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretValue,
    },
    /// `<header>: <value>`.
    ApiKey {
        /// Header name.
        header: http::HeaderName,
        /// The key.
        value: SecretValue,
    },
    /// Client credentials grant.
    ClientCredentials(OAuthClient),
    /// Token exchange (RFC 8693).
    TokenExchange {
        /// The client at the security token service.
        client: OAuthClient,
        /// Audience to ask for.
        audience: Option<String>,
    },
}

/// Headers a credential may not set: those the gateway sets itself for the MCP protocol, and
/// those that would change how the request is framed or routed.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "traceparent",
    "x-request-id",
];

/// Whether a URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback_host(uri: &http::Uri) -> bool {
    let Some(host) = uri.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

struct Ctx<'a> {
    file: &'a str,
    connector: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    fn err<T>(&self, at: &Spanned<T>, message: String) -> ConfigError {
        ConfigError::at(self.file, at, message)
    }

    fn secret(
        &self,
        field: &str,
        r: &Option<Spanned<SecretRefConfig>>,
        kind: &Spanned<CredentialType>,
    ) -> Result<SecretValue, ConfigError> {
        let connector = self.connector;
        let Some(r) = r else {
            return Err(self.err(
                kind,
                format!(
                    "the {} credential of connector {connector:?} needs `{field}`: {{env: NAME}} or {{file: PATH}}",
                    kind.value.name()
                ),
            ));
        };
        let resolved = match &r.value {
            // AUTH-8: no long-lived secret in plain text in the config file.
            SecretRefConfig::Literal => {
                return Err(self.err(
                    r,
                    format!(
                        "`{field}` of connector {connector:?} is written in the config file; secrets may not be (AUTH-8): use {{env: NAME}} or {{file: PATH}}"
                    ),
                ));
            }
            SecretRefConfig::Env(name) => {
                if name.is_empty() || name.contains(['=', '\0']) {
                    return Err(self.err(
                        r,
                        format!("`{field}` of connector {connector:?} names an invalid environment variable {name:?}"),
                    ));
                }
                SecretValue::from_env_with(name, self.env)
            }
            SecretRefConfig::File(path) => {
                if path.is_empty() {
                    return Err(self.err(
                        r,
                        format!("`{field}` of connector {connector:?} names an empty file path"),
                    ));
                }
                SecretValue::from_file(path)
            }
        };
        resolved.map_err(|e| self.err(r, format!("`{field}` of connector {connector:?}: {e}")))
    }

    fn token_url(&self, c: &CredentialConfig) -> Result<http::Uri, ConfigError> {
        let connector = self.connector;
        let Some(u) = &c.token_url else {
            return Err(self.err(
                &c.kind,
                format!(
                    "the {} credential of connector {connector:?} needs `token_url`, the token endpoint, like https://auth.example.com/oauth/token",
                    c.kind.value.name()
                ),
            ));
        };
        let bad = |why: &str| {
            self.err(
                u,
                format!(
                    "`token_url` of connector {connector:?} {why}; found {:?}",
                    u.value
                ),
            )
        };
        let uri: http::Uri = u.value.parse().map_err(|_| bad("is not a valid URL"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("must be an absolute URL with a host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(bad(
                "may not hold user information (put the client id in `client_id`)",
            ));
        }
        match uri.scheme_str() {
            Some("https") => {}
            // The client secret travels in this request: plain HTTP only where it cannot leave
            // the machine.
            Some("http") if is_loopback_host(&uri) => {}
            Some("http") => return Err(bad("must be https (plain http only on loopback)")),
            _ => return Err(bad("must be an https:// URL")),
        }
        Ok(uri)
    }

    fn oauth_client(&self, c: &CredentialConfig) -> Result<OAuthClient, ConfigError> {
        let connector = self.connector;
        let token_url = self.token_url(c)?;
        let Some(id) = &c.client_id else {
            return Err(self.err(
                &c.kind,
                format!(
                    "the {} credential of connector {connector:?} needs `client_id`",
                    c.kind.value.name()
                ),
            ));
        };
        if id.value.is_empty() || id.value.chars().any(char::is_control) {
            return Err(self.err(
                id,
                format!("`client_id` of connector {connector:?} must be non-empty printable text"),
            ));
        }
        let client_secret = self.secret("client_secret", &c.client_secret, &c.kind)?;
        let scope = match &c.scope {
            None => None,
            Some(s) => {
                // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), space-separated.
                let ok = !s.value.trim().is_empty()
                    && s.value.split(' ').all(|t| {
                        !t.is_empty()
                            && t.bytes().all(|b| {
                                b == 0x21
                                    || (0x23..=0x5b).contains(&b)
                                    || (0x5d..=0x7e).contains(&b)
                            })
                    });
                if !ok {
                    return Err(self.err(
                        s,
                        format!(
                            "`scope` of connector {connector:?} must be scope names separated by single spaces (RFC 6749 §3.3); found {:?}",
                            s.value
                        ),
                    ));
                }
                Some(s.value.clone())
            }
        };
        let resource = match &c.resource {
            None => None,
            Some(r) => {
                // RFC 8707 §2: an absolute URI without a fragment.
                let ok = r
                    .value
                    .parse::<http::Uri>()
                    .is_ok_and(|u| u.scheme().is_some() && u.host().is_some())
                    && !r.value.contains('#');
                if !ok {
                    return Err(self.err(
                        r,
                        format!(
                            "`resource` of connector {connector:?} must be an absolute URI without a fragment (RFC 8707), like https://mcp.example.com/mcp; found {:?}",
                            r.value
                        ),
                    ));
                }
                Some(r.value.clone())
            }
        };
        Ok(OAuthClient {
            token_url,
            client_id: id.value.clone(),
            client_secret,
            auth_method: c.auth_method.unwrap_or_default(),
            scope,
            resource,
        })
    }
}

/// Validates a connector's credential and resolves its secrets, reading the environment through
/// `env`. `connector` names the connector in errors.
pub(crate) fn validate_credential(
    file: &str,
    connector: &str,
    c: &CredentialConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credential, ConfigError> {
    let cx = Ctx {
        file,
        connector,
        env,
    };
    let ty = c.kind.value;
    let only = |field: &str, present: bool, allowed: &[CredentialType]| {
        if present && !allowed.contains(&ty) {
            let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
            Err(cx.err(
                &c.kind,
                format!(
                    "the credential of connector {connector:?} has type {}, but `{field}` is only for type {}: remove it or change the type",
                    ty.name(),
                    names.join(" or ")
                ),
            ))
        } else {
            Ok(())
        }
    };
    use CredentialType::*;
    only("token", c.token.is_some(), &[Bearer])?;
    only("header", c.header.is_some(), &[ApiKey])?;
    only("value", c.value.is_some(), &[ApiKey])?;
    let oauth = [ClientCredentials, TokenExchange];
    only("token_url", c.token_url.is_some(), &oauth)?;
    only("client_id", c.client_id.is_some(), &oauth)?;
    only("client_secret", c.client_secret.is_some(), &oauth)?;
    only("scope", c.scope.is_some(), &oauth)?;
    only("resource", c.resource.is_some(), &oauth)?;
    only("auth_method", c.auth_method.is_some(), &oauth)?;
    only("audience", c.audience.is_some(), &[TokenExchange])?;
    Ok(match ty {
        Bearer => Credential::Bearer {
            token: cx.secret("token", &c.token, &c.kind)?,
        },
        ApiKey => {
            let Some(h) = &c.header else {
                return Err(cx.err(
                    &c.kind,
                    format!("the api_key credential of connector {connector:?} needs `header`, like X-Api-Key"),
                ));
            };
            let header = http::HeaderName::from_bytes(h.value.as_bytes()).map_err(|_| {
                cx.err(
                    h,
                    format!(
                        "`header` of connector {connector:?} is not a valid HTTP header name: {:?}",
                        h.value
                    ),
                )
            })?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(cx.err(
                    h,
                    format!(
                        "`header` of connector {connector:?} may not be {:?}: the gateway sets it itself; pick the header the API expects its key in",
                        h.value
                    ),
                ));
            }
            Credential::ApiKey {
                header,
                value: cx.secret("value", &c.value, &c.kind)?,
            }
        }
        ClientCredentials => Credential::ClientCredentials(cx.oauth_client(c)?),
        TokenExchange => {
            let client = cx.oauth_client(c)?;
            let audience = match &c.audience {
                None => None,
                Some(a) if a.value.trim().is_empty() || a.value.chars().any(char::is_control) => {
                    return Err(cx.err(
                        a,
                        format!(
                            "`audience` of connector {connector:?} must be non-empty printable text"
                        ),
                    ));
                }
                Some(a) => Some(a.value.clone()),
            };
            Credential::TokenExchange { client, audience }
        }
    })
}

/// Validates the `credential` of connector `name` (AUTH-8), reading secrets from the process
/// environment and files: only `http` connectors take one, and its URL must be https (or http on
/// loopback) so the credential never crosses a network in clear.
pub(crate) fn connector_credential(
    file: &str,
    name: &str,
    c: &ConnectorConfig,
    kind: &ConnectorKind,
) -> Result<Option<Credential>, ConfigError> {
    connector_credential_with(file, name, c, kind, &|n| std::env::var(n).ok())
}

pub(crate) fn connector_credential_with(
    file: &str,
    name: &str,
    c: &ConnectorConfig,
    kind: &ConnectorKind,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credential>, ConfigError> {
    let Some(cred) = &c.credential else {
        return Ok(None);
    };
    let ConnectorKind::Http { url } = kind else {
        return Err(ConfigError::at(
            file,
            cred,
            format!(
                "connector {name:?} is not of type http, and only http connectors take a `credential` (a stdio child gets its secrets through `env`): remove it"
            ),
        ));
    };
    if url.scheme_str() != Some("https") && !is_loopback_host(url) {
        return Err(ConfigError::at(
            file,
            cred,
            format!(
                "connector {name:?} has a credential but its `url` is plain http outside loopback, so the credential would cross the network in clear: use an https:// URL"
            ),
        ));
    }
    validate_credential(file, name, &cred.value, env).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_secrets_resolve_through_the_injected_environment() {
        let v = SecretValue::from_env_with("TOKEN", |n| (n == "TOKEN").then(|| " s3cret\n".into()))
            .unwrap();
        assert_eq!(v.get().unwrap().expose(), "s3cret");
        assert!(!format!("{v:?}").contains("s3cret"), "Debug must redact");
        assert_eq!(
            SecretValue::from_env_with("NOPE", |_| None).unwrap_err(),
            SecretError::EnvMissing("NOPE".into())
        );
        assert!(matches!(
            SecretValue::from_env_with("E", |_| Some("  ".into())),
            Err(SecretError::Empty(_))
        ));
    }

    #[test]
    fn file_secrets_are_reread_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let v = SecretValue::from_file(&path).unwrap();
        assert_eq!(v.get().unwrap().expose(), "first");
        // A different length changes the stamp even where mtime granularity is coarse.
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(v.get().unwrap().expose(), "second-token");
        std::fs::write(&path, "").unwrap();
        assert!(
            matches!(v.get(), Err(SecretError::Empty(_))),
            "fail closed on empty"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(v.get(), Err(SecretError::File { .. })),
            "fail closed on missing"
        );
    }

    fn load(yaml: &str) -> Result<crate::ValidConfig, ConfigError> {
        crate::load_str(yaml, "test.yaml")
    }

    fn http_with(cred: &str) -> String {
        format!(
            "connectors:\n  api:\n    type: http\n    url: https://mcp.example.com/mcp\n    credential:\n{cred}"
        )
    }

    #[test]
    fn literal_secrets_are_refused_with_their_position() {
        // AUTH-8: no long-lived secret in plain text in the config file.
        let e = load(&http_with("      type: bearer\n      token: abc123\n")).unwrap_err();
        assert_eq!((e.line, e.column), (7, 14), "{e}");
        assert!(
            e.message
                .contains("`token` of connector \"api\" is written in the config file"),
            "{e}"
        );
        assert!(e.message.contains("{env: NAME} or {file: PATH}"), "{e}");
        assert!(
            !e.to_string().contains("abc123"),
            "the secret must not be echoed: {e}"
        );
        let e = load(&http_with(
            "      type: client_credentials\n      token_url: https://a.example/t\n      client_id: gw\n      client_secret: hunter2\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("`client_secret`"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_missing_environment_variable_is_named_with_the_connector() {
        let e = load(&http_with(
            "      type: bearer\n      token: {env: PORTCULLIS_TEST_SURELY_UNSET_7F3A}\n",
        ))
        .unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(
            e.message
                .contains("PORTCULLIS_TEST_SURELY_UNSET_7F3A is not set"),
            "{e}"
        );
        assert!(e.message.contains("connector \"api\""), "{e}");
    }

    #[test]
    fn an_unreadable_secret_file_is_named() {
        let e = load(&http_with(
            "      type: api_key\n      header: X-Api-Key\n      value: {file: /nonexistent/portcullis/key}\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("/nonexistent/portcullis/key"), "{e}");
        assert!(e.message.contains("connector \"api\""), "{e}");
    }

    #[test]
    fn file_credentials_load_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "key-1\n").unwrap();
        let c = load(&http_with(&format!(
            "      type: api_key\n      header: X-Api-Key\n      value: {{file: {}}}\n",
            p.display()
        )))
        .unwrap();
        let Some(Credential::ApiKey { header, value }) = &c.connectors[0].credential else {
            panic!("an api key credential");
        };
        assert_eq!(header.as_str(), "x-api-key");
        assert_eq!(value.get().unwrap().expose(), "key-1");
        assert_eq!(value.source(), &SecretSource::File(p.clone()));
    }

    #[test]
    fn oauth_credentials_validate_their_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "s").unwrap();
        let sec = p.display().to_string();
        let cc = |url: &str, extra: &str| {
            load(&http_with(&format!(
                "      type: client_credentials\n      token_url: {url}\n      client_id: gw\n      client_secret: {{file: {sec}}}\n{extra}"
            )))
        };
        let c = cc("https://auth.example/token", "      scope: crm.read crm.write\n      resource: https://mcp.example.com/mcp\n      auth_method: client_secret_post\n").unwrap();
        let Some(Credential::ClientCredentials(o)) = &c.connectors[0].credential else {
            panic!("client credentials");
        };
        assert_eq!(o.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(o.scope.as_deref(), Some("crm.read crm.write"));
        assert!(
            cc("http://127.0.0.1:9/token", "").is_ok(),
            "http on loopback is allowed"
        );
        let e = cc("http://auth.example/token", "").unwrap_err();
        assert!(e.message.contains("must be https"), "{e}");
        let e = cc("https://user:pw@auth.example/token", "").unwrap_err();
        assert!(e.message.contains("user information"), "{e}");
        let e = cc("https://auth.example/token", "      scope: \"a  b\"\n").unwrap_err();
        assert!(e.message.contains("RFC 6749"), "{e}");
        let e = cc(
            "https://auth.example/token",
            "      resource: \"https://x/#frag\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("RFC 8707"), "{e}");
        let e = cc("https://auth.example/token", "      audience: other\n").unwrap_err();
        assert!(
            e.message
                .contains("`audience` is only for type token_exchange"),
            "{e}"
        );
        let e = load(&http_with(&format!(
            "      type: token_exchange\n      token_url: https://sts.example/token\n      client_secret: {{file: {sec}}}\n"
        )))
        .unwrap_err();
        assert!(e.message.contains("needs `client_id`"), "{e}");
    }

    #[test]
    fn only_http_connectors_over_tls_take_a_credential() {
        let e = load("connectors:\n  crm:\n    type: demo\n    credential:\n      type: bearer\n      token: {env: X}\n").unwrap_err();
        assert!(
            e.message
                .contains("only http connectors take a `credential`"),
            "{e}"
        );
        let e = load("connectors:\n  a:\n    type: http\n    url: http://mcp.example.com/mcp\n    credential:\n      type: bearer\n      token: {env: X}\n").unwrap_err();
        assert!(
            e.message.contains("would cross the network in clear"),
            "{e}"
        );
    }

    #[test]
    fn api_key_headers_the_gateway_owns_are_refused() {
        let e = load(&http_with(
            "      type: api_key\n      header: Mcp-Session-Id\n      value: {env: X}\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("the gateway sets it itself"), "{e}");
        let e = load(&http_with(
            "      type: api_key\n      header: \"bad header\"\n      value: {env: X}\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("not a valid HTTP header name"), "{e}");
        let e = load(&http_with(
            "      type: bearer\n      token: {env: X}\n      header: X-Key\n",
        ))
        .unwrap_err();
        assert!(
            e.message.contains("`header` is only for type api_key"),
            "{e}"
        );
    }

    #[test]
    fn secret_references_are_strict() {
        let e = load(&http_with(
            "      type: bearer\n      token: {env: A, file: B}\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("exactly one of"), "{e}");
        let e = load(&http_with("      type: bearer\n      token: {vault: A}\n")).unwrap_err();
        assert!(e.message.contains("unknown field `vault`"), "{e}");
        let e = load(&http_with("      type: bearer\n")).unwrap_err();
        assert!(e.message.contains("needs `token`"), "{e}");
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:9/t", true),
            ("http://127.8.0.1/t", true),
            ("http://[::1]:80/t", true),
            ("http://localhost/t", true),
            ("http://10.0.0.1/t", false),
            ("http://example.com/t", false),
        ] {
            assert_eq!(is_loopback_host(&u.parse().unwrap()), want, "{u}");
        }
    }
}
