//! Policy test files (AZ-6): YAML files of cases, each a call and the verdict it must get, run by
//! `portcullis policy test FILE` and by this crate's tests for the baseline.
//!
//! ```yaml
//! connectors:                  # the connectors the cases name, with their tools
//!   crm:
//!     owner: alice
//!     environment: prod        # dev, test or prod (default prod)
//!     sharing: { mode: organization }    # owner, users (+ users, groups), organization, link
//!     classification: confidential
//!     tools:
//!       search_customers: { read_only: true }
//!       delete_customer: { destructive: true }
//!     resources: ["crm://customers/schema"]
//!     prompts: [summarize]
//! cases:
//!   - name: end user searches
//!     principal: { subject: bob, roles: [end_user], groups: [sales] }
//!     action: call_tool        # call_tool, read_resource, get_prompt, list
//!     resource: crm/search_customers   # `connector/item`, or `connector` for list
//!     context: { scopes: ["crm:read"] }  # granted scopes; expanded as the gateway does
//!     expect: allow            # allow, deny or confirm
//!     policies: [use-connectors]         # optional: ids that must be among the reasons
//! ```
//!
//! A case's context defaults to: no scopes, source 127.0.0.1, 2026-01-05T12:00:00Z (a Monday),
//! risk 0, not confirmed, a prod token.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::engine::{AuthzDecision, AuthzRequest, PolicyEngine, Verdict};
use crate::entities::PreparedResource;
use crate::facts::{
    Action, Classification, ConnectorFacts, ContextFacts, Environment, PrincipalFacts,
    ResourceFacts, ResourceItem, Sharing, TimeFacts, ToolFacts, expand_scopes,
};

/// A test file that cannot be used: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct TestFileError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    connectors: BTreeMap<String, RawConnector>,
    cases: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    #[serde(default)]
    owner: String,
    #[serde(default)]
    environment: Environment,
    #[serde(default)]
    sharing: Sharing,
    #[serde(default)]
    classification: Classification,
    #[serde(default)]
    tools: BTreeMap<String, RawTool>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    prompts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    open_world: bool,
    #[serde(default)]
    bulk: bool,
    #[serde(default)]
    classification: Option<Classification>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    principal: PrincipalFacts,
    action: Action,
    resource: String,
    #[serde(default)]
    context: RawContext,
    expect: Verdict,
    #[serde(default)]
    policies: Vec<String>,
}

/// The parts of a context a case may set; the rest take the defaults above.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    /// Granted scopes (expanded before the decision).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Source address.
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
    /// When, RFC 3339.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Risk 0-100.
    #[serde(default)]
    pub risk: u8,
    /// Confirmed by a human.
    #[serde(default)]
    pub confirmed: bool,
    /// The token's environment.
    #[serde(default)]
    pub token_environment: Environment,
}

type RawContext = CaseContext;

impl CaseContext {
    /// The context facts, with the defaults filled in and the scopes expanded.
    pub fn facts(&self) -> ContextFacts {
        // 2026-01-05T12:00:00Z, a Monday noon: a fixed instant keeps the cases deterministic.
        let default_at = DateTime::from_timestamp(1_767_614_400, 0).unwrap_or_default();
        ContextFacts {
            scopes: expand_scopes(&self.scopes),
            source_ip: self.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            time: TimeFacts::at(self.at.unwrap_or(default_at)),
            risk: self.risk,
            confirmed: self.confirmed,
            token_environment: self.token_environment,
        }
    }
}

/// One case, ready to run.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// The line it starts on.
    pub line: u64,
    /// The call.
    pub request: AuthzRequest,
    /// The verdict it must get.
    pub expect: Verdict,
    /// Policy ids that must be among the reasons.
    pub policies: Vec<String>,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Its name.
    pub file: String,
    /// Its cases, in order.
    pub cases: Vec<TestCase>,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The line it starts on.
    pub line: u64,
    /// What it expected.
    pub expect: Verdict,
    /// What the engine decided.
    pub decision: AuthzDecision,
    /// Expected policy ids missing from the reasons.
    pub missing_policies: Vec<String>,
}

impl CaseResult {
    /// Whether the decision matched.
    pub fn passed(&self) -> bool {
        self.decision.verdict == self.expect && self.missing_policies.is_empty()
    }
}

