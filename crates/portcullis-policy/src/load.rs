//! Loading policy files (AZ-6): parse each, name each policy by its `@id`, check the obligations,
//! and validate the whole set strictly against the schema. All or nothing: any error refuses the
//! whole set, with every diagnostic at its file, line and column.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{Effect, PolicyId, PolicySet, ValidationMode, Validator};
use miette::Diagnostic;

use crate::PolicyError;
use crate::error::{PolicyDiagnostic, line_column};
use crate::schema::schema;

/// The name of the embedded default policy set, as a [`PolicySource`] name.
pub const BASELINE_NAME: &str = "<baseline>";

/// The embedded default policies' text.
pub const BASELINE_TEXT: &str = include_str!("../policies/baseline.cedar");

/// The only obligation the gateway can fulfil: a human's confirmation (HC-1).
pub const OBLIGATION_CONFIRM: &str = "confirm";

/// One policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Where it came from: a file path, or [`BASELINE_NAME`].
    pub name: String,
    /// Its Cedar text.
    pub text: String,
}

impl PolicySource {
    /// A source from a name and its text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The embedded default.
    pub fn baseline() -> Self {
        Self::new(BASELINE_NAME, BASELINE_TEXT)
    }

    /// Reads a file; the error names it.
    pub fn read(path: &std::path::Path) -> Result<Self, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::Policies(vec![PolicyDiagnostic {
                source: name.clone(),
                line: 0,
                column: 0,
                policy: None,
                message: format!("cannot read the policy file: {e}"),
                help: Some("check the path and its permissions".into()),
            }])
        })?;
        Ok(Self { name, text })
    }
}

/// What we keep about each policy, beside Cedar's set.
#[derive(Debug, Clone)]
pub struct PolicyInfo {
    /// Its id (`@id`, or `<file>#<n>` when it has none).
    pub id: String,
    /// The file it came from.
    pub source: String,
    /// 1-based line where it starts, 0 when unknown.
    pub line: usize,
    /// Permit or forbid.
    pub effect: Effect,
    /// Its `@reason`, when it has one.
    pub reason: Option<String>,
    /// Its `@obligation`, when it has one (only `confirm` loads).
    pub obligation: Option<String>,
}

/// A validated set, with what we know of each policy.
#[derive(Debug, Clone)]
pub(crate) struct LoadedSet {
    pub(crate) set: PolicySet,
    pub(crate) info: HashMap<PolicyId, PolicyInfo>,
}

fn first_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn diag(source: &PolicySource, d: &dyn Diagnostic, policy: Option<String>) -> PolicyDiagnostic {
    let (line, column) = first_offset(d).map_or((0, 0), |o| line_column(&source.text, o));
    PolicyDiagnostic {
        source: source.name.clone(),
        line,
        column,
        policy,
        message: d.to_string(),
        help: d.help().map(|h| h.to_string()),
    }
}

/// Parses and validates `sources` as one set.
pub(crate) fn load(sources: &[PolicySource]) -> Result<LoadedSet, PolicyError> {
    let mut diags = Vec::new();
    let mut set = PolicySet::new();
    let mut info: HashMap<PolicyId, PolicyInfo> = HashMap::new();
    // For each policy id, which source it came from, to place validation errors.
    let mut origin: HashMap<PolicyId, usize> = HashMap::new();
    for (si, source) in sources.iter().enumerate() {
        let parsed = match PolicySet::from_str(&source.text) {
            Ok(p) => p,
            Err(errs) => {
                diags.extend(errs.iter().map(|e| diag(source, e, None)));
                continue;
            }
        };
        if let Some(t) = parsed.templates().next() {
            diags.push(PolicyDiagnostic {
                source: source.name.clone(),
                line: 0,
                column: 0,
                policy: Some(t.id().to_string()),
                message:
                    "templates (policies with ?principal or ?resource slots) are not supported"
                        .into(),
                help: Some("write a static policy that names the principal or resource".into()),
            });
            continue;
        }
        // Cedar numbers a file's policies policy0, policy1... in order: keep that order.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (n, p) in policies.into_iter().enumerate() {
            let line = policy_line(&source.text, p);
            let id = p
                .annotation("id")
                .map_or_else(|| format!("{}#{n}", source.name), str::to_string);
            let at = |message: String, help: &str| PolicyDiagnostic {
                source: source.name.clone(),
                line,
                column: 1,
                policy: Some(id.clone()),
                message,
                help: Some(help.to_string()),
            };
            if id.is_empty() {
                diags.push(at(
                    "empty @id".into(),
                    "give each policy a unique, non-empty @id",
                ));
                continue;
            }
            let obligation = p.annotation("obligation").map(str::to_string);
            if let Some(o) = &obligation {
                if o != OBLIGATION_CONFIRM {
                    diags.push(at(
                        format!("unknown obligation `{o}`: the gateway cannot fulfil it"),
                        "the only obligation is @obligation(\"confirm\")",
                    ));
                    continue;
                }
                if p.effect() != Effect::Forbid {
                    diags.push(at(
                        "@obligation is only meaningful on a forbid policy".into(),
                        "write `@obligation(\"confirm\") forbid (...) unless { context.confirmed };`",
                    ));
                    continue;
                }
            }
            let pid = PolicyId::new(&id);
            if let Some(prev) = info.get(&pid) {
                diags.push(at(
                    format!(
                        "duplicate policy id `{id}` (first at {}:{})",
                        prev.source, prev.line
                    ),
                    "give each policy a unique @id",
                ));
                continue;
            }
            info.insert(
                pid.clone(),
                PolicyInfo {
                    id: id.clone(),
                    source: source.name.clone(),
                    line,
                    effect: p.effect(),
                    reason: p.annotation("reason").map(str::to_string),
                    obligation,
                },
            );
            origin.insert(pid.clone(), si);
            if let Err(e) = set.add(p.new_id(pid)) {
                diags.push(at(e.to_string(), "give each policy a unique @id"));
            }
        }
    }
    if !diags.is_empty() {
        return Err(PolicyError::Policies(diags));
    }
    // AZ-6: strict validation against the published schema; warnings (such as an impossible
    // policy) are not errors, but every error refuses the set.
    let result = Validator::new(schema().clone()).validate(&set, ValidationMode::Strict);
    for e in result.validation_errors() {
        let pid = e.policy_id();
        let source = origin.get(pid).map_or(&sources[0], |i| &sources[*i]);
        let d = diag(source, e, Some(pid.to_string()));
        // Cedar checks a policy once per resource type it may apply to, and says the same thing
        // for each: once is enough.
        let seen = diags.iter().any(|o: &PolicyDiagnostic| {
            (&o.source, o.line, o.column, &o.policy, &o.help)
                == (&d.source, d.line, d.column, &d.policy, &d.help)
        });
        if !seen {
            diags.push(d);
        }
    }
    if !diags.is_empty() {
        return Err(PolicyError::Policies(diags));
    }
    Ok(LoadedSet { set, info })
}

/// The line a policy starts on. Cedar's public API gives no position for a parsed policy, so we
/// find its annotations' or head's text; 0 when not found.
fn policy_line(text: &str, p: &cedar_policy::Policy) -> usize {
    // `Display` of a policy parsed from text is that text, exactly as written.
    let own = p.to_string();
    text.find(own.trim()).map_or(0, |o| line_column(text, o).0)
}
