//! The inspection stages in the data path (DESIGN.md stages 2, 4, 5 and 8; issue 6):
//! - resolve (PI-3): every listed tool's definition is hashed, scanned for poisoning and pinned;
//!   a definition that changed since it was approved is hidden from listings and its calls are
//!   refused until an admin approves it (`portcullis tools diff|approve`);
//! - validate (IV-1) and inspect the request (IV-4, PI-2, EG-1): arguments against the tool's
//!   schema, detectors on them, URL arguments against the connector's egress allow-list;
//! - inspect the response (DLP-4, DLP-5, PI-1, EG-3): data rules, output minimization, indirect
//!   injection, widget checks.
//!
//! Each stage writes its findings and reasons into the call's event; a stage that cannot decide
//! refuses (fail closed).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use portcullis_config::ValidInspection;
use portcullis_core::{Decision, Event, Outcome};
use portcullis_detect::Detector;
use portcullis_inspect::arguments::{CallFacts, RequestInspector};
use portcullis_inspect::egress::{EgressGuard, Resolver};
use portcullis_inspect::pinning;
use portcullis_inspect::results::{ResultFacts, ResultInspector, ResultMethod};
use portcullis_inspect::schema::{ArgumentValidator, ToolSchemas};
use portcullis_inspect::transform::PseudonymKey;
use serde_json::Value;

use crate::Inner;
use crate::handler::RequestInfo;
use crate::jsonrpc::{Id, code, error_response};
use crate::session::LiveSession;

/// What the pin book knows of one tool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PinRecord {
    /// The approved definition's hash; none: never approved (flagged at first sight).
    pub approved_hash: Option<String>,
    /// A definition seen since, waiting for approval.
    pub pending_hash: Option<String>,
}

/// Where pinned tool definitions are kept: the database in `serve` (shared with `portcullis
/// tools` and other replicas), memory in tests.
pub trait PinBook: Send + Sync {
    /// The pins of one connector, by tool name.
    fn list(&self, connector: &str) -> BoxFuture<'_, Result<BTreeMap<String, PinRecord>, String>>;
    /// Records a definition seen in a listing. A first definition is approved when
    /// `approve_if_first` (it was scanned clean), else kept pending; a different one is kept
    /// pending beside the approved one (drift). Returns the record after.
    fn observe(
        &self,
        connector: &str,
        tool: &str,
        hash: &str,
        definition: &Value,
        approve_if_first: bool,
    ) -> BoxFuture<'_, Result<PinRecord, String>>;
}

/// A tool as the connector last listed it.
#[derive(Debug)]
pub struct KnownTool {
    /// Its name.
    pub name: String,
    /// The definition as listed.
    pub definition: Value,
    /// [`pinning::definition_hash`] of it.
    pub hash: String,
    /// `openWorldHint` (true unless the tool says false, as MCP defaults).
    pub open_world: bool,
}

/// Why a listed tool is not usable now.
enum PinVerdict {
    Usable,
    Drifted,
    AwaitingApproval,
}

/// The inspection stages of one gateway, built once at start-up.
pub struct GatewayInspection {
    settings: ValidInspection,
    request: RequestInspector,
    results: ResultInspector,
    schemas: ArgumentValidator,
    detector: Arc<Detector>,
    /// By connector index.
    egress: Vec<EgressGuard>,
    resolver: Arc<dyn Resolver>,
    book: Arc<dyn PinBook>,
    /// The gateway's pseudonym key; each session's key derives from it.
    key: Vec<u8>,
    /// Pins as last read from or written to the book, by connector index and tool.
    pins: dashmap::DashMap<(usize, String), PinRecord>,
    /// Tools as last listed, by connector index and name.
    known: dashmap::DashMap<(usize, String), Arc<KnownTool>>,
    /// Reasons found while shaping a listing, for that listing's event (by connector index).
    listing_notes: Mutex<BTreeMap<usize, Vec<String>>>,
}

