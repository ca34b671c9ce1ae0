//! The request-side inspection of a tool call's arguments (PI-2, IV-4, DLP-4 request
//! direction), after schema validation (`schema`) and before confirmation and forwarding.
//!
//! One detector pass (`Detector::scan_json`) over the arguments feeds three decisions:
//! - **Injection** (PI-2): findings at or above `inspection.injection.min_confidence` get
//!   `injection.arguments` (`block` or `flag`); weaker ones are only recorded (`log`).
//! - **Data leaving** to an open-world tool (`openWorldHint`, true when unknown): secrets and
//!   personal data get `inspection.open_world_leaks` (`block`, `log` or `allow`).
//! - **Data rules** whose direction covers requests and whose tools cover this one: the
//!   strictest applicable action wins. Secrets going to any tool are at least logged.
//!
//! Then every URL argument is checked against the connector's [`EgressGuard`] (IV-4, EG-1).
//!
//! # Redaction in arguments
//! `redact`, `mask` and `pseudonymize` of an argument are all carried out by rewriting the
//! matched span in place with a typed placeholder (`[SECRET]`, `[EMAIL]`, `[CREDIT_CARD]`), and
//! recorded as `redact`. Rewriting rather than blocking, because the built-in rules redact
//! secrets in both directions: blocking every call that carries a credential would refuse
//! legitimate calls to trusted tools, while the placeholder keeps the value from leaving and
//! lets the tool answer (or fail) visibly. Mask and pseudonymize become redaction in this
//! direction because a partly masked value is still partly leaving, and a pseudonym would reach
//! a tool that has no way to map it back. The rewrite happens before confirmation, so the human
//! confirms (and HC-3 binds to) the arguments that are actually forwarded, and URL checks run
//! on the rewritten values for the same reason. A number that holds a finding (a card number
//! sent as a JSON number) is replaced whole by the placeholder string. When the call is refused
//! nothing is rewritten: it is not forwarded.
//!
//! # URL arguments
//! With `url_arguments` configured for the tool, exactly those arguments are URLs (a name is a
//! top-level key; a name starting with `/` is a JSON pointer); each must be an absolute http(s)
//! URL, or an array of them. Without it, every string value anywhere in the arguments that
//! parses as an absolute URL with a scheme something could fetch (`http`, `https`, `ftp`,
//! `ws`, `file`, `gopher`...) is checked, and all but http(s) are refused by the guard. A URL
//! inside free text is not a URL argument and is not checked here.
//!
//! Findings never hold matched text, and messages never quote argument values.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use portcullis_config::inspect::{DataAction, InjectionAction, ValidInspection, ValidToolInspect};
use portcullis_core::event::FindingSummary;
use portcullis_detect::{Category, Detector, Finding};
use serde_json::Value;

use crate::egress::{EgressGuard, EgressRefusal, Resolver, UrlTarget};

/// At most this many URL arguments are checked in one call; more are refused, so one call
/// cannot make the gateway resolve without bound.
pub const MAX_URLS_PER_CALL: usize = 64;

/// Schemes whose URLs something may fetch; strings that parse as one are URL arguments.
const FETCHABLE_SCHEMES: [&str; 18] = [
    "http", "https", "ftp", "ftps", "sftp", "tftp", "ws", "wss", "file", "gopher", "dict", "ldap",
    "ldaps", "smb", "telnet", "ssh", "jar", "netdoc",
];

/// What the gateway knows about the call being inspected.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    /// The connector's name.
    pub connector: &'a str,
    /// The tool's name.
    pub tool: &'a str,
    /// The tool's `openWorldHint`; `true` when the tool does not say (see
    /// [`CallFacts::open_world_hint`]).
    pub open_world: bool,
    /// The tool's per-tool inspection settings, when configured.
    pub tool_inspect: Option<&'a ValidToolInspect>,
    /// The connector's egress rules.
    pub egress: &'a EgressGuard,
}

