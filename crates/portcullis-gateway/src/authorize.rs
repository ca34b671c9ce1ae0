//! The authorize stage (AZ-1, AZ-3, AZ-4, AZ-5, HC-1): every call a caller makes is decided by
//! the Cedar policy before it is forwarded, and every listing shows only what the caller may
//! use. Facts about connectors come from the config; facts about tools come from their MCP
//! annotations as listed (a tool that is not read-only is destructive unless it says otherwise,
//! as the MCP specification defaults) and the config's marks. A stage that cannot decide
//! denies.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::Connector;
use portcullis_core::Principal;
use portcullis_policy::{
    Action, AuthzDecision, AuthzRequest, Classification, ConnectorFacts, ContextFacts, Environment,
    PolicyEngine, PreparedResource, PrincipalFacts, ResourceFacts, ResourceItem, Sharing,
    SharingMode, ToolFacts, Verdict,
};

use crate::Inner;
use crate::confirm::ApprovalQueue;

/// How the gateway authorizes calls.
#[derive(Clone)]
pub struct GatewayPolicy {
    /// The policies (with the shadow set, if any).
    pub engine: PolicyEngine,
    /// The environment of tokens that name none: the gateway's own (AZ-4).
    pub environment: Environment,
    /// How long a person at the client has to answer a confirmation (HC-2).
    pub elicitation_timeout: Duration,
    /// Where calls wait for an approver when the client cannot be asked; none: such calls are
    /// denied.
    pub approvals: Option<ApprovalQueue>,
}

/// The policy facts of a configured connector.
pub fn connector_facts(c: &Connector) -> ConnectorFacts {
    let p = &c.policy;
    ConnectorFacts {
        name: c.name.clone(),
        owner: p.owner.clone(),
        environment: match c.environment {
            portcullis_config::Environment::Dev => Environment::Dev,
            portcullis_config::Environment::Test => Environment::Test,
            portcullis_config::Environment::Prod => Environment::Prod,
        },
        sharing: Sharing {
            mode: p.sharing_mode.parse().unwrap_or(SharingMode::Owner),
            users: p.sharing_users.clone(),
            groups: p.sharing_groups.clone(),
        },
        // Validated at load; an unknown value can only mean the strictest.
        classification: p
            .classification
            .parse()
            .unwrap_or(Classification::Restricted),
    }
}

/// The policy facts of a listed tool: its annotations, with the connector's marks on top.
pub(crate) fn tool_facts(c: &Connector, tool: &serde_json::Value) -> Option<ToolFacts> {
    let name = tool.get("name")?.as_str()?.to_string();
    let ann = tool.get("annotations");
    let flag = |k: &str| ann.and_then(|a| a.get(k)).and_then(|v| v.as_bool());
    let marks = c.policy.tools.get(&name);
    let read_only = marks.is_some_and(|m| m.read_only) || flag("readOnlyHint") == Some(true);
    Some(ToolFacts {
        read_only,
        // MCP: destructiveHint and openWorldHint default to true.
        destructive: marks.is_some_and(|m| m.destructive)
            || (!read_only && flag("destructiveHint") != Some(false)),
        idempotent: flag("idempotentHint") == Some(true),
        open_world: flag("openWorldHint") != Some(false),
        bulk: marks.is_some_and(|m| m.bulk),
        classification: marks
            .and_then(|m| m.classification.as_deref())
            .map(|c| c.parse().unwrap_or(Classification::Restricted)),
        name,
    })
}

/// A resource to decide on, prepared (its Cedar entities built once).
pub(crate) fn prepare(inner: &Inner, i: usize, item: ResourceItem) -> Option<PreparedResource> {
    let facts = ResourceFacts {
        connector: inner.connector_facts[i].clone(),
        item,
    };
    match PreparedResource::new(facts) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("cannot prepare a resource for policy: {e}");
            None
        }
    }
}

