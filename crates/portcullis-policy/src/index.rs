//! A policy index over the principal and resource scopes, so that a decision evaluates only the
//! policies that could apply to it (issue 4's target: 1,000 policies, p99 under 50 µs). Cedar
//! evaluates every policy of the set it is given; most of an organization's policies name one
//! user, group or role (`principal == User::"u"`, `principal in Group::"g"`) and one tool or
//! connector (`resource == Tool::"crm/x"`, `resource in Connector::"crm"`), and such a policy can
//! only match that entity or its descendants. The rest (scope `principal`/`resource` alone, or
//! `is T`) are kept for every call.
//!
//! The subsets are built on first use and cached (bounded); the caches belong to one immutable
//! loaded set, so they never go stale. Our schema keeps the hierarchy flat (users in groups and
//! roles; tools, resources and prompts in their connector), so an entity's ancestors are exactly
//! its direct parents, which the caller passes.
//!
//! Two more things are decided once per cached subset, not per call, and both keep every decision
//! exactly as Cedar over the whole set would make it:
//! - A policy whose condition starts with a Boolean attribute of the resource (`when {
//!   resource.destructive ... }`, `unless { resource.read_only }`) is left out for a resource whose
//!   attribute has the other value: the scope never errors, and Cedar evaluates the first
//!   condition first, so such a policy is false, without an error, for that resource.
//! - HC-1's re-evaluation with `context.confirmed = true` needs only the permits, the
//!   `@obligation("confirm")` forbids and the forbids that read `context.confirmed`: it runs only
//!   when no policy erred and only confirmation forbids held, so every other forbid was false
//!   without an error, and is again on the same facts with another `confirmed`.
//!
//! And the subsets hold cheaper copies of the policies, made once at load with the same id,
//! effect, annotations and meaning: the action scope is dropped (a subset is built for one
//! action, and only policies whose action scope admits it go in; scopes never err), and
//! `x in [E1, E2]` over entity literals reads `x in E1 || x in E2` (Cedar builds the set value on
//! every evaluation otherwise; neither form can err).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};
use serde_json::Value;

use crate::entities::PreparedResource;
use crate::facts::Action;
use crate::load::OBLIGATION_CONFIRM;

/// Above this many cached subsets a cache is emptied and refilled: a bound on memory that a
/// registry with millions of tools and users cannot blow through.
const MAX_CACHED: usize = 16_384;

fn principal_key(p: &Policy) -> Option<EntityUid> {
    match p.principal_constraint() {
        PrincipalConstraint::Eq(u)
        | PrincipalConstraint::In(u)
        | PrincipalConstraint::IsIn(_, u) => Some(u),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
    }
}

fn resource_key(p: &Policy) -> Option<EntityUid> {
    match p.resource_constraint() {
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u) => {
            Some(u)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
    }
}

/// `resource.<attr>` in Cedar's JSON form: the attribute's name.
fn resource_attr(e: &Value) -> Option<&str> {
    let dot = e.get(".")?;
    (dot.get("left")?.get("Var")?.as_str()? == "resource")
        .then(|| dot.get("attr")?.as_str())
        .flatten()
}

/// `resource.<attr>` or `!resource.<attr>`: the attribute and the value that makes it true.
fn literal(e: &Value) -> Option<(String, bool)> {
    if let Some(a) = resource_attr(e) {
        return Some((a.to_string(), true));
    }
    resource_attr(e.get("!")?.get("arg")?).map(|a| (a.to_string(), false))
}

/// The context's attributes (all required by the schema, and always built), and those of its
/// `time` record.
const CONTEXT_ATTRS: [&str; 7] = [
    "scopes",
    "source_ip",
    "time",
    "risk",
    "confirmed",
    "token_environment",
    "client",
];
const TIME_ATTRS: [&str; 3] = ["hour", "weekday", "unix"];
/// The principal's (a `User`'s) attributes, all required and always built.
const USER_ATTRS: [&str; 3] = ["name", "groups", "member"];

