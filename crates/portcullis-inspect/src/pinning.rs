//! Tool definitions pinned by hash and scanned for poisoning (PI-3, MON-3).
//!
//! An MCP server tells the model what each tool does in its `tools/list` answer, and the model
//! believes it: a description that changes after a security review ("rug pull") or that carries
//! instructions for the model ("tool poisoning") is an attack on every client of the connector.
//! So the gateway pins each tool's approved definition by hash, blocks a tool whose definition
//! changed until a person approves the change after reading [`diff`], and scans every new
//! definition with [`scan_definition`] before it is pinned.
//!
//! # What is pinned
//! [`canonical_definition`] keeps **every member** of the tool object, `_meta` included, not a
//! chosen few. The members the model and the client act on (`name`, `title`, `description`,
//! `inputSchema`, `outputSchema`, `annotations`) are the obvious ones, but the rest change
//! behaviour too: `_meta` carries the Apps SDK's widget template (`openai/outputTemplate`),
//! whether a widget may call tools (`openai/widgetAccessible`), the status text the user is shown
//! (`openai/toolInvocation/*`) and security schemes; `icons` is what the user recognises a tool
//! by; and a member added by a future protocol version may matter in ways we cannot know today.
//! Leaving any of them out would let an upstream change them without review, so the rule fails
//! closed: any change to what the upstream serves is drift. No `_meta` key is known to be
//! volatile (a timestamp, a nonce) in the tool definitions of real servers; if one appears, it
//! should be dropped here by name, with a test, rather than by weakening the rule.
//!
//! # Canonical form
//! Object members are sorted by key (UTF-8 byte order, which is code point order), numbers with
//! an integral value are written as integers (`1.0` and `1` are the same number), and the text
//! has no insignificant whitespace. Strings are compared exactly: no Unicode normalisation,
//! because a hidden or look-alike character is precisely the kind of change a reviewer must see.
//! The result does not depend on whether `serde_json` preserves key order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use portcullis_detect::{Category, Detector};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// The prefix of every definition hash: the algorithm, so that a later change of algorithm can
/// never be mistaken for a change of definition.
pub const HASH_PREFIX: &str = "sha256:";

/// The confidence at or above which a finding should stop a definition from being pinned without
/// a person's review: one strong cue (an `<IMPORTANT>` tag, an instruction to read `~/.ssh`, to
/// hide something from the user) is enough; weak cues (a long description, a zero-width joiner
/// in an emoji) alone are not.
pub const REVIEW_THRESHOLD: f32 = 0.7;

/// At most this many findings per definition: a hostile definition cannot make the scan's output
/// (and the audit event that records it) grow without bound.
pub const MAX_FINDINGS: usize = 200;

/// A top-level `description` longer than this many characters is reported as
/// `tool_poisoning.long_description`: instructions to the model hide well in a wall of text.
pub const LONG_DESCRIPTION_CHARS: usize = 2048;

/// Any other string of the definition (a property's description, a title) longer than this is
/// reported as `tool_poisoning.long_description` too.
pub const LONG_SCHEMA_STRING_CHARS: usize = 1024;

/// Nesting deeper than this is not walked by the scan (serde_json refuses to parse deeper
/// documents than 128 levels anyway).
const MAX_DEPTH: usize = 128;

/// The definition the gateway pins: `tool` with its object members sorted by key at every level
/// and integral numbers written as integers. Every member is kept (see the module docs for why
/// `_meta` is pinned too). Re-ordering keys or reformatting does not change the result; any other
/// change does.
pub fn canonical_definition(tool: &Value) -> Value {
    canonical_value(tool, 0)
}

fn canonical_value(v: &Value, depth: usize) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                // Deeper than serde_json can parse: kept as is rather than dropped, so it still
                // counts towards the hash.
                let child = if depth >= MAX_DEPTH {
                    m[k].clone()
                } else {
                    canonical_value(&m[k], depth + 1)
                };
                out.insert(k.clone(), child);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| {
                    if depth >= MAX_DEPTH {
                        x.clone()
                    } else {
                        canonical_value(x, depth + 1)
                    }
                })
                .collect(),
        ),
        Value::Number(n) => Value::Number(canonical_number(n)),
        other => other.clone(),
    }
}

