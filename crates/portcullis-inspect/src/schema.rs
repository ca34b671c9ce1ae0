//! Tool arguments against the tool's input schema and a stricter override (IV-1).
//!
//! The gateway validates every `tools/call` server-side before forwarding it: first the limits
//! (serialized size, nesting depth), checked without recursion so hostile nesting cannot blow
//! the stack; then the tool's own `inputSchema` as the connector listed it; then, when the
//! configuration has one, the stricter `connectors.C.inspect.tools.T.input_schema`.
//!
//! Schemas come from connectors, which are not trusted, so compiling one must be safe:
//! - `jsonschema` is built without default features, and an always-refusing retriever is
//!   installed, so no `$ref` to `http(s):` or `file:` is ever fetched (SSRF, local file read);
//!   such a schema fails closed with a message naming the reference.
//! - A `$schema` naming anything but a known draft is refused rather than resolved.
//! - `pattern` regexes run on `fancy-regex` with a small backtracking budget; patterns without
//!   look-around or back-references go to the linear-time `regex` engine anyway, and a pattern
//!   that runs out of budget fails the value (closed), it never hangs the gateway.
//!
//! Compiling a schema costs far more than validating with it, and tools are listed once and
//! called many times, so compiled validators are cached by the SHA-256 of the schema (a
//! connector cannot make its schema collide with another tool's), in a bounded cache that
//! evicts the least recently used. Compile failures are cached too, so a broken schema costs
//! one compile, not one per call.
//!
//! Error messages name the field as a JSON pointer and say what was expected and what was
//! found (`argument /limit: 5000 is greater than the maximum of 100`). Values are shown cut to
//! 40 characters, objects and arrays only by size, so a long or secret value is never echoed
//! whole; [`ArgumentError::reason`] is the value-free code for events and logs.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, PatternOptions, Retrieve, Uri, ValidationError, Validator};
use parking_lot::RwLock;
use portcullis_config::inspect::ValidInspection;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How many compiled schemas are kept by default: every tool of a large deployment, twice.
pub const DEFAULT_CACHE_CAPACITY: usize = 2048;

/// At most this many violations are spelled out in one error; the rest are counted.
const MAX_VIOLATIONS_SHOWN: usize = 5;
/// At most this many violations are collected at all (bounded work on hostile input).
const MAX_VIOLATIONS_COLLECTED: usize = 64;
/// Values in messages are cut to this many characters.
const MAX_VALUE_CHARS: usize = 40;
/// Pointers in messages are cut to this many characters.
const MAX_POINTER_CHARS: usize = 120;
/// One violation's explanation is cut to this many characters (enums can be long).
const MAX_MESSAGE_CHARS: usize = 240;
/// Backtracking budget of one `pattern` match.
const PATTERN_BACKTRACK_LIMIT: usize = 20_000;
/// Size budget of one compiled `pattern`.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Which schema a violation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSource {
    /// The tool's own `inputSchema`, as the connector listed it.
    Tool,
    /// The stricter schema from the gateway's configuration.
    Override,
}

/// One way the arguments break a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending value inside the arguments; empty for the
    /// arguments object itself.
    pub pointer: String,
    /// The JSON Schema keyword that failed (`maximum`, `required`, `type`...).
    pub keyword: String,
    /// The whole sentence: `argument /limit: 5000 is greater than the maximum of 100`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a call's arguments were refused (IV-1). `Display` is one sentence for the client (a