/// Operators that cannot err on well-typed operands (every loaded policy is validated strictly,
/// so its operands are well typed): no arithmetic (it overflows), no extension functions.
const TOTAL_OPS: [&str; 12] = [
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "in",
    "contains",
    "containsAll",
    "containsAny",
];

/// Whether evaluating `e` surely gives a value, never an error: literals, variables, attributes
/// that every call's context and principal have, and total operators over such operands.
fn cannot_err(e: &Value) -> bool {
    let Some(m) = e.as_object() else {
        return false;
    };
    let Some((op, arg)) = m.iter().next().filter(|_| m.len() == 1) else {
        return false;
    };
    let var = |v: &Value| v.get("Var").and_then(Value::as_str).map(str::to_string);
    match op.as_str() {
        "Value" | "Var" => true,
        "Set" => arg.as_array().is_some_and(|a| a.iter().all(cannot_err)),
        "!" => arg.get("arg").is_some_and(cannot_err),
        "." => {
            let (Some(left), Some(attr)) =
                (arg.get("left"), arg.get("attr").and_then(Value::as_str))
            else {
                return false;
            };
            match var(left).as_deref() {
                Some("context") => CONTEXT_ATTRS.contains(&attr),
                Some("principal") => USER_ATTRS.contains(&attr),
                Some(_) => false,
                None => {
                    TIME_ATTRS.contains(&attr)
                        && left.get(".").is_some_and(|d| {
                            d.get("left").and_then(var).as_deref() == Some("context")
                                && d.get("attr").and_then(Value::as_str) == Some("time")
                        })
                }
            }
        }
        op if TOTAL_OPS.contains(&op) => {
            arg.get("left").is_some_and(cannot_err) && arg.get("right").is_some_and(cannot_err)
        }
        _ => false,
    }
}

/// The `&&` operands of `e`, in the order Cedar evaluates them.
fn conjuncts<'a>(e: &'a Value, out: &mut Vec<&'a Value>) {
    match e.get("&&") {
        Some(and) => {
            if let (Some(l), Some(r)) = (and.get("left"), and.get("right")) {
                conjuncts(l, out);
                conjuncts(r, out);
            } else {
                out.push(e);
            }
        }
        None => out.push(e),
    }
}

/// The policy's guards: Boolean resource attributes, each with the value it must have for the
/// policy to hold, that Cedar reaches (after the scope) with nothing before them able to err.
/// The condition is `c1 && (c2 && ...)` over the `when` bodies and negated `unless` bodies, so a
/// guard of the wrong value makes the policy false, without an error, whatever else it says.
fn guards(json: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let Some(conditions) = json.get("conditions").and_then(Value::as_array) else {
        return out;
    };
    // Each operand with whether it is negated (a whole `unless` body).
    let mut operands: Vec<(&Value, bool)> = Vec::new();
    for c in conditions {
        let Some(body) = c.get("body") else {
            return out;
        };
        match c.get("kind").and_then(Value::as_str) {
            Some("when") => {
                let mut v = Vec::new();
                conjuncts(body, &mut v);
                operands.extend(v.into_iter().map(|e| (e, false)));
            }
            Some("unless") => operands.push((body, true)),
            _ => return out,
        }
    }
    for (e, negated) in operands {
        if let Some((attr, want)) = literal(e) {
            out.push((attr, want != negated));
        } else if !cannot_err(e) {
            break;
        }
    }
    out
}

/// Whether the policy may read `context.confirmed`: it uses `context` other than through
/// `context.<attr>` with another attribute (conservative: `context has confirmed`, or
/// `context` as a whole value, count as reading it).
fn reads_confirmed(json: &Value) -> bool {
    fn walk(e: &Value, vars: &mut usize, other_attrs: &mut usize) {
        match e {
            Value::Object(m) => {
                if m.get("Var").and_then(Value::as_str) == Some("context") {
                    *vars += 1;
                }
                if let Some(dot) = m.get(".")
                    && dot
                        .get("left")
                        .and_then(|l| l.get("Var"))
                        .and_then(Value::as_str)
                        == Some("context")
                    && dot
                        .get("attr")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a != "confirmed")
                {
                    *other_attrs += 1;
                }
                m.values().for_each(|v| walk(v, vars, other_attrs));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, vars, other_attrs)),
            _ => {}
        }
    }
    let (mut vars, mut other_attrs) = (0, 0);
    walk(json, &mut vars, &mut other_attrs);
    vars != other_attrs
}