impl CallFacts<'_> {
    /// The open-world flag from the tool's annotation: a tool that does not declare
    /// `openWorldHint` may reach anything, so unknown means open (MCP's own default).
    pub fn open_world_hint(annotation: Option<bool>) -> bool {
        annotation.unwrap_or(true)
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable: `injection_in_arguments`, `data_leaving:secret.aws_access_key`,
    /// `egress_unapproved:attacker.example`...
    pub reason: String,
    /// For the client: what was wrong, where, and what to do. It quotes no argument value.
    pub message: String,
}

/// The outcome of [`RequestInspector::inspect`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestVerdict {
    /// Set when the call must not be forwarded.
    pub refusal: Option<Refusal>,
    /// What was found, with what was done (direction `request`); never the matched text.
    pub findings: Vec<FindingSummary>,
    /// The event's short machine reasons (`egress_unapproved:DOMAIN`,
    /// `injection_in_arguments`, `data_leaving:KIND`, `arguments_redacted:KIND`...).
    pub reasons: Vec<String>,
    /// Whether the arguments were rewritten (redaction): the gateway must forward the new
    /// value, not the bytes it received.
    pub rewritten: bool,
}

/// What is done with one finding, strictest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Act {
    /// Dropped: an explicit `allow`.
    Allow,
    /// Recorded.
    Log,
    /// Injection let through, recorded.
    Flag,
    /// Span rewritten with a placeholder.
    Redact,
    /// Call refused.
    Block,
}

impl Act {
    fn as_str(self) -> &'static str {
        match self {
            Act::Allow => "allow",
            Act::Log => "log",
            Act::Flag => "flag",
            Act::Redact => "redact",
            Act::Block => "block",
        }
    }
}

fn from_data(a: DataAction) -> Act {
    match a {
        DataAction::Allow => Act::Allow,
        DataAction::Log => Act::Log,
        DataAction::Redact | DataAction::Mask | DataAction::Pseudonymize => Act::Redact,
        DataAction::Block => Act::Block,
    }
}

/// Why a finding is blocked, for the refusal's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockCause {
    Injection,
    OpenWorld,
    Rule,
}

/// The request-side inspection stage (PI-2, IV-4, DLP-4). Built once from the `inspection:`
/// section and shared; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct RequestInspector {
    detector: Arc<Detector>,
    settings: ValidInspection,
}

impl RequestInspector {
    /// A stage over a shared detector and the validated `inspection:` section.
    pub fn new(detector: Arc<Detector>, settings: &ValidInspection) -> Self {
        Self {
            detector,
            settings: settings.clone(),
        }
    }

