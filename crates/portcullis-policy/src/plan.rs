//! Per-call plans for AZ-1 decisions, the shadow set's (AZ-6) and HC-1's confirmation (issue 4's
//! target: one decision with the baseline plus 1,000 policies, p99
//! under 50 µs). Everything a decision reads except the context is fixed by the prepared
//! principal, the prepared resource and the action: the entities, and the policies the index
//! selects. So, once per (principal, resource, action), Cedar partially evaluates the selected
//! policies with the context unknown (`Authorizer::is_authorized_partial`): each policy comes out
//! satisfied, false, or a *residual* that reads only the context (`context.risk >= 50 &&
//! !context.confirmed`, `context.scopes.contains("crm:read")`). A call then evaluates only the
//! residuals, over its [`ContextFacts`] directly: no Cedar context, request, evaluator or
//! response is built, and the principal's, resource's and entities' parts of every condition
//! were evaluated once.
//!
//! Exactness: Cedar's partial evaluation is sound (a satisfied or false policy is so whatever the
//! context; a residual gives what the policy gives). A plan is made only when every residual is
//! in the small language below (literals, the context's always-present attributes, `==`, `!=`,
//! `<`..`>=`, `+ - *`, `&&`, `||`, `!`, `if`, `contains`, `containsAll`, `containsAny`), none of
//! whose operations can err on the types the evaluator checks; and when no policy erred while
//! being partially evaluated. Otherwise the call takes Cedar's path (the engine's `decide`), as
//! it does for one call whenever evaluating a residual meets anything unexpected (a type it does
//! not check, an arithmetic overflow): an error is then Cedar's to report, with Cedar's words.
//! So a plan never produces an error and never hides one. `tests/engine.rs` compares planned
//! decisions with Cedar over the whole set on generated policies and contexts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{Authorizer, Effect, PolicyId, Request};
use serde_json::Value;

use crate::engine::Reason;
use crate::entities::{PreparedPrincipal, PreparedResource, StoreCache, action_uid};
use crate::facts::{Action, ContextFacts};
use crate::index::PolicyIndex;
use crate::load::{LoadedSet, OBLIGATION_CONFIRM};

/// Above this many cached plans the cache is emptied and refilled (a bound on memory).
const MAX_PLANS: usize = 16_384;

/// A context attribute a residual reads (all are always present in a call's context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Scopes,
    Risk,
    Confirmed,
    TokenEnvironment,
    Hour,
    Weekday,
    Unix,
}

/// A literal scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Bool(bool),
    Long(i64),
    Str(String),
}

/// A binary operator of the residual language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Contains,
    ContainsAll,
    ContainsAny,
}

