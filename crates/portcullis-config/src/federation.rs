//! `auth.federation` and `auth.external` (AUTH-6): the upstream OpenID provider Portcullis's
//! login page federates to, and the external authorization servers whose access tokens the
//! gateway accepts (through their JWKS or RFC 7662 introspection). Secrets appear only by
//! reference (`{env: NAME}` or `{file: PATH}`), never literally (AUTH-8); they are resolved at
//! start-up with [`resolve_secret`], so a missing variable or unreadable file stops the start
//! with a message that names the setting and the reference.
//!
//! ```yaml
//! auth:
//!   federation:
//!     name: Okta
//!     issuer: https://example.okta.com
//!     client_id: portcullis
//!     client_secret: {env: PORTCULLIS_OIDC_SECRET}
//!     scopes: [profile, email, groups]
//!     groups_claim: groups
//!     username_claim: preferred_username
//!   external:
//!     - issuer: https://login.example.com/tenant
//!       audiences: [api://portcullis]
//!       scope_claim: scp
//!       groups_claim: groups
//!       roles_claim: roles
//!       introspection:
//!         endpoint: https://login.example.com/tenant/introspect
//!         client_id: portcullis-rs
//!         client_secret: {file: /run/secrets/introspection}
//! ```

use std::collections::BTreeSet;

use portcullis_core::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::credential::{
    SecretError, SecretRefConfig, SecretSource, SecretValue, is_loopback_host,
};
use crate::validate::{ConfigError, Environment};

/// The JSON Schema of a secret reference (literal values are not offered to editors).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum FederationSecretRef {
    /// The name of an environment variable holding the secret.
    Env {
        /// Variable name.
        env: String,
    },
    /// A file holding the secret (surrounding whitespace is ignored).
    File {
        /// Path to the file.
        file: String,
    },
}

/// `auth.federation`: sign in with an upstream OpenID Connect provider, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Shown on the login page: "Sign in with {name}" (1-64 characters).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The provider's issuer URL, exactly as its discovery document states it (https; plain
    /// http only on loopback, and not in prod).
    #[schemars(with = "String")]
    pub issuer: Spanned<String>,
    /// Portcullis's client id at the provider.
    #[schemars(with = "String")]
    pub client_id: Spanned<String>,
    /// The client secret, `{env: NAME}` or `{file: PATH}`; omit it for a public client (PKCE only).
    #[schemars(with = "Option<FederationSecretRef>")]
    pub client_secret: Option<Spanned<SecretRefConfig>>,
    /// Scopes to ask for besides `openid` (always sent), like `[profile, email, groups]`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub scopes: Vec<Spanned<String>>,
    /// The claim holding the user's groups (default `groups`).
    #[schemars(with = "Option<String>")]
    pub groups_claim: Option<Spanned<String>>,
    /// The claim holding the user name (default `preferred_username`).
    #[schemars(with = "Option<String>")]
    pub username_claim: Option<Spanned<String>>,
}

/// Where to introspect opaque tokens of an external issuer (RFC 7662), as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The introspection endpoint (https; plain http only on loopback, and not in prod).
    #[schemars(with = "String")]
    pub endpoint: Spanned<String>,
    /// Portcullis's client id at the authorization server.
    #[schemars(with = "String")]
    pub client_id: Spanned<String>,
    /// Its secret: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "FederationSecretRef")]
    pub client_secret: Spanned<SecretRefConfig>,
}

/// One entry of `auth.external`: an authorization server whose access tokens are accepted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuerConfig {
    /// The issuer (`iss` of its tokens), exactly.
    #[schemars(with = "String")]
    pub issuer: Spanned<String>,
    /// Its JWKS URL; when absent it is discovered from the issuer's RFC 8414 or OpenID
    /// Connect metadata.
    #[schemars(with = "Option<String>")]
    pub jwks_uri: Option<Spanned<String>>,
    /// Introspection, for opaque (non-JWT) tokens.
    pub introspection: Option<IntrospectionConfig>,
    /// `aud` values accepted besides the URL of the resource being called (RFC 8707); leave
    /// empty when the issuer puts the resource URL in `aud`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub audiences: Vec<Spanned<String>>,
    /// The claim holding scopes: `scope` or `scp` (default: `scope`, else `scp`).
    #[schemars(with = "Option<String>")]
    pub scope_claim: Option<Spanned<String>>,
    /// The claim holding groups (default: none mapped).
    #[schemars(with = "Option<String>")]
    pub groups_claim: Option<Spanned<String>>,
    /// The claim holding Portcullis roles (default: none mapped, so an issuer grants no role
    /// unless configured to).
    #[schemars(with = "Option<String>")]
    pub roles_claim: Option<Spanned<String>>,
}