    /// Inspects a call's arguments: detectors, data rules, URL checks. May rewrite
    /// `arguments` (redaction, see the module's documentation); the verdict says so. With
    /// `inspection.enabled: false` it does nothing, as the configuration documents.
    pub async fn inspect(
        &self,
        call: &CallFacts<'_>,
        arguments: &mut Value,
        resolver: &dyn Resolver,
    ) -> RequestVerdict {
        let mut verdict = RequestVerdict::default();
        if !self.settings.enabled {
            return verdict;
        }
        let found = self.detector.scan_json(arguments);

        let mut first_block: Option<(BlockCause, &Finding)> = None;
        let mut redactions: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        // (kind, pointer, action) -> its summary's index in `verdict.findings`
        let mut seen: HashMap<(String, Option<String>, Act), usize> = HashMap::new();
        let mut reasons: Vec<String> = Vec::new();
        for f in &found {
            let (act, cause) = self.decide(call, f);
            if act == Act::Allow {
                continue;
            }
            match act {
                Act::Block => {
                    if first_block.is_none() {
                        first_block = Some((cause.unwrap_or(BlockCause::Rule), f));
                    }
                    push_unique(&mut reasons, block_reason(cause, f));
                }
                Act::Redact => {
                    redactions
                        .entry(f.pointer.clone().unwrap_or_default())
                        .or_default()
                        .push(f);
                }
                Act::Flag => push_unique(&mut reasons, "injection_in_arguments".into()),
                Act::Log | Act::Allow => {}
            }
            // One summary per kind, place and action, with a count: a value with a thousand
            // e-mail addresses is one finding, not a thousand.
            match seen.entry((f.kind.clone(), f.pointer.clone(), act)) {
                Entry::Occupied(i) => {
                    let s = &mut verdict.findings[*i.get()];
                    s.count = s.count.saturating_add(1);
                }
                Entry::Vacant(slot) => {
                    slot.insert(verdict.findings.len());
                    verdict.findings.push(FindingSummary {
                        kind: f.kind.clone(),
                        category: f.category.as_str().to_string(),
                        direction: "request".into(),
                        pointer: f.pointer.clone(),
                        action: act.as_str().to_string(),
                        count: 1,
                    });
                }
            }
        }

        if first_block.is_none() && !redactions.is_empty() {
            for (pointer, fs) in &redactions {
                rewrite(arguments, pointer, fs);
                for f in fs {
                    push_unique(&mut reasons, format!("arguments_redacted:{}", f.kind));
                }
            }
            verdict.rewritten = true;
        }

        // A call already refused is not forwarded: its URLs still get the static checks (the
        // monitor wants `egress_unapproved:` reasons), but no name is resolved for it.
        let egress = self
            .check_urls(call, arguments, resolver, first_block.is_none())
            .await;
        for (_, r) in &egress {
            push_unique(&mut reasons, r.reason());
        }

        verdict.refusal = if let Some((cause, f)) = first_block {
            Some(Refusal {
                reason: block_reason(Some(cause), f),
                message: block_message(call, cause, f),
            })
        } else {
            egress.first().map(|(pointer, r)| Refusal {
                reason: r.reason(),
                message: format!(
                    "the call to {}/{} was refused: {}: {r}",
                    call.connector,
                    call.tool,
                    subject(pointer)
                ),
            })
        };
        verdict.reasons = reasons;
        verdict
    }

    /// The action for one finding and, when it blocks, what made it block.
    fn decide(&self, call: &CallFacts<'_>, f: &Finding) -> (Act, Option<BlockCause>) {
        let s = &self.settings;
        let category = f.category.as_str();
        // Data rules: the strictest applicable one; `None` when no rule speaks.
        let rule = s
            .rules
            .iter()
            .filter(|r| {
                r.direction.covers_request(true)
                    && r.covers_tool(call.connector, call.tool)
                    && r.matches.matches(&f.kind, category)
            })
            .map(|r| r.action)
            .max_by_key(|a| a.rank());
        let mut act = rule.map(from_data);
        let mut cause = act.filter(|a| *a == Act::Block).map(|_| BlockCause::Rule);

        if call.open_world && matches!(f.category, Category::Secret | Category::Pii) {
            let ow = from_data(s.open_world_leaks);
            if act.is_none_or(|a| ow > a) {
                act = Some(ow);
                if ow == Act::Block {
                    cause = Some(BlockCause::OpenWorld);
                }
            }
        }
        if f.category == Category::Injection {
            let inj = if f.confidence >= s.min_confidence {
                match s.injection_arguments {
                    InjectionAction::Block => Act::Block,
                    // `wrap` is refused for arguments by the config loader; if it ever
                    // arrives, the finding is flagged rather than silently dropped.
                    InjectionAction::Flag | InjectionAction::Wrap => Act::Flag,
                }
            } else {
                Act::Log
            };
            if act.is_none_or(|a| inj > a) {
                act = Some(inj);
                if inj == Act::Block {
                    cause = Some(BlockCause::Injection);
                }
            }
            // An injection attempt is always on the record, whatever a data rule says.
            act = act.map(|a| a.max(Act::Log));
        }
        // A secret going anywhere is at least on the record.
        if f.category == Category::Secret {
            act = Some(act.map_or(Act::Log, |a| a.max(Act::Log)));
        }
        // No rule at all: record it, so the event shows what passed.
        let act = act.unwrap_or(Act::Log);
        (act, if act == Act::Block { cause } else { None })
    }