/// A residual condition.
#[derive(Debug, PartialEq, Eq)]
enum Expr {
    Lit(Lit),
    /// A set of literal scalars.
    Set(Vec<Lit>),
    Ctx(Attr),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

/// Whether `e` is Cedar's `unknown("context")`, the whole context left unknown.
fn is_unknown_context(e: &Value) -> bool {
    e.get("unknown").and_then(Value::as_array).is_some_and(|a| {
        a.len() == 1 && a[0].get("Value").and_then(Value::as_str) == Some("context")
    })
}

fn lit(v: &Value) -> Option<Lit> {
    match v {
        Value::Bool(b) => Some(Lit::Bool(*b)),
        Value::Number(n) => n.as_i64().map(Lit::Long),
        Value::String(s) => Some(Lit::Str(s.clone())),
        _ => None,
    }
}

fn boxed(e: Option<&Value>) -> Option<Box<Expr>> {
    translate(e?).map(Box::new)
}

/// A residual expression (Cedar's JSON form) in the residual language; `None` when it is not in
/// it (then no plan is made).
fn translate(e: &Value) -> Option<Expr> {
    let m = e.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let (op, arg) = m.iter().next()?;
    let bin = |op: Op| {
        Some(Expr::Bin(
            op,
            boxed(arg.get("left"))?,
            boxed(arg.get("right"))?,
        ))
    };
    match op.as_str() {
        "Value" => match arg {
            Value::Array(items) => items.iter().map(lit).collect::<Option<_>>().map(Expr::Set),
            v => lit(v).map(Expr::Lit),
        },
        "Set" => {
            let items = arg.as_array()?;
            items
                .iter()
                .map(|i| match translate(i)? {
                    Expr::Lit(l) => Some(l),
                    _ => None,
                })
                .collect::<Option<_>>()
                .map(Expr::Set)
        }
        "." => {
            let left = arg.get("left")?;
            let attr = arg.get("attr")?.as_str()?;
            if is_unknown_context(left) {
                return Some(Expr::Ctx(match attr {
                    "scopes" => Attr::Scopes,
                    "risk" => Attr::Risk,
                    "confirmed" => Attr::Confirmed,
                    "token_environment" => Attr::TokenEnvironment,
                    _ => return None,
                }));
            }
            let time = left.get(".")?;
            (is_unknown_context(time.get("left")?) && time.get("attr")?.as_str()? == "time")
                .then_some(())?;
            Some(Expr::Ctx(match attr {
                "hour" => Attr::Hour,
                "weekday" => Attr::Weekday,
                "unix" => Attr::Unix,
                _ => return None,
            }))
        }
        "!" => Some(Expr::Not(boxed(arg.get("arg"))?)),
        "neg" => Some(Expr::Neg(boxed(arg.get("arg"))?)),
        "&&" => Some(Expr::And(boxed(arg.get("left"))?, boxed(arg.get("right"))?)),
        "||" => Some(Expr::Or(boxed(arg.get("left"))?, boxed(arg.get("right"))?)),
        "if-then-else" => Some(Expr::If(
            boxed(arg.get("if"))?,
            boxed(arg.get("then"))?,
            boxed(arg.get("else"))?,
        )),
        "==" => bin(Op::Eq),
        "!=" => bin(Op::Ne),
        "<" => bin(Op::Lt),
        "<=" => bin(Op::Le),
        ">" => bin(Op::Gt),
        ">=" => bin(Op::Ge),
        "+" => bin(Op::Add),
        "-" => bin(Op::Sub),
        "*" => bin(Op::Mul),
        "contains" => bin(Op::Contains),
        "containsAll" => bin(Op::ContainsAll),
        "containsAny" => bin(Op::ContainsAny),
        _ => None,
    }
}

/// A residual policy's whole condition: its scope must be open (a residual's is), and its
/// `when` bodies and negated `unless` bodies are joined by `&&` in order, as Cedar joins them.
fn condition(json: &Value) -> Option<Expr> {
    for scope in ["principal", "action", "resource"] {
        (json.get(scope)?.get("op")?.as_str()? == "All").then_some(())?;
    }
    let mut out: Option<Expr> = None;
    for c in json.get("conditions")?.as_array()? {
        let body = translate(c.get("body")?)?;
        let part = match c.get("kind")?.as_str()? {
            "when" => body,
            "unless" => Expr::Not(Box::new(body)),
            _ => return None,
        };
        out = Some(match out {
            None => part,
            Some(prev) => Expr::And(Box::new(prev), Box::new(part)),
        });
    }
    Some(out.unwrap_or(Expr::Lit(Lit::Bool(true))))
}

/// A value during evaluation, borrowed from the plan or the call's facts.
#[derive(Clone, Copy)]
enum V<'a> {
    Bool(bool),
    Long(i64),
    Str(&'a str),
    Lits(&'a [Lit]),
    Scopes(&'a [String]),
}

impl V<'_> {
    fn is_set(&self) -> bool {
        matches!(self, V::Lits(_) | V::Scopes(_))
    }
}

fn lit_value(l: &Lit) -> V<'_> {
    match l {
        Lit::Bool(b) => V::Bool(*b),
        Lit::Long(n) => V::Long(*n),
        Lit::Str(s) => V::Str(s),
    }
}

/// Cedar's `==` on two scalars: values of different types are unequal (not an error). Sets are
/// left to Cedar (`None`).
fn scalar_eq(a: V<'_>, b: V<'_>) -> Option<bool> {
    Some(match (a, b) {
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Long(x), V::Long(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (x, y) if x.is_set() || y.is_set() => return None,
        _ => false,
    })
}

/// Whether set `s` holds scalar `x`; `None` when `s` is no set or `x` is one.
fn holds(s: V<'_>, x: V<'_>) -> Option<bool> {
    if x.is_set() {
        return None;
    }
    match s {
        V::Lits(items) => {
            for i in items {
                if scalar_eq(lit_value(i), x)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        V::Scopes(items) => Some(match x {
            V::Str(x) => items.iter().any(|s| s == x),
            _ => false,
        }),
        _ => None,
    }
}

/// The elements of a set, as scalars; `None` when `s` is no set.
fn each<'a>(s: V<'a>, mut f: impl FnMut(V<'a>) -> Option<bool>) -> Option<bool> {
    match s {
        V::Lits(items) => {
            for i in items {
                if f(lit_value(i))? {
                    return Some(true);
                }
            }
            Some(false)
        }
        V::Scopes(items) => {
            for i in items {
                if f(V::Str(i))? {
                    return Some(true);
                }
            }
            Some(false)
        }
        _ => None,
    }
}

/// The facts a residual is evaluated over.
struct Facts<'a> {
    ctx: &'a ContextFacts,
    confirmed: bool,
}

impl Expr {
    /// Its value; `None` for anything Cedar would report an error for, or that this evaluator
    /// does not check (the call then takes Cedar's path).
    fn eval<'a>(&'a self, f: &Facts<'a>) -> Option<V<'a>> {
        let bool_of = |e: &'a Expr| match e.eval(f)? {
            V::Bool(b) => Some(b),
            _ => None,
        };
        let long_of = |e: &'a Expr| match e.eval(f)? {
            V::Long(n) => Some(n),
            _ => None,
        };
        Some(match self {
            Expr::Lit(l) => lit_value(l),
            Expr::Set(items) => V::Lits(items),
            Expr::Ctx(a) => match a {
                Attr::Scopes => V::Scopes(&f.ctx.scopes),
                Attr::Risk => V::Long(f.ctx.risk.into()),
                Attr::Confirmed => V::Bool(f.confirmed),
                Attr::TokenEnvironment => V::Str(f.ctx.token_environment.as_str()),
                Attr::Hour => V::Long(f.ctx.time.hour.into()),
                Attr::Weekday => V::Long(f.ctx.time.weekday.into()),
                Attr::Unix => V::Long(f.ctx.time.unix),
            },
            Expr::Not(e) => V::Bool(!bool_of(e)?),
            Expr::Neg(e) => V::Long(long_of(e)?.checked_neg()?),
            // Cedar evaluates the left operand first and the right only when it must.
            Expr::And(l, r) => V::Bool(bool_of(l)? && bool_of(r)?),
            Expr::Or(l, r) => V::Bool(bool_of(l)? || bool_of(r)?),
            Expr::If(c, t, e) => {
                if bool_of(c)? {
                    t.eval(f)?
                } else {
                    e.eval(f)?
                }
            }
            Expr::Bin(op, l, r) => {
                let (a, b) = (l.eval(f)?, r.eval(f)?);
                let longs = || match (a, b) {
                    (V::Long(x), V::Long(y)) => Some((x, y)),
                    _ => None,
                };
                match op {
                    Op::Eq => V::Bool(scalar_eq(a, b)?),
                    Op::Ne => V::Bool(!scalar_eq(a, b)?),
                    Op::Lt => longs().map(|(x, y)| V::Bool(x < y))?,
                    Op::Le => longs().map(|(x, y)| V::Bool(x <= y))?,
                    Op::Gt => longs().map(|(x, y)| V::Bool(x > y))?,
                    Op::Ge => longs().map(|(x, y)| V::Bool(x >= y))?,
                    Op::Add => V::Long(longs().and_then(|(x, y)| x.checked_add(y))?),
                    Op::Sub => V::Long(longs().and_then(|(x, y)| x.checked_sub(y))?),
                    Op::Mul => V::Long(longs().and_then(|(x, y)| x.checked_mul(y))?),
                    Op::Contains => V::Bool(holds(a, b)?),
                    Op::ContainsAny => {
                        if !a.is_set() {
                            return None;
                        }
                        V::Bool(each(b, |x| holds(a, x))?)
                    }
                    Op::ContainsAll => {
                        if !a.is_set() {
                            return None;
                        }
                        // All of `b` in `a`: no element of `b` missing from `a`.
                        V::Bool(!each(b, |x| holds(a, x).map(|h| !h))?)
                    }
                }
            }
        })
    }
}

/// One policy of a plan: satisfied whatever the context (`cond` `None`), or a residual.
#[derive(Debug)]
struct Entry {
    effect: Effect,
    /// A forbid with `@obligation("confirm")` (HC-1).
    confirm: bool,
    reason: Reason,
    cond: Option<Expr>,
}

/// The policies of one (principal, resource, action) that may hold, sorted by id (the order
/// decisions list their reasons in); those false whatever the context are left out.
#[derive(Debug)]
pub(crate) struct Plan {
    entries: Vec<Entry>,
}

/// What held on one evaluation: the indices of the satisfied permits and forbids.
struct Held {
    permits: Vec<usize>,
    forbids: Vec<usize>,
}

impl Plan {
    /// The number of residuals.
    #[cfg(test)]
    fn residuals(&self) -> usize {
        self.entries.iter().filter(|e| e.cond.is_some()).count()
    }