/// Builds the resource `spec` (`connector` or `connector/item`) for `action` from the file's
/// connectors.
fn resource_for(
    connectors: &BTreeMap<String, RawConnector>,
    action: Action,
    spec: &str,
) -> Result<ResourceFacts, String> {
    let (cname, item) = match spec.split_once('/') {
        Some((c, i)) => (c, Some(i)),
        None => (spec, None),
    };
    let c = connectors.get(cname).ok_or_else(|| {
        format!("resource `{spec}`: connector `{cname}` is not under `connectors:`")
    })?;
    let connector = ConnectorFacts {
        name: cname.to_string(),
        owner: c.owner.clone(),
        environment: c.environment,
        sharing: c.sharing.clone(),
        classification: c.classification,
    };
    let item = match (action, item) {
        (Action::List, None) => ResourceItem::Connector,
        (Action::List, Some(_)) => {
            return Err(format!(
                "resource `{spec}`: list applies to a connector; write `{cname}`"
            ));
        }
        (_, None) => {
            return Err(format!(
                "resource `{spec}`: {action} needs `{cname}/<name>`"
            ));
        }
        (Action::CallTool, Some(t)) => {
            let raw = c.tools.get(t).ok_or_else(|| {
                format!("resource `{spec}`: tool `{t}` is not under `connectors: {cname}: tools:`")
            })?;
            ResourceItem::Tool(ToolFacts {
                name: t.to_string(),
                read_only: raw.read_only,
                destructive: raw.destructive,
                idempotent: raw.idempotent,
                open_world: raw.open_world,
                bulk: raw.bulk,
                classification: raw.classification,
            })
        }
        (Action::ReadResource, Some(u)) => {
            if !c.resources.iter().any(|r| r == u) {
                return Err(format!(
                    "resource `{spec}`: `{u}` is not under `connectors: {cname}: resources:`"
                ));
            }
            ResourceItem::Resource {
                uri: u.to_string(),
                classification: None,
            }
        }
        (Action::GetPrompt, Some(p)) => {
            if !c.prompts.iter().any(|r| r == p) {
                return Err(format!(
                    "resource `{spec}`: `{p}` is not under `connectors: {cname}: prompts:`"
                ));
            }
            ResourceItem::Prompt {
                name: p.to_string(),
            }
        }
    };
    Ok(ResourceFacts { connector, item })
}

impl TestFile {
    /// Parses a test file; the error names the line and column.
    pub fn parse(file: &str, text: &str) -> Result<Self, TestFileError> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let mut message = e.to_string().lines().next().unwrap_or_default().to_string();
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            TestFileError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        })?;
        let mut cases = Vec::with_capacity(raw.cases.len());
        for c in raw.cases {
            let line = c.referenced.line();
            let column = c.referenced.column();
            let err = |message: String| TestFileError {
                file: file.to_string(),
                line,
                column,
                message,
            };
            let case = c.value;
            let facts = resource_for(&raw.connectors, case.action, &case.resource)
                .map_err(|m| err(format!("case `{}`: {m}", case.name)))?;
            let resource = PreparedResource::new(facts)
                .map_err(|e| err(format!("case `{}`: {e}", case.name)))?;
            cases.push(TestCase {
                name: case.name,
                line,
                request: AuthzRequest {
                    principal: case.principal,
                    action: case.action,
                    resource,
                    context: case.context.facts(),
                },
                expect: case.expect,
                policies: case.policies,
            });
        }
        if cases.is_empty() {
            return Err(TestFileError {
                file: file.to_string(),
                line: 0,
                column: 0,
                message: "no cases: add at least one under `cases:`".into(),
            });
        }
        Ok(Self {
            file: file.to_string(),
            cases,
        })
    }

    /// Runs every case against `engine`.
    pub fn run(&self, engine: &PolicyEngine) -> Vec<CaseResult> {
        self.cases
            .iter()
            .map(|c| {
                let decision = engine.authorize(&c.request);
                let missing_policies = c
                    .policies
                    .iter()
                    .filter(|p| !decision.reasons.iter().any(|r| &r.policy == *p))
                    .cloned()
                    .collect();
                CaseResult {
                    name: c.name.clone(),
                    line: c.line,
                    expect: c.expect,
                    decision,
                    missing_policies,
                }
            })
            .collect()
    }
}
