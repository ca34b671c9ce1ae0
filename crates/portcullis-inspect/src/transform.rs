//! The data actions of DLP-4 on byte spans of one string: redact with a typed placeholder,
//! mask keeping the value's shape, pseudonymize with a keyed HMAC.
//!
//! [`Transformer`] holds the state of one result: the numbers given to redacted values, so that
//! the same value gets the same placeholder everywhere in that result (`[EMAIL_1]` in the text
//! block and in `structuredContent` alike) and a second distinct value gets the next number. A
//! new result starts a new `Transformer`.
//!
//! Pseudonyms are keyed with a [`PseudonymKey`], derived per session from the gateway's key: the
//! same value maps to the same pseudonym within a session (a model can still tell that two
//! records share an e-mail address) and to an unrelated one in another session, and nobody
//! without the key can map a pseudonym back or test a guess.
//!
//! Spans come from the detector and are trusted no further than necessary: a span that does not
//! fall on UTF-8 character boundaries is widened to the enclosing characters (it hides a little
//! more, never less), and a span outside the string is an error, never a panic.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use portcullis_config::DataAction;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Why a transform could not be applied. The caller withholds the value (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A span lies outside the string it is meant for: the detector and the caller disagree
    /// about the text, which is a bug; the value must not pass unredacted.
    #[error(
        "a finding's span {start}..{end} lies outside its {len}-byte value; the value is \
         withheld (this is a bug in Portcullis: please report it with the detector kind)"
    )]
    SpanOutOfBounds {
        /// Start byte offset.
        start: usize,
        /// End byte offset (exclusive).
        end: usize,
        /// Length of the string.
        len: usize,
    },
    /// The gateway key given to derive pseudonym keys is too short to be a key.
    #[error(
        "the pseudonym master key is {len} bytes; it must hold at least {min} random bytes \
         (set `inspection.pseudonym_key` to a secret of 32 random bytes, or leave it out for a \
         random key per start)"
    )]
    KeyTooShort {
        /// Its length.
        len: usize,
        /// The least accepted.
        min: usize,
    },
}

/// The key of the pseudonyms of one session (DLP-4). Its `Debug` never shows the key, and the
/// bytes are wiped from memory when it is dropped.
#[derive(Clone)]
pub struct PseudonymKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

impl PseudonymKey {
    /// The fewest bytes a master key may have.
    pub const MIN_MASTER_LEN: usize = 16;

    /// The key of session `session` under the gateway's `master` key:
    /// `HMAC-SHA256(master, "portcullis/pseudonym/v1" 0x00 session)`. The label separates this
    /// use of the master key from any other; the session id makes pseudonyms of one session
    /// useless for linking records across sessions.
    pub fn for_session(master: &[u8], session: &str) -> Result<Self, TransformError> {
        if master.len() < Self::MIN_MASTER_LEN {
            return Err(TransformError::KeyTooShort {
                len: master.len(),
                min: Self::MIN_MASTER_LEN,
            });
        }
        let mut mac = new_mac(master);
        mac.update(b"portcullis/pseudonym/v1\0");
        mac.update(session.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Ok(Self { key })
    }

    /// A key from 32 bytes already derived (tests, or a caller with its own derivation).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(bytes),
        }
    }

    /// The first 8 hex digits of `HMAC(key, TYPE 0x00 normalized value)`. The type separates a
    /// card number from a phone number with the same digits.
    fn tag(&self, value_type: &str, normalized: &str) -> String {
        let mut mac = new_mac(self.key.as_slice());
        mac.update(value_type.as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..4])
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (RFC 2104); this never fails.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The placeholder type of a detector kind: `EMAIL`, `PHONE`, `CARD`, `IBAN`, `SSN`, `SECRET`...
///
/// Both spellings of a kind are known (`pii.card` and the detector's `pii.credit_card`,
/// `pii.ssn` and `pii.us_ssn`). Kinds outside the table get the upper-cased last part of their
/// name (`org.codename` gives `CODENAME`), so custom rules still get a readable type.
pub fn value_type(kind: &str) -> &str {
    match kind {
        "pii.email" => "EMAIL",
        "pii.phone" => "PHONE",
        "pii.card" | "pii.credit_card" => "CARD",
        "pii.iban" => "IBAN",
        "pii.ssn" | "pii.us_ssn" => "SSN",
        "pii.ip_address" => "IP",
        "pii.date_of_birth" => "DOB",
        "pii.postal_address" => "ADDRESS",
        "pii.person_name" => "NAME",
        "pii.ca_sin" | "pii.nl_bsn" | "pii.in_aadhaar" | "pii.uk_nhs_number" | "pii.es_dni" => {
            "NATIONAL_ID"
        }
        k if k.starts_with("secret.") => "SECRET",
        k if k.starts_with("internal.") => "INTERNAL",
        k if k.starts_with("injection.") => "INJECTION",
        _ => "",
    }
}

