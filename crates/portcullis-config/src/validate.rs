//! Validation of a parsed [`Config`] into a [`ValidConfig`], with positions in every error.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::model::{Config, ConnectorConfig, ConnectorType};

/// A config error: where, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: String,
    /// 1-based line; 0 when the error is not about a position (file unreadable).
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
    /// What was wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl ConfigError {
    pub(crate) fn from_yaml(file: &str, e: &serde_saphyr::Error) -> Self {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // The library's message may end with its own " at line X column Y"; we print the position
        // once, in front, in the file:line:column form editors understand.
        // Only the first line: the library appends a source snippet that we do not need twice.
        let mut message = e.to_string().lines().next().unwrap_or_default().to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        // The library prefixes "error: line X column Y: "; we already print the position in front.
        if let Some(rest) = message.strip_prefix("error: ")
            && let Some(i) = rest.find(": ")
            && rest[..i].starts_with("line ")
        {
            message = rest[i + 2..].to_string();
        }
        // Say it in the user's words, not the parser's.
        if let Some(i) = message.find(", set DuplicateKeyPolicy") {
            message.truncate(i);
            message.push_str(": each key may appear only once");
        }
        for ty in ["u64", "u32", "i64", "usize"] {
            if message == format!("invalid {ty}") {
                message = "expected a whole number".to_string();
            }
        }
        Self {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }

    pub(crate) fn at<T>(file: &str, span: &Spanned<T>, message: String) -> Self {
        Self {
            file: file.to_string(),
            line: span.referenced.line(),
            column: span.referenced.column(),
            message,
        }
    }
}

/// What a connector is, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorKind {
    /// Streamable HTTP at this URL.
    Http {
        /// The MCP endpoint.
        url: http::Uri,
    },
    /// A stdio child process.
    Stdio {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Environment passed to it.
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<String>,
    },
    /// The built-in demo.
    Demo,
}

/// A validated connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// Its name, unique, safe in URLs and in namespaced tool names.
    pub name: String,
    /// What it is.
    pub kind: ConnectorKind,
    /// Request timeout.
    pub timeout: Duration,
    /// Inventory description.
    pub description: Option<String>,
    /// (http) The credential sent upstream in place of the client's token (AUTH-8).
    pub credential: Option<crate::credential::Credential>,
    /// Per-tool scope overrides (AUTH-5): tool name to the scope it needs.
    pub tool_scopes: BTreeMap<String, String>,
    /// The environment the connector belongs to (AZ-4).
    pub environment: Environment,
    /// What policies decide on (owner, classification, sharing, tool marks).
    pub policy: crate::policy::ConnectorPolicyFacts,
    /// Egress allow-list, retries and circuit breaker (EG-1, EG-2).
    pub egress: crate::inspect::ValidEgress,
    /// Per-tool inspection settings, by tool name (IV-1, DLP-5, PI-1).
    pub inspect: BTreeMap<String, crate::inspect::ValidToolInspect>,
}

/// A deployment environment (AZ-4): connectors and tokens belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Environment {
    /// Development (the default).
    #[default]
    Dev,
    /// Testing.
    Test,
    /// Production: development shortcuts are refused.
    Prod,
}

impl Environment {
    /// The name used in config, tokens and policy: `dev`, `test`, `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
            Self::Prod => "prod",
        }
    }

    fn parse(file: &str, v: &Spanned<String>, field: &str) -> Result<Self, ConfigError> {
        match v.value.as_str() {
            "dev" => Ok(Self::Dev),
            "test" => Ok(Self::Test),
            "prod" => Ok(Self::Prod),
            other => Err(ConfigError::at(
                file,
                v,
                format!("`{field}` must be dev, test or prod, found {other:?}"),
            )),
        }
    }
}

/// Checks a public base URL: http(s), a host, no path, query or fragment; returned without a
/// trailing slash.
fn valid_public_url(file: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError::at(
            file,
            v,
            format!(
                "`public_url` {:?} {why}; give the scheme and host clients use, like https://gateway.example.com",
                v.value
            ),
        )
    };
    let trimmed = v.value.trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| bad("is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http") | Some("https"), Some(h)) if !h.is_empty() => {}
        _ => return Err(bad("needs http:// or https:// and a host")),
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() || trimmed.contains('#')
    {
        return Err(bad("must not have a path, query or fragment"));
    }
    Ok(trimmed.to_string())
}

