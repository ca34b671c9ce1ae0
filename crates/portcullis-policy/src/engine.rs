//! The policy engine (AZ-1, AZ-6, HC-1): one validated policy set (and an optional shadow set),
//! asked for a verdict on each call. It fails closed: a fact that cannot be turned into an entity,
//! a policy that errors, anything unexpected, is a deny with the error said.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use cedar_policy::{Authorizer, Decision, Effect, PolicyId, PolicySet, Response};
use serde::Serialize;

use crate::PolicyError;
use crate::entities::{BuiltCall, PreparedPrincipal, PreparedResource, StoreCache, check_context};
use crate::facts::{Action, ContextFacts, PrincipalFacts};
use crate::index::PolicyIndex;
use crate::load::{LoadedSet, OBLIGATION_CONFIRM, PolicyInfo, PolicySource, load};
use crate::plan::{Inputs, PlanCache};

/// The outcome of a decision, most restrictive first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Refused.
    Deny,
    /// Refused only by `@obligation("confirm")` policies, and allowed once a human confirms
    /// (evaluated again with `context.confirmed = true`): ask the human (HC-1, HC-2).
    Confirm,
    /// Allowed.
    Allow,
}

impl Verdict {
    /// `allow`, `deny` or `confirm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Confirm => "confirm",
        }
    }

    /// Whether a listing shows the item (AZ-3): what may be used, with or without confirmation.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Allow | Self::Confirm)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One policy that determined a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The policy's id (`@id`), or [`DEFAULT_DENY`].
    pub policy: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// Its `@reason`.
    pub reason: Option<String>,
    /// Its `@obligation`, when it has one.
    pub obligation: Option<String>,
    /// The file it came from, and the line it starts on (0 when unknown).
    pub source: String,
    /// See `source`.
    pub line: usize,
}

/// Above this many cached principals the cache is emptied and refilled (a bound on memory).
const MAX_PRINCIPALS: usize = 16_384;

/// The id given to "no policy permits this" (Cedar's default deny), so that it reads in the log.
pub const DEFAULT_DENY: &str = "default-deny";

impl Reason {
    pub(crate) fn default_deny() -> Self {
        Self {
            policy: DEFAULT_DENY.into(),
            effect: "forbid",
            reason: Some("no policy permits this (least privilege: deny unless granted)".into()),
            obligation: None,
            source: "<cedar>".into(),
            line: 0,
        }
    }

    pub(crate) fn of(info: &PolicyInfo) -> Self {
        Self {
            policy: info.id.clone(),
            effect: if info.effect == Effect::Permit {
                "permit"
            } else {
                "forbid"
            },
            reason: info.reason.clone(),
            obligation: info.obligation.clone(),
            source: info.source.clone(),
            line: info.line,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.effect, self.policy)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

/// A verdict with the policies that made it and any errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The determining policies: the permits for an allow, the forbids for a deny or confirm.
    pub reasons: Vec<Reason>,
    /// Errors met (each one made the verdict a deny).
    pub errors: Vec<String>,
}

impl Outcome {
    fn deny_error(e: impl fmt::Display) -> Self {
        Self {
            verdict: Verdict::Deny,
            reasons: Vec::new(),
            errors: vec![e.to_string()],
        }
    }
}

/// The decision on one call: the enforced outcome, and what a shadow set would have said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthzDecision {
    /// What to do.
    pub verdict: Verdict,
    /// Why: the determining policies.
    pub reasons: Vec<Reason>,
    /// Errors met; any error means [`Verdict::Deny`].
    pub errors: Vec<String>,
    /// The shadow set's outcome (AZ-6), not enforced: record it beside the decision.
    pub shadow: Option<Outcome>,
}

/// One call to decide.
#[derive(Debug, Clone)]
pub struct AuthzRequest {
    /// Who.
    pub principal: PrincipalFacts,
    /// Does what.
    pub action: Action,
    /// On what (prepared once per resource).
    pub resource: PreparedResource,
    /// In which circumstances.
    pub context: ContextFacts,
}

/// A loaded set with its index and its plans.
#[derive(Debug)]
struct Bundle {
    loaded: LoadedSet,
    index: PolicyIndex,
    /// Per (principal, resource, action): see [`crate::plan`].
    plans: PlanCache,
}

