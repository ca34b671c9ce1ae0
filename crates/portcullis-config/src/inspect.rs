//! The `inspection:` section and each connector's `egress:` and `inspect:` sections (IV-1, IV-4,
//! DLP-4, DLP-5, PI-1, PI-2, PI-3, EG-1, EG-2, EG-3), as written and validated.
//! `portcullis-inspect` turns them into its compiled stages.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::credential::{SecretRefConfig, SecretSource};
use crate::monitor::SecretRefSchema;
use crate::validate::ConfigError;

/// What to do with a finding of a data rule (DLP-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataAction {
    /// Let it pass and record nothing about it.
    Allow,
    /// Let it pass, record the finding.
    Log,
    /// Replace it with a typed placeholder such as `[EMAIL_1]`.
    Redact,
    /// Keep its shape, hide most of it: `j***@example.org`, `**** **** **** 4242`.
    Mask,
    /// Replace it with a keyed pseudonym, the same for the same value within a session.
    Pseudonymize,
    /// Refuse the whole call or result.
    Block,
}

impl DataAction {
    /// The lowercase name, as written in config and recorded in events.
    pub fn as_str(self) -> &'static str {
        match self {
            DataAction::Allow => "allow",
            DataAction::Log => "log",
            DataAction::Redact => "redact",
            DataAction::Mask => "mask",
            DataAction::Pseudonymize => "pseudonymize",
            DataAction::Block => "block",
        }
    }

    /// How restrictive the action is: a value covered by several rules gets the strictest.
    pub fn rank(self) -> u8 {
        match self {
            DataAction::Allow => 0,
            DataAction::Log => 1,
            DataAction::Mask => 2,
            DataAction::Pseudonymize => 3,
            DataAction::Redact => 4,
            DataAction::Block => 5,
        }
    }
}

/// What to do with prompt injection found in a tool's result (PI-1) or arguments (PI-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InjectionAction {
    /// Refuse the result (or the call).
    Block,
    /// Pass the result on marked as untrusted data, with a visible notice to the model.
    Wrap,
    /// Pass it on unchanged; record the finding (and raise the alert).
    Flag,
}

impl InjectionAction {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            InjectionAction::Block => "block",
            InjectionAction::Wrap => "wrap",
            InjectionAction::Flag => "flag",
        }
    }
}

/// Which way data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleDirection {
    /// Arguments going to a connector.
    Request,
    /// Results coming back from it.
    Response,
    /// Both.
    #[default]
    Both,
}

impl RuleDirection {
    /// Whether a rule for `self` applies to data flowing `request` (true) or back (false).
    pub fn covers_request(self, request: bool) -> bool {
        match self {
            RuleDirection::Both => true,
            RuleDirection::Request => request,
            RuleDirection::Response => !request,
        }
    }
}

/// One data rule as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRuleConfig {
    /// What it matches: a detector kind (`pii.credit_card`), a kind prefix (`secret.*`) or a category
    /// (`pii`, `secret`, `internal`, `injection`).
    #[serde(rename = "match")]
    #[schemars(with = "String")]
    pub matches: Spanned<String>,
    /// `request`, `response` or `both` (default).
    #[serde(default)]
    pub direction: RuleDirection,
    /// `allow`, `log`, `redact`, `mask`, `pseudonymize` or `block`.
    #[schemars(with = "DataAction")]
    pub action: Spanned<DataAction>,
    /// Only for these tools (`connector/tool`, or `connector/*`); default: every tool.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// Limits on tool arguments (IV-1).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgumentLimitsConfig {
    /// Largest serialized arguments object, in bytes (default 1 MiB, at most 64 MiB).
    #[schemars(with = "Option<u64>")]
    pub max_bytes: Option<Spanned<u64>>,
    /// Deepest nesting of arrays and objects (default 32, at most 256).
    #[schemars(with = "Option<u64>")]
    pub max_depth: Option<Spanned<u64>>,
}

/// Injection handling as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectionConfig {
    /// In results: `block`, `wrap` (default) or `flag`.
    pub results: Option<InjectionAction>,
    /// In arguments: `block` (default) or `flag`.
    pub arguments: Option<InjectionAction>,
    /// Findings under this confidence are recorded but not acted on (0 to 1; default 0.5).
    pub min_confidence: Option<f64>,
}

