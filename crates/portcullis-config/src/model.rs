//! The config file as written (before validation). Fields that need a position in errors are
//! wrapped in [`Spanned`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole config file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Portcullis configuration")]
pub struct Config {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8080`.
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// Directory for state (SQLite database, keys). Default `./portcullis-data`.
    pub data_dir: Option<String>,
    /// The base URL clients reach the gateway at, like `https://gateway.example.com` (no path):
    /// the OAuth issuer and the resource URLs tokens are bound to (RFC 8707) derive from it.
    /// Default `http://{listen}`.
    #[schemars(with = "Option<String>")]
    pub public_url: Option<Spanned<String>>,
    /// The environment this gateway serves (AZ-4): `dev` (default), `test` or `prod`. In `prod`,
    /// development shortcuts (`--no-auth`, insecure loopback metadata documents) are refused.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// Protocol limits.
    #[serde(default)]
    pub limits: Limits,
    /// How calls are recorded in the audit log.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Cedar policy files, shadow mode and human confirmation (AZ-1, AZ-6, HC-2).
    #[serde(default)]
    pub policy: crate::policy::PolicyConfig,
    /// The built-in OAuth 2.1 authorization server.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// The connectors behind the gateway, by name. Names are 1-63 characters of `a-z`, `0-9` and
    /// `-`, starting with a letter; each is served at `/mcp/{name}`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ConnectorConfig>")]
    pub connectors: BTreeMap<String, Spanned<ConnectorConfig>>,
    /// TLS termination: serve https with this certificate and key (reloaded when they change).
    pub tls: Option<crate::transport::TlsConfig>,
    /// Proxies (CIDRs, like `10.0.0.0/8`) whose `Forwarded`, `X-Forwarded-For` and
    /// `X-Forwarded-Proto` headers are believed; from any other peer they are ignored.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// Anomaly detection, alerts, automatic blocks and rate limits (MON-1, MON-2).
    pub monitor: Option<crate::monitor::MonitorConfig>,
    /// The inspection pipeline: argument limits, data rules, injection handling, tool pinning
    /// (IV-1, DLP-4, PI-1, PI-2, PI-3).
    #[serde(default)]
    pub inspection: crate::inspect::InspectionConfig,
}

/// Limits that protect the gateway and the connectors from abuse (IV-2).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes (default 4 MiB, at most 64 MiB).
    #[schemars(with = "u64")]
    pub max_body_bytes: Spanned<u64>,
    /// Most messages in one JSON-RPC batch (default 32, at most 1000).
    #[schemars(with = "u64")]
    pub max_batch: Spanned<u64>,
    /// How long one request may take upstream before the client gets a timeout error, in
    /// milliseconds (default 30000).
    #[schemars(with = "u64")]
    pub request_timeout_ms: Spanned<u64>,
    /// Most concurrent client sessions (default 10000).
    #[schemars(with = "u64")]
    pub max_sessions: Spanned<u64>,
    /// A session unused this long is closed, in seconds (default 3600).
    #[schemars(with = "u64")]
    pub session_idle_timeout_secs: Spanned<u64>,
}

fn unspanned<T>(v: T) -> Spanned<T> {
    Spanned::new(
        v,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: unspanned(4 * 1024 * 1024),
            max_batch: unspanned(32),
            request_timeout_ms: unspanned(30_000),
            max_sessions: unspanned(10_000),
            session_idle_timeout_secs: unspanned(3600),
        }
    }
}

/// Audit settings of the data path (AU-1).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Answer a call only once its event is committed to the audit log (default true), so that
    /// after a crash the log holds an event for every call that was answered. `false` answers
    /// first and commits moments later: lower latency, but a crash can lose the last events.
    pub wait_for_commit: Option<bool>,
    /// An audit policy file (YAML): data classes, retention days, encrypted payloads,
    /// memory-off connectors and live sinks (file, syslog, webhook, OTLP). The same file
    /// `portcullis audit --policy` reads.
    pub policy: Option<String>,
}

/// The kind of a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    /// An MCP server over Streamable HTTP, at `url`.
    Http,
    /// An MCP server run as a supervised child process speaking stdio (`command`, `args`, `env`).
    Stdio,
    /// The built-in demo CRM connector.
    Demo,
}

/// One connector, as written. Which fields apply depends on `type`; others are refused.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// `http`, `stdio` or `demo`.
    #[serde(rename = "type")]
    #[schemars(with = "ConnectorType")]
    pub kind: Spanned<ConnectorType>,
    /// (http) The MCP endpoint URL, `http://` or `https://`.
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// (stdio) The program to run.
    #[schemars(with = "Option<String>")]
    pub command: Option<Spanned<String>>,
    /// (stdio) Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// (stdio) Environment variables for it; nothing else of the gateway's environment is passed
    /// on except `PATH`, `HOME`, `LANG` and `TMPDIR`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// (stdio) Working directory.
    pub cwd: Option<String>,
    /// Per-connector request timeout in milliseconds (overrides `limits.request_timeout_ms`).
    #[schemars(with = "Option<u64>")]
    pub timeout_ms: Option<Spanned<u64>>,
    /// What the connector is for (inventory).
    pub description: Option<String>,
    /// (http) The credential the gateway sends upstream in place of the client's token
    /// (AUTH-8); secrets are `{env: NAME}` or `{file: PATH}`, never written here.
    #[schemars(with = "Option<crate::credential::CredentialConfig>")]
    pub credential: Option<Spanned<crate::credential::CredentialConfig>>,
    /// Scopes per tool (AUTH-5), overriding the default from the tool's MCP annotations
    /// (read-only tools need `{connector}:read`, others `{connector}:write`, destructive ones
    /// `{connector}:admin`). Values are `{connector}:read|write|admin` or `{connector}:{word}`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub scopes: BTreeMap<String, Spanned<String>>,
    /// The environment the connector belongs to (AZ-4); default: the gateway's.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// The connector's owner (a user's subject), for inventory and sharing (AZ-5).
    pub owner: Option<String>,
    /// Data classification: `public`, `internal` (default), `confidential` or `restricted`.
    pub classification: Option<String>,
    /// Who may use the connector (AZ-5); default: the organization.
    pub sharing: Option<crate::policy::SharingConfig>,
    /// Marks on tools that their annotations do not carry (bulk, destructive, classification).
    #[serde(default)]
    pub tools: BTreeMap<String, crate::policy::ToolMarks>,
    /// Where URLs in tool arguments may point, retries and the circuit breaker (EG-1, EG-2).
    #[serde(default)]
    pub egress: crate::inspect::EgressConfig,
    /// Per-tool inspection: stricter schemas, output field allow-lists, injection handling.
    #[serde(default)]
    pub inspect: crate::inspect::ConnectorInspectConfig,
}