fn canonical_number(n: &Number) -> Number {
    if let Some(f) = n.as_f64()
        && n.is_f64()
        && f.fract() == 0.0
        // Beyond 2^53 a double no longer holds every integer: leave such numbers as written.
        && f.abs() <= 9_007_199_254_740_992.0
    {
        return Number::from(f as i64);
    }
    n.clone()
}

/// The canonical JSON text of `tool`: [`canonical_definition`] without insignificant whitespace,
/// keys sorted whatever serde_json's map type. This is what is hashed and what the store keeps
/// as the approved or pending definition.
pub fn canonical_json(tool: &Value) -> String {
    let mut out = String::new();
    write_canonical(&canonical_definition(tool), &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Numbers, booleans and null have one text form in serde_json.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's own escaping (quotes, backslash, control characters), which is stable.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// `sha256:` and the lowercase hex SHA-256 of [`canonical_json`]: the pin of a definition.
pub fn definition_hash(tool: &Value) -> String {
    let digest = Sha256::digest(canonical_json(tool).as_bytes());
    format!("{HASH_PREFIX}{}", hex::encode(digest))
}

/// Whether `s` has the form of a [`definition_hash`] (for input from people, such as
/// `portcullis tools approve --hash`).
pub fn is_definition_hash(s: &str) -> bool {
    s.strip_prefix(HASH_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The top-level members that differ between two definitions, each with how: what
/// [`diff`]'s first line says, for a caller that wants it as data.
pub fn changed_parts(old: &Value, new: &Value) -> Vec<(String, Change)> {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (o.get(k), n.get(k)) {
            (Some(a), Some(b)) if canonical_definition(a) != canonical_definition(b) => {
                Some((k.clone(), Change::Changed))
            }
            (None, Some(_)) => Some((k.clone(), Change::Added)),
            (Some(_), None) => Some((k.clone(), Change::Removed)),
            _ => None,
        })
        .collect()
}

/// How one top-level member of a definition changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It is in both, with different values.
    Changed,
    /// Only the new definition has it.
    Added,
    /// Only the old definition has it.
    Removed,
}

/// A line diff of two tool definitions, for the reviewer who approves the new one (PI-3).
///
/// The first line summarises which top-level parts changed (`changed: description, inputSchema;
/// added: outputSchema`), or says `no change`. Then comes a unified diff of the pretty-printed
/// canonical definitions, `---` approved and `+++` pending, with three lines of context, so key
/// order never shows as a change. Strings with line breaks (long descriptions) are shown as
/// `"""` blocks, one line of text per line, so the diff points at the sentence that changed. `Value::Null` as `old` stands for "nothing approved yet": every
/// line is then added.
///
/// Invisible and direction-changing characters (zero-width, bidi controls, Unicode tags,
/// variation selectors, control characters) are written as `\u{…}` escapes: the reviewer sees
/// what a terminal would otherwise hide or reorder, which is often the whole attack.
pub fn diff(old: &Value, new: &Value) -> String {
    let mut out = summary_line(old, new);
    out.push('\n');
    if canonical_definition(old) == canonical_definition(new) {
        return out;
    }
    let old_text = pretty(old);
    let new_text = pretty(new);
    let text_diff = similar::TextDiff::from_lines(&old_text, &new_text);
    let unified = text_diff
        .unified_diff()
        .context_radius(3)
        .header("approved", "pending")
        .to_string();
    out.push_str(&escape_invisible(&unified));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn summary_line(old: &Value, new: &Value) -> String {
    let parts = changed_parts(old, new);
    if parts.is_empty() {
        return if canonical_definition(old) == canonical_definition(new) {
            "no change".to_owned()
        } else {
            // Not objects (a malformed definition): nothing to name but the whole.
            "changed: the whole definition".to_owned()
        };
    }
    let mut groups: Vec<String> = Vec::new();
    for (label, which) in [
        ("changed", Change::Changed),
        ("added", Change::Added),
        ("removed", Change::Removed),
    ] {
        let names: Vec<&str> = parts
            .iter()
            .filter(|(_, c)| *c == which)
            .map(|(k, _)| k.as_str())
            .collect();
        if !names.is_empty() {
            groups.push(format!("{label}: {}", names.join(", ")));
        }
    }
    escape_invisible(&groups.join("; "))
}

fn pretty(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    let mut s = String::new();
    write_review(&canonical_definition(v), 0, &mut s);
    s.push('\n');
    s
}

/// Pretty JSON (two-space indent, sorted keys) for a person to read, except that a string with
/// line breaks is written as a `"""` block, one line of text per line: a description that gained
/// one sentence then shows as one added line, not as one changed line thousands of characters
/// long. In a block, a backslash is written `\\` and invisible characters `\u{…}`, so a real
/// line break, the two characters `\n` and an escape sequence typed into the text all look
/// different.
fn write_review(v: &Value, indent: usize, out: &mut String) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("{\n");
            let last = keys.len() - 1;
            for (i, k) in keys.into_iter().enumerate() {
                pad(out, indent + 2);
                out.push_str(&escape_invisible(&Value::String(k.clone()).to_string()));
                out.push_str(": ");
                write_review(&m[k], indent + 2, out);
                if i != last {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, indent);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                pad(out, indent + 2);
                write_review(x, indent + 2, out);
                if i + 1 != a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, indent);
            out.push(']');
        }
        Value::String(s) if s.contains('\n') => {
            out.push_str("\"\"\"\n");
            for line in s.split('\n') {
                pad(out, indent + 2);
                out.push_str(&escape_invisible(&line.replace('\\', "\\\\")));
                out.push('\n');
            }
            pad(out, indent);
            out.push_str("\"\"\"");
        }
        Value::String(s) => out.push_str(&escape_invisible(&Value::String(s.clone()).to_string())),
        other => write_canonical(other, out),
    }
}