/// model or a person) saying what is wrong, where and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// `arguments` was present but not a JSON object.
    #[error("the arguments must be a JSON object; found {found}")]
    NotAnObject {
        /// What was found instead (`an array`, `a string`...).
        found: &'static str,
    },
    /// The serialized arguments exceed `inspection.arguments.max_bytes`.
    #[error(
        "the arguments are larger than the limit of {limit} bytes \
         (inspection.arguments.max_bytes); send less data in one call"
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The arguments nest deeper than `inspection.arguments.max_depth`.
    #[error(
        "argument {pointer} is nested deeper than the limit of {limit} levels \
         (inspection.arguments.max_depth); flatten the structure"
    )]
    TooDeep {
        /// Pointer of the first container past the limit.
        pointer: String,
        /// The limit.
        limit: usize,
    },
    /// The arguments break the tool's schema or the stricter override.
    #[error("{}", invalid_message(*schema, violations, *total))]
    Invalid {
        /// Which schema.
        schema: SchemaSource,
        /// The first violations found (at most 64).
        violations: Vec<Violation>,
        /// How many were found in all (capped at 64).
        total: usize,
    },
    /// The connector listed the tool without an input schema.
    #[error(
        "connector {connector} lists tool {tool} without an input schema, so its arguments \
         cannot be checked; the call is refused until the connector declares one"
    )]
    ToolSchemaMissing {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
    },
    /// The connector's schema for the tool does not compile (fail closed).
    #[error(
        "the input schema that connector {connector} lists for tool {tool} is invalid: \
         {detail}; the call is refused until the connector fixes its schema"
    )]
    ToolSchemaInvalid {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
        /// What is wrong with the schema.
        detail: String,
    },
    /// The configured override schema does not compile (fail closed).
    #[error(
        "the stricter input schema configured for {connector}/{tool} \
         (connectors.{connector}.inspect.tools.{tool}.input_schema) is invalid: {detail}; \
         an administrator must fix it"
    )]
    OverrideSchemaInvalid {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
        /// What is wrong with the schema.
        detail: String,
    },
}

impl ArgumentError {
    /// The short machine reason for the event; it never holds a value.
    pub fn reason(&self) -> &'static str {
        match self {
            ArgumentError::NotAnObject { .. } => "arguments_not_object",
            ArgumentError::TooLarge { .. } => "arguments_too_large",
            ArgumentError::TooDeep { .. } => "arguments_too_deep",
            ArgumentError::Invalid {
                schema: SchemaSource::Tool,
                ..
            } => "arguments_invalid",
            ArgumentError::Invalid {
                schema: SchemaSource::Override,
                ..
            } => "arguments_invalid_override",
            ArgumentError::ToolSchemaMissing { .. } => "tool_schema_missing",
            ArgumentError::ToolSchemaInvalid { .. } => "tool_schema_invalid",
            ArgumentError::OverrideSchemaInvalid { .. } => "override_schema_invalid",
        }
    }
}

fn invalid_message(source: SchemaSource, violations: &[Violation], total: usize) -> String {
    let mut s = violations
        .iter()
        .take(MAX_VIOLATIONS_SHOWN)
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let shown = violations.len().min(MAX_VIOLATIONS_SHOWN);
    if total > shown {
        s.push_str(&format!("; and {} more", total - shown));
    }
    if source == SchemaSource::Override {
        s.push_str(" (checked against this gateway's stricter schema for the tool)");
    }
    s
}

/// The schemas a call is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ToolSchemas<'a> {
    /// The connector's name, for messages.
    pub connector: &'a str,
    /// The tool's name, for messages.
    pub tool: &'a str,
    /// The tool's `inputSchema` as the connector listed it; `None` is refused.
    pub input_schema: Option<&'a Value>,
    /// The stricter schema from `ValidToolInspect::input_schema`.
    pub override_schema: Option<&'a Value>,
}

/// A compiled schema, or why it does not compile.
type Compiled = Result<Arc<Validator>, Arc<str>>;

struct Entry {
    compiled: Compiled,
    last_used: AtomicU64,
}

/// Validates tool arguments (IV-1). Build one per gateway and share it in an `Arc`: it is
/// `Send + Sync` and its cache serves every connector.
pub struct ArgumentValidator {
    max_bytes: usize,
    max_depth: usize,
    capacity: usize,
    cache: RwLock<HashMap<[u8; 32], Entry>>,
    tick: AtomicU64,
}

impl fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgumentValidator")
            .field("max_bytes", &self.max_bytes)
            .field("max_depth", &self.max_depth)
            .field("capacity", &self.capacity)
            .field("cached", &self.cache.read().len())
            .finish()
    }
}

impl ArgumentValidator {
    /// A validator with the limits of the `inspection:` section.
    pub fn new(settings: &ValidInspection) -> Self {
        Self::with_limits(settings.max_argument_bytes, settings.max_argument_depth)
    }