/// The `inspection:` section as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionConfig {
    /// Inspection on (default true). Off leaves only the policy and the protocol checks.
    pub enabled: Option<bool>,
    /// Argument limits.
    #[serde(default)]
    pub arguments: ArgumentLimitsConfig,
    /// Data rules (DLP-4), applied after the built-in defaults; the strictest matching rule wins.
    #[serde(default)]
    pub rules: Vec<DataRuleConfig>,
    /// Keep the built-in data rules (default true): redact secrets everywhere, redact card
    /// numbers, SSNs and IBANs in results, mask e-mail addresses and phone numbers in results.
    pub default_rules: Option<bool>,
    /// Prompt injection handling (PI-1, PI-2).
    #[serde(default)]
    pub injection: InjectionConfig,
    /// Secrets or personal data in the arguments of an open-world tool (data leaving):
    /// `block` (default), `log` or `allow`.
    pub open_world_leaks: Option<DataAction>,
    /// The key of pseudonyms (`{env: NAME}` or `{file: PATH}`); default: a random key per start.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub pseudonym_key: Option<Spanned<SecretRefConfig>>,
    /// Pin tool definitions (PI-3): the first definition seen is approved, a changed one is
    /// blocked until `portcullis tools approve` (default true).
    pub pin_tools: Option<bool>,
}

/// A connector's `egress:` section as written (EG-1, EG-2).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Hosts that URLs in tool arguments may point at: exact names (`docs.example.com`),
    /// wildcards for subdomains (`*.example.com`), IP addresses or CIDRs. Empty (default): no
    /// URL argument is allowed at all.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allow: Vec<Spanned<String>>,
    /// Resolve allowed names and refuse those that resolve to private, loopback, link-local or
    /// metadata addresses (default true). Turn off only for a connector that never touches the
    /// network itself (the demo serves a built-in web).
    pub resolve: Option<bool>,
    /// Let URL arguments point at private (RFC 1918, ULA) addresses (default false). Loopback,
    /// link-local and cloud metadata addresses are refused whatever this says.
    pub allow_private: Option<bool>,
    /// Retries of a read-only call that failed to connect or timed out (0 to 5; default 2).
    #[schemars(with = "Option<u64>")]
    pub retries: Option<Spanned<u64>>,
    /// Consecutive failures that open the circuit breaker (1 to 1000; default 5).
    #[schemars(with = "Option<u64>")]
    pub breaker_failures: Option<Spanned<u64>>,
    /// How long an open breaker refuses calls before trying one, in seconds (1 to 3600;
    /// default 30).
    #[schemars(with = "Option<u64>")]
    pub breaker_cooldown_secs: Option<Spanned<u64>>,
}

/// Per-tool inspection settings as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolInspectConfig {
    /// A stricter JSON Schema for the arguments, checked in addition to the tool's own (IV-1).
    #[schemars(with = "Option<serde_json::Value>")]
    pub input_schema: Option<serde_json::Value>,
    /// The only fields of `structuredContent` that may pass (DLP-5), as paths with `/` between
    /// keys and `*` for any array index or key, like `customers/*/id`. Default: all.
    pub output_fields: Option<Vec<String>>,
    /// Injection in this tool's results: `block`, `wrap` or `flag` (overrides the section's).
    pub injection: Option<InjectionAction>,
    /// Names of arguments holding URLs to check against `egress` (default: every string
    /// argument that parses as an absolute http(s) URL).
    pub url_arguments: Option<Vec<String>>,
}

/// A connector's `inspect:` section as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInspectConfig {
    /// Per tool, by the tool's name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolInspectConfig>,
}

/// One validated data rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRule {
    /// What it matches, as [`DataRuleConfig::matches`].
    pub matches: RuleMatch,
    /// Which way.
    pub direction: RuleDirection,
    /// What is done.
    pub action: DataAction,
    /// `connector/tool` patterns (empty: all).
    pub tools: Vec<String>,
}