impl GatewayInspection {
    /// Whether inspection is on (`inspection.enabled`).
    pub(crate) fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The stages for the connectors of `config`, with `detector` shared, names resolved by
    /// `resolver`, pins kept in `book` and pseudonyms keyed by `key` (32 random bytes when the
    /// config names none).
    pub fn new(
        config: &portcullis_config::ValidConfig,
        detector: Arc<Detector>,
        resolver: Arc<dyn Resolver>,
        book: Arc<dyn PinBook>,
        key: Vec<u8>,
    ) -> Self {
        let settings = config.inspection.clone();
        Self {
            request: RequestInspector::new(detector.clone(), &settings),
            results: ResultInspector::new(detector.clone(), &settings),
            schemas: ArgumentValidator::new(&settings),
            egress: config
                .connectors
                .iter()
                .map(|c| EgressGuard::new(&c.name, &c.egress))
                .collect(),
            detector,
            resolver,
            book,
            key,
            settings,
            pins: dashmap::DashMap::new(),
            known: dashmap::DashMap::new(),
            listing_notes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads the pins of every connector from the book (at start-up and after approvals).
    pub async fn refresh_pins(&self, i: usize, connector: &str) -> Result<(), String> {
        let pins = self.book.list(connector).await?;
        for (tool, r) in pins {
            self.pins.insert((i, tool), r);
        }
        Ok(())
    }

    fn verdict(&self, i: usize, tool: &KnownTool) -> PinVerdict {
        if !self.settings.pin_tools {
            return PinVerdict::Usable;
        }
        match self.pins.get(&(i, tool.name.clone())).map(|r| r.clone()) {
            Some(r) if r.approved_hash.as_deref() == Some(tool.hash.as_str()) => PinVerdict::Usable,
            Some(r) if r.approved_hash.is_some() => PinVerdict::Drifted,
            _ => PinVerdict::AwaitingApproval,
        }
    }

    fn note(&self, i: usize, reason: String) {
        self.listing_notes.lock().entry(i).or_default().push(reason);
    }
}

/// Learns one tool of connector `i` from a listing: hashes, scans and pins it (PI-3). Returns
/// whether it may be listed: a drifted tool, or one flagged for poisoning at first sight, is
/// hidden until approved. The book is written in the background; the cache decides now.
pub(crate) fn observe_tool(inner: &Inner, i: usize, tool: &Value) -> bool {
    let Some(insp) = inner.inspection.get() else {
        return true;
    };
    let Some(name) = tool.get("name").and_then(|n| n.as_str()) else {
        return false;
    };
    let hash = pinning::definition_hash(tool);
    let open_world = tool
        .pointer("/annotations/openWorldHint")
        .and_then(|v| v.as_bool())
        != Some(false);
    let known = Arc::new(KnownTool {
        name: name.to_string(),
        definition: tool.clone(),
        hash: hash.clone(),
        open_world,
    });
    let key = (i, name.to_string());
    insp.known.insert(key.clone(), known.clone());
    if !insp.settings.pin_tools {
        return true;
    }
    let cached = insp.pins.get(&key).map(|r| r.clone());
    let connector = inner.connector_names[i].clone();
    let first_sight = cached.is_none();
    let needs_write = match &cached {
        None => true,
        Some(r) => {
            r.approved_hash.as_deref() != Some(hash.as_str())
                && r.pending_hash.as_deref() != Some(hash.as_str())
        }
    };
    if needs_write {
        // Scan only what is new: an approved, unchanged definition was scanned before.
        let poison = pinning::scan_definition(&insp.detector, tool);
        let clean = !pinning::needs_review(&poison, pinning::REVIEW_THRESHOLD);
        if !clean {
            insp.note(i, format!("tool_poisoning:{name}"));
        }
        if !first_sight {
            insp.note(i, format!("tool_definition_drift:{name}"));
            tracing::warn!(connector = %connector, tool = %name, "tool definition changed since it was approved; blocked until re-approved");
        }
        let mut r = cached.unwrap_or_default();
        if first_sight && clean {
            r.approved_hash = Some(hash.clone());
        } else {
            r.pending_hash = Some(hash.clone());
        }
        insp.pins.insert(key.clone(), r);
        let (book, def) = (insp.book.clone(), tool.clone());
        let (i2, name2) = (i, name.to_string());
        let shared = inner.inspection.get().cloned();
        tokio::spawn(async move {
            match book
                .observe(&connector, &name2, &hash, &def, first_sight && clean)
                .await
            {
                // The book is the truth shared with other replicas and the CLI.
                Ok(r) => {
                    if let Some(insp) = shared {
                        insp.pins.insert((i2, name2), r);
                    }
                }
                // Fail closed: a first definition that could not be recorded is not trusted. With
                // no cached pin the tool is blocked, and the next listing tries to record it again.
                Err(e) => {
                    tracing::error!(connector = %connector, tool = %name2, error = %e, "could not record a tool definition; the tool is blocked until it is recorded");
                    if let Some(insp) = shared
                        && first_sight
                    {
                        insp.pins.remove(&(i2, name2));
                    }
                }
            }
        });
    }
    matches!(insp.verdict(i, &known), PinVerdict::Usable)
}

/// Moves the reasons found while shaping a listing of connector `i` into its event.
pub(crate) fn note_listing(insp: &GatewayInspection, i: usize, ev: &mut Event) {
    if let Some(notes) = insp.listing_notes.lock().remove(&i) {
        ev.reasons.extend(notes);
    }
}

/// Refreshes connector `i`'s pins before a listing passes, so that approvals made with
/// `portcullis tools approve` (or on another replica) show at once.
pub(crate) async fn before_listing(inner: &Inner, i: usize) {
    if let Some(insp) = inner.inspection.get()
        && insp.settings.pin_tools
        && let Err(e) = insp.refresh_pins(i, &inner.connector_names[i]).await
    {
        tracing::error!(connector = %inner.connector_names[i], error = %e, "could not read pinned tool definitions");
    }
}

/// Stage 2 for a `tools/call` (PI-3): the tool as last listed, approved. A tool not yet seen is
/// learned by listing the connector's tools; one the connector does not list, one whose
/// definition drifted, or one awaiting approval is refused with what to do.
pub(crate) async fn resolve_tool(
    inner: &Arc<Inner>,
    insp: &GatewayInspection,
    session: &Arc<LiveSession>,
    i: usize,
    tool: &str,
    info: &RequestInfo,
    ev: &mut Event,
) -> Result<Arc<KnownTool>, String> {
    let connector = &inner.connector_names[i];
    let key = (i, tool.to_string());
    if !insp.known.contains_key(&key) {
        if insp.settings.pin_tools {
            let _ = insp.refresh_pins(i, connector).await;
        }
        crate::handler::list_upstream_tools(inner, session, i, tool, info).await;
        let mut notes = Vec::new();
        if let Some(n) = insp.listing_notes.lock().remove(&i) {
            notes = n;
        }
        ev.reasons.extend(notes);
    }
    let Some(known) = insp.known.get(&key).map(|k| k.clone()) else {
        ev.reasons.push("tool_unlisted".into());
        return Err(format!(
            "connector {connector:?} does not list a tool named {tool:?}; list its tools \
             (tools/list) and call one of those"
        ));
    };
    let mut verdict = insp.verdict(i, &known);
    if !matches!(verdict, PinVerdict::Usable) {
        // An admin may have approved it since: read the book again before refusing.
        if insp.refresh_pins(i, connector).await.is_ok() {
            verdict = insp.verdict(i, &known);
        }
    }
    match verdict {
        PinVerdict::Usable => Ok(known),
        PinVerdict::Drifted => {
            ev.reasons.push(format!("tool_definition_drift:{tool}"));
            Err(format!(
                "the definition of tool {tool:?} of connector {connector:?} changed after it was \
                 approved, so it is blocked until an admin reviews it: `portcullis tools diff \
                 {connector} {tool}` shows the change, `portcullis tools approve {connector} {tool}` \
                 approves it"
            ))
        }
        PinVerdict::AwaitingApproval => {
            ev.reasons.push(format!("tool_awaiting_approval:{tool}"));
            Err(format!(
                "tool {tool:?} of connector {connector:?} is waiting for an admin's approval (its \
                 definition was flagged for possible tool poisoning): `portcullis tools diff \
                 {connector} {tool}` shows it, `portcullis tools approve {connector} {tool}` \
                 approves it"
            ))
        }
    }
}

/// Stages 4 and 5 for a `tools/call` (IV-1, IV-4, PI-2): the arguments against the tool's schema
/// and the connector's stricter override, then the detectors and the egress allow-list. Returns
/// the message to forward (rewritten when an argument was redacted), or the JSON-RPC error body
/// to answer with (the event says why).
pub(crate) async fn check_call(
    inner: &Inner,
    i: usize,
    known: Option<&KnownTool>,
    id: &Id,
    raw: Bytes,
    ev: &mut Event,
) -> Result<Bytes, Bytes> {
    let (Some(insp), Some(tool)) = (inner.inspection.get(), known) else {
        return Ok(raw);
    };
    if !insp.settings.enabled {
        return Ok(raw);
    }
    let refuse = |ev: &mut Event, code: i64, message: &str| {
        ev.decision = Decision::Deny;
        ev.outcome = Outcome::Error {
            code,
            origin: "gateway".into(),
        };
        error_response(id, code, message)
    };
    let Ok(mut msg) = serde_json::from_slice::<Value>(&raw) else {
        // The protocol stage parsed it already; failing here means something is badly wrong.
        return Err(refuse(
            ev,
            code::INVALID_REQUEST,
            "the request is not valid JSON",
        ));
    };
    let c = &inner.config.connectors[i];
    let overrides = c.inspect.get(&tool.name);
    let mut args = msg
        .pointer("/params/arguments")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let schemas = ToolSchemas {
        connector: &c.name,
        tool: &tool.name,
        input_schema: tool.definition.get("inputSchema"),
        override_schema: overrides.and_then(|o| o.input_schema.as_ref()),
    };
    if let Err(e) = insp.schemas.validate(&schemas, Some(&args)) {
        ev.reasons.push(e.reason().to_string());
        let m = format!("invalid arguments for tool {:?}: {e}", tool.name);
        return Err(refuse(ev, code::INVALID_PARAMS, &m));
    }
    let facts = CallFacts {
        connector: &c.name,
        tool: &tool.name,
        open_world: tool.open_world,
        tool_inspect: overrides,
        egress: &insp.egress[i],
    };
    let verdict = insp
        .request
        .inspect(&facts, &mut args, insp.resolver.as_ref())
        .await;
    ev.findings.extend(verdict.findings);
    ev.reasons.extend(verdict.reasons);
    if let Some(r) = verdict.refusal {
        if !ev.reasons.contains(&r.reason) {
            ev.reasons.push(r.reason.clone());
        }
        return Err(refuse(ev, code::FORBIDDEN, &r.message));
    }
    if !verdict.rewritten {
        return Ok(raw);
    }
    if let Some(slot) = msg.pointer_mut("/params/arguments") {
        *slot = args;
    }
    ev.decision = Decision::Redact;
    Ok(serde_json::to_vec(&msg).map(Bytes::from).unwrap_or(raw))
}

/// Stage 8 (DLP-4, DLP-5, PI-1, EG-3): a `tools/call` result or a `resources/read` answer,
/// before it reaches the client. Returns the body to send; a blocked result becomes a JSON-RPC
/// error saying why.
#[allow(clippy::too_many_arguments)]
pub(crate) fn inspect_result(
    inner: &Inner,
    insp: &GatewayInspection,
    session: &LiveSession,
    i: usize,
    ev: &mut Event,
    id: &Id,
    body: Bytes,
    parsed: Option<Box<serde_json::Map<String, Value>>>,
) -> Bytes {
    if !insp.settings.enabled {
        return body;
    }
    // The message as its upstream already read it (once, whole), or read here.
    let read = match parsed {
        Some(map) => Ok(Value::Object(*map)),
        None => serde_json::from_slice::<Value>(&body),
    };
    let Ok(mut msg) = read else {
        // Fail closed: what cannot be read cannot be inspected. The client's request id is
        // known even when the answer is unreadable, so the client can match the refusal.
        ev.decision = Decision::Deny;
        ev.reasons.push("result_unreadable".into());
        return error_response(
            id,
            code::UPSTREAM_PROTOCOL,
            "the connector's answer is not valid JSON, so it was not passed on",
        );
    };
    if msg.get("result").is_none() {
        return match msg.get("error") {
            Some(Value::Object(_)) => inspect_error(inner, insp, session, i, ev, id, msg, body),
            _ => body,
        };
    }
    let Some(result) = msg.get_mut("result") else {
        return body;
    };
    let c = &inner.config.connectors[i];
    let target = ev.target.clone().unwrap_or_default();
    let Some(method) = ResultMethod::from_method(ev.method.as_deref().unwrap_or("")) else {
        return body;
    };
    // The master key is checked at start-up, so deriving cannot fail; if it did, pseudonyms
    // would fall back to redaction rather than to the value.
    let key = PseudonymKey::for_session(&insp.key, &session.id())
        .unwrap_or_else(|_| PseudonymKey::from_bytes(rand::random()));
    let widget = insp.known.get(&(i, target.clone())).is_some_and(|k| {
        k.definition
            .pointer("/_meta/openai~1outputTemplate")
            .is_some()
            || k.definition.pointer("/_meta/ui/resourceUri").is_some()
    });
    let facts = ResultFacts {
        connector: &c.name,
        target: &target,
        method,
        tool: c.inspect.get(&target),
        egress_allow: &c.egress.allow,
        pseudonym_key: &key,
        widget,
    };
    let verdict = insp.results.inspect(&facts, result);
    ev.findings.extend(verdict.findings);
    ev.reasons.extend(verdict.reasons);
    if let Some(why) = verdict.blocked {
        let id = Id(msg
            .get("id")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into())
            .into_boxed_str());
        ev.decision = Decision::Deny;
        ev.outcome = Outcome::Error {
            code: code::FORBIDDEN,
            origin: "gateway".into(),
        };
        return error_response(&id, code::FORBIDDEN, &why);
    }
    if !verdict.changed {
        return body;
    }
    if ev.decision == Decision::Allow {
        ev.decision = Decision::Redact;
    }
    serde_json::to_vec(&msg).map(Bytes::from).unwrap_or(body)
}

/// Inspects a connector's JSON-RPC error answer (DLP-2, DLP-4): its `message` and `data` are
/// text a model reads like any result, and error paths are where stack traces, SQL errors,
/// connection strings and tokens leak. They go through the result rules as the
/// `structuredContent` of a result would (`/error/message`, `/error/data`); the error code
/// is kept.
#[allow(clippy::too_many_arguments)]
fn inspect_error(
    inner: &Inner,
    insp: &GatewayInspection,
    session: &LiveSession,
    i: usize,
    ev: &mut Event,
    id: &Id,
    mut msg: Value,
    body: Bytes,
) -> Bytes {
    let Some(method) = ResultMethod::from_method(ev.method.as_deref().unwrap_or("")) else {
        return body;
    };
    let Some(error) = msg.get_mut("error").and_then(Value::as_object_mut) else {
        return body;
    };
    let mut carried = serde_json::Map::new();
    for field in ["message", "data"] {
        if let Some(v) = error.remove(field) {
            carried.insert(field.to_string(), v);
        }
    }
    if carried.is_empty() {
        return body;
    }
    let mut as_result = serde_json::json!({ "structuredContent": Value::Object(carried) });
    let c = &inner.config.connectors[i];
    let target = ev.target.clone().unwrap_or_default();
    let key = PseudonymKey::for_session(&insp.key, &session.id())
        .unwrap_or_else(|_| PseudonymKey::from_bytes(rand::random()));
    let facts = ResultFacts {
        connector: &c.name,
        target: &target,
        method,
        tool: c.inspect.get(&target),
        egress_allow: &c.egress.allow,
        pseudonym_key: &key,
        widget: false,
    };
    let verdict = insp.results.inspect(&facts, &mut as_result);
    ev.findings
        .extend(verdict.findings.into_iter().map(|mut f| {
            // the finding is in the error, not in a structuredContent the client never sees
            if let Some(p) = f.pointer.take() {
                f.pointer = Some(p.replacen("/structuredContent", "/error", 1));
            }
            f
        }));
    ev.reasons.extend(verdict.reasons);
    if let Some(why) = verdict.blocked {
        ev.decision = Decision::Deny;
        ev.outcome = Outcome::Error {
            code: code::FORBIDDEN,
            origin: "gateway".into(),
        };
        return error_response(id, code::FORBIDDEN, &why);
    }
    if !verdict.changed {
        return body;
    }
    if let Some(Value::Object(carried)) = as_result
        .as_object_mut()
        .and_then(|r| r.remove("structuredContent"))
    {
        for (field, v) in carried {
            error.insert(field, v);
        }
    }
    if ev.decision == Decision::Allow {
        ev.decision = Decision::Redact;
    }
    serde_json::to_vec(&msg).map(Bytes::from).unwrap_or(body)
}