/// `x in [E1, ..., En]`, `x` a variable and each `Ei` an entity literal, as
/// `x in E1 || ... || x in En`; everything else as it is.
fn unfold_in_sets(e: &mut Value) {
    match e {
        Value::Object(m) => {
            if let Some(unfolded) = m.get("in").and_then(in_set_as_or) {
                *e = unfolded;
                return;
            }
            m.values_mut().for_each(unfold_in_sets);
        }
        Value::Array(a) => a.iter_mut().for_each(unfold_in_sets),
        _ => {}
    }
}

fn in_set_as_or(args: &Value) -> Option<Value> {
    let left = args.get("left").filter(|l| l.get("Var").is_some())?;
    let items = args.get("right")?.get("Set")?.as_array()?;
    let entity = |v: &Value| v.get("Value").is_some_and(|v| v.get("__entity").is_some());
    if items.is_empty() || !items.iter().all(entity) {
        return None;
    }
    let mut ins = items
        .iter()
        .map(|i| serde_json::json!({ "in": { "left": left, "right": i } }));
    let first = ins.next()?;
    Some(ins.fold(
        first,
        |acc, i| serde_json::json!({ "||": { "left": acc, "right": i } }),
    ))
}

/// The copy of `p` that subsets hold (see the module doc), or `p` itself where a copy cannot be
/// made.
fn for_evaluation(p: &Policy, json: Option<&Value>) -> Policy {
    let Some(mut json) = json.cloned() else {
        return p.clone();
    };
    if let Some(m) = json.as_object_mut() {
        m.insert("action".into(), serde_json::json!({ "op": "All" }));
        if let Some(c) = m.get_mut("conditions") {
            unfold_in_sets(c);
        }
    }
    Policy::from_json(Some(p.id().clone()), json).unwrap_or_else(|_| p.clone())
}

/// What the index knows of one policy.
#[derive(Debug)]
struct Indexed {
    policy: Policy,
    /// What subsets hold: see [`for_evaluation`].
    eval: Policy,
    principal: Option<EntityUid>,
    /// See [`guards`]; empty when the policy has none (or its JSON form could not be had).
    guards: Vec<(String, bool)>,
    /// Needed in HC-1's re-evaluation: a permit, a confirmation forbid, or a forbid that may
    /// read `context.confirmed`.
    for_confirmation: bool,
}

/// The policies that may apply to one resource, split by principal key.
#[derive(Debug, Default)]
struct Slice {
    /// Unique among the slices of one index: the sets' cache key, cheaper to hash than uids.
    id: u64,
    any_principal: Vec<usize>,
    by_principal: HashMap<EntityUid, (u32, Vec<usize>)>,
}

/// A slice, an action, and the principal keys of the slice the call's principal matched.
type SetKey = (u64, Action, Vec<u32>);

/// The policies selected for a call, and the subset HC-1's re-evaluation needs.
#[derive(Debug)]
pub(crate) struct Selected {
    /// What Cedar evaluates.
    pub(crate) set: Arc<PolicySet>,
    /// What the re-evaluation with `context.confirmed = true` evaluates; built on first use.
    confirmation: OnceLock<Arc<PolicySet>>,
    /// The indices of `set`'s policies, to build `confirmation` from.
    members: Vec<usize>,
}

/// Whether a policy's action scope admits `action`. Our schema's actions have no groups, so
/// `action in [A, B]` holds exactly for A and B.
fn admits(p: &Policy, action: &EntityUid) -> bool {
    match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => &a == action,
        ActionConstraint::In(list) => list.contains(action),
    }
}