/// `s` with every invisible, direction-changing or control character (carriage return included;
/// newline and tab excepted) written as `\u{XXXX}`, for showing attacker-controlled text (descriptions, property
/// names, JSON pointers) to a person on a terminal.
pub fn escape_invisible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // A carriage return lets later text overwrite a line on a terminal.
        if c == '\r' || (c != '\n' && c != '\t' && hidden_kind(c).is_some()) {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// One tool-poisoning cue found in a definition. It never holds the matched text (which is the
/// upstream's and may be long or hostile): only what, where and how sure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoisonFinding {
    /// What was found, always `tool_poisoning.…`: for example `tool_poisoning.hidden_tag`,
    /// `tool_poisoning.file_read`, `tool_poisoning.injection.concealment` (from the injection
    /// detector), `tool_poisoning.hidden_unicode.tag`.
    pub kind: String,
    /// JSON pointer (RFC 6901) into the definition: the string value it was found in, or the
    /// member whose name it was found in. Property names come from the upstream: show it through
    /// [`escape_invisible`].
    pub pointer: String,
    /// Confidence in 0..=1; compare with [`REVIEW_THRESHOLD`].
    pub confidence: f32,
}

/// One tool of a `tools/list` answer, ready to be pinned: what the gateway passes to the store's
/// `tool_pins().observe_with(connector, name, &hash, &canonical_json, now, policy)`, choosing the
/// review policy from [`PinCandidate::needs_review`].
#[derive(Debug, Clone, PartialEq)]
pub struct PinCandidate {
    /// The tool's `name`, when it is a string (a tool without one cannot be called, and should
    /// be dropped from the listing).
    pub name: Option<String>,
    /// [`definition_hash`] of the definition.
    pub hash: String,
    /// [`canonical_json`] of the definition: what the store keeps.
    pub canonical_json: String,
    /// [`scan_definition`]'s findings.
    pub findings: Vec<PoisonFinding>,
}

impl PinCandidate {
    /// Whether a finding reaches [`REVIEW_THRESHOLD`]: the definition should then be pinned
    /// only after a person's review (the store's `FirstSeenPolicy::Review`), not auto-approved.
    pub fn needs_review(&self) -> bool {
        needs_review(&self.findings, REVIEW_THRESHOLD)
    }
}

/// Canonicalises, hashes and scans one tool definition in one go (the canonical text is built
/// once and both hashed and kept).
pub fn pin_candidate(detector: &Detector, tool: &Value) -> PinCandidate {
    let canonical = canonical_json(tool);
    let hash = format!(
        "{HASH_PREFIX}{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    PinCandidate {
        name: tool.get("name").and_then(Value::as_str).map(str::to_owned),
        hash,
        canonical_json: canonical,
        findings: scan_definition(detector, tool),
    }
}