/// What a data rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleMatch {
    /// One detector kind.
    Kind(String),
    /// Kinds starting with this prefix (written `secret.*`, held as `secret.`).
    Prefix(String),
    /// A category name.
    Category(String),
}

impl RuleMatch {
    /// Whether a finding of `kind` in `category` matches.
    pub fn matches(&self, kind: &str, category: &str) -> bool {
        match self {
            RuleMatch::Kind(k) => k == kind,
            RuleMatch::Prefix(p) => kind.starts_with(p.as_str()),
            RuleMatch::Category(c) => c == category,
        }
    }
}

impl DataRule {
    /// Whether the rule applies to `connector`'s `tool`.
    pub fn covers_tool(&self, connector: &str, tool: &str) -> bool {
        self.tools.is_empty()
            || self.tools.iter().any(|t| match t.split_once('/') {
                Some((c, "*")) => c == connector,
                Some((c, n)) => c == connector && n == tool,
                None => false,
            })
    }
}

/// The validated `inspection:` section.
#[derive(Debug, Clone)]
pub struct ValidInspection {
    /// Inspection on.
    pub enabled: bool,
    /// Largest arguments object, bytes.
    pub max_argument_bytes: usize,
    /// Deepest arguments nesting.
    pub max_argument_depth: usize,
    /// The data rules, the built-in ones first when kept.
    pub rules: Vec<DataRule>,
    /// Injection in results.
    pub injection_results: InjectionAction,
    /// Injection in arguments.
    pub injection_arguments: InjectionAction,
    /// Confidence under which findings are only recorded.
    pub min_confidence: f32,
    /// Data leaving to open-world tools.
    pub open_world_leaks: DataAction,
    /// The pseudonym key's source; none: random per start.
    pub pseudonym_key: Option<SecretSource>,
    /// Pin tool definitions.
    pub pin_tools: bool,
}

/// The built-in data rules (the embedded default's DLP-4 behaviour).
pub fn default_rules() -> Vec<DataRule> {
    let r = |m: RuleMatch, direction, action| DataRule {
        matches: m,
        direction,
        action,
        tools: Vec::new(),
    };
    use RuleMatch::{Category, Kind};
    vec![
        r(
            Category("secret".into()),
            RuleDirection::Both,
            DataAction::Redact,
        ),
        r(
            Kind("pii.credit_card".into()),
            RuleDirection::Response,
            DataAction::Redact,
        ),
        r(
            Kind("pii.us_ssn".into()),
            RuleDirection::Response,
            DataAction::Redact,
        ),
        r(
            Kind("pii.iban".into()),
            RuleDirection::Response,
            DataAction::Redact,
        ),
        r(
            Kind("pii.email".into()),
            RuleDirection::Response,
            DataAction::Mask,
        ),
        r(
            Kind("pii.phone".into()),
            RuleDirection::Response,
            DataAction::Mask,
        ),
    ]
}

impl Default for ValidInspection {
    fn default() -> Self {
        Self {
            enabled: true,
            max_argument_bytes: 1024 * 1024,
            max_argument_depth: 32,
            rules: default_rules(),
            injection_results: InjectionAction::Wrap,
            injection_arguments: InjectionAction::Block,
            min_confidence: 0.5,
            open_world_leaks: DataAction::Block,
            pseudonym_key: None,
            pin_tools: true,
        }
    }
}

/// A connector's validated egress settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEgress {
    /// Allowed host patterns, lowercased: exact names, `*.suffix`, IPs or CIDRs as written.
    pub allow: Vec<String>,
    /// Resolve names and check the addresses.
    pub resolve: bool,
    /// Private addresses allowed for URL arguments.
    pub allow_private: bool,
    /// Retries of read-only calls.
    pub retries: u32,
    /// Failures that open the breaker.
    pub breaker_failures: u32,
    /// Breaker cool-down.
    pub breaker_cooldown: Duration,
}

impl Default for ValidEgress {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            resolve: true,
            allow_private: false,
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// A tool's validated inspection settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidToolInspect {
    /// Stricter argument schema.
    pub input_schema: Option<serde_json::Value>,
    /// Allowed output field paths, split at `/`.
    pub output_fields: Option<Vec<Vec<String>>>,
    /// Injection override.
    pub injection: Option<InjectionAction>,
    /// URL argument names.
    pub url_arguments: Option<Vec<String>>,
}

