//! Portcullis configuration: one YAML file, validated at load (OPS-1). Every error names the file,
//! the line and column, what was expected and what was found. [`schema`] gives a JSON Schema of
//! the file for editors and for `portcullis config schema`.

mod auth;
mod credential;
mod federation;
pub mod inspect;
mod model;
mod monitor;
mod policy;
mod transport;
mod validate;

pub use auth::{
    AuthConfig, ClientMetadataConfig, LoginThrottleConfig, RegistrationMode, ValidAuth,
};
pub use federation::{
    ExternalIssuerConfig, FederationConfig, FederationSecretError, IntrospectionConfig,
    ValidExternalIssuer, ValidFederation, ValidIntrospection, resolve_secret, validate_external,
    validate_federation,
};
pub use inspect::{
    ArgumentLimitsConfig, ConnectorInspectConfig, DataAction, DataRule, DataRuleConfig,
    EgressConfig, InjectionAction, InjectionConfig, InspectionConfig, RuleDirection, RuleMatch,
    ValidEgress, ValidInspection, ValidToolInspect, default_rules,
};
pub use model::{AuditSettings, Config, ConnectorConfig, ConnectorType, Limits};
pub use monitor::{
    MonitorConfig, ValidBlock, ValidEmail, ValidMonitor, ValidOffHours, ValidQuota, ValidThreshold,
};
pub use policy::{
    ConfirmationConfig, ConnectorPolicyFacts, PolicyConfig, SharingConfig, ToolMarks, ValidPolicy,
    ValidToolMarks,
};
pub use validate::{ConfigError, Connector, ConnectorKind, Environment, ValidConfig};

pub use credential::{
    AuthMethod, Credential, CredentialConfig, CredentialType, OAuthClient, SecretError,
    SecretRefConfig, SecretSource, SecretValue,
};
pub use transport::{Tls, TlsConfig, TlsVersion};

use std::path::Path;

/// The address the embedded default listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The data directory of the embedded default, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "portcullis-data";

/// Loads and validates a config file.
pub fn load_file(path: &Path) -> Result<ValidConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read the config file: {e}; check the path and its permissions"),
    })?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `file` names it in errors.
pub fn load_str(text: &str, file: &str) -> Result<ValidConfig, ConfigError> {
    let raw: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::from_yaml(file, &e))?;
    validate::validate(raw, file)
}

/// The config text of the embedded default. The demo's `fetch_url` serves a built-in web and
/// never touches the network, so its hosts are allowed without resolving them (EG-1).
pub const EMBEDDED_DEFAULT: &str = "\
connectors:
  crm:
    type: demo
    description: Demo CRM with synthetic customers
    tools:
      export_customers:
        bulk: true
    egress:
      allow: [docs.example.com, blog.example.com, news.example.net, wiki.example.org,
              forum.example.com, paste.example.net]
      resolve: false
";

/// The embedded default: listen on 127.0.0.1:8080, state in `./portcullis-data`, and the built-in
/// demo connector `crm`.
pub fn embedded_default() -> ValidConfig {
    load_str(EMBEDDED_DEFAULT, "<embedded default>").expect("the embedded default config is valid")
}

/// A JSON Schema (draft 2020-12) of the config file.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}