impl Bundle {
    fn new(sources: &[PolicySource]) -> Result<Self, PolicyError> {
        let loaded = load(sources)?;
        let index = PolicyIndex::new(&loaded.set);
        Ok(Self {
            loaded,
            index,
            plans: PlanCache::default(),
        })
    }

    /// The outcome by this call's plan; `None` when it has none, or its plan cannot evaluate
    /// this context: then Cedar's path decides ([`Bundle::decide`]).
    fn decide_planned(
        &self,
        authorizer: &Authorizer,
        stores: &StoreCache,
        principal: &Arc<PreparedPrincipal>,
        req: &AuthzRequest,
    ) -> Option<Outcome> {
        let inputs = Inputs {
            loaded: &self.loaded,
            index: &self.index,
            authorizer,
            stores,
        };
        let plan = self
            .plans
            .get_or_make(&inputs, principal, req.action, &req.resource)?;
        let (verdict, reasons) = plan.decide(&req.context)?;
        Some(Outcome {
            verdict,
            reasons,
            errors: Vec::new(),
        })
    }

    fn reasons(&self, resp: &Response) -> Vec<Reason> {
        let mut r: Vec<Reason> = resp
            .diagnostics()
            .reason()
            .filter_map(|id| self.loaded.info.get(id).map(Reason::of))
            .collect();
        // Cedar gives a set: sort, so that logs and tests are stable.
        r.sort_by(|a, b| a.policy.cmp(&b.policy));
        r
    }

    fn is_confirm_only(&self, resp: &Response) -> bool {
        let mut ids = resp.diagnostics().reason().peekable();
        ids.peek().is_some()
            && ids.all(|id: &PolicyId| {
                self.loaded.info.get(id).is_some_and(|i| {
                    i.effect == Effect::Forbid
                        && i.obligation.as_deref() == Some(OBLIGATION_CONFIRM)
                })
            })
    }

    fn decide(
        &self,
        authorizer: &Authorizer,
        call: &BuiltCall,
        req: &AuthzRequest,
        indexed: bool,
    ) -> Outcome {
        let selected = indexed.then(|| {
            self.index.select(
                &call.principal.keys,
                req.action,
                &call.action,
                &req.resource,
            )
        });
        let set: &PolicySet = selected.as_ref().map_or(self.index.full(), |s| &s.set);
        let resp = authorizer.is_authorized(&call.request, set, &call.entities);
        let errors: Vec<String> = resp.diagnostics().errors().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            // Cedar skips a policy that errors; we do not: an error anywhere is a deny.
            return Outcome {
                verdict: Verdict::Deny,
                reasons: self.reasons(&resp),
                errors,
            };
        }
        match resp.decision() {
            Decision::Allow => Outcome {
                verdict: Verdict::Allow,
                reasons: self.reasons(&resp),
                errors,
            },
            Decision::Deny if resp.diagnostics().reason().next().is_none() => Outcome {
                verdict: Verdict::Deny,
                reasons: vec![Reason::default_deny()],
                errors,
            },
            Decision::Deny if !req.context.confirmed && self.is_confirm_only(&resp) => {
                // HC-1: only confirmation obligations refuse it; would a confirmation suffice?
                // Only the policies a confirmation can change, or that grant (see `index`).
                let confirmation = selected.as_ref().map(|s| self.index.confirmation(s));
                let again_set: &PolicySet = confirmation.as_deref().unwrap_or(set);
                let again = match call.confirmed(&req.context, &req.principal.client_id) {
                    Ok(r) => authorizer.is_authorized(&r, again_set, &call.entities),
                    Err(e) => return Outcome::deny_error(e),
                };
                let errors: Vec<String> = again
                    .diagnostics()
                    .errors()
                    .map(|e| e.to_string())
                    .collect();
                if !errors.is_empty() {
                    return Outcome {
                        verdict: Verdict::Deny,
                        reasons: self.reasons(&again),
                        errors,
                    };
                }
                match again.decision() {
                    Decision::Allow => Outcome {
                        verdict: Verdict::Confirm,
                        reasons: self.reasons(&resp),
                        errors,
                    },
                    Decision::Deny => {
                        let mut reasons = self.reasons(&again);
                        if reasons.is_empty() {
                            reasons.push(Reason::default_deny());
                        }
                        Outcome {
                            verdict: Verdict::Deny,
                            reasons,
                            errors,
                        }
                    }
                }
            }
            Decision::Deny => Outcome {
                verdict: Verdict::Deny,
                reasons: self.reasons(&resp),
                errors,
            },
        }
    }
}