fn bounded(
    file: &str,
    v: &Option<Spanned<u64>>,
    name: &str,
    default: u64,
    (lo, hi): (u64, u64),
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.value >= lo && s.value <= hi => Ok(s.value),
        Some(s) => Err(ConfigError::at(
            file,
            s,
            format!("{name} must be between {lo} and {hi}, found {}", s.value),
        )),
    }
}

fn rule_match(file: &str, s: &Spanned<String>) -> Result<RuleMatch, ConfigError> {
    let v = s.value.trim();
    const CATEGORIES: &[&str] = &["pii", "secret", "internal", "injection"];
    if CATEGORIES.contains(&v) {
        return Ok(RuleMatch::Category(v.to_string()));
    }
    let ok_name = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    };
    if let Some(p) = v.strip_suffix(".*")
        && ok_name(p)
    {
        return Ok(RuleMatch::Prefix(format!("{p}.")));
    }
    if ok_name(v) && v.contains('.') {
        return Ok(RuleMatch::Kind(v.to_string()));
    }
    Err(ConfigError::at(
        file,
        s,
        format!(
            "a rule matches a detector kind like `pii.credit_card`, a prefix like `secret.*` or a \
             category (pii, secret, internal, injection); found {v:?}"
        ),
    ))
}

/// Validates the `inspection:` section.
pub(crate) fn validate_inspection(
    file: &str,
    raw: &InspectionConfig,
) -> Result<ValidInspection, ConfigError> {
    let d = ValidInspection::default();
    let mut rules = if raw.default_rules.unwrap_or(true) {
        d.rules.clone()
    } else {
        Vec::new()
    };
    for r in &raw.rules {
        for t in &r.tools {
            if !t.contains('/') {
                return Err(ConfigError::at(
                    file,
                    &r.matches,
                    format!(
                        "the rule's tool {t:?} must be written `connector/tool` or `connector/*`"
                    ),
                ));
            }
        }
        rules.push(DataRule {
            matches: rule_match(file, &r.matches)?,
            direction: r.direction,
            action: r.action.value,
            tools: r.tools.clone(),
        });
    }
    let min_confidence = match raw.injection.min_confidence {
        None => d.min_confidence,
        Some(c) if (0.0..=1.0).contains(&c) => c as f32,
        Some(c) => {
            return Err(ConfigError {
                file: file.to_string(),
                line: 0,
                column: 0,
                message: format!(
                    "inspection.injection.min_confidence must be between 0 and 1, found {c}"
                ),
            });
        }
    };
    let injection_arguments = raw.injection.arguments.unwrap_or(d.injection_arguments);
    if injection_arguments == InjectionAction::Wrap {
        return Err(ConfigError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: "inspection.injection.arguments is `block` or `flag`: arguments cannot be \
                      wrapped"
                .into(),
        });
    }
    let open_world_leaks = raw.open_world_leaks.unwrap_or(d.open_world_leaks);
    if !matches!(
        open_world_leaks,
        DataAction::Block | DataAction::Log | DataAction::Allow
    ) {
        return Err(ConfigError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: "inspection.open_world_leaks is `block`, `log` or `allow`".into(),
        });
    }
    let pseudonym_key = match &raw.pseudonym_key {
        None => None,
        Some(s) => Some(match &s.value {
            // AUTH-8: no secret in plain text in the config file.
            SecretRefConfig::Literal => {
                return Err(ConfigError::at(
                    file,
                    s,
                    "`inspection.pseudonym_key` is written in the config file; secrets may not \
                     be (AUTH-8): use {env: NAME} or {file: PATH}"
                        .into(),
                ));
            }
            SecretRefConfig::Env(n) if n.is_empty() || n.contains(['=', '\0']) => {
                return Err(ConfigError::at(
                    file,
                    s,
                    format!(
                        "`inspection.pseudonym_key` names an invalid environment variable {n:?}"
                    ),
                ));
            }
            SecretRefConfig::Env(n) => SecretSource::Env(n.clone()),
            SecretRefConfig::File(p) if p.trim().is_empty() => {
                return Err(ConfigError::at(
                    file,
                    s,
                    "`inspection.pseudonym_key.file` is empty: give the path".into(),
                ));
            }
            SecretRefConfig::File(p) => SecretSource::File(p.into()),
        }),
    };
    Ok(ValidInspection {
        enabled: raw.enabled.unwrap_or(true),
        max_argument_bytes: bounded(
            file,
            &raw.arguments.max_bytes,
            "inspection.arguments.max_bytes",
            d.max_argument_bytes as u64,
            (1, 64 * 1024 * 1024),
        )? as usize,
        max_argument_depth: bounded(
            file,
            &raw.arguments.max_depth,
            "inspection.arguments.max_depth",
            d.max_argument_depth as u64,
            (1, 256),
        )? as usize,
        rules,
        injection_results: raw.injection.results.unwrap_or(d.injection_results),
        injection_arguments,
        min_confidence,
        open_world_leaks,
        pseudonym_key,
        pin_tools: raw.pin_tools.unwrap_or(true),
    })
}

