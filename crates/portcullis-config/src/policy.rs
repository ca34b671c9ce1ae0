//! The `policy:` section (AZ-1, AZ-6, HC-2) and the per-connector facts policies decide on
//! (owner, classification, sharing, per-tool marks; AZ-5). The Cedar files themselves are
//! validated by `portcullis-policy` at start-up; here only their paths and the settings are.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::validate::ConfigError;

/// How calls are authorized and confirmed.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Cedar policy files, loaded and validated against the published schema at start-up.
    #[serde(default)]
    pub files: Vec<String>,
    /// Load the built-in baseline beside `files` (default true). With `false`, `files` are
    /// the whole policy: whatever they do not permit is denied.
    pub baseline: Option<bool>,
    /// A policy set evaluated beside the enforced one whose decisions are only logged and
    /// recorded (AZ-6 shadow mode), to try a change before enforcing it.
    #[serde(default)]
    pub shadow: Vec<String>,
    /// Human confirmation of calls that policy marks as needing it (HC-2).
    #[serde(default)]
    pub confirmation: ConfirmationConfig,
}

/// How a person confirms a call.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationConfig {
    /// How long the gateway waits for the person at the client to answer an elicitation, in
    /// seconds (default 120); no answer denies the call.
    #[schemars(with = "Option<u64>")]
    pub elicitation_timeout_secs: Option<Spanned<u64>>,
    /// How long a call parked in the approval queue waits for an approver, in seconds (default
    /// 300); no decision denies it.
    #[schemars(with = "Option<u64>")]
    pub approval_timeout_secs: Option<Spanned<u64>>,
    /// A URL told (JSON POST) of every call parked for approval, for chat or ticketing hooks.
    #[schemars(with = "Option<String>")]
    pub approval_webhook: Option<Spanned<String>>,
}

/// A connector's sharing (AZ-5): who may use it.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingConfig {
    /// `owner`, `users` (the users and groups below), `organization` (default) or `link`
    /// (anyone with the link, guests included: off unless set here).
    pub mode: Option<String>,
    /// Users admitted in mode `users` (their subjects).
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups admitted in mode `users`.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Marks on one tool that its MCP annotations do not carry.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolMarks {
    /// The tool returns a whole data set (bulk extraction).
    #[serde(default)]
    pub bulk: bool,
    /// Treat it as destructive whatever its annotations say (HC-1).
    #[serde(default)]
    pub destructive: bool,
    /// Treat it as read-only (and so neither destructive nor retried unsafely) when its
    /// connector does not annotate it: the admin vouches for it. Cannot be combined with
    /// `destructive`.
    #[serde(default)]
    pub read_only: bool,
    /// Its data classification when it differs from the connector's.
    pub classification: Option<String>,
}

/// The validated `policy:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPolicy {
    /// Policy files.
    pub files: Vec<std::path::PathBuf>,
    /// Whether the baseline is loaded beside them.
    pub baseline: bool,
    /// Shadow policy files.
    pub shadow: Vec<std::path::PathBuf>,
    /// Elicitation wait.
    pub elicitation_timeout: Duration,
    /// Approval queue wait.
    pub approval_timeout: Duration,
    /// Approval webhook.
    pub approval_webhook: Option<http::Uri>,
}

impl Default for ValidPolicy {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            baseline: true,
            shadow: Vec::new(),
            elicitation_timeout: Duration::from_secs(120),
            approval_timeout: Duration::from_secs(300),
            approval_webhook: None,
        }
    }
}

/// The policy facts of one connector, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectorPolicyFacts {
    /// Owner's subject (empty: nobody in particular).
    pub owner: String,
    /// `public`, `internal` (default), `confidential` or `restricted`.
    pub classification: String,
    /// Sharing mode.
    pub sharing_mode: String,
    /// Users admitted in mode `users`.
    pub sharing_users: Vec<String>,
    /// Groups admitted in mode `users`.
    pub sharing_groups: Vec<String>,
    /// Per-tool marks.
    pub tools: BTreeMap<String, ValidToolMarks>,
}

/// Validated marks of one tool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidToolMarks {
    /// Bulk extraction.
    pub bulk: bool,
    /// Destructive whatever the annotations say.
    pub destructive: bool,
    /// Read-only whatever the annotations say.
    pub read_only: bool,
    /// Classification override.
    pub classification: Option<String>,
}