struct Inner {
    /// Principals' entities by their facts (bounded; see `principal`).
    principals: Arc<RwLock<HashMap<PrincipalFacts, Arc<PreparedPrincipal>>>>,
    /// Calls' entity stores by principal and resource (bounded; see [`StoreCache`]).
    stores: Arc<StoreCache>,
    active: Arc<Bundle>,
    shadow: Option<Arc<Bundle>>,
    authorizer: Authorizer,
    indexed: bool,
    /// Decide by per-call plans where one can be made (see [`crate::plan`]); only with the index
    /// and without request validation.
    planned: bool,
    validate_requests: bool,
}

/// The policy engine: cheap to clone (shared), immutable; load a new one to change policies.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

impl fmt::Debug for PolicyEngine {
    // Counts only: the principal cache holds subjects, which are personal data and stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.inner.active.loaded.info.len())
            .field(
                "shadow_policies",
                &self.inner.shadow.as_ref().map(|s| s.loaded.info.len()),
            )
            .field("cached_entity_stores", &self.inner.stores.len())
            .field("indexed", &self.inner.indexed)
            .field("planned", &self.inner.planned)
            .field("plans", &self.inner.active.plans)
            .field("validate_requests", &self.inner.validate_requests)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Loads and validates `sources` as one set (AZ-6). All or nothing: on error, every
    /// diagnostic with its file, line and column, and nothing loaded.
    pub fn load(sources: &[PolicySource]) -> Result<Self, PolicyError> {
        Ok(Self {
            inner: Arc::new(Inner {
                principals: Arc::default(),
                stores: Arc::default(),
                active: Arc::new(Bundle::new(sources)?),
                shadow: None,
                authorizer: Authorizer::new(),
                indexed: true,
                planned: true,
                validate_requests: false,
            }),
        })
    }