/// [`value_type`], with the fallback for kinds outside the table computed.
fn type_of(kind: &str) -> String {
    let t = value_type(kind);
    if !t.is_empty() {
        return t.to_string();
    }
    let last = kind.rsplit('.').next().unwrap_or(kind);
    let t: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if t.is_empty() { "DATA".into() } else { t }
}

/// The form of a value under which equal values are recognised: e-mail addresses
/// case-insensitively, numbers by their digits (`4242 4242 ...` and `4242424242...` are one
/// card), IBANs by their letters and digits.
fn normalize(value_type: &str, value: &str) -> String {
    match value_type {
        "EMAIL" => value.trim().to_lowercase(),
        "CARD" | "PHONE" | "SSN" | "NATIONAL_ID" => {
            value.chars().filter(char::is_ascii_digit).collect()
        }
        "IBAN" => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        _ => value.to_string(),
    }
}

/// Masks `value` keeping its shape (DLP-4):
/// - e-mail addresses keep the first character of the local part and the domain:
///   `j***@example.org`;
/// - card numbers keep their separators and last 4 digits: `**** **** **** 4242`;
/// - phone numbers keep `+`, separators and their last 4 digits (3 when they have 7 to 9 digits,
///   2 when fewer): `+*******0147`;
/// - anything else keeps separators (space, `-`, `.`, `/`, `:`) and its last 4 letters or digits,
///   but never more than half of them, so a short value is not half given away.
pub fn mask(kind: &str, value: &str) -> String {
    match value_type(kind) {
        "EMAIL" => match value.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                let first = local.chars().next().unwrap_or('*');
                format!("{first}***@{domain}")
            }
            _ => mask_generic(value),
        },
        "CARD" => mask_digits(value, 4),
        "PHONE" => {
            let n = value.chars().filter(char::is_ascii_digit).count();
            let keep = match n {
                10.. => 4,
                7..=9 => 3,
                5..=6 => 2,
                _ => 0,
            };
            mask_digits(value, keep)
        }
        _ => mask_generic(value),
    }
}

/// Every digit but the last `keep` becomes `*`; everything else stays.
fn mask_digits(value: &str, keep: usize) -> String {
    let total = value.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + keep > total { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

fn mask_generic(value: &str) -> String {
    let is_sep = |c: char| matches!(c, ' ' | '-' | '.' | '/' | ':');
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = 4.min(total / 2);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if is_sep(c) {
                c
            } else if c.is_alphanumeric() {
                seen += 1;
                if seen + keep > total { c } else { '*' }
            } else {
                '*'
            }
        })
        .collect()
}

/// The keyed pseudonym of `value` (DLP-4): `TYPE_xxxxxxxx`, the hex being the first 32 bits of
/// an HMAC-SHA256 of the normalized value under `key`; e-mail addresses keep a valid shape,
/// `user_xxxxxxxx@pseudonym.invalid` (`.invalid` is reserved: mail to it goes nowhere).
pub fn pseudonymize(key: &PseudonymKey, kind: &str, value: &str) -> String {
    let t = type_of(kind);
    let tag = key.tag(&t, &normalize(&t, value));
    if t == "EMAIL" {
        format!("user_{tag}@pseudonym.invalid")
    } else {
        format!("{t}_{tag}")
    }
}