/// Validates a connector's `egress:` section.
pub(crate) fn validate_egress(file: &str, raw: &EgressConfig) -> Result<ValidEgress, ConfigError> {
    let d = ValidEgress::default();
    let mut allow = Vec::new();
    for a in &raw.allow {
        let v = a.value.trim().to_ascii_lowercase();
        let host = v.strip_prefix("*.").unwrap_or(&v);
        let is_net = v.parse::<ipnet::IpNet>().is_ok() || v.parse::<std::net::IpAddr>().is_ok();
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !(is_net || is_name) {
            return Err(ConfigError::at(
                file,
                a,
                format!(
                    "egress.allow entries are host names (`docs.example.com`), subdomain \
                     wildcards (`*.example.com`), IP addresses or CIDRs; found {:?}",
                    a.value
                ),
            ));
        }
        allow.push(v);
    }
    Ok(ValidEgress {
        allow,
        resolve: raw.resolve.unwrap_or(d.resolve),
        allow_private: raw.allow_private.unwrap_or(d.allow_private),
        retries: bounded(file, &raw.retries, "egress.retries", 2, (0, 5))? as u32,
        breaker_failures: bounded(
            file,
            &raw.breaker_failures,
            "egress.breaker_failures",
            5,
            (1, 1000),
        )? as u32,
        breaker_cooldown: Duration::from_secs(bounded(
            file,
            &raw.breaker_cooldown_secs,
            "egress.breaker_cooldown_secs",
            30,
            (1, 3600),
        )?),
    })
}

/// Validates a connector's `inspect:` section.
pub(crate) fn validate_connector_inspect(
    file: &str,
    connector: &str,
    raw: &ConnectorInspectConfig,
) -> Result<BTreeMap<String, ValidToolInspect>, ConfigError> {
    let mut out = BTreeMap::new();
    for (tool, t) in &raw.tools {
        if let Some(s) = &t.input_schema
            && !(s.is_object() || s.is_boolean())
        {
            return Err(ConfigError {
                file: file.to_string(),
                line: 0,
                column: 0,
                message: format!(
                    "connectors.{connector}.inspect.tools.{tool}.input_schema must be a JSON \
                     Schema object"
                ),
            });
        }
        let output_fields = match &t.output_fields {
            None => None,
            Some(fields) => {
                let mut paths = Vec::new();
                for f in fields {
                    let parts: Vec<String> =
                        f.trim_matches('/').split('/').map(str::to_string).collect();
                    if parts.iter().any(|p| p.is_empty()) {
                        return Err(ConfigError {
                            file: file.to_string(),
                            line: 0,
                            column: 0,
                            message: format!(
                                "connectors.{connector}.inspect.tools.{tool}.output_fields: \
                                 {f:?} is not a path like `customers/*/id`"
                            ),
                        });
                    }
                    paths.push(parts);
                }
                Some(paths)
            }
        };
        out.insert(
            tool.clone(),
            ValidToolInspect {
                input_schema: t.input_schema.clone(),
                output_fields,
                injection: t.injection,
                url_arguments: t.url_arguments.clone(),
            },
        );
    }
    Ok(out)
}