    /// The embedded default policies.
    pub fn baseline() -> Self {
        // The baseline is ours and a unit test loads it: a failure is a build defect.
        #[allow(clippy::expect_used)]
        Self::load(&[PolicySource::baseline()])
            .expect("the embedded baseline validates (unit-tested)")
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let i = &*self.inner;
        let mut inner = Inner {
            principals: i.principals.clone(),
            stores: i.stores.clone(),
            active: i.active.clone(),
            shadow: i.shadow.clone(),
            authorizer: Authorizer::new(),
            indexed: i.indexed,
            planned: i.planned,
            validate_requests: i.validate_requests,
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Adds a shadow set (AZ-6): evaluated on every call beside the active one, reported in
    /// [`AuthzDecision::shadow`] and logged when it disagrees, never enforced.
    pub fn with_shadow(self, shadow: &[PolicySource]) -> Result<Self, PolicyError> {
        let bundle = Arc::new(Bundle::new(shadow)?);
        Ok(self.rebuild(|i| i.shadow = Some(bundle)))
    }

    /// Also checks every request and its entities against the schema (slower; the CLI and tests
    /// use it to catch facts the schema does not expect).
    pub fn with_request_validation(self, on: bool) -> Self {
        self.rebuild(|i| i.validate_requests = on)
    }

    /// Evaluates every policy on every call instead of the per-resource index (and without
    /// plans): Cedar over the whole set, the reference; for measuring the index, and for checking
    /// that both agree.
    #[doc(hidden)]
    pub fn without_index(self) -> Self {
        self.rebuild(|i| {
            i.indexed = false;
            i.planned = false;
        })
    }

    /// Evaluates every call with Cedar over the index's subset, without the per-call plans of
    /// [`crate::plan`]; for measuring the plans, and for checking that both agree.
    #[doc(hidden)]
    pub fn without_plans(self) -> Self {
        self.rebuild(|i| i.planned = false)
    }

    /// How many (principal, resource, action) triples of the active set have a plan, and how
    /// many take Cedar's path; for tests (that the plans were used) and the benchmark.
    #[doc(hidden)]
    pub fn plan_counts(&self) -> (usize, usize) {
        self.inner.active.plans.counts()
    }

    /// The policies of the active set, by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.inner.active.loaded.info.values()
    }

    /// The text of an active policy, as written.
    pub fn policy_text(&self, id: &str) -> Option<String> {
        self.inner
            .active
            .loaded
            .set
            .policy(&PolicyId::new(id))
            .map(|p| p.to_string())
    }

    /// The principal's entities, from the cache or built (and cached, up to a bound).
    fn principal(&self, p: &PrincipalFacts) -> Result<Arc<PreparedPrincipal>, PolicyError> {
        let cache = &self.inner.principals;
        if let Some(hit) = cache.read().unwrap_or_else(|e| e.into_inner()).get(p) {
            return Ok(hit.clone());
        }
        let built = Arc::new(PreparedPrincipal::new(p)?);
        let mut c = cache.write().unwrap_or_else(|e| e.into_inner());
        if c.len() >= MAX_PRINCIPALS {
            c.clear();
        }
        c.insert(p.clone(), built.clone());
        Ok(built)
    }

    /// Decides one call. Never fails: anything that goes wrong is a deny with its error.
    pub fn authorize(&self, req: &AuthzRequest) -> AuthzDecision {
        let inner = &*self.inner;
        let (active, shadow) = match self.principal(&req.principal) {
            Ok(p) => {
                // A plan only for facts Cedar's path would accept: any fact it refuses is
                // left to it, so that the error is its own.
                let planned = inner.planned
                    && inner.indexed
                    && !inner.validate_requests
                    && req.action.resource_kind() == req.resource.kind()
                    && check_context(&req.context).is_ok();
                let plan_of = |b: &Bundle| {
                    planned
                        .then(|| b.decide_planned(&inner.authorizer, &inner.stores, &p, req))
                        .flatten()
                };
                let (active, shadow) =
                    (plan_of(&inner.active), inner.shadow.as_deref().map(plan_of));
                // Cedar's path for what has no plan, with the call built once for both sets.
                let mut call = None;
                let mut cedar = |b: &Bundle| {
                    let built = call.get_or_insert_with(|| {
                        BuiltCall::new(
                            &p,
                            &req.principal.client_id,
                            req.action,
                            &req.resource,
                            &req.context,
                            inner.validate_requests,
                            &inner.stores,
                        )
                    });
                    match built {
                        Ok(c) => b.decide(&inner.authorizer, c, req, inner.indexed),
                        Err(e) => Outcome::deny_error(&*e),
                    }
                };
                let active = active.unwrap_or_else(|| cedar(&inner.active));
                let shadow = match (shadow, inner.shadow.as_deref()) {
                    (Some(Some(o)), _) => Some(o),
                    (_, Some(b)) => Some(cedar(b)),
                    (_, None) => None,
                };
                (active, shadow)
            }
            Err(e) => (
                Outcome::deny_error(&e),
                inner.shadow.as_ref().map(|_| Outcome::deny_error(&e)),
            ),
        };
        if let Some(s) = &shadow
            && s.verdict != active.verdict
        {
            // AZ-6: what the new set would have done. No subject or arguments: ids only.
            tracing::info!(
                target: "portcullis::policy::shadow",
                action = %req.action,
                resource = %req.resource.uid(),
                enforced = %active.verdict,
                shadow = %s.verdict,
                shadow_policies = ?s.reasons.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>(),
                "shadow policy set disagrees"
            );
        }
        AuthzDecision {
            verdict: active.verdict,
            reasons: active.reasons,
            errors: active.errors,
            shadow,
        }
    }

    /// AZ-3: which of `items` (tools, resources, prompts of a listing) the principal may use,
    /// each by the action that would use it; confirmable items are shown.
    pub fn usable(
        &self,
        principal: &PrincipalFacts,
        context: &ContextFacts,
        items: &[PreparedResource],
    ) -> Vec<bool> {
        items
            .iter()
            .map(|item| {
                let action = Action::ALL
                    .into_iter()
                    .find(|a| a.resource_kind() == item.kind())
                    .unwrap_or(Action::List);
                self.authorize(&AuthzRequest {
                    principal: principal.clone(),
                    action,
                    resource: item.clone(),
                    context: context.clone(),
                })
                .verdict
                .is_usable()
            })
            .collect()
    }
}

/// Builds a call's Cedar request and entities and nothing else; for the benchmark only.
#[doc(hidden)]
pub fn bench_build_only(engine: &PolicyEngine, req: &AuthzRequest) -> bool {
    engine
        .principal(&req.principal)
        .and_then(|p| {
            BuiltCall::new(
                &p,
                &req.principal.client_id,
                req.action,
                &req.resource,
                &req.context,
                false,
                &engine.inner.stores,
            )
        })
        .is_ok()
}