    /// Checks the URL arguments; returns each refusal with the pointer of its value.
    async fn check_urls(
        &self,
        call: &CallFacts<'_>,
        arguments: &Value,
        resolver: &dyn Resolver,
        resolve: bool,
    ) -> Vec<(String, EgressRefusal)> {
        let mut refusals = Vec::new();
        let candidates = match call.tool_inspect.and_then(|t| t.url_arguments.as_ref()) {
            Some(names) => match named_urls(arguments, names) {
                Ok(c) => c,
                Err((pointer, r)) => return vec![(pointer, r)],
            },
            None => discovered_urls(arguments),
        };
        if candidates.len() > MAX_URLS_PER_CALL {
            return vec![(
                String::new(),
                EgressRefusal::InvalidUrl {
                    detail: format!(
                        "the call holds {} URL arguments, more than the {MAX_URLS_PER_CALL} \
                         checked in one call",
                        candidates.len()
                    ),
                },
            )];
        }
        // Static checks for every URL, then one resolution per distinct host, all at once.
        let mut pending: HashMap<(String, u16), (String, UrlTarget)> = HashMap::new();
        for (pointer, url) in candidates {
            match call.egress.precheck(url) {
                Err(r) => refusals.push((pointer, r)),
                Ok(t) if t.needs_resolution && resolve => {
                    pending
                        .entry((t.host.clone(), t.port))
                        .or_insert((pointer, t));
                }
                Ok(_) => {}
            }
        }
        let mut pending: Vec<(String, UrlTarget)> = pending.into_values().collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        let checks = pending
            .iter()
            .map(|(_, t)| call.egress.check_target(t, resolver));
        let results = futures::future::join_all(checks).await;
        for ((pointer, _), r) in pending.iter().zip(results) {
            if let Err(r) = r {
                refusals.push((pointer.clone(), r));
            }
        }
        refusals
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn block_reason(cause: Option<BlockCause>, f: &Finding) -> String {
    match cause {
        Some(BlockCause::Injection) => "injection_in_arguments".into(),
        _ => format!("data_leaving:{}", f.kind),
    }
}

fn category_words(c: Category) -> &'static str {
    match c {
        Category::Secret => "a secret",
        Category::Pii => "personal data",
        Category::Internal => "internal details",
        Category::Injection => "instruction-like text",
    }
}

fn block_message(call: &CallFacts<'_>, cause: BlockCause, f: &Finding) -> String {
    let (c, t) = (call.connector, call.tool);
    let at = subject(f.pointer.as_deref().unwrap_or(""));
    match cause {
        BlockCause::Injection => format!(
            "the call to {c}/{t} was refused: {at} looks like a prompt injection ({}), text \
             that tries to instruct a model or tool instead of being data; rephrase it as \
             plain data (an administrator can set inspection.injection.arguments: flag)",
            f.kind
        ),
        BlockCause::OpenWorld => format!(
            "the call to {c}/{t} was refused: {at} holds {} ({}), and {c}/{t} is an open-world \
             tool that can carry it outside the organization; remove it from the arguments \
             (inspection.open_world_leaks governs this)",
            category_words(f.category),
            f.kind
        ),
        BlockCause::Rule => format!(
            "the call to {c}/{t} was refused: {at} holds {} ({}), which a data rule \
             (inspection.rules) forbids sending to this tool; remove it from the arguments",
            category_words(f.category),
            f.kind
        ),
    }
}

fn subject(pointer: &str) -> String {
    if pointer.is_empty() {
        "the arguments".into()
    } else {
        let shown: String = pointer.chars().take(120).collect();
        format!("argument {shown}")
    }
}

/// The placeholder for a finding: `[SECRET]` for any secret (the kind is on the record, not
/// in the data), `[INJECTION]` for injection text, else the kind's last part in capitals:
/// `[EMAIL]`, `[CREDIT_CARD]`, `[PATH]`.
fn placeholder(f: &Finding) -> String {
    match f.category {
        Category::Secret => return "[SECRET]".into(),
        Category::Injection => return "[INJECTION]".into(),
        Category::Pii | Category::Internal => {}
    }
    let last = f.kind.rsplit('.').next().unwrap_or("redacted");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "[REDACTED]".into()
    } else {
        format!("[{name}]")
    }
}