/// Whether any finding reaches `threshold` (usually [`REVIEW_THRESHOLD`]): such a definition
/// should be pinned only after a person's review, never auto-approved.
pub fn needs_review(findings: &[PoisonFinding], threshold: f32) -> bool {
    findings.iter().any(|f| f.confidence >= threshold)
}

/// Scans a tool definition for tool-poisoning cues (PI-3): in its description, its titles, every
/// string of its input and output schemas (property descriptions, enum values, defaults,
/// examples), its annotations and `_meta`, and in property names.
///
/// It reports:
/// - instructions aimed at the model: the detector's injection findings, as
///   `tool_poisoning.injection.<kind>` (only the injection category is used: personal data in an
///   example value is not poisoning);
/// - hidden Unicode (`tool_poisoning.hidden_unicode.{tag,zero_width,bidi,variation_selector,
///   control}`), in values and in member names;
/// - cues specific to tool poisoning: `<IMPORTANT>`-style tags (`hidden_tag`), hiding things from
///   the user (`concealment`), sensitive files mentioned (`sensitive_file`) or to be read
///   (`file_read`), "before using this tool…" (`precondition`), calling other tools
///   (`cross_tool`), changing how other tools behave (`shadowing`), redirecting recipients
///   (`redirect`), passing data in a side argument (`side_channel`), sending the conversation
///   along (`context_exfiltration`), whitespace padding that pushes text out of view
///   (`padding`), very long descriptions (`long_description`).
///
/// `icons` is not scanned: it holds image URLs (often long `data:` URIs) that the model never
/// reads. Findings are sorted by pointer then kind, one per kind and pointer (the highest
/// confidence), at most [`MAX_FINDINGS`].
pub fn scan_definition(detector: &Detector, tool: &Value) -> Vec<PoisonFinding> {
    let target = match tool {
        Value::Object(m) if m.contains_key("icons") => {
            let mut m = m.clone();
            m.remove("icons");
            Value::Object(m)
        }
        other => other.clone(),
    };
    let mut found: BTreeMap<(String, String), f32> = BTreeMap::new();
    let mut add = |kind: String, pointer: String, confidence: f32| {
        let slot = found.entry((pointer, kind)).or_insert(0.0);
        *slot = slot.max(confidence);
    };

    for f in detector.scan_json(&target) {
        // Hidden Unicode is ours below (also in member names, which the detector skips).
        if f.category != Category::Injection || f.kind.starts_with("injection.hidden_unicode") {
            continue;
        }
        add(
            format!("tool_poisoning.{}", f.kind),
            f.pointer.unwrap_or_default(),
            f.confidence,
        );
    }

    let mut strings = Vec::new();
    collect_strings(&target, &mut String::new(), 0, &mut strings);
    for s in &strings {
        if let Some(name) = &s.member_name {
            for (kind, conf) in hidden_unicode(name) {
                add(format!("tool_poisoning.{kind}"), s.pointer.clone(), conf);
            }
        }
        let Some(text) = s.value else { continue };
        for (kind, conf) in hidden_unicode(text) {
            add(format!("tool_poisoning.{kind}"), s.pointer.clone(), conf);
        }
        for cue in CUES.iter() {
            if cue.regex.is_match(text) {
                add(
                    format!("tool_poisoning.{}", cue.kind),
                    s.pointer.clone(),
                    cue.confidence,
                );
            }
        }
        let chars = text.chars().count();
        let limit = if s.pointer == "/description" {
            LONG_DESCRIPTION_CHARS
        } else {
            LONG_SCHEMA_STRING_CHARS
        };
        if chars > limit {
            // Very long is more suspicious, never on its own enough for review.
            let conf = if chars > 4 * limit { 0.6 } else { 0.4 };
            add(
                "tool_poisoning.long_description".to_owned(),
                s.pointer.clone(),
                conf,
            );
        }
    }

    let mut out: Vec<PoisonFinding> = found
        .into_iter()
        .map(|((pointer, kind), confidence)| PoisonFinding {
            kind,
            pointer,
            confidence,
        })
        .collect();
    out.truncate(MAX_FINDINGS);
    out
}

/// A string of the definition to scan: a value, a member name, or both (a member whose value is
/// a string).
struct Scanned<'a> {
    pointer: String,
    value: Option<&'a str>,
    member_name: Option<&'a str>,
}