    /// A validator with explicit limits (bytes of the serialized arguments, nesting levels;
    /// the arguments object itself is level 1).
    pub fn with_limits(max_bytes: usize, max_depth: usize) -> Self {
        Self {
            max_bytes,
            max_depth,
            capacity: DEFAULT_CACHE_CAPACITY,
            cache: RwLock::new(HashMap::new()),
            tick: AtomicU64::new(0),
        }
    }

    /// The same validator holding at most `capacity` compiled schemas (at least 1).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How many compiled schemas (or cached compile failures) are held.
    pub fn cached_schemas(&self) -> usize {
        self.cache.read().len()
    }

    /// Validates a call's `arguments` (`None`: absent, taken as `{}`): limits, then the
    /// tool's schema, then the override.
    pub fn validate(
        &self,
        schemas: &ToolSchemas<'_>,
        arguments: Option<&Value>,
    ) -> Result<(), ArgumentError> {
        let empty = Value::Object(serde_json::Map::new());
        let args = arguments.unwrap_or(&empty);
        if !args.is_object() {
            return Err(ArgumentError::NotAnObject {
                found: type_phrase(args),
            });
        }
        self.check_limits(args)?;
        let Some(tool_schema) = schemas.input_schema else {
            return Err(ArgumentError::ToolSchemaMissing {
                connector: schemas.connector.to_string(),
                tool: schemas.tool.to_string(),
            });
        };
        let tool = self
            .compiled(tool_schema, SchemaSource::Tool)
            .map_err(|detail| ArgumentError::ToolSchemaInvalid {
                connector: schemas.connector.to_string(),
                tool: schemas.tool.to_string(),
                detail: detail.to_string(),
            })?;
        check(&tool, args, SchemaSource::Tool)?;
        if let Some(o) = schemas.override_schema {
            let over = self.compiled(o, SchemaSource::Override).map_err(|detail| {
                ArgumentError::OverrideSchemaInvalid {
                    connector: schemas.connector.to_string(),
                    tool: schemas.tool.to_string(),
                    detail: detail.to_string(),
                }
            })?;
            check(&over, args, SchemaSource::Override)?;
        }
        Ok(())
    }

    /// Compiles (and caches) a tool's schema ahead of its first call, for example when the
    /// connector lists its tools, so a broken schema is reported then.
    pub fn prepare(
        &self,
        connector: &str,
        tool: &str,
        input_schema: &Value,
    ) -> Result<(), ArgumentError> {
        self.compiled(input_schema, SchemaSource::Tool)
            .map(|_| ())
            .map_err(|detail| ArgumentError::ToolSchemaInvalid {
                connector: connector.to_string(),
                tool: tool.to_string(),
                detail: detail.to_string(),
            })
    }

    /// Checks the size and depth limits alone. Depth is measured by an explicit stack (no
    /// recursion), and first, so that the size pass, which serializes, never meets nesting
    /// deeper than the configured limit.
    pub fn check_limits(&self, arguments: &Value) -> Result<(), ArgumentError> {
        if let Err(pointer) = depth_check(arguments, self.max_depth) {
            return Err(ArgumentError::TooDeep {
                pointer: cut_chars(&pointer, MAX_POINTER_CHARS),
                limit: self.max_depth,
            });
        }
        let mut counter = Counter {
            n: 0,
            limit: self.max_bytes,
        };
        if serde_json::to_writer(&mut counter, arguments).is_err() {
            return Err(ArgumentError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    fn compiled(&self, schema: &Value, source: SchemaSource) -> Compiled {
        let key = schema_key(schema, source);
        let now = self.tick.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = self.cache.read().get(&key) {
            e.last_used.store(now, Ordering::Relaxed);
            return e.compiled.clone();
        }
        // Compiled outside the lock: two callers may compile the same schema at once, which
        // costs a little twice but never blocks validation of other tools behind a compile.
        let compiled = compile(schema, source);
        let mut cache = self.cache.write();
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            let oldest = cache
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                cache.remove(&k);
            }
        }
        cache.insert(
            key,
            Entry {
                compiled: compiled.clone(),
                last_used: AtomicU64::new(now),
            },
        );
        compiled
    }
}

/// SHA-256 of the schema's JSON text, prefixed by the options it is compiled with.
fn schema_key(schema: &Value, source: SchemaSource) -> [u8; 32] {
    struct HashWriter(Sha256);
    impl io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    w.0.update(match source {
        SchemaSource::Tool => b"tool\0",
        SchemaSource::Override => b"over\0",
    });
    // Serializing a `Value` into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut w, schema);
    w.0.finalize().into()
}

/// Refuses every external reference, so that no schema can make the gateway fetch anything.
struct RefuseRetrieval;

impl Retrieve for RefuseRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "external reference {} refused",
            cut_chars(uri.as_str(), 100)
        )
        .into())
    }
}