    fn held(&self, ctx: &ContextFacts, confirmed: bool) -> Option<Held> {
        let f = Facts { ctx, confirmed };
        let mut h = Held {
            permits: Vec::new(),
            forbids: Vec::new(),
        };
        for (i, e) in self.entries.iter().enumerate() {
            let yes = match &e.cond {
                None => true,
                Some(c) => match c.eval(&f)? {
                    V::Bool(b) => b,
                    _ => return None,
                },
            };
            if yes {
                match e.effect {
                    Effect::Permit => h.permits.push(i),
                    Effect::Forbid => h.forbids.push(i),
                }
            }
        }
        Some(h)
    }

    fn reasons(&self, which: &[usize]) -> Vec<Reason> {
        which
            .iter()
            .map(|&i| self.entries[i].reason.clone())
            .collect()
    }

    /// The decision on a call with context `ctx`, exactly as the engine's Cedar path makes it
    /// (including HC-1's re-evaluation with `context.confirmed = true`); `None` when a residual
    /// cannot be evaluated here, and the call must take Cedar's path.
    pub(crate) fn decide(&self, ctx: &ContextFacts) -> Option<(crate::Verdict, Vec<Reason>)> {
        use crate::Verdict;
        let first = self.held(ctx, ctx.confirmed)?;
        if first.forbids.is_empty() {
            return Some(if first.permits.is_empty() {
                (Verdict::Deny, vec![Reason::default_deny()])
            } else {
                (Verdict::Allow, self.reasons(&first.permits))
            });
        }
        let confirm_only = first.forbids.iter().all(|&i| self.entries[i].confirm);
        if ctx.confirmed || !confirm_only {
            return Some((Verdict::Deny, self.reasons(&first.forbids)));
        }
        // HC-1: only confirmation obligations refuse it; would a confirmation suffice?
        let again = self.held(ctx, true)?;
        Some(if again.forbids.is_empty() && !again.permits.is_empty() {
            (Verdict::Confirm, self.reasons(&first.forbids))
        } else if again.forbids.is_empty() {
            (Verdict::Deny, vec![Reason::default_deny()])
        } else {
            (Verdict::Deny, self.reasons(&again.forbids))
        })
    }
}

/// A cached plan with the two prepared values it was made for, held so that neither address
/// (the key) can be reused by another value while the entry exists.
struct Slot {
    _principal: Arc<PreparedPrincipal>,
    _resource: PreparedResource,
    /// `None`: no plan can be made; such calls take Cedar's path.
    plan: Option<Arc<Plan>>,
}

/// What making a plan reads: a loaded set, its index, the engine's authorizer and entity stores.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub(crate) loaded: &'a LoadedSet,
    pub(crate) index: &'a PolicyIndex,
    pub(crate) authorizer: &'a Authorizer,
    pub(crate) stores: &'a StoreCache,
}