/// One finding's span and the action decided for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'k> {
    /// Start byte offset in the string.
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
    /// The detector kind (gives the placeholder's type).
    pub kind: &'k str,
    /// The action; `allow` and `log` leave the text as it is.
    pub action: DataAction,
}

/// The transform state of one result (see the module documentation).
#[derive(Debug)]
pub struct Transformer<'a> {
    key: &'a PseudonymKey,
    /// `(type, normalized value)` to its placeholder number.
    numbers: HashMap<(String, String), u32>,
    /// The last number given per type.
    last: HashMap<String, u32>,
}

impl<'a> Transformer<'a> {
    /// A fresh state for one result, pseudonymizing under `key`.
    pub fn new(key: &'a PseudonymKey) -> Self {
        Self {
            key,
            numbers: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// The placeholder of `value`: `[EMAIL_1]` for the first distinct e-mail address of the
    /// result, `[EMAIL_2]` for the second, `[EMAIL_1]` again for the first one seen again.
    pub fn redact(&mut self, kind: &str, value: &str) -> String {
        let t = type_of(kind);
        let norm = normalize(&t, value);
        let n = match self.numbers.get(&(t.clone(), norm.clone())) {
            Some(n) => *n,
            None => {
                let next = self.last.entry(t.clone()).or_insert(0);
                *next += 1;
                let n = *next;
                self.numbers.insert((t.clone(), norm), n);
                n
            }
        };
        format!("[{t}_{n}]")
    }

    /// What `action` makes of `value`; `None` when it leaves the value as it is. `block`
    /// redacts: a blocked result is withheld whole, and should it be passed on regardless, the
    /// value still does not.
    pub fn replacement(&mut self, kind: &str, action: DataAction, value: &str) -> Option<String> {
        match action {
            DataAction::Allow | DataAction::Log => None,
            DataAction::Mask => Some(mask(kind, value)),
            DataAction::Pseudonymize => Some(pseudonymize(self.key, kind, value)),
            DataAction::Redact | DataAction::Block => Some(self.redact(kind, value)),
        }
    }

    /// Applies `spans` to `text`; `Ok(None)` when nothing changes.
    ///
    /// Spans that overlap are merged: the union is replaced once, by the strictest action among
    /// them (ranked by [`DataAction::rank`]) and with the kind of the span that carries it, so
    /// that no replacement is ever applied inside another. Spans off character boundaries are
    /// widened to them.
    pub fn apply(
        &mut self,
        text: &str,
        spans: &[Span<'_>],
    ) -> Result<Option<String>, TransformError> {
        let mut edits: Vec<Span<'_>> = Vec::with_capacity(spans.len());
        for s in spans {
            if s.start > s.end || s.end > text.len() {
                return Err(TransformError::SpanOutOfBounds {
                    start: s.start,
                    end: s.end,
                    len: text.len(),
                });
            }
            if matches!(s.action, DataAction::Allow | DataAction::Log) || s.start == s.end {
                continue;
            }
            edits.push(Span {
                start: floor_boundary(text, s.start),
                end: ceil_boundary(text, s.end),
                ..*s
            });
        }
        if edits.is_empty() {
            return Ok(None);
        }
        edits.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut i = 0;
        while i < edits.len() {
            let mut group = edits[i];
            let mut j = i + 1;
            while j < edits.len() && edits[j].start < group.end {
                let e = edits[j];
                group.end = group.end.max(e.end);
                if e.action.rank() > group.action.rank() {
                    group.action = e.action;
                    group.kind = e.kind;
                }
                j += 1;
            }
            out.push_str(&text[pos..group.start]);
            let value = &text[group.start..group.end];
            match self.replacement(group.kind, group.action, value) {
                Some(r) => out.push_str(&r),
                None => out.push_str(value),
            }
            pos = group.end;
            i = j;
        }
        out.push_str(&text[pos..]);
        Ok(Some(out))
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PseudonymKey {
        PseudonymKey::from_bytes([b; 32])
    }

    fn span(start: usize, end: usize, kind: &str, action: DataAction) -> Span<'_> {
        Span {
            start,
            end,
            kind,
            action,
        }
    }

    // DLP-4: typed placeholders numbered per distinct value within one result.
    #[test]
    fn redact_numbers_distinct_values_per_type() {
        let k = key(1);
        let mut t = Transformer::new(&k);
        assert_eq!(t.redact("pii.email", "a@x.org"), "[EMAIL_1]");
        assert_eq!(t.redact("pii.email", "b@x.org"), "[EMAIL_2]");
        assert_eq!(t.redact("pii.email", "A@X.org"), "[EMAIL_1]");
        assert_eq!(
            t.redact("pii.credit_card", "4242 4242 4242 4242"),
            "[CARD_1]"
        );
        assert_eq!(t.redact("pii.card", "4242424242424242"), "[CARD_1]");
        assert_eq!(t.redact("pii.us_ssn", "123-45-6789"), "[SSN_1]");
        assert_eq!(t.redact("secret.github_pat", "ghp_x"), "[SECRET_1]");
        assert_eq!(t.redact("org.codename", "Bluebird"), "[CODENAME_1]");
        assert_eq!(t.redact("x.", "v"), "[DATA_1]");
        // A new result starts again at 1.
        let mut t2 = Transformer::new(&k);
        assert_eq!(t2.redact("pii.email", "b@x.org"), "[EMAIL_1]");
    }

    #[test]
    fn mask_keeps_shape() {
        assert_eq!(
            mask("pii.email", "jane.doe@example.org"),
            "j***@example.org"
        );
        assert_eq!(
            mask("pii.credit_card", "4242 4242 4242 4242"),
            "**** **** **** 4242"
        );
        assert_eq!(
            mask("pii.card", "4242-4242-4242-4242"),
            "****-****-****-4242"
        );
        assert_eq!(mask("pii.phone", "+12125550147"), "+*******0147");
        assert_eq!(mask("pii.phone", "(212) 555-0147"), "(***) ***-0147");
        assert_eq!(mask("pii.phone", "555-0147"), "***-*147");
        assert_eq!(mask("pii.us_ssn", "123-45-6789"), "***-**-6789");
        assert_eq!(
            mask("pii.iban", "DE89 3704 0044 0532 0130 00"),
            "**** **** **** **** **30 00"
        );
        // Short values never show more than half.
        assert_eq!(mask("secret.x", "abcd"), "**cd");
        assert_eq!(mask("secret.x", "ab"), "*b");
        assert_eq!(mask("pii.email", "@nolocal"), "*****cal");
    }

    #[test]
    fn pseudonyms_are_keyed_consistent_and_typed() {
        let (k1, k2) = (key(1), key(2));
        let a = pseudonymize(&k1, "pii.email", "Jane@Example.org");
        assert_eq!(a, pseudonymize(&k1, "pii.email", "jane@example.org"));
        assert_ne!(a, pseudonymize(&k2, "pii.email", "jane@example.org"));
        assert!(
            a.starts_with("user_") && a.ends_with("@pseudonym.invalid"),
            "{a}"
        );
        assert_eq!(a.len(), "user_".len() + 8 + "@pseudonym.invalid".len());
        let c = pseudonymize(&k1, "pii.credit_card", "4242 4242 4242 4242");
        assert!(c.starts_with("CARD_") && c.len() == 13, "{c}");
        assert_eq!(c, pseudonymize(&k1, "pii.card", "4242424242424242"));
        // The type separates equal digits of different kinds.
        let p = pseudonymize(&k1, "pii.phone", "4242424242424242");
        assert_ne!(c[5..], p[6..]);
    }

    #[test]
    fn session_keys_differ_and_need_a_real_master() {
        let m = [7u8; 32];
        let a = PseudonymKey::for_session(&m, "s1").unwrap();
        let b = PseudonymKey::for_session(&m, "s2").unwrap();
        let a2 = PseudonymKey::for_session(&m, "s1").unwrap();
        let v = "jane@example.org";
        assert_eq!(
            pseudonymize(&a, "pii.email", v),
            pseudonymize(&a2, "pii.email", v)
        );
        assert_ne!(
            pseudonymize(&a, "pii.email", v),
            pseudonymize(&b, "pii.email", v)
        );
        assert_eq!(
            PseudonymKey::for_session(&[1; 8], "s").unwrap_err(),
            TransformError::KeyTooShort { len: 8, min: 16 }
        );
        assert_eq!(format!("{a:?}"), "PseudonymKey(<redacted>)");
    }

    #[test]
    fn apply_replaces_spans_in_order() {
        let k = key(1);
        let mut t = Transformer::new(&k);
        let text = "mail a@x.org or b@x.org, again a@x.org";
        let spans = [
            span(5, 12, "pii.email", DataAction::Redact),
            span(16, 23, "pii.email", DataAction::Redact),
            span(31, 38, "pii.email", DataAction::Redact),
        ];
        assert_eq!(
            t.apply(text, &spans).unwrap().unwrap(),
            "mail [EMAIL_1] or [EMAIL_2], again [EMAIL_1]"
        );
        assert_eq!(t.apply(text, &[]).unwrap(), None);
        assert_eq!(
            t.apply(text, &[span(5, 12, "pii.email", DataAction::Log)])
                .unwrap(),
            None
        );
    }

    // DLP-4: overlapping findings: the strictest action over the union span, applied once.
    #[test]
    fn overlaps_take_the_strictest_action_over_the_union() {
        let k = key(1);
        let mut t = Transformer::new(&k);
        let text = "key=abcd1234efgh5678 end";
        let spans = [
            span(4, 12, "pii.phone", DataAction::Mask),
            span(8, 20, "secret.high_entropy", DataAction::Redact),
        ];
        assert_eq!(
            t.apply(text, &spans).unwrap().unwrap(),
            "key=[SECRET_1] end"
        );
        // Contained span: one replacement, the outer strictest.
        let spans = [
            span(4, 20, "pii.iban", DataAction::Mask),
            span(6, 8, "secret.x", DataAction::Pseudonymize),
        ];
        let out = t.apply(text, &spans).unwrap().unwrap();
        assert!(
            out.starts_with("key=SECRET_") && out.ends_with(" end"),
            "{out}"
        );
        // A log span does not widen a replacement.
        let spans = [
            span(0, 24, "pii.person_name", DataAction::Log),
            span(4, 20, "secret.x", DataAction::Redact),
        ];
        assert_eq!(
            t.apply(text, &spans).unwrap().unwrap(),
            "key=[SECRET_1] end"
        );
    }

    #[test]
    fn odd_spans_are_widened_or_refused_never_panic() {
        let k = key(1);
        let mut t = Transformer::new(&k);
        let text = "né jane@exämple.org";
        // 2 is inside 'é' (bytes 1..3): widened to 1.
        let out = t
            .apply(text, &[span(2, 4, "pii.x", DataAction::Redact)])
            .unwrap()
            .unwrap();
        assert_eq!(out, "n[X_1]jane@exämple.org");
        assert_eq!(
            t.apply(text, &[span(3, 99, "pii.x", DataAction::Redact)]),
            Err(TransformError::SpanOutOfBounds {
                start: 3,
                end: 99,
                len: text.len()
            })
        );
        assert!(
            t.apply(text, &[span(5, 3, "pii.x", DataAction::Redact)])
                .is_err()
        );
        // Empty spans change nothing.
        assert_eq!(
            t.apply(text, &[span(3, 3, "pii.x", DataAction::Redact)])
                .unwrap(),
            None
        );
    }

    #[test]
    fn block_redacts_should_the_value_pass_regardless() {
        let k = key(1);
        let mut t = Transformer::new(&k);
        assert_eq!(
            t.replacement("pii.card", DataAction::Block, "4242")
                .as_deref(),
            Some("[CARD_1]")
        );
        assert_eq!(t.replacement("pii.card", DataAction::Allow, "4242"), None);
    }
}