fn compile(schema: &Value, source: SchemaSource) -> Compiled {
    if let Some(uri) = schema.get("$schema").and_then(Value::as_str)
        && Draft::default().detect(schema) == Draft::Unknown
    {
        return Err(format!(
            "its $schema {:?} is not a draft this gateway supports (2020-12, 2019-09, \
             draft-07, draft-06 or draft-04); remove it or name one of those",
            cut_chars(uri, 100)
        )
        .into());
    }
    let options = jsonschema::options()
        .with_retriever(RefuseRetrieval)
        .with_pattern_options(
            PatternOptions::fancy_regex()
                .backtrack_limit(PATTERN_BACKTRACK_LIMIT)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT),
        )
        // The tool's own schema keeps its draft's meaning (2020-12: `format` annotates); the
        // administrator's override is meant to be strict, so its formats are asserted.
        .should_validate_formats(source == SchemaSource::Override);
    options
        .build(schema)
        .map(Arc::new)
        .map_err(|e| compile_detail(&e).into())
}

fn compile_detail(e: &ValidationError<'_>) -> String {
    match e.kind() {
        ValidationErrorKind::Referencing(jsonschema::ReferencingError::Unretrievable {
            uri,
            ..
        }) => format!(
            "it refers to the external document {}, which this gateway never fetches; the \
             schema must be self-contained (move shared parts under $defs)",
            cut_chars(uri, 100)
        ),
        ValidationErrorKind::Referencing(r) => {
            format!(
                "a reference does not resolve ({})",
                cut_chars(&r.to_string(), 160)
            )
        }
        _ => {
            let at = e.instance_path().as_str();
            let what = e.masked_with(render(e.instance())).to_string();
            let what = cut_chars(&what, MAX_MESSAGE_CHARS);
            if at.is_empty() {
                what
            } else {
                format!("at {}: {what}", cut_chars(at, MAX_POINTER_CHARS))
            }
        }
    }
}

fn check(validator: &Validator, args: &Value, source: SchemaSource) -> Result<(), ArgumentError> {
    if validator.is_valid(args) {
        return Ok(());
    }
    let mut violations = Vec::new();
    let mut total = 0;
    for e in validator.iter_errors(args) {
        for v in violations_of(&e) {
            total += 1;
            if violations.len() < MAX_VIOLATIONS_COLLECTED {
                violations.push(v);
            }
        }
        if total >= MAX_VIOLATIONS_COLLECTED {
            break;
        }
    }
    if violations.is_empty() {
        // is_valid said no but no error came out: still refuse (fail closed).
        violations.push(Violation {
            pointer: String::new(),
            keyword: "schema".into(),
            message: "arguments: do not match the tool's input schema".into(),
        });
        total = 1;
    }
    Err(ArgumentError::Invalid {
        schema: source,
        violations,
        total,
    })
}

