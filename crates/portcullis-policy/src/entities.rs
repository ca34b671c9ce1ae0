//! Facts to Cedar entities, context and request (AZ-1). What does not change from call to call
//! (a connector's and a tool's entity) is built once, in a [`PreparedResource`] the gateway keeps
//! beside its registry entry; only the principal, its client and the context are built per call.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, RwLock};

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};

use crate::PolicyError;
use crate::facts::{
    Action, Classification, ConnectorFacts, ContextFacts, PrincipalFacts, ResourceFacts,
    ResourceItem, ResourceKind, Sharing,
};
use crate::schema::schema;

/// The schema's entity type names, parsed once: Cedar's parser is far too slow for every call.
static TYPES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    [
        "User",
        "Group",
        "Role",
        "Client",
        "Connector",
        "Tool",
        "Resource",
        "Prompt",
        "Action",
    ]
    .into_iter()
    .map(|t| {
        // Constant names of our schema (unit-tested): only a code defect fails here.
        #[allow(clippy::expect_used)]
        let name =
            EntityTypeName::from_str(&format!("Portcullis::{t}")).expect("our type names parse");
        (t, name)
    })
    .collect()
});

/// The actions' uids, built once.
static ACTIONS: LazyLock<HashMap<Action, EntityUid>> = LazyLock::new(|| {
    Action::ALL
        .into_iter()
        .map(|a| (a, uid("Action", a.as_str())))
        .collect()
});

/// A uid `Portcullis::<ty>::"<id>"`; `ty` is one of the schema's types.
pub(crate) fn uid(ty: &str, id: &str) -> EntityUid {
    // Callers pass only the constant names above.
    #[allow(clippy::expect_used)]
    let ty = TYPES.get(ty).expect("a type of our schema").clone();
    EntityUid::from_type_name_and_id(ty, EntityId::new(id))
}

/// The uid of an action.
pub(crate) fn action_uid(a: Action) -> EntityUid {
    ACTIONS[&a].clone()
}

/// Above this many cached source addresses the cache is emptied and refilled (a bound on memory).
const MAX_IPS: usize = 4096;

/// `ip("<addr>")` expressions by address. Cedar's `new_ip` parses the function name `ip` with its
/// full policy parser on every call (about a third of building a context); the expression is a
/// pure function of the address, and callers come from few addresses, so it is built once each.
static IPS: LazyLock<RwLock<HashMap<IpAddr, RestrictedExpression>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

fn ip_expr(ip: IpAddr) -> RestrictedExpression {
    if let Some(e) = IPS.read().unwrap_or_else(|e| e.into_inner()).get(&ip) {
        return e.clone();
    }
    let e = RestrictedExpression::new_ip(ip.to_string());
    let mut m = IPS.write().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MAX_IPS {
        m.clear();
    }
    m.insert(ip, e.clone());
    e
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

fn strings<'a>(it: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(it.into_iter().map(|s| string(s)))
}