/// `auth.federation` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFederation {
    /// The button label.
    pub name: String,
    /// The issuer URL.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// Where the client secret is; `None` for a public client.
    pub client_secret: Option<SecretSource>,
    /// Extra scopes (`openid` is added by the login itself).
    pub scopes: Vec<String>,
    /// The groups claim, when not the default.
    pub groups_claim: Option<String>,
    /// The username claim, when not the default.
    pub username_claim: Option<String>,
}

/// Introspection settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidIntrospection {
    /// The endpoint URL.
    pub endpoint: String,
    /// The client id.
    pub client_id: String,
    /// Where the client secret is.
    pub client_secret: SecretSource,
}

/// One `auth.external` entry after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidExternalIssuer {
    /// The issuer.
    pub issuer: String,
    /// The JWKS URL, when given.
    pub jwks_uri: Option<String>,
    /// Introspection, when configured.
    pub introspection: Option<ValidIntrospection>,
    /// Accepted audiences besides the resource URL.
    pub audiences: Vec<String>,
    /// `scope` or `scp`, when configured.
    pub scope_claim: Option<String>,
    /// The groups claim, when configured.
    pub groups_claim: Option<String>,
    /// The roles claim, when configured.
    pub roles_claim: Option<String>,
}

/// A secret reference that could not be resolved at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{setting}`: {source}")]
pub struct FederationSecretError {
    /// The setting, like `auth.federation.client_secret`.
    pub setting: String,
    /// Why (names the environment variable or file).
    pub source: SecretError,
}

/// Reads a secret reference now (start-up): the value of the environment variable, or the
/// trimmed contents of the file. `setting` names the config key in the error.
pub fn resolve_secret(
    setting: &str,
    source: &SecretSource,
) -> Result<Secret, FederationSecretError> {
    let value = match source {
        SecretSource::Env(name) => SecretValue::from_env(name),
        SecretSource::File(path) => SecretValue::from_file(path.clone()),
    };
    value
        .and_then(|v| v.get())
        .map_err(|source| FederationSecretError {
            setting: setting.to_string(),
            source,
        })
}

impl ValidFederation {
    /// The client secret, resolved now; `None` for a public client.
    pub fn resolve_client_secret(&self) -> Result<Option<Secret>, FederationSecretError> {
        self.client_secret
            .as_ref()
            .map(|s| resolve_secret("auth.federation.client_secret", s))
            .transpose()
    }
}

impl ValidExternalIssuer {
    /// The introspection client secret, resolved now; `None` without introspection.
    pub fn resolve_introspection_secret(&self) -> Result<Option<Secret>, FederationSecretError> {
        self.introspection
            .as_ref()
            .map(|i| {
                resolve_secret(
                    &format!("auth.external[{}].introspection.client_secret", self.issuer),
                    &i.client_secret,
                )
            })
            .transpose()
    }
}

struct Ctx<'a> {
    file: &'a str,
    environment: Environment,
}