fn collect_strings<'a>(v: &'a Value, ptr: &mut String, depth: usize, out: &mut Vec<Scanned<'a>>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::String(s) => out.push(Scanned {
            pointer: ptr.clone(),
            value: Some(s),
            member_name: None,
        }),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = ptr.len();
                let _ = write!(ptr, "/{i}");
                collect_strings(x, ptr, depth + 1, out);
                ptr.truncate(len);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = ptr.len();
                ptr.push('/');
                for ch in k.chars() {
                    match ch {
                        '~' => ptr.push_str("~0"),
                        '/' => ptr.push_str("~1"),
                        c => ptr.push(c),
                    }
                }
                let before = out.len();
                collect_strings(x, ptr, depth + 1, out);
                // The member's name is checked once, with its value when that is a string.
                match out.get_mut(before) {
                    Some(first) if first.pointer == *ptr && first.member_name.is_none() => {
                        first.member_name = Some(k);
                    }
                    _ => out.insert(
                        before,
                        Scanned {
                            pointer: ptr.clone(),
                            value: None,
                            member_name: Some(k),
                        },
                    ),
                }
                ptr.truncate(len);
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// The kind of a character that hides text or changes how it is displayed, with its confidence;
/// `None` for ordinary characters. Newline, tab and carriage return are ordinary here; callers
/// that print text treat newline and tab specially.
fn hidden_kind(c: char) -> Option<(&'static str, f32)> {
    match c as u32 {
        // Unicode tags: invisible ASCII, the classic carrier of hidden instructions.
        0xE0000..=0xE007F => Some(("hidden_unicode.tag", 0.95)),
        // Embedding, override and isolate controls reorder what is displayed (Trojan Source).
        0x202A..=0x202E | 0x2066..=0x2069 => Some(("hidden_unicode.bidi", 0.8)),
        // Marks that right-to-left text uses legitimately.
        0x200E | 0x200F | 0x061C => Some(("hidden_unicode.bidi", 0.5)),
        // The zero-width joiner is common in emoji sequences, so these alone stay below review.
        0x200B..=0x200D | 0x2060..=0x2064 | 0xFEFF | 0x180E | 0x00AD => {
            Some(("hidden_unicode.zero_width", 0.6))
        }
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF => Some(("hidden_unicode.variation_selector", 0.5)),
        // ANSI escapes and other controls can rewrite what a terminal shows.
        0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F => {
            Some(("hidden_unicode.control", 0.7))
        }
        _ => None,
    }
}

fn hidden_unicode(s: &str) -> Vec<(&'static str, f32)> {
    let mut out: Vec<(&'static str, f32)> = Vec::new();
    let mut selector_run = 0usize;
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let kind = hidden_kind(c);
        let is_selector = matches!(kind, Some(("hidden_unicode.variation_selector", _)));
        selector_run = if is_selector { selector_run + 1 } else { 0 };
        match kind {
            // One VS-16 (U+FE0F) or VS-15 after a visible character is how emoji are written;
            // a run of selectors encodes hidden bytes ("emoji smuggling").
            Some((k, _)) if is_selector => {
                let emoji_style = selector_run == 1 && matches!(c as u32, 0xFE0E | 0xFE0F);
                if selector_run >= 2 {
                    out.push((k, 0.9));
                } else if !emoji_style || prev.is_none() {
                    out.push((k, 0.5));
                }
            }
            Some(k) => out.push(k),
            None => {}
        }
        prev = Some(c);
    }
    out
}

/// One text cue of tool poisoning.
struct Cue {
    kind: &'static str,
    confidence: f32,
    regex: Regex,
}

/// Files whose contents an attacker wants from the machine the client runs on: SSH keys,
/// environment files, MCP client configs (which hold other servers' credentials), cloud and
/// package-registry credentials, shell history.
const SENSITIVE_FILES: &str = r"(?:\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|(?:^|[^\w.])\.env(?:\.[a-z]+)?\b|\bmcp\.json\b|\.cursor[/\\]|\bclaude_desktop_config(?:\.json)?\b|\.aws[/\\](?:credentials|config)\b|\.netrc\b|\.npmrc\b|\.pypirc\b|\.git-credentials\b|\.docker[/\\]config\.json|\.kube[/\\]config\b|/etc/(?:passwd|shadow|sudoers)\b|\.(?:bash|zsh)_history\b|\.gnupg\b|\bwallet\.dat\b)";