const CLASSIFICATIONS: &[&str] = &["public", "internal", "confidential", "restricted"];
const SHARING_MODES: &[&str] = &["owner", "users", "organization", "link"];

fn secs(
    file: &str,
    v: &Option<Spanned<u64>>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) if s.value >= 1 && s.value <= max => Ok(Duration::from_secs(s.value)),
        Some(s) => Err(ConfigError::at(
            file,
            s,
            format!(
                "`{name}` must be between 1 and {max} seconds, found {}",
                s.value
            ),
        )),
    }
}

/// Validates the `policy:` section.
pub(crate) fn validate_policy(raw: &PolicyConfig, file: &str) -> Result<ValidPolicy, ConfigError> {
    let c = &raw.confirmation;
    let approval_webhook = match &c.approval_webhook {
        None => None,
        Some(u) => {
            let uri: http::Uri = u.value.parse().map_err(|_| {
                ConfigError::at(
                    file,
                    u,
                    format!("`approval_webhook` is not a valid URL: {:?}", u.value),
                )
            })?;
            if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
                return Err(ConfigError::at(
                    file,
                    u,
                    "`approval_webhook` needs an http:// or https:// URL with a host".into(),
                ));
            }
            Some(uri)
        }
    };
    Ok(ValidPolicy {
        files: raw.files.iter().map(Into::into).collect(),
        baseline: raw.baseline.unwrap_or(true),
        shadow: raw.shadow.iter().map(Into::into).collect(),
        elicitation_timeout: secs(
            file,
            &c.elicitation_timeout_secs,
            "policy.confirmation.elicitation_timeout_secs",
            120,
            3600,
        )?,
        approval_timeout: secs(
            file,
            &c.approval_timeout_secs,
            "policy.confirmation.approval_timeout_secs",
            300,
            7 * 86_400,
        )?,
        approval_webhook,
    })
}

/// Validates a connector's policy facts; `at` positions the errors (the connector's entry).
pub(crate) fn validate_connector_facts<T>(
    file: &str,
    connector: &str,
    at: &Spanned<T>,
    owner: Option<&String>,
    classification: Option<&String>,
    sharing: Option<&SharingConfig>,
    tools: &BTreeMap<String, ToolMarks>,
) -> Result<ConnectorPolicyFacts, ConfigError> {
    let bad = |m: String| ConfigError::at(file, at, m);
    let class = classification.cloned().unwrap_or_else(|| "internal".into());
    if !CLASSIFICATIONS.contains(&class.as_str()) {
        return Err(bad(format!(
            "connector {connector:?}: classification {class:?} is not one of public, internal, confidential, restricted"
        )));
    }
    let sharing = sharing.cloned().unwrap_or_default();
    let mode = sharing
        .mode
        .clone()
        .unwrap_or_else(|| "organization".into());
    if !SHARING_MODES.contains(&mode.as_str()) {
        return Err(bad(format!(
            "connector {connector:?}: sharing.mode {mode:?} is not one of owner, users, organization, link"
        )));
    }
    if mode == "users" && sharing.users.is_empty() && sharing.groups.is_empty() {
        return Err(bad(format!(
            "connector {connector:?}: sharing.mode users needs `users` or `groups` to admit"
        )));
    }
    if mode == "owner" && owner.is_none_or(|o| o.is_empty()) {
        return Err(bad(format!(
            "connector {connector:?}: sharing.mode owner needs `owner`"
        )));
    }
    let mut out_tools = BTreeMap::new();
    for (name, m) in tools {
        if let Some(c) = &m.classification
            && !CLASSIFICATIONS.contains(&c.as_str())
        {
            return Err(bad(format!(
                "connector {connector:?}, tool {name:?}: classification {c:?} is not one of public, internal, confidential, restricted"
            )));
        }
        if m.read_only && m.destructive {
            return Err(bad(format!(
                "connector {connector:?}, tool {name:?}: a tool cannot be marked both read_only and destructive"
            )));
        }
        out_tools.insert(
            name.clone(),
            ValidToolMarks {
                bulk: m.bulk,
                destructive: m.destructive,
                read_only: m.read_only,
                classification: m.classification.clone(),
            },
        );
    }
    Ok(ConnectorPolicyFacts {
        owner: owner.cloned().unwrap_or_default(),
        classification: class,
        sharing_mode: mode,
        sharing_users: sharing.users,
        sharing_groups: sharing.groups,
        tools: out_tools,
    })
}
