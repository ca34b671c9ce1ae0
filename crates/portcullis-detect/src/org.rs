//! Organization rules (DLP-3): custom patterns, dictionaries, classification labels and
//! exact-data fingerprints of sensitive documents.

use serde::{Deserialize, Serialize};

use crate::Category;
use crate::util::fnv1a;

fn default_conf() -> f32 {
    0.9
}

fn default_cat() -> Category {
    Category::Internal
}

/// A custom regex. Reported as `org.<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// Rule id (the kind is `org.<id>`).
    pub id: String,
    /// The regex (Rust `regex` syntax; linear time). Group 1, if any, is the reported span.
    pub pattern: String,
    /// Category (default `internal`).
    #[serde(default = "default_cat")]
    pub category: Category,
    /// Confidence (default 0.9).
    #[serde(default = "default_conf")]
    pub confidence: f32,
}

/// A dictionary of terms (code names, customer ids...). Reported as `org.<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dictionary {
    /// Rule id.
    pub id: String,
    /// The terms.
    pub terms: Vec<String>,
    /// Match regardless of ASCII case (default true).
    #[serde(default = "yes")]
    pub case_insensitive: bool,
    /// Whole words only (default true).
    #[serde(default = "yes")]
    pub whole_word: bool,
    /// Category (default `internal`).
    #[serde(default = "default_cat")]
    pub category: Category,
    /// Confidence (default 0.9).
    #[serde(default = "default_conf")]
    pub confidence: f32,
}

fn yes() -> bool {
    true
}

/// A classification label (e.g. `ACME RESTRICTED`). Reported as `org.label.<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Rule id.
    pub id: String,
    /// The label text, matched case-sensitively as written and in upper case.
    pub text: String,
    /// Confidence (default 0.9).
    #[serde(default = "default_conf")]
    pub confidence: f32,
}

/// Exact-data fingerprints of a sensitive document: hashes of its normalized word 8-grams.
/// Reported as `org.fingerprint.<id>` over the matching run of text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintSet {
    /// Rule id.
    pub id: String,
    /// 64-bit shingle hashes (from [`FingerprintSet::from_document`]).
    pub hashes: Vec<u64>,
    /// Category (default `internal`).
    #[serde(default = "default_cat")]
    pub category: Category,
}

/// Words per shingle.
pub(crate) const SHINGLE: usize = 8;

impl FingerprintSet {
    /// Fingerprints a document (its text is not kept).
    pub fn from_document(id: &str, text: &str) -> FingerprintSet {
        let words = norm_words(text);
        let mut hashes: Vec<u64> = shingles(text, &words)
            .into_iter()
            .map(|(h, _, _)| h)
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        FingerprintSet {
            id: id.to_string(),
            hashes,
            category: Category::Internal,
        }
    }
}

/// Word spans (lowercased alphanumeric runs).
pub(crate) fn norm_words(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() || b[i] >= 0x80 {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] >= 0x80) {
                i += 1;
            }
            v.push((s, i));
        } else {
            i += 1;
        }
    }
    v
}

/// (hash, start, end) of each run of SHINGLE words.
pub(crate) fn shingles(text: &str, words: &[(usize, usize)]) -> Vec<(u64, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    if words.len() < SHINGLE {
        return out;
    }
    let wh: Vec<u64> = words
        .iter()
        .map(|&(s, e)| {
            let lower: Vec<u8> = b[s..e].iter().map(|c| c.to_ascii_lowercase()).collect();
            fnv1a(0x5eed, &lower)
        })
        .collect();
    for i in 0..=words.len() - SHINGLE {
        let mut h = 0u64;
        for x in &wh[i..i + SHINGLE] {
            h = h.rotate_left(11) ^ x.wrapping_mul(0x9E3779B97F4A7C15);
        }
        out.push((h, words[i].0, words[i + SHINGLE - 1].1));
    }
    out
}

/// All organization rules.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgRules {
    /// Custom regexes.
    pub patterns: Vec<CustomPattern>,
    /// Dictionaries.
    pub dictionaries: Vec<Dictionary>,
    /// Classification labels.
    pub labels: Vec<Label>,
    /// Exact-data fingerprints.
    pub fingerprints: Vec<FingerprintSet>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Detector, DetectorConfig};

    #[test]
    fn custom_dict_label_fingerprint() {
        let secret_doc = "The merger between Acme and Globex closes on the first of March at a price of twelve dollars a share.";
        let mut cfg = DetectorConfig::default();
        cfg.org.patterns.push(CustomPattern {
            id: "employee_id".into(),
            pattern: r"EMP-\d{6}".into(),
            category: Category::Pii,
            confidence: 0.9,
        });
        cfg.org.dictionaries.push(Dictionary {
            id: "codename".into(),
            terms: vec!["Project Falcon".into(), "bluebird".into()],
            case_insensitive: true,
            whole_word: true,
            category: Category::Internal,
            confidence: 0.9,
        });
        cfg.org.labels.push(Label {
            id: "acme_restricted".into(),
            text: "Acme Restricted".into(),
            confidence: 0.9,
        });
        cfg.org
            .fingerprints
            .push(FingerprintSet::from_document("merger", secret_doc));
        let d = Detector::new(&cfg).unwrap();
        let t = "EMP-123456 works on PROJECT FALCON (Acme Restricted); bluebirds are birds. Leak: the merger between Acme and Globex closes on the first of March at a price";
        let f = d.scan_text(t);
        let k: Vec<&str> = f.iter().map(|x| x.kind.as_str()).collect();
        assert!(k.contains(&"org.employee_id"), "{k:?}");
        assert!(k.contains(&"org.codename"), "{k:?}");
        assert_eq!(
            k.iter().filter(|x| **x == "org.codename").count(),
            1,
            "{k:?}"
        );
        assert!(k.contains(&"org.label.acme_restricted"), "{k:?}");
        let fp = f
            .iter()
            .find(|x| x.kind == "org.fingerprint.merger")
            .expect("fingerprint");
        assert!(t[fp.start..fp.end].starts_with("the merger"));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let mut cfg = DetectorConfig::default();
        cfg.org.patterns.push(CustomPattern {
            id: "x".into(),
            pattern: "(".into(),
            category: Category::Pii,
            confidence: 0.9,
        });
        assert!(Detector::new(&cfg).is_err());
    }
}