fn violations_of(e: &ValidationError<'_>) -> Vec<Violation> {
    let base = e.instance_path().as_str();
    let keyword = e.kind().keyword().to_string();
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let pointer = child_pointer(base, name);
            vec![Violation {
                message: format!(
                    "argument {} is required but missing",
                    shown_pointer(&pointer)
                ),
                pointer,
                keyword,
            }]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                let pointer = child_pointer(base, name);
                Violation {
                    message: format!(
                        "argument {} is not a property the tool accepts; remove it",
                        shown_pointer(&pointer)
                    ),
                    pointer,
                    keyword: keyword.clone(),
                }
            })
            .collect(),
        ValidationErrorKind::BacktrackLimitExceeded { .. }
        | ValidationErrorKind::RegexEngineFailure { .. } => vec![Violation {
            pointer: base.to_string(),
            keyword,
            message: format!(
                "{}: the value could not be checked against the schema's pattern within the \
                 matching budget, so it is refused; send a shorter or simpler value",
                subject(base)
            ),
        }],
        ValidationErrorKind::Referencing(_) => vec![Violation {
            pointer: base.to_string(),
            keyword,
            message: format!(
                "{}: the tool's schema holds a reference that does not resolve, so the value \
                 cannot be checked",
                subject(base)
            ),
        }],
        _ => {
            let what = e.masked_with(render(e.instance())).to_string();
            vec![Violation {
                pointer: base.to_string(),
                keyword,
                message: format!("{}: {}", subject(base), cut_chars(&what, MAX_MESSAGE_CHARS)),
            }]
        }
    }
}

/// `argument /x` or `arguments` (the object itself).
fn subject(pointer: &str) -> String {
    if pointer.is_empty() {
        "arguments".into()
    } else {
        format!("argument {}", cut_chars(pointer, MAX_POINTER_CHARS))
    }
}

fn shown_pointer(pointer: &str) -> String {
    cut_chars(pointer, MAX_POINTER_CHARS)
}

fn child_pointer(base: &str, name: &str) -> String {
    let mut p = String::with_capacity(base.len() + name.len() + 1);
    p.push_str(base);
    p.push('/');
    push_escaped(&mut p, name);
    p
}

fn push_escaped(p: &mut String, segment: &str) {
    for ch in segment.chars() {
        match ch {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
}

/// A value as shown in a message: scalars cut to 40 characters, containers by size only.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n <= MAX_VALUE_CHARS {
                serde_json::to_string(s).unwrap_or_else(|_| "a string".into())
            } else {
                let head: String = s.chars().take(MAX_VALUE_CHARS).collect();
                let quoted = serde_json::to_string(&head).unwrap_or_else(|_| "\"\"".into());
                format!("{}…\" ({n} characters)", &quoted[..quoted.len() - 1])
            }
        }
        Value::Number(n) => cut_chars(&n.to_string(), MAX_VALUE_CHARS),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(a) => match a.len() {
            1 => "an array of 1 item".into(),
            n => format!("an array of {n} items"),
        },
        Value::Object(m) => match m.len() {
            1 => "an object with 1 property".into(),
            n => format!("an object with {n} properties"),
        },
    }
}