#[derive(Debug)]
pub(crate) struct PolicyIndex {
    policies: Vec<Indexed>,
    /// Policies that may match any resource.
    any_resource: Vec<usize>,
    /// Policies whose resource scope names this entity.
    by_resource: HashMap<EntityUid, Vec<usize>>,
    /// The whole set, the answer whenever a subset cannot be built.
    full: Arc<PolicySet>,
    /// By resource uid and its Boolean attributes ([`PreparedResource::bools_key`]).
    slices: RwLock<HashMap<(EntityUid, u8), Arc<Slice>>>,
    next_slice: AtomicU64,
    sets: RwLock<HashMap<SetKey, Arc<Selected>>>,
}

fn get_or_insert<K: std::hash::Hash + Eq + Clone, V: Clone>(
    map: &RwLock<HashMap<K, V>>,
    key: &K,
    make: impl FnOnce() -> V,
) -> V {
    if let Some(v) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return v.clone();
    }
    let v = make();
    let mut m = map.write().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MAX_CACHED {
        m.clear();
    }
    m.insert(key.clone(), v.clone());
    v
}

impl PolicyIndex {
    pub(crate) fn new(set: &PolicySet) -> Self {
        let mut policies = Vec::new();
        let mut any_resource = Vec::new();
        let mut by_resource: HashMap<EntityUid, Vec<usize>> = HashMap::new();
        for (i, p) in set.policies().enumerate() {
            match resource_key(p) {
                Some(u) => by_resource.entry(u).or_default().push(i),
                None => any_resource.push(i),
            }
            // Without its JSON form a policy gets no guard and counts as reading `confirmed`:
            // evaluated always, as without the index.
            let json = p.to_json().ok();
            let for_confirmation = p.effect() == Effect::Permit
                || p.annotation("obligation") == Some(OBLIGATION_CONFIRM)
                || json.as_ref().is_none_or(reads_confirmed);
            policies.push(Indexed {
                eval: for_evaluation(p, json.as_ref()),
                policy: p.clone(),
                principal: principal_key(p),
                guards: json.as_ref().map(guards).unwrap_or_default(),
                for_confirmation,
            });
        }
        Self {
            policies,
            any_resource,
            by_resource,
            full: Arc::new(set.clone()),
            slices: RwLock::new(HashMap::new()),
            next_slice: AtomicU64::new(0),
            sets: RwLock::new(HashMap::new()),
        }
    }

    /// The whole set.
    pub(crate) fn full(&self) -> &Arc<PolicySet> {
        &self.full
    }

    /// Whether policy `i` cannot hold for `resource`, by its guards: one has the wrong value,
    /// and each before it is an attribute the resource has (reading a missing one would err).
    fn ruled_out(&self, i: usize, resource: &PreparedResource) -> bool {
        for (attr, want) in &self.policies[i].guards {
            match resource.bool_attr(attr) {
                Some(v) if v != *want => return true,
                Some(_) => {}
                None => return false,
            }
        }
        false
    }

    fn slice(&self, resource: &PreparedResource) -> Arc<Slice> {
        let (uid, connector) = (resource.uid(), resource.connector_uid());
        get_or_insert(&self.slices, &(uid.clone(), resource.bools_key()), || {
            let own = self.by_resource.get(uid).into_iter().flatten();
            let parent = (connector != uid)
                .then(|| self.by_resource.get(connector))
                .flatten()
                .into_iter()
                .flatten();
            let mut s = Slice {
                id: self.next_slice.fetch_add(1, Ordering::Relaxed),
                ..Slice::default()
            };
            for &i in self.any_resource.iter().chain(own).chain(parent) {
                if self.ruled_out(i, resource) {
                    continue;
                }
                match &self.policies[i].principal {
                    Some(k) => {
                        let next = s.by_principal.len() as u32;
                        s.by_principal
                            .entry(k.clone())
                            .or_insert((next, Vec::new()))
                            .1
                            .push(i)
                    }
                    None => s.any_principal.push(i),
                }
            }
            Arc::new(s)
        })
    }