/// A tool name as written in prose: snake or kebab case, optionally quoted.
const TOOL_NAME: &str = r"[`'\x22]?[a-z][a-z0-9]*(?:[_-][a-z0-9]+)+[`'\x22]?";

static CUES: LazyLock<Vec<Cue>> = LazyLock::new(|| {
    let cue = |kind: &'static str, confidence: f32, pattern: &str| Cue {
        kind,
        confidence,
        regex: Regex::new(pattern).expect("built-in tool-poisoning cue compiles"),
    };
    vec![
        // <IMPORTANT>, <SYSTEM>, </instructions>...: markup that only a model reads.
        cue(
            "hidden_tag",
            0.85,
            r"(?i)<\s*/?\s*(?:important|system|sys|instructions?|secret|hidden|admin|critical|mandatory|override|prompt|rules?|context|assistant|ai|llm)\b[^<>\n]{0,40}>",
        ),
        cue(
            "hidden_tag",
            0.7,
            r"(?i)\[\s*/?\s*(?:important|system|instructions?|hidden|secret|admin)\s*\]",
        ),
        // Keeping the user in the dark.
        cue(
            "concealment",
            0.85,
            r"(?i)\b(?:do\s+not|don'?t|never|must\s+not|should\s+not|shouldn'?t|mustn'?t)\s+(?:\w+\s+){0,2}?(?:tell|mention|inform|notify|alert|warn|show|reveal|disclose|explain|say|let)\b(?:\s+(?:this|it|that|anything))?(?:\s+(?:to|with))?\s+(?:the\s+|this\s+|your\s+)?(?:users?|humans?|customers?|operators?|anyone|them)\b",
        ),
        cue(
            "concealment",
            0.75,
            r"(?i)\b(?:do\s+not|don'?t|never)\s+(?:tell|mention|reveal|disclose)\s+(?:that|this|it|anything)\b",
        ),
        cue(
            "concealment",
            0.85,
            r"(?i)\b(?:the\s+)?users?\s+(?:must|should|need|will|does|do)\s*(?:not|n't|never)\s+(?:\w+\s+)?(?:know|see|notice|find\s+out|be\s+told|be\s+informed|be\s+aware)\b",
        ),
        cue(
            "concealment",
            0.85,
            r"(?i)\bwithout\s+(?:(?:telling|informing|notifying|alerting|asking|warning)\s+(?:the\s+)?(?:users?|humans?|anyone)|(?:the\s+)?users?(?:'s)?\s+(?:knowing|knowledge|noticing|consent))\b",
        ),
        cue(
            "concealment",
            0.85,
            r"(?i)\b(?:keep|hide)\s+(?:this|it|that|these)\s+(?:\w+\s+)?from\s+(?:the\s+)?(?:users?|humans?)\b",
        ),
        cue(
            "concealment",
            0.75,
            r"(?i)\b(?:silently|secretly|covertly|quietly)\s+(?:read|send|call|pass|include|add|append|forward|upload|copy|attach|run|execute|invoke|collect|gather|extract)\b",
        ),
        // Files: mentioned, or to be read and passed on.
        cue("sensitive_file", 0.6, &format!("(?i){SENSITIVE_FILES}")),
        cue(
            "file_read",
            0.9,
            &format!(
                r"(?i)\b(?:read|open|cat|load|include|attach|upload|send|pass|copy|fetch|dump|print|provide|contents?\s+of)\b[^.\n]{{0,80}}?{SENSITIVE_FILES}"
            ),
        ),
        // "Before using this tool, ..."
        cue(
            "precondition",
            0.6,
            r"(?i)\b(?:before|prior\s+to)\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+(?:\w+\s+)?(?:tool|function)\b",
        ),
        cue(
            "precondition",
            0.75,
            r"(?i)\botherwise\s+(?:the|this)\s+tool\s+(?:will\s+not|won'?t|cannot|can'?t|does\s+not|doesn'?t)\s+work\b",
        ),
        // Calling other tools.
        cue(
            "cross_tool",
            0.65,
            &format!(
                r"(?i)\b(?:you\s+must|must|always|first|also|then|instead)\s+(?:\w+\s+)?(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?{TOOL_NAME}"
            ),
        ),
        // Changing how other tools behave (shadowing).
        cue(
            "shadowing",
            0.85,
            r"(?i)\b(?:when|if|while|whenever)\s+this\s+tool\s+is\s+(?:available|present|installed|loaded|enabled|active|connected)\b",
        ),
        cue(
            "shadowing",
            0.8,
            &format!(
                r"(?i)\b(?:when|whenever|if)\s+(?:\(?[\w-]+\)?\s+)?(?:the\s+)?{TOOL_NAME}\s+(?:tool\s+)?is\s+(?:invoked|called|used|run|executed)\b"
            ),
        ),
        cue(
            "shadowing",
            0.75,
            &format!(
                r"(?i)\bthe\s+{TOOL_NAME}\s+(?:tool|function)\s+(?:must|should|has\s+to|needs\s+to|will\s+now)\b"
            ),
        ),
        cue(
            "shadowing",
            0.75,
            r"(?i)\b(?:all|every|any)\s+(?:other\s+)?(?:tools?|functions?)\b[^.\n]{0,60}?\b(?:must|should|need\s+to|have\s+to)\b",
        ),
        // Redirecting where something goes.
        cue(
            "redirect",
            0.85,
            r"(?i)\b(?:change|set|replace|redirect|switch)\s+the\s+(?:recipients?|destination|address|to\s+address|e-?mail(?:\s+address)?|phone(?:\s+number)?|number|account(?:\s+number)?|iban|url|endpoint|wallet)\s+to\b",
        ),
        // Data passed along in an argument it does not belong in.
        cue(
            "side_channel",
            0.8,
            r"(?i)\b(?:pass|put|include|insert|send|provide|copy|append|add|attach)\s+(?:its|their|the\s+(?:file'?s?|whole|entire|full|complete))\s+(?:contents?|text|data|output)\b[^.\n]{0,60}?\b(?:as|in|into|via|through|inside|to)\b",
        ),
        cue(
            "side_channel",
            0.8,
            r"(?i)\bset\s+(?:this|it)\s+(?:field\s+|parameter\s+|argument\s+)?to\s+(?:the\s+)?(?:full\s+|entire\s+)?(?:contents?|text|output|value)\s+of\b",
        ),
        cue(
            "context_exfiltration",
            0.8,
            r"(?i)\b(?:include|pass|send|put|add|append|insert|provide|copy|forward|attach|paste)\b[^.\n]{0,40}?\b(?:entire|full|whole|complete|all)\s+(?:previous\s+|prior\s+|of\s+the\s+|list\s+of\s+(?:the\s+)?(?:last\s+|previous\s+)?)?(?:conversation|chat\s+history|message\s+history|chats?|messages|context|system\s+prompt|instructions)\b",
        ),
        // Text pushed out of view by padding.
        cue("padding", 0.6, r"(?:[ \t]*\r?\n){8,}|[ \t\u{00A0}]{60,}"),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"z": [2.0, {"y": true, "x": null}], "c": "s"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"s","z":[2,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn fractional_and_huge_numbers_are_kept() {
        assert_eq!(canonical_json(&json!([1.5, 1e300])), "[1.5,1e+300]");
    }

    #[test]
    fn hash_format_is_checked() {
        let h = definition_hash(&json!({"name": "t"}));
        assert!(is_definition_hash(&h), "{h}");
        assert!(!is_definition_hash(&h.to_uppercase()));
        assert!(!is_definition_hash(&h[..20]));
        assert!(!is_definition_hash("md5:abc"));
    }

    #[test]
    fn invisible_characters_are_escaped() {
        assert_eq!(
            escape_invisible("a\u{200B}b\u{202E}c\u{E0041}\n\x1b"),
            "a\\u{200B}b\\u{202E}c\\u{E0041}\n\\u{001B}"
        );
    }

    #[test]
    fn one_emoji_selector_is_fine_a_run_is_smuggling() {
        assert!(hidden_unicode("Warning \u{26A0}\u{FE0F}").is_empty());
        let run: String = std::iter::once('x')
            .chain((0..8).map(|i| char::from_u32(0xE0100 + i).unwrap()))
            .collect();
        assert!(hidden_unicode(&run).iter().any(|(_, c)| *c >= 0.9));
    }
}