/// The plans of one loaded set, by (prepared principal, prepared resource, action); made on
/// first use, bounded. The set, the principal and the resource are immutable, so a plan never
/// goes stale.
#[derive(Default)]
pub(crate) struct PlanCache {
    map: RwLock<HashMap<(usize, usize, Action), Arc<Slot>>>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (made, cedar) = self.counts();
        f.debug_struct("PlanCache")
            .field("plans", &made)
            .field("cedar_only", &cedar)
            .finish()
    }
}

impl PlanCache {
    /// How many cached entries hold a plan, and how many say "Cedar's path".
    pub(crate) fn counts(&self) -> (usize, usize) {
        let m = self.map.read().unwrap_or_else(|e| e.into_inner());
        let made = m.values().filter(|s| s.plan.is_some()).count();
        (made, m.len() - made)
    }

    /// The plan for a call by `principal` doing `action` on `resource`, made on first use;
    /// `None` when calls like it take Cedar's path.
    pub(crate) fn get_or_make(
        &self,
        set: &Inputs<'_>,
        principal: &Arc<PreparedPrincipal>,
        action: Action,
        resource: &PreparedResource,
    ) -> Option<Arc<Plan>> {
        let key = (Arc::as_ptr(principal) as usize, resource.addr(), action);
        if let Some(hit) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return hit.plan.clone();
        }
        let plan = make(set, principal, action, resource).map(Arc::new);
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_PLANS {
            m.clear();
        }
        m.insert(
            key,
            Arc::new(Slot {
                _principal: principal.clone(),
                _resource: resource.clone(),
                plan: plan.clone(),
            }),
        );
        plan
    }
}