impl Ctx<'_> {
    fn err<T>(&self, at: &Spanned<T>, message: String) -> ConfigError {
        ConfigError::at(self.file, at, message)
    }

    /// A non-empty value without control characters, at most `max` characters.
    fn text(&self, v: &Spanned<String>, key: &str, max: usize) -> Result<String, ConfigError> {
        let s = v.value.trim();
        if s.is_empty() {
            return Err(self.err(v, format!("`{key}` is empty: give a value")));
        }
        if s.chars().count() > max || s.chars().any(char::is_control) {
            return Err(self.err(
                v,
                format!("`{key}` must be at most {max} characters without control characters"),
            ));
        }
        Ok(s.to_string())
    }

    /// A claim name: a JSON member name fit for a log line.
    fn claim(&self, v: &Option<Spanned<String>>, key: &str) -> Result<Option<String>, ConfigError> {
        v.as_ref().map(|v| self.text(v, key, 128)).transpose()
    }

    /// An https URL (plain http only on loopback outside prod), without user information.
    /// Tokens, codes and keys travel through these URLs, so nothing else is acceptable.
    fn url(&self, v: &Spanned<String>, key: &str, issuer: bool) -> Result<String, ConfigError> {
        let raw = v.value.trim();
        let bad = |why: &str| self.err(v, format!("`{key}` {why}; found {raw:?}"));
        if issuer && (raw.contains('?') || raw.contains('#')) {
            return Err(bad("is an issuer URL and may not have a query or fragment"));
        }
        let uri: http::Uri = raw.parse().map_err(|_| bad("is not a valid URL"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("must be an absolute URL with a host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(bad("may not hold user information"));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback_host(&uri) && self.environment != Environment::Prod => {}
            Some("http") if is_loopback_host(&uri) => {
                return Err(bad(
                    "must be https when `environment` is prod (plain http on loopback is for tests)",
                ));
            }
            _ => return Err(bad("must be an https:// URL (plain http only on loopback)")),
        }
        Ok(raw.to_string())
    }

    fn secret(&self, r: &Spanned<SecretRefConfig>, key: &str) -> Result<SecretSource, ConfigError> {
        match &r.value {
            // AUTH-8: no long-lived secret in plain text in the config file.
            SecretRefConfig::Literal => Err(self.err(
                r,
                format!("`{key}` is written in the config file; secrets may not be (AUTH-8): use {{env: NAME}} or {{file: PATH}}"),
            )),
            SecretRefConfig::Env(name) if name.is_empty() || name.contains(['=', '\0']) => Err(
                self.err(r, format!("`{key}` names an invalid environment variable {name:?}")),
            ),
            SecretRefConfig::Env(name) => Ok(SecretSource::Env(name.clone())),
            SecretRefConfig::File(p) if p.trim().is_empty() => {
                Err(self.err(r, format!("`{key}.file` is empty: give the path")))
            }
            SecretRefConfig::File(p) => Ok(SecretSource::File(p.into())),
        }
    }
}

/// Validates `auth.federation`; `environment` is the gateway's. Call it from the `auth:` validation.
pub fn validate_federation(
    raw: Option<&FederationConfig>,
    file: &str,
    environment: Environment,
) -> Result<Option<ValidFederation>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let cx = Ctx { file, environment };
    let mut scopes = Vec::new();
    for s in &raw.scopes {
        let scope = cx.text(s, "auth.federation.scopes", 128)?;
        // RFC 6749 §3.3: scope tokens hold no spaces, quotes or backslashes.
        if scope.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
            return Err(cx.err(s, format!("`auth.federation.scopes` entry {scope:?} is not one scope: list each separately")));
        }
        if scope != "openid" && !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(Some(ValidFederation {
        name: cx.text(&raw.name, "auth.federation.name", 64)?,
        issuer: cx.url(&raw.issuer, "auth.federation.issuer", true)?,
        client_id: cx.text(&raw.client_id, "auth.federation.client_id", 256)?,
        client_secret: raw
            .client_secret
            .as_ref()
            .map(|r| cx.secret(r, "auth.federation.client_secret"))
            .transpose()?,
        scopes,
        groups_claim: cx.claim(&raw.groups_claim, "auth.federation.groups_claim")?,
        username_claim: cx.claim(&raw.username_claim, "auth.federation.username_claim")?,
    }))
}

