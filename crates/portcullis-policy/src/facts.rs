//! The facts a decision is made from (AZ-1), in plain Rust types that the gateway fills in: who
//! calls ([`PrincipalFacts`]), what they do ([`Action`]), on what ([`ResourceFacts`]) and in which
//! circumstances ([`ContextFacts`]). Turning them into Cedar entities is `entities`' job.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use portcullis_core::Principal;
use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// What the principal does (the schema's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// MCP `tools/call`, on a tool.
    CallTool,
    /// MCP `resources/read`, on a resource.
    ReadResource,
    /// MCP `prompts/get`, on a prompt.
    GetPrompt,
    /// Seeing a connector in listings, on a connector.
    List,
}

impl Action {
    /// Every action, in schema order.
    pub const ALL: [Action; 4] = [
        Action::CallTool,
        Action::ReadResource,
        Action::GetPrompt,
        Action::List,
    ];

    /// The action's id in the schema (`call_tool`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallTool => "call_tool",
            Self::ReadResource => "read_resource",
            Self::GetPrompt => "get_prompt",
            Self::List => "list",
        }
    }

    /// The kind of resource the action applies to.
    pub fn resource_kind(self) -> ResourceKind {
        match self {
            Self::CallTool => ResourceKind::Tool,
            Self::ReadResource => ResourceKind::Resource,
            Self::GetPrompt => ResourceKind::Prompt,
            Self::List => ResourceKind::Connector,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                PolicyError::facts(
                    "action",
                    format!(
                        "`{s}` is not an action; use call_tool, read_resource, get_prompt or list"
                    ),
                )
            })
    }
}

/// An environment (AZ-4): connectors and tokens each belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Development.
    Dev,
    /// Test.
    Test,
    /// Production (the default).
    #[default]
    Prod,
}

impl Environment {
    /// `dev`, `test` or `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
            Self::Prod => "prod",
        }
    }
}

impl FromStr for Environment {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dev" => Ok(Self::Dev),
            "test" => Ok(Self::Test),
            "prod" => Ok(Self::Prod),
            _ => Err(PolicyError::facts(
                "environment",
                format!("`{s}` is not an environment; use dev, test or prod"),
            )),
        }
    }
}

/// A data classification, lowest to highest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// May be published.
    Public,
    /// For the organization (the default).
    #[default]
    Internal,
    /// For those who need it: customer records, contracts.
    Confidential,
    /// The most sensitive: payment data, health data, secrets.
    Restricted,
}

impl Classification {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Confidential => "confidential",
            Self::Restricted => "restricted",
        }
    }
}

impl FromStr for Classification {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "internal" => Ok(Self::Internal),
            "confidential" => Ok(Self::Confidential),
            "restricted" => Ok(Self::Restricted),
            _ => Err(PolicyError::facts(
                "classification",
                format!(
                    "`{s}` is not a classification; use public, internal, confidential or restricted"
                ),
            )),
        }
    }
}

/// Who may use a connector besides its owner (AZ-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingMode {
    /// The owner only.
    Owner,
    /// The owner, the named users and the members of the named groups.
    Users,
    /// Every member of the organization: the default for a connector without sharing config.
    #[default]
    Organization,
    /// Anyone with the link, guests included: never a default, set per connector only.
    Link,
}

impl SharingMode {
    /// The mode's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Users => "users",
            Self::Organization => "organization",
            Self::Link => "link",
        }
    }
}

impl FromStr for SharingMode {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Self::Owner),
            "users" => Ok(Self::Users),
            "organization" => Ok(Self::Organization),
            "link" => Ok(Self::Link),
            _ => Err(PolicyError::facts(
                "sharing.mode",
                format!("`{s}` is not a sharing mode; use owner, users, organization or link"),
            )),
        }
    }
}

/// A connector's sharing record (AZ-5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    /// The mode.
    #[serde(default)]
    pub mode: SharingMode,
    /// User subjects admitted in mode `users`.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names admitted in mode `users`.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Who calls: what the verified token says, plus organization membership.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalFacts {
    /// The stable subject id (`sub`).
    pub subject: String,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Role names (AZ-2), see [`crate::roles`].
    #[serde(default)]
    pub roles: Vec<String>,
    /// The OAuth client id.
    #[serde(default = "default_client")]
    pub client_id: String,
    /// Whether the user belongs to this organization (false for a guest).
    #[serde(default = "yes")]
    pub member: bool,
}

fn default_client() -> String {
    "unknown".to_string()
}

fn yes() -> bool {
    true
}