/// Partially evaluates the policies the index selects for the call, the context unknown; `None`
/// when a policy errs or a residual is not in the residual language.
fn make(
    set: &Inputs<'_>,
    principal: &Arc<PreparedPrincipal>,
    action: Action,
    resource: &PreparedResource,
) -> Option<Plan> {
    let Inputs {
        loaded,
        index,
        authorizer,
        stores,
    } = *set;
    let entities = stores.get_or_build(principal, resource).ok()?;
    let action_uid = action_uid(action);
    let selected = index.select(&principal.keys, action, &action_uid, resource);
    let request = Request::builder()
        .principal(principal.uid.clone())
        .action(action_uid)
        .resource(resource.uid().clone())
        .build();
    let partial = authorizer.is_authorized_partial(&request, &selected.set, &entities);
    if partial.definitely_errored().next().is_some() {
        return None;
    }
    let entry = |id: &PolicyId, cond: Option<Expr>| {
        let info = loaded.info.get(id)?;
        Some(Entry {
            effect: info.effect,
            confirm: info.effect == Effect::Forbid
                && info.obligation.as_deref() == Some(OBLIGATION_CONFIRM),
            reason: Reason::of(info),
            cond,
        })
    };
    let mut entries = Vec::new();
    for p in partial.definitely_satisfied() {
        entries.push(entry(p.id(), None)?);
    }
    for p in partial.nontrivial_residuals() {
        let cond = condition(&p.to_json().ok()?)?;
        entries.push(entry(p.id(), Some(cond))?);
    }
    entries.sort_by(|a, b| a.reason.policy.cmp(&b.reason.policy));
    Some(Plan { entries })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use cedar_policy::{Policy, PolicySet};

    use super::*;
    use crate::facts::{ConnectorFacts, PrincipalFacts, ResourceFacts, ToolFacts};
    use crate::{Environment, TimeFacts};

    fn ctx() -> ContextFacts {
        ContextFacts {
            scopes: vec!["crm:read".into(), "crm:write".into()],
            source_ip: "10.0.0.1".parse().unwrap(),
            time: TimeFacts {
                hour: 9,
                weekday: 2,
                unix: 1_000,
            },
            risk: 40,
            confirmed: false,
            token_environment: Environment::Prod,
        }
    }

    /// The residual of `body` (a condition on the context) after partial evaluation.
    fn residual(body: &str) -> Option<Expr> {
        let text = format!("permit (principal, action, resource) when {{ {body} }};");
        let set = PolicySet::from_str(&text).unwrap();
        let p = PreparedPrincipal::new(&PrincipalFacts::user("u", &["end_user"])).unwrap();
        let r = PreparedResource::new(ResourceFacts::tool(
            ConnectorFacts::new("crm", "o"),
            ToolFacts::named("t"),
        ))
        .unwrap();
        let stores = StoreCache::default();
        let entities = stores.get_or_build(&Arc::new(p), &r).unwrap();
        let request = Request::builder()
            .principal(crate::entities::uid("User", "u"))
            .action(action_uid(Action::CallTool))
            .resource(r.uid().clone())
            .build();
        let partial = Authorizer::new().is_authorized_partial(&request, &set, &entities);
        let p: Vec<Policy> = partial.nontrivial_residuals().collect();
        condition(&p.first()?.to_json().unwrap())
    }

    fn eval(body: &str, c: &ContextFacts) -> Option<bool> {
        let e = residual(body).unwrap_or_else(|| panic!("no residual for {body}"));
        match e.eval(&Facts {
            ctx: c,
            confirmed: c.confirmed,
        })? {
            V::Bool(b) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn residuals_read_the_context_only() {
        let c = ctx();
        for (body, want) in [
            ("context.risk >= 40", Some(true)),
            ("context.risk > 40 || context.time.hour == 9", Some(true)),
            ("context.time.weekday < 2", Some(false)),
            ("context.time.unix + 1 == 1001", Some(true)),
            (
                "context.scopes.contains(resource.required_scope)",
                Some(true),
            ),
            ("context.scopes.contains(\"crm:read\")", Some(true)),
            (
                "context.scopes.containsAll([\"crm:read\", \"crm:write\"])",
                Some(true),
            ),
            (
                "context.scopes.containsAll([\"crm:read\", \"crm:admin\"])",
                Some(false),
            ),
            (
                "context.scopes.containsAny([\"x\", \"crm:write\"])",
                Some(true),
            ),
            ("[1, 2].contains(context.risk - 38)", Some(true)),
            (
                "context.token_environment == resource.environment",
                Some(true),
            ),
            ("!context.confirmed && principal.name == \"u\"", Some(true)),
            (
                "if context.risk > 10 then context.confirmed else true",
                Some(false),
            ),
            // Overflow: Cedar's error, so Cedar's path (`None`).
            ("context.time.unix * 9223372036854775807 > 0", None),
        ] {
            assert_eq!(eval(body, &c), want, "{body}");
        }
    }

    #[test]
    fn residuals_outside_the_language_make_no_plan() {
        for body in [
            "context.source_ip.isLoopback()",
            "context.client == Portcullis::Client::\"x\"",
            "context has risk",
            "context.token_environment like \"p*\"",
            "context.risk > 1 && resource.nope == 1",
        ] {
            assert_eq!(residual(body), None, "{body}");
        }
        assert!(residual("context.risk > 1").is_some());
    }

    /// On the baseline, an end user calling a plain tool of a connector shared with the
    /// organization: `use-connectors` holds whatever the context, `not-shared` and the tool
    /// annotations' policies are false whatever it is (left out), and what remains reads only
    /// the context.
    #[test]
    fn the_baseline_plan_keeps_only_what_the_context_decides() {
        let loaded = crate::load::load(&[crate::PolicySource::baseline()]).unwrap();
        let index = PolicyIndex::new(&loaded.set);
        let stores = StoreCache::default();
        let cache = PlanCache::default();
        let principal =
            Arc::new(PreparedPrincipal::new(&PrincipalFacts::user("bob", &["end_user"])).unwrap());
        let resource = PreparedResource::new(ResourceFacts::tool(
            ConnectorFacts::new("crm", "alice"),
            ToolFacts::named("update_customer"),
        ))
        .unwrap();
        let make = || {
            cache
                .get_or_make(
                    &Inputs {
                        loaded: &loaded,
                        index: &index,
                        authorizer: &Authorizer::new(),
                        stores: &stores,
                    },
                    &principal,
                    Action::CallTool,
                    &resource,
                )
                .unwrap()
        };
        let plan = make();
        assert!(Arc::ptr_eq(&plan, &make()), "made once, then cached");
        let entries: Vec<(&str, bool)> = plan
            .entries
            .iter()
            .map(|e| (e.reason.policy.as_str(), e.cond.is_some()))
            .collect();
        assert_eq!(
            entries,
            [
                ("confirm-risky", true),
                ("environment-mismatch", true),
                ("missing-scope", true),
                ("risk-block", true),
                ("use-connectors", false),
            ]
        );
        assert_eq!(plan.residuals(), 4);
        let mut c = ctx();
        assert_eq!(
            plan.decide(&c).map(|d| d.0),
            Some(crate::Verdict::Allow),
            "crm:write held"
        );
        c.risk = 60;
        assert_eq!(plan.decide(&c).map(|d| d.0), Some(crate::Verdict::Confirm));
        c.scopes = vec!["crm:read".into()];
        let (verdict, reasons) = plan.decide(&c).unwrap();
        assert_eq!(verdict, crate::Verdict::Deny);
        let ids: Vec<&str> = reasons.iter().map(|r| r.policy.as_str()).collect();
        assert_eq!(ids, ["confirm-risky", "missing-scope"]);
        assert_eq!(cache.counts(), (1, 0));
    }
}