/// Rewrites the spans of `fs` in the value at `pointer` with their placeholders.
fn rewrite(arguments: &mut Value, pointer: &str, fs: &[&Finding]) {
    let Some(target) = arguments.pointer_mut(pointer) else {
        return;
    };
    match target {
        Value::String(s) => {
            let mut spans: Vec<(usize, usize, String)> = fs
                .iter()
                .map(|f| (f.start.min(s.len()), f.end.min(s.len()), placeholder(f)))
                .filter(|(a, b, _)| a < b)
                .collect();
            spans.sort_by_key(|x| (x.0, std::cmp::Reverse(x.1)));
            // Overlapping spans merge; the merged span takes the first one's placeholder.
            let mut merged: Vec<(usize, usize, String)> = Vec::new();
            for (a, b, p) in spans {
                match merged.last_mut() {
                    Some(last) if a < last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b, p)),
                }
            }
            if merged
                .iter()
                .any(|(a, b, _)| !s.is_char_boundary(*a) || !s.is_char_boundary(*b))
            {
                // Offsets that do not fall on characters cannot be trusted: the whole value
                // goes rather than a guess at which part of it.
                let p = fs.first().map(|f| placeholder(f)).unwrap_or_default();
                *s = p;
                return;
            }
            for (a, b, p) in merged.into_iter().rev() {
                s.replace_range(a..b, &p);
            }
        }
        other => {
            if let Some(f) = fs.first() {
                *other = Value::String(placeholder(f));
            }
        }
    }
}

/// The configured URL arguments: each must be a URL string or an array of them.
fn named_urls<'v>(
    arguments: &'v Value,
    names: &[String],
) -> Result<Vec<(String, &'v str)>, (String, EgressRefusal)> {
    let mut out = Vec::new();
    for name in names {
        let pointer = if name.starts_with('/') {
            name.clone()
        } else {
            let mut p = String::from("/");
            for ch in name.chars() {
                match ch {
                    '~' => p.push_str("~0"),
                    '/' => p.push_str("~1"),
                    c => p.push(c),
                }
            }
            p
        };
        let not_url = |pointer: &str| {
            (
                pointer.to_string(),
                EgressRefusal::InvalidUrl {
                    detail: "the value is not a URL string".into(),
                },
            )
        };
        match arguments.pointer(&pointer) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push((pointer, s.as_str())),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{pointer}/{i}");
                    match item {
                        Value::String(s) => out.push((p, s.as_str())),
                        _ => return Err(not_url(&p)),
                    }
                }
            }
            Some(_) => return Err(not_url(&pointer)),
        }
    }
    Ok(out)
}

/// Every string value that parses as an absolute URL of a fetchable scheme, with its pointer;
/// walked with an explicit stack.
fn discovered_urls(arguments: &Value) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), arguments)];
    while let Some((pointer, v)) = stack.pop() {
        match v {
            Value::String(s) if is_url_candidate(s) => out.push((pointer, s.as_str())),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate().rev() {
                    if matches!(x, Value::String(_) | Value::Array(_) | Value::Object(_)) {
                        stack.push((format!("{pointer}/{i}"), x));
                    }
                }
            }
            Value::Object(m) => {
                let mut children: Vec<(String, &Value)> = Vec::new();
                for (k, x) in m {
                    if matches!(x, Value::String(_) | Value::Array(_) | Value::Object(_)) {
                        let mut p = pointer.clone();
                        p.push('/');
                        for ch in k.chars() {
                            match ch {
                                '~' => p.push_str("~0"),
                                '/' => p.push_str("~1"),
                                c => p.push(c),
                            }
                        }
                        children.push((p, x));
                    }
                }
                stack.extend(children.into_iter().rev());
            }
            _ => {}
        }
    }
    out
}