impl PrincipalFacts {
    /// A member of the organization with these roles and no groups.
    pub fn user(subject: impl Into<String>, roles: &[&str]) -> Self {
        Self {
            subject: subject.into(),
            groups: Vec::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            client_id: default_client(),
            member: true,
        }
    }

    /// The facts of a verified token's principal; `member` is whether its issuer's users belong
    /// to this organization (false for a guest issuer).
    pub fn from_principal(p: &Principal, member: bool) -> Self {
        Self {
            subject: p.subject.clone(),
            groups: p.groups.clone(),
            roles: p.roles.clone(),
            client_id: p.client_id.clone(),
            member,
        }
    }
}

impl From<&Principal> for PrincipalFacts {
    /// A principal of the organization (`member: true`).
    fn from(p: &Principal) -> Self {
        Self::from_principal(p, true)
    }
}

/// One connector, as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFacts {
    /// Its name (`crm`).
    pub name: String,
    /// Its owner's subject.
    #[serde(default)]
    pub owner: String,
    /// Its environment.
    #[serde(default)]
    pub environment: Environment,
    /// Who may use it.
    #[serde(default)]
    pub sharing: Sharing,
    /// Its data classification.
    #[serde(default)]
    pub classification: Classification,
}

impl ConnectorFacts {
    /// A production connector shared with the organization, classified internal.
    pub fn new(name: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
            environment: Environment::Prod,
            sharing: Sharing::default(),
            classification: Classification::Internal,
        }
    }
}

/// A tool, with its MCP annotations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolFacts {
    /// Its name on the connector.
    pub name: String,
    /// `readOnlyHint`.
    #[serde(default)]
    pub read_only: bool,
    /// `destructiveHint` (or marked destructive by the registry).
    #[serde(default)]
    pub destructive: bool,
    /// `idempotentHint`.
    #[serde(default)]
    pub idempotent: bool,
    /// `openWorldHint`.
    #[serde(default)]
    pub open_world: bool,
    /// A bulk-extraction tool (returns a whole data set).
    #[serde(default)]
    pub bulk: bool,
    /// Its classification, when it differs from the connector's.
    #[serde(default)]
    pub classification: Option<Classification>,
}

impl ToolFacts {
    /// A tool with no annotations (so: a write tool, needing `:write`).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The scope level the tool needs (AUTH-5): `admin` for destructive tools, `read` for
    /// read-only ones, `write` for the rest.
    pub fn scope_level(&self) -> &'static str {
        if self.destructive {
            "admin"
        } else if self.read_only {
            "read"
        } else {
            "write"
        }
    }
}

/// What the action is done on: a connector (for `list`), or one of its tools, resources or
/// prompts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceFacts {
    /// The connector, itself or as the parent.
    pub connector: ConnectorFacts,
    /// Which item of it.
    pub item: ResourceItem,
}

/// The item of a connector a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceItem {
    /// The connector itself.
    Connector,
    /// A tool.
    Tool(ToolFacts),
    /// An MCP resource, by URI.
    Resource {
        /// Its URI.
        uri: String,
        /// Its classification, when it differs from the connector's.
        classification: Option<Classification>,
    },
    /// An MCP prompt, by name.
    Prompt {
        /// Its name.
        name: String,
    },
}

/// The kinds of resource, one per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `Portcullis::Connector`.
    Connector,
    /// `Portcullis::Tool`.
    Tool,
    /// `Portcullis::Resource`.
    Resource,
    /// `Portcullis::Prompt`.
    Prompt,
}

impl ResourceKind {
    /// The entity type's name without its namespace.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Connector => "Connector",
            Self::Tool => "Tool",
            Self::Resource => "Resource",
            Self::Prompt => "Prompt",
        }
    }
}

impl ResourceFacts {
    /// The connector itself.
    pub fn connector(connector: ConnectorFacts) -> Self {
        Self {
            connector,
            item: ResourceItem::Connector,
        }
    }

    /// One of its tools.
    pub fn tool(connector: ConnectorFacts, tool: ToolFacts) -> Self {
        Self {
            connector,
            item: ResourceItem::Tool(tool),
        }
    }

    /// Which kind of resource this is.
    pub fn kind(&self) -> ResourceKind {
        match self.item {
            ResourceItem::Connector => ResourceKind::Connector,
            ResourceItem::Tool(_) => ResourceKind::Tool,
            ResourceItem::Resource { .. } => ResourceKind::Resource,
            ResourceItem::Prompt { .. } => ResourceKind::Prompt,
        }
    }

    /// The entity id: the connector's name, or `connector/item`.
    pub fn entity_id(&self) -> String {
        let c = &self.connector.name;
        match &self.item {
            ResourceItem::Connector => c.clone(),
            ResourceItem::Tool(t) => format!("{c}/{}", t.name),
            ResourceItem::Resource { uri, .. } => format!("{c}/{uri}"),
            ResourceItem::Prompt { name } => format!("{c}/{name}"),
        }
    }

