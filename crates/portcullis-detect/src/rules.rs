//! Literal-triggered rules: the shape shared by secret, internal, injection and PII rules.

use crate::Category;

/// What a rule checks after its regex matched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Check {
    None,
    /// The reported value is not a placeholder (`${X}`, `changeme`, `xxxx`...).
    NotPlaceholder,
    /// Generic `key = value` assignment: not a placeholder, not a code reference, some variety.
    Generic,
    /// Shannon entropy of the reported value at least this.
    Entropy(f32),
    /// Markdown/HTML image or link: the URL carries data to an outside host.
    ExfilUrl {
        image: bool,
    },
    /// Hidden HTML (comment, invisible style): report only if the hidden text reads as instructions.
    HiddenInstr,
    /// A person name: next word capitalised, not a common word.
    Name,
    /// Windows/Unix path: more than the bare prefix.
    Path,
}

/// A rule: a regex run at the hits of its literal triggers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub kind: &'static str,
    pub cat: Category,
    /// Literals; one of them occurs in every match, starting at most `back` bytes in.
    pub triggers: &'static [&'static str],
    /// The regex. Group 1, if any, is the reported span.
    pub re: &'static str,
    pub conf: f32,
    /// How far before the trigger the match may start (0: the match starts at the trigger).
    pub back: usize,
    /// How far after the trigger's start the match may end (the regex window).
    pub max_len: usize,
    pub check: Check,
    /// Overlaps in one category keep the higher priority.
    pub prio: u8,
    /// The trigger must not follow a letter or digit.
    pub left_bound: bool,
    /// Match the triggers ASCII-case-insensitively.
    pub case_variants: bool,
    /// A cheap test at the trigger before the regex runs (for triggers that are frequent).
    pub pre: Option<fn(&[u8], usize) -> bool>,
}

/// `://user:password@`: a `:` then an `@` before any `/`, space or quote.
pub(crate) fn pre_userinfo(b: &[u8], p: usize) -> bool {
    let mut colon = false;
    for &c in b.iter().skip(p + 3).take(200) {
        match c {
            b':' => colon = true,
            b'@' => return colon,
            b'/' | b' ' | b'\n' | b'\t' | b'"' | b'\'' | b'<' | b'>' => return false,
            _ => {}
        }
    }
    false
}

/// Airtable `pat` + 14 alphanumerics + `.`.
pub(crate) fn pre_airtable(b: &[u8], p: usize) -> bool {
    b.len() > p + 18
        && b[p + 3..p + 17].iter().all(|c| c.is_ascii_alphanumeric())
        && b[p + 17] == b'.'
}

pub(crate) const fn spec(
    kind: &'static str,
    cat: Category,
    triggers: &'static [&'static str],
    re: &'static str,
) -> Spec {
    Spec {
        kind,
        cat,
        triggers,
        re,
        conf: 0.9,
        back: 0,
        max_len: 512,
        check: Check::None,
        prio: 3,
        left_bound: true,
        case_variants: false,
        pre: None,
    }
}

/// A secret rule with a provider prefix (case-sensitive).
pub(crate) const fn sec(
    kind: &'static str,
    triggers: &'static [&'static str],
    re: &'static str,
) -> Spec {
    spec(kind, Category::Secret, triggers, re)
}