/// Whether a string is, as a whole, a URL something could fetch. The `url` parser strips
/// tabs, newlines and surrounding spaces the way fetchers do, so `ht\ntps://x` counts.
fn is_url_candidate(s: &str) -> bool {
    if !s.contains(':') {
        return false;
    }
    match url::Url::parse(s) {
        Ok(u) => FETCHABLE_SCHEMES.contains(&u.scheme()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: &str, category: Category, start: usize, end: usize) -> Finding {
        Finding {
            kind: kind.into(),
            category,
            start,
            end,
            confidence: 0.9,
            pointer: Some("/a".into()),
        }
    }

    #[test]
    fn placeholders_are_typed() {
        assert_eq!(
            placeholder(&finding("secret.aws_access_key", Category::Secret, 0, 1)),
            "[SECRET]"
        );
        assert_eq!(
            placeholder(&finding("pii.email", Category::Pii, 0, 1)),
            "[EMAIL]"
        );
        assert_eq!(
            placeholder(&finding("internal.stack-trace", Category::Internal, 0, 1)),
            "[STACK_TRACE]"
        );
    }

    #[test]
    fn rewrite_merges_overlaps_and_keeps_the_rest() {
        let mut v = serde_json::json!({"a": "x jane@example.org and bob@example.org y"});
        let f1 = finding("pii.email", Category::Pii, 2, 18);
        let f2 = finding("pii.email", Category::Pii, 23, 38);
        let f3 = finding("pii.person_name", Category::Pii, 2, 6);
        rewrite(&mut v, "/a", &[&f2, &f3, &f1]);
        assert_eq!(v["a"], "x [EMAIL] and [EMAIL] y");
    }

    #[test]
    fn rewrite_replaces_numbers_and_bad_offsets_whole() {
        let mut v = serde_json::json!({"a": 4242424242424242u64});
        rewrite(&mut v, "/a", &[&finding("pii.card", Category::Pii, 0, 16)]);
        assert_eq!(v["a"], "[CARD]");
        let mut v = serde_json::json!({"a": "é secret"});
        rewrite(
            &mut v,
            "/a",
            &[&finding("secret.x", Category::Secret, 1, 3)],
        );
        assert_eq!(v["a"], "[SECRET]");
    }

    #[test]
    fn url_candidates() {
        assert!(is_url_candidate("https://example.com/x"));
        assert!(is_url_candidate("HTTP://Example.com"));
        assert!(is_url_candidate("ht\ntps://evil.example/"));
        assert!(is_url_candidate("file:///etc/passwd"));
        assert!(is_url_candidate("gopher://127.0.0.1:6379/_INFO"));
        assert!(!is_url_candidate("see https://example.com"));
        assert!(!is_url_candidate("c:/windows"));
        assert!(!is_url_candidate("note: hello"));
        assert!(!is_url_candidate("mailto:a@example.com"));
        assert!(!is_url_candidate("plain"));
    }

    #[test]
    fn discovered_urls_have_pointers_in_order() {
        let v = serde_json::json!({
            "a": "https://one.example/",
            "b": [{"c/d": "http://two.example"}, "text", 5],
            "e": "no url here",
        });
        let got: Vec<(String, &str)> = discovered_urls(&v);
        assert_eq!(
            got,
            vec![
                ("/a".to_string(), "https://one.example/"),
                ("/b/0/c~1d".to_string(), "http://two.example"),
            ]
        );
    }

    #[test]
    fn named_urls_take_keys_pointers_and_arrays() {
        let v = serde_json::json!({"u": "https://a.example", "l": ["https://b.example"], "n": null,
                                   "o": {"deep": "https://c.example"}});
        let names = vec![
            "u".into(),
            "l".into(),
            "n".into(),
            "missing".into(),
            "/o/deep".into(),
        ];
        let got = named_urls(&v, &names).unwrap();
        assert_eq!(
            got,
            vec![
                ("/u".to_string(), "https://a.example"),
                ("/l/0".to_string(), "https://b.example"),
                ("/o/deep".to_string(), "https://c.example"),
            ]
        );
        let bad = named_urls(&serde_json::json!({"u": 5}), &["u".into()]).unwrap_err();
        assert_eq!(bad.0, "/u");
    }
}