fn type_phrase(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Counts serialized bytes and stops the serializer as soon as the limit is passed, so an
/// oversized value is never serialized whole.
struct Counter {
    n: usize,
    limit: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.n += buf.len();
        if self.n > self.limit {
            Err(io::Error::other("over the limit"))
        } else {
            Ok(buf.len())
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

enum Frame<'a> {
    Obj(serde_json::map::Iter<'a>),
    Arr(std::iter::Enumerate<std::slice::Iter<'a, Value>>),
}

fn frame(v: &Value) -> Option<Frame<'_>> {
    match v {
        Value::Object(m) => Some(Frame::Obj(m.iter())),
        Value::Array(a) => Some(Frame::Arr(a.iter().enumerate())),
        _ => None,
    }
}

/// Walks the value with an explicit stack; `Err` holds the pointer of the first container
/// that sits deeper than `max` (the top-level container is depth 1).
fn depth_check(v: &Value, max: usize) -> Result<(), String> {
    let Some(root) = frame(v) else {
        return Ok(());
    };
    if max == 0 {
        return Err(String::new());
    }
    let mut frames = vec![root];
    let mut path: Vec<Seg<'_>> = Vec::new();
    while let Some(top) = frames.last_mut() {
        let next = match top {
            Frame::Obj(it) => it.next().map(|(k, v)| (Seg::Key(k.as_str()), v)),
            Frame::Arr(it) => it.next().map(|(i, v)| (Seg::Index(i), v)),
        };
        match next {
            None => {
                frames.pop();
                path.pop();
            }
            Some((seg, child)) => {
                if let Some(f) = frame(child) {
                    path.push(seg);
                    if frames.len() + 1 > max {
                        return Err(pointer_of(&path));
                    }
                    frames.push(f);
                }
            }
        }
    }
    Ok(())
}

fn pointer_of(path: &[Seg<'_>]) -> String {
    let mut p = String::new();
    for s in path {
        p.push('/');
        match s {
            Seg::Key(k) => push_escaped(&mut p, k),
            Seg::Index(i) => p.push_str(&i.to_string()),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v() -> ArgumentValidator {
        ArgumentValidator::with_limits(1024, 4)
    }

    fn schemas(s: &Value) -> ToolSchemas<'_> {
        ToolSchemas {
            connector: "crm",
            tool: "search",
            input_schema: Some(s),
            override_schema: None,
        }
    }

    #[test]
    fn validator_is_send_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<ArgumentValidator>();
    }

    #[test]
    fn depth_is_measured_from_the_arguments_object() {
        assert!(depth_check(&json!({"a": 1}), 1).is_ok());
        assert_eq!(depth_check(&json!({"a": {"b": 1}}), 1), Err("/a".into()));
        assert_eq!(
            depth_check(&json!({"a": [1, {"c~/": [2]}]}), 3),
            Err("/a/1/c~0~1".into())
        );
        assert!(depth_check(&json!({"a": [1, {"c": 2}]}), 3).is_ok());
        assert!(depth_check(&json!("scalar"), 0).is_ok());
    }

    #[test]
    fn render_cuts_long_strings_and_hides_containers() {
        let long = "x".repeat(100);
        let r = render(&json!(long));
        assert!(
            r.starts_with("\"xxxx") && r.ends_with("…\" (100 characters)"),
            "{r}"
        );
        assert!(r.chars().filter(|c| *c == 'x').count() == MAX_VALUE_CHARS);
        assert_eq!(
            render(&json!({"secret": "abc"})),
            "an object with 1 property"
        );
        assert_eq!(render(&json!([1, 2])), "an array of 2 items");
        assert_eq!(render(&json!("a\"b")), "\"a\\\"b\"");
    }

    #[test]
    fn cache_evicts_the_least_recently_used() {
        let val = v().with_cache_capacity(2);
        let a = json!({"type": "object", "title": "a"});
        let b = json!({"type": "object", "title": "b"});
        let c = json!({"type": "object", "title": "c"});
        val.validate(&schemas(&a), None).unwrap();
        val.validate(&schemas(&b), None).unwrap();
        val.validate(&schemas(&a), None).unwrap(); // a is now the most recent
        val.validate(&schemas(&c), None).unwrap(); // evicts b
        assert_eq!(val.cached_schemas(), 2);
        let cache = val.cache.read();
        assert!(cache.contains_key(&schema_key(&a, SchemaSource::Tool)));
        assert!(!cache.contains_key(&schema_key(&b, SchemaSource::Tool)));
        assert!(cache.contains_key(&schema_key(&c, SchemaSource::Tool)));
    }

    #[test]
    fn same_schema_compiles_once() {
        let val = v();
        let s = json!({"type": "object"});
        for _ in 0..10 {
            val.validate(&schemas(&s), Some(&json!({}))).unwrap();
        }
        assert_eq!(val.cached_schemas(), 1);
        // The same schema as an override is compiled with other options: its own entry.
        let both = ToolSchemas {
            override_schema: Some(&s),
            ..schemas(&s)
        };
        val.validate(&both, None).unwrap();
        assert_eq!(val.cached_schemas(), 2);
    }

    #[test]
    fn counter_stops_at_the_limit() {
        let val = ArgumentValidator::with_limits(10, 8);
        assert!(val.check_limits(&json!({"a": "12"})).is_ok()); // {"a":"12"}: 10 bytes
        assert_eq!(
            val.check_limits(&json!({"a": "123"})),
            Err(ArgumentError::TooLarge { limit: 10 })
        );
    }
}