    /// The policies that may apply to a call by `principal` (its uid first, then its groups and
    /// roles) doing `action` (`action_uid`) on `resource`.
    pub(crate) fn select(
        &self,
        principal: &[EntityUid],
        action: Action,
        action_uid: &EntityUid,
        resource: &PreparedResource,
    ) -> Arc<Selected> {
        let slice = self.slice(resource);
        let mut matched: Vec<u32> = principal
            .iter()
            .filter_map(|k| slice.by_principal.get(k).map(|(n, _)| *n))
            .collect();
        matched.sort_unstable();
        matched.dedup();
        let key = (slice.id, action, matched);
        get_or_insert(&self.sets, &key, || {
            let by_number: Vec<&Vec<usize>> = {
                let mut v: Vec<(u32, &Vec<usize>)> =
                    slice.by_principal.values().map(|(n, p)| (*n, p)).collect();
                v.sort_unstable_by_key(|(n, _)| *n);
                v.into_iter().map(|(_, p)| p).collect()
            };
            let picked = key.2.iter().flat_map(|n| by_number[*n as usize].iter());
            let members: Vec<usize> = slice
                .any_principal
                .iter()
                .chain(picked)
                .copied()
                .filter(|&i| admits(&self.policies[i].policy, action_uid))
                .collect();
            match self.set_of(members.iter().copied()) {
                Some(set) => Arc::new(Selected {
                    set,
                    confirmation: OnceLock::new(),
                    members,
                }),
                None => self.whole(),
            }
        })
    }

    /// The whole set as a selection.
    fn whole(&self) -> Arc<Selected> {
        Arc::new(Selected {
            set: self.full.clone(),
            confirmation: OnceLock::from(self.full.clone()),
            members: Vec::new(),
        })
    }

    /// A set of the given policies; `None` if one cannot be added (never expected: each policy
    /// sits in one bucket, so no id repeats; but a missing forbid would fail open, so the caller
    /// answers with the whole set instead).
    fn set_of(&self, members: impl Iterator<Item = usize>) -> Option<Arc<PolicySet>> {
        let mut set = PolicySet::new();
        for i in members {
            set.add(self.policies[i].eval.clone()).ok()?;
        }
        Some(Arc::new(set))
    }