/// Checks a per-tool scope: `{connector}:{word}` with a word of a-z, 0-9, `_` and `-`.
fn valid_tool_scope(
    file: &str,
    connector: &str,
    tool: &str,
    v: &Spanned<String>,
) -> Result<String, ConfigError> {
    let ok = v.value.split_once(':').is_some_and(|(c, w)| {
        c == connector
            && !w.is_empty()
            && w.len() <= 40
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    });
    if !ok {
        return Err(ConfigError::at(
            file,
            v,
            format!(
                "scope {:?} of tool {tool:?} must be `{connector}:read`, `{connector}:write`, `{connector}:admin` or `{connector}:<word>` (a-z, 0-9, _ and -)",
                v.value
            ),
        ));
    }
    Ok(v.value.clone())
}

/// A config that passed validation; what the gateway runs on.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// State directory.
    pub data_dir: std::path::PathBuf,
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Largest batch.
    pub max_batch: usize,
    /// Default request timeout.
    pub request_timeout: Duration,
    /// Most sessions.
    pub max_sessions: usize,
    /// Idle session lifetime.
    pub session_idle_timeout: Duration,
    /// Answer a call only after its audit event is committed.
    pub audit_wait_for_commit: bool,
    /// The audit policy file, if any.
    pub audit_policy: Option<std::path::PathBuf>,
    /// Connectors, in name order.
    pub connectors: Vec<Connector>,
    /// TLS termination, when configured.
    pub tls: Option<crate::transport::Tls>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The base URL clients use, when configured (else `http://{listen}`), no trailing slash.
    pub public_url: Option<String>,
    /// The environment this gateway serves (AZ-4).
    pub environment: Environment,
    /// Policy files, shadow mode, confirmation.
    pub policy: crate::policy::ValidPolicy,
    /// The built-in authorization server.
    pub auth: crate::auth::ValidAuth,
    /// Anomaly detection, alerts, blocks and rate limits (defaults when the section is absent).
    pub monitor: crate::monitor::ValidMonitor,
    /// The inspection pipeline's settings (defaults when the section is absent).
    pub inspection: crate::inspect::ValidInspection,
}

/// Names are used in URLs (`/mcp/{name}`), as tool prefixes (`{name}__tool`) and as URI schemes
/// (`{name}+uri`), so they are restricted to what is safe and unambiguous in all three.
fn valid_connector_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn bounded(
    file: &str,
    v: &Spanned<u64>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    if v.value < min || v.value > max {
        return Err(ConfigError::at(
            file,
            v,
            format!(
                "`{name}` must be between {min} and {max}, found {}",
                v.value
            ),
        ));
    }
    Ok(v.value)
}

pub(crate) fn validate(raw: Config, file: &str) -> Result<ValidConfig, ConfigError> {
    let listen = match &raw.listen {
        None => crate::DEFAULT_LISTEN.parse().expect("default listen address parses"),
        Some(s) => s.value.parse::<SocketAddr>().map_err(|_| {
            ConfigError::at(
                file,
                s,
                format!("`listen` expects host:port with an IP address, like 127.0.0.1:8080; found {:?}", s.value),
            )
        })?,
    };
    let l = &raw.limits;
    let max_body_bytes = bounded(
        file,
        &l.max_body_bytes,
        "limits.max_body_bytes",
        1024,
        64 << 20,
    )? as usize;
    let max_batch = bounded(file, &l.max_batch, "limits.max_batch", 1, 1000)? as usize;
    let timeout_ms = bounded(
        file,
        &l.request_timeout_ms,
        "limits.request_timeout_ms",
        10,
        3_600_000,
    )?;
    let max_sessions =
        bounded(file, &l.max_sessions, "limits.max_sessions", 1, 1_000_000)? as usize;
    let idle = bounded(
        file,
        &l.session_idle_timeout_secs,
        "limits.session_idle_timeout_secs",
        1,
        7 * 86_400,
    )?;

    let mut connectors = Vec::with_capacity(raw.connectors.len());
    for (name, c) in &raw.connectors {
        if !valid_connector_name(name) {
            return Err(ConfigError::at(
                file,
                c,
                format!(
                    "connector name {name:?} is not allowed: use 1-63 characters of a-z, 0-9 and '-', starting with a letter"
                ),
            ));
        }
        connectors.push(validate_connector(file, name, &c.value, timeout_ms)?);
    }
    let environment = match &raw.environment {
        Some(e) => Environment::parse(file, e, "environment")?,
        None => Environment::Dev,
    };
    let auth = crate::auth::validate_auth(&raw.auth, file, environment)?;
    let monitor = crate::monitor::validate_monitor(&raw.monitor.clone().unwrap_or_default(), file)?;
    for (c, raw_c) in connectors.iter_mut().zip(raw.connectors.values()) {
        c.environment = match &raw_c.value.environment {
            Some(e) => Environment::parse(file, e, "environment")?,
            None => environment,
        };
    }
    let public_url = raw
        .public_url
        .as_ref()
        .map(|u| valid_public_url(file, u))
        .transpose()?;
    Ok(ValidConfig {
        listen,
        data_dir: raw
            .data_dir
            .unwrap_or_else(|| crate::DEFAULT_DATA_DIR.to_string())
            .into(),
        max_body_bytes,
        max_batch,
        request_timeout: Duration::from_millis(timeout_ms),
        max_sessions,
        session_idle_timeout: Duration::from_secs(idle),
        audit_wait_for_commit: raw.audit.wait_for_commit.unwrap_or(true),
        audit_policy: raw.audit.policy.clone().map(Into::into),
        connectors,
        tls: raw
            .tls
            .as_ref()
            .map(|t| crate::transport::validate_tls(file, t))
            .transpose()?,
        trusted_proxies: crate::transport::validate_trusted_proxies(file, &raw.trusted_proxies)?,
        public_url,
        environment,
        policy: crate::policy::validate_policy(&raw.policy, file)?,
        inspection: crate::inspect::validate_inspection(file, &raw.inspection)?,
        auth,
        monitor,
    })
}