/// Validates `auth.external`; `environment` is the gateway's.
pub fn validate_external(
    raw: Option<&Vec<ExternalIssuerConfig>>,
    file: &str,
    environment: Environment,
) -> Result<Vec<ValidExternalIssuer>, ConfigError> {
    let cx = Ctx { file, environment };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for e in raw.into_iter().flatten() {
        let issuer = cx.url(&e.issuer, "auth.external[].issuer", true)?;
        // Tokens are routed by issuer: two entries for one issuer would make one of them dead.
        if !seen.insert(issuer.clone()) {
            return Err(cx.err(
                &e.issuer,
                format!("`auth.external` lists the issuer {issuer:?} twice: merge the entries"),
            ));
        }
        let key = |k: &str| format!("auth.external[{issuer}].{k}");
        let introspection = match &e.introspection {
            None => None,
            Some(i) => Some(ValidIntrospection {
                endpoint: cx.url(&i.endpoint, &key("introspection.endpoint"), false)?,
                client_id: cx.text(&i.client_id, &key("introspection.client_id"), 256)?,
                client_secret: cx.secret(&i.client_secret, &key("introspection.client_secret"))?,
            }),
        };
        let scope_claim = match &e.scope_claim {
            None => None,
            Some(s) if s.value == "scope" || s.value == "scp" => Some(s.value.clone()),
            Some(s) => {
                return Err(cx.err(
                    s,
                    format!(
                        "`{}` must be `scope` or `scp`, found {:?}",
                        key("scope_claim"),
                        s.value
                    ),
                ));
            }
        };
        out.push(ValidExternalIssuer {
            jwks_uri: e
                .jwks_uri
                .as_ref()
                .map(|u| cx.url(u, &key("jwks_uri"), false))
                .transpose()?,
            introspection,
            audiences: e
                .audiences
                .iter()
                .map(|a| cx.text(a, &key("audiences"), 1024))
                .collect::<Result<_, _>>()?,
            scope_claim,
            groups_claim: cx.claim(&e.groups_claim, &key("groups_claim"))?,
            roles_claim: cx.claim(&e.roles_claim, &key("roles_claim"))?,
            issuer,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        federation: Option<FederationConfig>,
        external: Option<Vec<ExternalIssuerConfig>>,
    }

    fn parse(yaml: &str) -> Doc {
        serde_saphyr::from_str(yaml).expect("valid YAML shape")
    }

    fn fed(yaml: &str, env: Environment) -> Result<Option<ValidFederation>, ConfigError> {
        validate_federation(parse(yaml).federation.as_ref(), "t.yaml", env)
    }

    fn ext(yaml: &str, env: Environment) -> Result<Vec<ValidExternalIssuer>, ConfigError> {
        validate_external(parse(yaml).external.as_ref(), "t.yaml", env)
    }

    #[test]
    fn a_full_federation_section_validates() {
        let f = fed(
            "federation:\n  name: Okta\n  issuer: https://example.okta.com\n  client_id: pc\n  client_secret: {env: PC_OIDC}\n  scopes: [openid, profile, groups, profile]\n  groups_claim: roles\n  username_claim: email\n",
            Environment::Prod,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.name, "Okta");
        assert_eq!(f.client_secret, Some(SecretSource::Env("PC_OIDC".into())));
        assert_eq!(
            f.scopes,
            ["profile", "groups"],
            "openid is implicit, duplicates dropped"
        );
        assert_eq!(f.groups_claim.as_deref(), Some("roles"));
        assert_eq!(fed("external: []\n", Environment::Dev).unwrap(), None);
    }

    // AUTH-8: secrets by reference only, and the literal never reaches the message.
    #[test]
    fn literal_secrets_are_refused_with_their_position() {
        let e = fed(
            "federation:\n  name: X\n  issuer: https://idp.example.com\n  client_id: pc\n  client_secret: hunter2\n",
            Environment::Dev,
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (5, 18), "{e}");
        assert!(
            e.message.contains("AUTH-8") && !e.message.contains("hunter2"),
            "{e}"
        );
        let e = ext(
            "external:\n  - issuer: https://as.example.com\n    introspection:\n      endpoint: https://as.example.com/introspect\n      client_id: rs\n      client_secret: hunter2\n",
            Environment::Dev,
        )
        .unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(!e.message.contains("hunter2"), "{e}");
    }

    #[test]
    fn urls_must_be_https_or_loopback_outside_prod() {
        let base =
            |issuer: &str| format!("federation:\n  name: X\n  issuer: {issuer}\n  client_id: pc\n");
        assert!(fed(&base("http://127.0.0.1:9000"), Environment::Dev).is_ok());
        let e = fed(&base("http://127.0.0.1:9000"), Environment::Prod).unwrap_err();
        assert!(e.message.contains("prod"), "{e}");
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://u:p@idp.example.com",
            "https://idp.example.com/?x=1",
            "idp",
        ] {
            let e = fed(&base(bad), Environment::Dev).unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
        }
        let e = ext("external:\n  - issuer: https://as.example.com\n    jwks_uri: http://as.example.com/jwks\n", Environment::Dev).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn external_issuers_validate_and_duplicates_are_refused() {
        let v = ext(
            "external:\n  - issuer: https://as.example.com\n    audiences: [api://pc]\n    scope_claim: scp\n    roles_claim: roles\n    introspection:\n      endpoint: https://as.example.com/introspect\n      client_id: rs\n      client_secret: {file: /run/secrets/rs}\n  - issuer: https://other.example.com\n",
            Environment::Prod,
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].audiences, ["api://pc"]);
        assert_eq!(v[0].scope_claim.as_deref(), Some("scp"));
        assert_eq!(
            v[0].introspection.as_ref().unwrap().client_secret,
            SecretSource::File("/run/secrets/rs".into())
        );
        assert_eq!(v[1].groups_claim, None);
        let e = ext(
            "external:\n  - issuer: https://as.example.com\n  - issuer: https://as.example.com\n",
            Environment::Dev,
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = ext(
            "external:\n  - issuer: https://as.example.com\n    scope_claim: scopes\n",
            Environment::Dev,
        )
        .unwrap_err();
        assert!(e.message.contains("`scope` or `scp`"), "{e}");
        assert!(
            serde_saphyr::from_str::<Doc>(
                "external:\n  - issuer: https://as.example.com\n    colour: red\n"
            )
            .is_err()
        );
    }

    #[test]
    fn the_json_schema_offers_both_sections_without_literal_secrets() {
        let s = crate::schema();
        let defs = &s["$defs"];
        let auth = &defs["AuthConfig"]["properties"];
        assert!(
            auth.get("federation").is_some() && auth.get("external").is_some(),
            "{auth}"
        );
        let secret = defs["FederationConfig"]["properties"]["client_secret"].to_string();
        assert!(secret.contains("FederationSecretRef"), "{secret}");
        let schema = defs["FederationSecretRef"].to_string();
        assert!(
            schema.contains("env") && schema.contains("file"),
            "{schema}"
        );
    }

    #[test]
    fn bad_scopes_and_names_are_located() {
        let e = fed(
            "federation:\n  name: ''\n  issuer: https://idp.example.com\n  client_id: pc\n",
            Environment::Dev,
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = fed("federation:\n  name: X\n  issuer: https://idp.example.com\n  client_id: pc\n  scopes: ['profile email']\n", Environment::Dev).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn secrets_resolve_at_start_up_with_errors_naming_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let f = ValidFederation {
            name: "X".into(),
            issuer: "https://idp.example.com".into(),
            client_id: "pc".into(),
            client_secret: Some(SecretSource::File(path.clone())),
            scopes: vec![],
            groups_claim: None,
            username_claim: None,
        };
        assert_eq!(
            f.resolve_client_secret().unwrap().unwrap().expose(),
            "s3cret"
        );
        let missing = ValidFederation {
            client_secret: Some(SecretSource::File(dir.path().join("nope"))),
            ..f.clone()
        };
        let e = missing.resolve_client_secret().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`auth.federation.client_secret`: cannot read secret file"),
            "{e}"
        );
        assert!(e.to_string().contains("nope"), "{e}");
        let env = ValidFederation {
            client_secret: Some(SecretSource::Env("PORTCULLIS_TEST_SURELY_UNSET_VAR".into())),
            ..f.clone()
        };
        let e = env.resolve_client_secret().unwrap_err();
        assert!(
            e.to_string()
                .contains("PORTCULLIS_TEST_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        let public = ValidFederation {
            client_secret: None,
            ..f
        };
        assert_eq!(public.resolve_client_secret().unwrap(), None);
    }
}