    /// The policies HC-1's re-evaluation of a call selected as `sel` needs (see the module doc).
    pub(crate) fn confirmation(&self, sel: &Selected) -> Arc<PolicySet> {
        sel.confirmation
            .get_or_init(|| {
                let members = sel
                    .members
                    .iter()
                    .copied()
                    .filter(|&i| self.policies[i].for_confirmation);
                self.set_of(members).unwrap_or_else(|| sel.set.clone())
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::load::BASELINE_TEXT;

    fn json(text: &str) -> Value {
        Policy::from_str(text).unwrap().to_json().unwrap()
    }

    fn guard_of(text: &str) -> Option<(String, bool)> {
        guards(&json(text)).into_iter().next()
    }

    #[test]
    fn guards_are_the_first_condition_on_a_resource_boolean() {
        let g = |a: &str, v| Some((a.to_string(), v));
        let p = "permit (principal, action, resource)";
        assert_eq!(
            guard_of(&format!("{p} when {{ resource.destructive }};")),
            g("destructive", true)
        );
        assert_eq!(
            guard_of(&format!(
                "{p} when {{ resource.read_only && !resource.destructive && principal.member }};"
            )),
            g("read_only", true)
        );
        assert_eq!(
            guard_of(&format!(
                "{p} when {{ !resource.bulk && principal.member }};"
            )),
            g("bulk", false)
        );
        assert_eq!(
            guard_of(&format!("{p} unless {{ resource.read_only }};")),
            g("read_only", false)
        );
        assert_eq!(
            guard_of(&format!("{p} unless {{ !resource.bulk }};")),
            g("bulk", true)
        );
        assert_eq!(
            guard_of(&format!(
                "{p} when {{ resource.bulk }} unless {{ context.confirmed }};"
            )),
            g("bulk", true)
        );
        // After operands that cannot err, and all of them in order.
        assert_eq!(
            guards(&json(&format!(
                "{p} when {{ context.time.weekday >= 5 && principal in [Portcullis::Role::\"a\"] && resource.destructive }} unless {{ context.confirmed }} when {{ !resource.read_only && resource.bulk }};"
            ))),
            [
                ("destructive".to_string(), true),
                ("read_only".to_string(), false),
                ("bulk".to_string(), true)
            ]
        );
        assert_eq!(
            guard_of(&format!(
                "{p} unless {{ context.scopes.contains(principal.name) }} when {{ resource.bulk }};"
            )),
            g("bulk", true)
        );
        assert_eq!(
            guard_of(&format!(
                "{p} when {{ principal.member }} when {{ resource.bulk }};"
            )),
            g("bulk", true)
        );
        // Anything before the attribute that could err: no guard.
        for body in [
            "when { context.risk + 1 > 3 && resource.bulk }",
            "when { context.client.id == \"x\" && resource.bulk }",
            "when { context.source_ip.isLoopback() && resource.bulk }",
            "when { resource.name == \"x\" && resource.bulk }",
            "when { principal.name like \"a*\" && resource.bulk }",
            "when { resource.bulk || principal.member }",
            "unless { resource.bulk && principal.member }",
            "when { context has risk } when { resource.bulk }",
            "when { resource.name == \"x\" }",
            "",
        ] {
            assert_eq!(guard_of(&format!("{p} {body};")), None, "{body}");
        }
    }

    #[test]
    fn reading_confirmed_is_found_conservatively() {
        let p = "forbid (principal, action, resource)";
        for (body, reads) in [
            ("unless { context.confirmed }", true),
            ("when { context has confirmed }", true),
            ("when { context.risk > 50 && !context.confirmed }", true),
            ("when { context.risk > 50 }", false),
            (
                "when { context.client.id == \"x\" && context.scopes.contains(\"a\") }",
                false,
            ),
            ("when { principal.member }", false),
        ] {
            assert_eq!(
                reads_confirmed(&json(&format!("{p} {body};"))),
                reads,
                "{body}"
            );
        }
    }

    #[test]
    fn evaluation_copies_drop_the_action_scope_and_unfold_entity_sets() {
        let text = "@id(\"x\") @reason(\"r\") permit (principal in Portcullis::Group::\"g\", action in [Portcullis::Action::\"list\", Portcullis::Action::\"call_tool\"], resource) when { principal in [Portcullis::Role::\"a\", Portcullis::Role::\"b\"] && context.scopes.containsAny([\"s\"]) };";
        let p = Policy::from_str(text).unwrap();
        let e = for_evaluation(&p, p.to_json().ok().as_ref());
        assert_eq!(e.id(), p.id());
        assert_eq!(e.annotation("reason"), Some("r"));
        assert_eq!(e.effect(), p.effect());
        assert_eq!(e.principal_constraint(), p.principal_constraint());
        assert_eq!(e.action_constraint(), ActionConstraint::Any);
        let want = Policy::from_str("permit (principal in Portcullis::Group::\"g\", action, resource) when { (principal in Portcullis::Role::\"a\" || principal in Portcullis::Role::\"b\") && context.scopes.containsAny([\"s\"]) };").unwrap();
        assert_eq!(
            e.to_json().unwrap()["conditions"],
            want.to_json().unwrap()["conditions"]
        );
    }

    #[test]
    fn baseline_guards() {
        let set = PolicySet::from_str(BASELINE_TEXT).unwrap();
        let index = PolicyIndex::new(&set);
        let by_id = |id: &str| {
            index
                .policies
                .iter()
                .find(|p| p.policy.annotation("id") == Some(id))
                .unwrap()
        };
        let g = |a: &str| Some((a.to_string(), true));
        let first = |id: &str| by_id(id).guards.first().cloned();
        assert_eq!(first("confirm-destructive"), g("destructive"));
        assert_eq!(first("read-only-roles-call"), g("read_only"));
        assert_eq!(by_id("read-only-roles-call").guards.len(), 2);
        assert_eq!(first("data-steward-bulk"), g("bulk"));
        assert_eq!(first("bulk-only-data-steward"), g("bulk"));
        assert_eq!(first("use-connectors"), None);
        assert!(by_id("confirm-risky").for_confirmation);
        assert!(by_id("use-connectors").for_confirmation);
        assert!(!by_id("missing-scope").for_confirmation);
        assert!(!by_id("risk-block").for_confirmation);
    }
}