fn validate_connector(
    file: &str,
    name: &str,
    c: &ConnectorConfig,
    default_timeout_ms: u64,
) -> Result<Connector, ConfigError> {
    let ty = c.kind.value;
    let type_name = match ty {
        ConnectorType::Http => "http",
        ConnectorType::Stdio => "stdio",
        ConnectorType::Demo => "demo",
    };
    let only = |field: &str, for_type: &str| {
        ConfigError::at(
            file,
            &c.kind,
            format!(
                "connector {name:?} has type {type_name}, but `{field}` is only for type {for_type}: remove it or change the type"
            ),
        )
    };
    if ty != ConnectorType::Http && c.url.is_some() {
        return Err(only("url", "http"));
    }
    if ty != ConnectorType::Stdio {
        if c.command.is_some() {
            return Err(only("command", "stdio"));
        }
        if !c.args.is_empty() {
            return Err(only("args", "stdio"));
        }
        if !c.env.is_empty() {
            return Err(only("env", "stdio"));
        }
        if c.cwd.is_some() {
            return Err(only("cwd", "stdio"));
        }
    }
    let kind = match ty {
        ConnectorType::Demo => ConnectorKind::Demo,
        ConnectorType::Http => {
            let Some(url) = &c.url else {
                return Err(ConfigError::at(
                    file,
                    &c.kind,
                    format!(
                        "connector {name:?} has type http and needs `url`, the MCP endpoint, like https://mcp.example.com/mcp"
                    ),
                ));
            };
            let uri: http::Uri = url.value.parse().map_err(|_| {
                ConfigError::at(
                    file,
                    url,
                    format!(
                        "`url` of connector {name:?} is not a valid URL: {:?}",
                        url.value
                    ),
                )
            })?;
            match (uri.scheme_str(), uri.host()) {
                (Some("http") | Some("https"), Some(h)) if !h.is_empty() => {}
                _ => {
                    return Err(ConfigError::at(
                        file,
                        url,
                        format!(
                            "`url` of connector {name:?} must be an absolute http:// or https:// URL with a host; found {:?}",
                            url.value
                        ),
                    ));
                }
            }
            ConnectorKind::Http { url: uri }
        }
        ConnectorType::Stdio => {
            let Some(cmd) = &c.command else {
                return Err(ConfigError::at(
                    file,
                    &c.kind,
                    format!(
                        "connector {name:?} has type stdio and needs `command`, the program to run"
                    ),
                ));
            };
            if cmd.value.trim().is_empty() {
                return Err(ConfigError::at(
                    file,
                    cmd,
                    format!("`command` of connector {name:?} is empty"),
                ));
            }
            ConnectorKind::Stdio {
                command: cmd.value.clone(),
                args: c.args.clone(),
                env: c.env.clone(),
                cwd: c.cwd.clone(),
            }
        }
    };
    let timeout_ms = match &c.timeout_ms {
        Some(t) => bounded(file, t, "timeout_ms", 10, 3_600_000)?,
        None => default_timeout_ms,
    };
    let mut tool_scopes = BTreeMap::new();
    for (tool, scope) in &c.scopes {
        tool_scopes.insert(tool.clone(), valid_tool_scope(file, name, tool, scope)?);
    }
    // AUTH-8: secrets are resolved now, so a missing one stops start-up with its name.
    let credential = crate::credential::connector_credential(file, name, c, &kind)?;
    Ok(Connector {
        name: name.to_string(),
        kind,
        timeout: Duration::from_millis(timeout_ms),
        description: c.description.clone(),
        credential,
        tool_scopes,
        environment: Environment::Dev,
        policy: crate::policy::validate_connector_facts(
            file,
            name,
            &c.kind,
            c.owner.as_ref(),
            c.classification.as_ref(),
            c.sharing.as_ref(),
            &c.tools,
        )?,
        egress: crate::inspect::validate_egress(file, &c.egress)?,
        inspect: crate::inspect::validate_connector_inspect(file, name, &c.inspect)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{ConnectorKind, load_str};

    fn err(yaml: &str) -> crate::ConfigError {
        load_str(yaml, "test.yaml").expect_err("config should be rejected")
    }

    #[test]
    fn embedded_default_has_the_demo_connector() {
        let c = crate::embedded_default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, std::path::PathBuf::from("portcullis-data"));
        assert_eq!(c.connectors.len(), 1);
        assert_eq!(c.connectors[0].name, "crm");
        assert_eq!(c.connectors[0].kind, ConnectorKind::Demo);
        assert!(c.audit_wait_for_commit, "durable by default");
        let c = load_str("audit:\n  wait_for_commit: false\n", "t").unwrap();
        assert!(!c.audit_wait_for_commit);
    }

    #[test]
    fn full_config_loads() {
        let c = load_str(
            "listen: 127.0.0.1:9000\nlimits:\n  max_batch: 5\nconnectors:\n  a:\n    type: http\n    url: http://127.0.0.1:1/mcp\n  b:\n    type: stdio\n    command: node\n    args: [x.js, stdio]\n    env: {K: v}\n    timeout_ms: 500\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.max_batch, 5);
        assert_eq!(c.connectors[1].timeout.as_millis(), 500);
        assert!(
            matches!(&c.connectors[1].kind, ConnectorKind::Stdio { args, .. } if args.len() == 2)
        );
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let e = err("connectors:\n  crm:\n    type: demo\n    colour: red\n");
        assert_eq!((e.line, e.column), (4, 5), "{e}");
        assert!(
            e.message
                .starts_with("unknown field `colour`, expected one of type"),
            "{e}"
        );
        assert!(e.to_string().starts_with("test.yaml:4:5: "), "{e}");
    }

    #[test]
    fn wrong_type_of_value_is_located() {
        let e = err("limits:\n  max_batch: lots\n");
        assert_eq!(e.line, 2, "{e}");
        assert_eq!(e.message, "expected a whole number", "{e}");
    }

    #[test]
    fn unknown_connector_type_is_located() {
        let e = err("connectors:\n  x:\n    type: ftp\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("ftp"), "{e}");
    }

    #[test]
    fn bad_listen_address() {
        let e = err("listen: localhost-ish\n");
        assert_eq!((e.line, e.column), (1, 9), "{e}");
        assert!(e.message.contains("host:port"), "{e}");
    }

    #[test]
    fn http_connector_needs_a_url_and_a_good_one() {
        let e = err("connectors:\n  a:\n    type: http\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("needs `url`"), "{e}");
        let e = err("connectors:\n  a:\n    type: http\n    url: ftp://x/y\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("http:// or https://"), "{e}");
    }

    #[test]
    fn fields_of_another_type_are_refused() {
        let e = err("connectors:\n  a:\n    type: demo\n    command: node\n");
        assert!(
            e.message.contains("`command` is only for type stdio"),
            "{e}"
        );
    }

    #[test]
    fn bad_connector_name() {
        let e = err("connectors:\n  Bad__Name:\n    type: demo\n");
        assert!(e.message.contains("\"Bad__Name\" is not allowed"), "{e}");
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn limits_out_of_range() {
        let e = err("limits:\n  max_body_bytes: 10\n");
        assert_eq!((e.line, e.column), (2, 19), "{e}");
        assert!(e.message.contains("between 1024 and"), "{e}");
    }

    #[test]
    fn malformed_yaml_is_located() {
        let e = err("connectors:\n  a: [unclosed\n");
        assert!(e.line >= 2, "{e}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = err("connectors:\n  a:\n    type: demo\n  a:\n    type: demo\n");
        assert!(e.line >= 4, "{e}");
        assert!(e.message.to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn schema_describes_connectors() {
        let s = crate::schema();
        let text = s.to_string();
        assert!(text.contains("connectors"));
        assert!(text.contains("stdio"));
    }
}