fn non_empty(field: &str, value: &str) -> Result<(), PolicyError> {
    if value.is_empty() {
        return Err(PolicyError::facts(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(PolicyError::facts(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn sharing_expr(s: &Sharing) -> RestrictedExpression {
    // Built by us from typed fields: the record cannot have duplicate keys.
    #[allow(clippy::expect_used)]
    RestrictedExpression::new_record([
        ("mode".to_string(), string(s.mode.as_str())),
        ("users".to_string(), strings(&s.users)),
        ("groups".to_string(), strings(&s.groups)),
    ])
    .expect("distinct keys")
}

fn build_entity(
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, PolicyError> {
    Entity::new(uid, attrs, parents).map_err(|e| PolicyError::Build {
        what: "entity",
        message: e.to_string(),
    })
}

/// A resource's Cedar entity, built once from its facts and checked against the schema; cheap to
/// clone. Build one per connector, tool, resource and prompt when the registry loads them.
#[derive(Debug, Clone)]
pub struct PreparedResource {
    inner: Arc<PreparedInner>,
}

#[derive(Debug)]
struct PreparedInner {
    facts: ResourceFacts,
    uid: EntityUid,
    connector_uid: EntityUid,
    /// The Boolean attributes of its entity (a tool's annotations), for the policy index: a
    /// policy whose condition starts with one of them cannot hold when it has the other value.
    bools: Option<ToolBools>,
    /// The resource's entity with the schema's actions: the start of every call's entity store.
    entities: Entities,
}

/// A tool entity's Boolean attributes, in the order of [`TOOL_BOOLS`].
type ToolBools = [bool; 5];

/// The names of a tool entity's Boolean attributes (the schema's `Tool`).
const TOOL_BOOLS: [&str; 5] = [
    "read_only",
    "destructive",
    "idempotent",
    "open_world",
    "bulk",
];

impl PreparedResource {
    /// Checks the facts and builds the entity; errors name the bad field.
    pub fn new(facts: ResourceFacts) -> Result<Self, PolicyError> {
        let c: &ConnectorFacts = &facts.connector;
        non_empty("connector.name", &c.name)?;
        if c.name.contains('/') {
            return Err(PolicyError::facts(
                "connector.name",
                format!(
                    "`{}` must not contain `/` (it separates connector and item)",
                    c.name
                ),
            ));
        }
        for u in &c.sharing.users {
            non_empty("connector.sharing.users[]", u)?;
        }
        for g in &c.sharing.groups {
            non_empty("connector.sharing.groups[]", g)?;
        }
        // The owner may be empty (an unowned connector): then `principal.name == resource.owner`
        // never holds, since subjects are never empty.
        let kind = facts.kind();
        let connector_uid = uid("Connector", &c.name);
        let this_uid = uid(kind.type_name(), &facts.entity_id());
        let mut attrs: HashMap<String, RestrictedExpression> = HashMap::new();
        let mut classification: Classification = c.classification;
        match &facts.item {
            ResourceItem::Connector => {}
            ResourceItem::Tool(t) => {
                non_empty("tool.name", &t.name)?;
                attrs.insert(
                    "read_only".into(),
                    RestrictedExpression::new_bool(t.read_only),
                );
                attrs.insert(
                    "destructive".into(),
                    RestrictedExpression::new_bool(t.destructive),
                );
                attrs.insert(
                    "idempotent".into(),
                    RestrictedExpression::new_bool(t.idempotent),
                );
                attrs.insert(
                    "open_world".into(),
                    RestrictedExpression::new_bool(t.open_world),
                );
                attrs.insert("bulk".into(), RestrictedExpression::new_bool(t.bulk));
                classification = t.classification.unwrap_or(classification);
            }
            ResourceItem::Resource {
                uri,
                classification: cl,
            } => {
                non_empty("resource.uri", uri)?;
                classification = cl.unwrap_or(classification);
            }
            ResourceItem::Prompt { name } => non_empty("prompt.name", name)?,
        }
        let name = match &facts.item {
            ResourceItem::Connector => c.name.clone(),
            ResourceItem::Tool(t) => t.name.clone(),
            ResourceItem::Resource { uri, .. } => uri.clone(),
            ResourceItem::Prompt { name } => name.clone(),
        };
        attrs.insert("name".into(), string(&name));
        attrs.insert("owner".into(), string(&c.owner));
        attrs.insert("environment".into(), string(c.environment.as_str()));
        attrs.insert("sharing".into(), sharing_expr(&c.sharing));
        attrs.insert("classification".into(), string(classification.as_str()));
        attrs.insert("required_scope".into(), string(&facts.required_scope()));
        let parents = if kind == ResourceKind::Connector {
            HashSet::new()
        } else {
            HashSet::from([connector_uid.clone()])
        };
        let entity = build_entity(this_uid.clone(), attrs, parents)?;
        // Checked against the schema once here, so that the per-call path need not. The store
        // kept holds the resource alone: the schema's actions have no parents, so `action in`
        // needs no action entities, and a smaller store is cheaper to extend on every call.
        let build_err = |e: cedar_policy::entities_errors::EntitiesError| PolicyError::Build {
            what: "entity",
            message: e.to_string(),
        };
        Entities::from_entities([entity.clone()], Some(schema())).map_err(build_err)?;
        let entities = Entities::from_entities([entity], None).map_err(build_err)?;
        let bools = match &facts.item {
            ResourceItem::Tool(t) => Some([
                t.read_only,
                t.destructive,
                t.idempotent,
                t.open_world,
                t.bulk,
            ]),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(PreparedInner {
                facts,
                uid: this_uid,
                connector_uid,
                bools,
                entities,
            }),
        })
    }

    /// The facts it was built from.
    pub fn facts(&self) -> &ResourceFacts {
        &self.inner.facts
    }

    /// Its kind.
    pub fn kind(&self) -> ResourceKind {
        self.inner.facts.kind()
    }

    /// Its entity uid, e.g. `Portcullis::Tool::"crm/delete_customer"`.
    pub fn uid(&self) -> &EntityUid {
        &self.inner.uid
    }

    /// The uid of its connector (itself for a connector).
    pub fn connector_uid(&self) -> &EntityUid {
        &self.inner.connector_uid
    }

    pub(crate) fn entities(&self) -> &Entities {
        &self.inner.entities
    }

    /// The address of the shared prepared value: a cache key that tells apart two preparations
    /// of the same uid (a cache keyed by it must hold a clone, so that the address stays taken).
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The value of its entity's Boolean attribute `name`; `None` when it has no such attribute.
    pub(crate) fn bool_attr(&self, name: &str) -> Option<bool> {
        let bools = self.inner.bools.as_ref()?;
        TOOL_BOOLS.iter().position(|b| *b == name).map(|i| bools[i])
    }

    /// Its Boolean attributes as one number (0 when it has none), so that caches of what the
    /// policy index selects by them key on the values, not only on the uid: a tool registered
    /// again with other annotations gets its own entry.
    pub(crate) fn bools_key(&self) -> u8 {
        self.inner.bools.map_or(0, |b| {
            b.iter()
                .enumerate()
                .fold(1, |k, (i, &v)| k | (u8::from(v) << (i + 1)))
        })
    }
}

/// A principal's entities (the user and its client), built once per distinct principal and
/// cached by the engine: users make many calls with the same token.
#[derive(Debug)]
pub(crate) struct PreparedPrincipal {
    pub(crate) uid: EntityUid,
    /// The uid, then the groups and roles: what a policy's principal scope may name.
    pub(crate) keys: Vec<EntityUid>,
    user: Entity,
    client: Entity,
}

impl PreparedPrincipal {
    pub(crate) fn new(p: &PrincipalFacts) -> Result<Self, PolicyError> {
        non_empty("principal.subject", &p.subject)?;
        non_empty("principal.client_id", &p.client_id)?;
        let user_uid = uid("User", &p.subject);
        let mut keys = Vec::with_capacity(1 + p.groups.len() + p.roles.len());
        keys.push(user_uid.clone());
        for g in &p.groups {
            non_empty("principal.groups[]", g)?;
            keys.push(uid("Group", g));
        }
        for r in &p.roles {
            non_empty("principal.roles[]", r)?;
            keys.push(uid("Role", r));
        }
        let user = build_entity(
            user_uid.clone(),
            HashMap::from([
                ("name".to_string(), string(&p.subject)),
                ("groups".to_string(), strings(&p.groups)),
                (
                    "member".to_string(),
                    RestrictedExpression::new_bool(p.member),
                ),
            ]),
            keys[1..].iter().cloned().collect(),
        )?;
        let client = build_entity(
            uid("Client", &p.client_id),
            HashMap::from([("id".to_string(), string(&p.client_id))]),
            HashSet::new(),
        )?;
        Ok(Self {
            uid: user_uid,
            keys,
            user,
            client,
        })
    }
}

/// Checks the context's facts, as every call's context does; the first error found.
pub(crate) fn check_context(c: &ContextFacts) -> Result<(), PolicyError> {
    if c.risk > 100 {
        return Err(PolicyError::facts(
            "context.risk",
            format!("{} is out of range; use 0 to 100", c.risk),
        ));
    }
    if c.time.hour > 23 || c.time.weekday > 6 {
        return Err(PolicyError::facts(
            "context.time",
            "hour must be 0-23 and weekday 0 (Monday) to 6",
        ));
    }
    for s in &c.scopes {
        non_empty("context.scopes[]", s)?;
    }
    Ok(())
}

/// The Cedar context; `confirmed` overrides the facts' (for the re-evaluation of HC-1).
pub(crate) fn context(
    c: &ContextFacts,
    client_id: &str,
    confirmed: bool,
) -> Result<Context, PolicyError> {
    check_context(c)?;
    let time = RestrictedExpression::new_record([
        (
            "hour".to_string(),
            RestrictedExpression::new_long(c.time.hour.into()),
        ),
        (
            "weekday".to_string(),
            RestrictedExpression::new_long(c.time.weekday.into()),
        ),
        (
            "unix".to_string(),
            RestrictedExpression::new_long(c.time.unix),
        ),
    ])
    .map_err(|e| PolicyError::Build {
        what: "context",
        message: e.to_string(),
    })?;
    Context::from_pairs([
        ("scopes".to_string(), strings(&c.scopes)),
        ("source_ip".to_string(), ip_expr(c.source_ip)),
        ("time".to_string(), time),
        (
            "risk".to_string(),
            RestrictedExpression::new_long(c.risk.into()),
        ),
        (
            "confirmed".to_string(),
            RestrictedExpression::new_bool(confirmed),
        ),
        (
            "token_environment".to_string(),
            string(c.token_environment.as_str()),
        ),
        (
            "client".to_string(),
            RestrictedExpression::new_entity_uid(uid("Client", client_id)),
        ),
    ])
    .map_err(|e| PolicyError::Build {
        what: "context",
        message: e.to_string(),
    })
}

/// Above this many cached entity stores the cache is emptied and refilled (a bound on memory).
const MAX_STORES: usize = 16_384;

/// The entity store of a call (its resource, user and client) depends only on the prepared
/// principal and the prepared resource, and building it (copying both entities in, Cedar's
/// transitive closure) costs as much as evaluating several policies: a user calls the same
/// tools again and again, so each pair's store is built once and shared (bounded).
#[derive(Default)]
pub(crate) struct StoreCache {
    /// By the addresses of the two prepared values; each entry holds both, so that neither
    /// address can be reused by another value while the entry exists.
    map: RwLock<HashMap<(usize, usize), CachedStore>>,
}

struct CachedStore {
    _principal: Arc<PreparedPrincipal>,
    _resource: PreparedResource,
    entities: Arc<Entities>,
}

impl StoreCache {
    /// The number of stores held.
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn get_or_build(
        &self,
        principal: &Arc<PreparedPrincipal>,
        resource: &PreparedResource,
    ) -> Result<Arc<Entities>, PolicyError> {
        let key = (Arc::as_ptr(principal) as usize, resource.addr());
        if let Some(hit) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.entities.clone());
        }
        let entities = Arc::new(store(principal, resource, false)?);
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_STORES {
            m.clear();
        }
        m.insert(
            key,
            CachedStore {
                _principal: principal.clone(),
                _resource: resource.clone(),
                entities: entities.clone(),
            },
        );
        Ok(entities)
    }
}

/// The entity store of a call by `principal` on `resource`; `validate` checks the principal's
/// entities against the schema (the resource's was checked when it was prepared).
fn store(
    principal: &PreparedPrincipal,
    resource: &PreparedResource,
    validate: bool,
) -> Result<Entities, PolicyError> {
    resource
        .entities()
        .clone()
        .add_entities(
            [principal.user.clone(), principal.client.clone()],
            validate.then(schema),
        )
        .map_err(|e| PolicyError::Build {
            what: "entity",
            message: e.to_string(),
        })
}

/// One call, ready for Cedar: the request (unconfirmed as the facts say) and its entities.
pub(crate) struct BuiltCall {
    /// The principal's entities, its uid, groups and roles (the policy index's keys).
    pub(crate) principal: Arc<PreparedPrincipal>,
    pub(crate) action: EntityUid,
    pub(crate) resource: EntityUid,
    pub(crate) request: Request,
    pub(crate) entities: Arc<Entities>,
}

impl BuiltCall {
    /// Builds the request; `validate` checks it against the schema too (the CLI and tests do;
    /// the gateway's facts are typed, so its calls need not pay for it). Without `validate`, the
    /// entity store comes from `stores` (built there on first use).
    pub(crate) fn new(
        principal: &Arc<PreparedPrincipal>,
        client_id: &str,
        action: Action,
        resource: &PreparedResource,
        ctx: &ContextFacts,
        validate: bool,
        stores: &StoreCache,
    ) -> Result<Self, PolicyError> {
        if action.resource_kind() != resource.kind() {
            return Err(PolicyError::facts(
                "resource",
                format!(
                    "action {action} applies to a {}, not a {}",
                    action.resource_kind().type_name(),
                    resource.kind().type_name()
                ),
            ));
        }
        let context = context(ctx, client_id, ctx.confirmed)?;
        let action_uid = action_uid(action);
        let request = Request::new(
            principal.uid.clone(),
            action_uid.clone(),
            resource.uid().clone(),
            context,
            validate.then(schema),
        )
        .map_err(|e| PolicyError::Build {
            what: "request",
            message: e.to_string(),
        })?;
        let entities = if validate {
            Arc::new(store(principal, resource, true)?)
        } else {
            stores.get_or_build(principal, resource)?
        };
        Ok(Self {
            principal: principal.clone(),
            action: action_uid,
            resource: resource.uid().clone(),
            request,
            entities,
        })
    }

    /// The same call with `context.confirmed = true` (HC-1's re-evaluation).
    pub(crate) fn confirmed(
        &self,
        ctx: &ContextFacts,
        client_id: &str,
    ) -> Result<Request, PolicyError> {
        Request::new(
            self.principal.uid.clone(),
            self.action.clone(),
            self.resource.clone(),
            context(ctx, client_id, true)?,
            None,
        )
        .map_err(|e| PolicyError::Build {
            what: "request",
            message: e.to_string(),
        })
    }
}