    /// The scope the request needs (AUTH-5): `<connector>:<level>`.
    pub fn required_scope(&self) -> String {
        let level = match &self.item {
            ResourceItem::Tool(t) => t.scope_level(),
            _ => "read",
        };
        format!("{}:{level}", self.connector.name)
    }
}

/// When the call happens, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeFacts {
    /// 0 to 23.
    pub hour: u8,
    /// 0 (Monday) to 6 (Sunday).
    pub weekday: u8,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

impl TimeFacts {
    /// The time facts of an instant; take it from the injected `portcullis_core::Clock`.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self {
            hour: t.hour() as u8,
            weekday: t.weekday().num_days_from_monday() as u8,
            unix: t.timestamp(),
        }
    }
}

/// The circumstances of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextFacts {
    /// The token's scopes, expanded to the levels they imply (see [`expand_scopes`]).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the call came from.
    pub source_ip: IpAddr,
    /// When.
    pub time: TimeFacts,
    /// The detectors' risk score, 0 to 100.
    #[serde(default)]
    pub risk: u8,
    /// Whether a human confirmed this exact call (HC-1).
    #[serde(default)]
    pub confirmed: bool,
    /// The environment the token is bound to (AZ-4).
    pub token_environment: Environment,
}

impl ContextFacts {
    /// The context of a call by `principal` from `source_ip` at `now` (from the injected clock);
    /// a token that names no environment belongs to `default_environment` (the gateway's own).
    pub fn for_principal(
        principal: &Principal,
        source_ip: IpAddr,
        now: DateTime<Utc>,
        default_environment: Environment,
    ) -> Result<Self, PolicyError> {
        let token_environment = match &principal.environment {
            Some(e) => e.parse()?,
            None => default_environment,
        };
        Ok(Self {
            scopes: expand_scopes(&principal.scopes),
            source_ip,
            time: TimeFacts::at(now),
            risk: 0,
            confirmed: false,
            token_environment,
        })
    }
}

/// The scopes `granted` implies, itself included: `c:admin` adds `c:write` and `c:read`, and
/// `c:write` adds `c:read` (the levels of `portcullis_core::scope_covers`). Sorted, no duplicates.
pub fn expand_scopes(granted: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(granted.len() * 3);
    for s in granted {
        out.push(s.clone());
        if let Some((c, level)) = s.rsplit_once(':') {
            let implied: &[&str] = match level {
                "admin" => &["write", "read"],
                "write" => &["read"],
                _ => &[],
            };
            out.extend(implied.iter().map(|l| format!("{c}:{l}")));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_expand_to_implied_levels() {
        let got = expand_scopes(&["crm:admin".into(), "wiki:write".into(), "x:custom".into()]);
        assert_eq!(
            got,
            [
                "crm:admin",
                "crm:read",
                "crm:write",
                "wiki:read",
                "wiki:write",
                "x:custom"
            ]
        );
        for s in &got {
            assert!(
                ["crm:admin", "wiki:write", "x:custom"]
                    .iter()
                    .any(|g| portcullis_core::scope_covers(g, s))
            );
        }
    }

    #[test]
    fn tool_scope_levels_follow_annotations() {
        let c = ConnectorFacts::new("crm", "alice");
        let mut t = ToolFacts::named("x");
        assert_eq!(
            ResourceFacts::tool(c.clone(), t.clone()).required_scope(),
            "crm:write"
        );
        t.read_only = true;
        assert_eq!(
            ResourceFacts::tool(c.clone(), t.clone()).required_scope(),
            "crm:read"
        );
        t.destructive = true;
        assert_eq!(
            ResourceFacts::tool(c.clone(), t).required_scope(),
            "crm:admin"
        );
        assert_eq!(ResourceFacts::connector(c).required_scope(), "crm:read");
    }

    #[test]
    fn time_facts_use_utc_monday_zero() {
        // 2026-11-30 is a Monday.
        let t = DateTime::parse_from_rfc3339("2026-11-30T13:05:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            TimeFacts::at(t),
            TimeFacts {
                hour: 13,
                weekday: 0,
                unix: t.timestamp()
            }
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_field() {
        let e = "staging".parse::<Environment>().unwrap_err().to_string();
        assert!(
            e.contains("environment") && e.contains("dev, test or prod"),
            "{e}"
        );
        assert!("public_link".parse::<SharingMode>().is_err());
        assert!("secret".parse::<Classification>().is_err());
        assert!("delete".parse::<Action>().is_err());
    }
}