/// The context of a call by `p`.
pub(crate) fn context(
    inner: &Inner,
    policy: &GatewayPolicy,
    p: &Principal,
    source: Option<&str>,
    confirmed: bool,
) -> Result<ContextFacts, String> {
    let ip: IpAddr = source
        .and_then(|s| s.parse().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut c = ContextFacts::for_principal(p, ip, inner.clock.now(), policy.environment)
        .map_err(|e| e.to_string())?;
    c.confirmed = confirmed;
    Ok(c)
}

/// Decides one action on a prepared resource; anything that goes wrong denies.
pub(crate) fn decide(
    inner: &Inner,
    policy: &GatewayPolicy,
    p: &Principal,
    source: Option<&str>,
    action: Action,
    resource: Option<PreparedResource>,
    confirmed: bool,
) -> AuthzDecision {
    let deny = |e: String| AuthzDecision {
        verdict: Verdict::Deny,
        reasons: Vec::new(),
        errors: vec![e],
        shadow: None,
    };
    let Some(resource) = resource else {
        return deny("the resource could not be described to the policy".into());
    };
    let context = match context(inner, policy, p, source, confirmed) {
        Ok(c) => c,
        Err(e) => return deny(e),
    };
    policy.engine.authorize(&AuthzRequest {
        principal: PrincipalFacts::from(p),
        action,
        resource,
        context,
    })
}

/// Short reasons for the audit event: the determining policies, errors, and the shadow
/// verdict when it differs (AZ-6).
pub(crate) fn event_reasons(d: &AuthzDecision) -> Vec<String> {
    let mut out: Vec<String> = d
        .reasons
        .iter()
        .map(|r| format!("policy:{}", r.policy))
        .collect();
    if !d.errors.is_empty() {
        out.push("policy_error".into());
    }
    if let Some(s) = &d.shadow
        && s.verdict != d.verdict
    {
        out.push(format!("shadow:{}", s.verdict.as_str()));
    }
    out
}

/// What a refused caller is told: the policies that refused, in their own words.
pub(crate) fn refusal_message(what: &str, d: &AuthzDecision) -> String {
    let mut parts: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
    if !d.errors.is_empty() {
        parts.push("the policy could not decide, so the call is denied".into());
    }
    format!("{what} is refused by policy: {}", parts.join("; "))
}

/// Keeps only the listed items the caller may use (AZ-3).
pub(crate) fn filter_usable(
    inner: &Inner,
    policy: &GatewayPolicy,
    p: &Principal,
    source: Option<&str>,
    items: &mut Vec<serde_json::Value>,
    prepared: Vec<Option<PreparedResource>>,
) {
    let Ok(ctx) = context(inner, policy, p, source, false) else {
        items.clear();
        return;
    };
    let principal = PrincipalFacts::from(p);
    let ok: Vec<bool> = prepared
        .into_iter()
        .map(|r| match r {
            Some(r) => policy
                .engine
                .usable(&principal, &ctx, std::slice::from_ref(&r))
                .first()
                .copied()
                .unwrap_or(false),
            None => false,
        })
        .collect();
    let mut k = 0;
    items.retain(|_| {
        let keep = ok.get(k).copied().unwrap_or(false);
        k += 1;
        keep
    });
}

/// The prepared tool of connector `i`, cached from listings.
pub(crate) fn prepared_tool(inner: &Inner, i: usize, tool: &str) -> Option<PreparedResource> {
    inner
        .prepared_tools
        .get(&(i, tool.to_string()))
        .map(|p| p.as_ref().clone())
}

/// Remembers a listed tool's prepared entity.
pub(crate) fn remember_tool(inner: &Inner, i: usize, tool: &serde_json::Value) {
    let c = &inner.config.connectors[i];
    if let Some(facts) = tool_facts(c, tool) {
        let name = facts.name.clone();
        if let Some(p) = prepare(inner, i, ResourceItem::Tool(facts)) {
            inner.prepared_tools.insert((i, name), Arc::new(p));
        }
    }
}
