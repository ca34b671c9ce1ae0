//! portcullis-detect: the detection engine of Portcullis.
//!
//! Finds personal data (DLP-1), secrets (DLP-1), internal-detail leaks (DLP-2), organization
//! rules (DLP-3) and prompt injection (PI-1, PI-2) in text and in JSON, fast (DLP-7).
//!
//! ```
//! use portcullis_detect::{Detector, DetectorConfig, Category};
//! let det = Detector::new(&DetectorConfig::default()).unwrap();
//! let f = det.scan_text("mail me at jane.doe@example.org");
//! assert_eq!(f[0].kind, "pii.email");
//! assert_eq!(f[0].category, Category::Pii);
//! ```
//!
//! # How a scan runs
//! A [`Detector`] is built once from a [`DetectorConfig`] and shared (it is `Send + Sync`; put it
//! in an `Arc`). A scan makes one pass of the literal-trigger scanner (`triggers.rs`) over the
//! text: it holds every literal of every rule (provider prefixes of secrets, keywords, injection
//! phrases, internal markers, dictionaries, labels, about 1,100 in all) and checks them only at
//! word starts and at the few punctuation bytes that begin a literal (start positions found 64
//! bytes at a time with SIMD), through a bitmap filter on the first bytes, so its cost does not
//! grow with the number of rules. A second, SIMD-driven pass stops only at digits, `@` and
//! non-ASCII bytes and hands digit runs to the
//! validators (Luhn, IBAN mod 97, SSN area/group/serial, phone plans, national-identifier
//! checksums), `@` to the e-mail parser, long tokens to the entropy and encoded-payload
//! detectors and hidden code points to the hidden-Unicode detector. A literal hit runs its
//! rule's regex anchored at the hit, in a bounded window: the regexes are linear-time
//! (regex-automata), and no rule is ever run over the whole text. Context words (`phone`,
//! `SSN`, `born`...) are looked up lazily, only before a candidate. Custom organization regexes
//! share one multi-pattern regex pass; fingerprints one shingle pass (both only when configured).
//!
//! The compact injection classifier (hashed word n-gram logistic regression, weights in
//! `model/injection.pcic`, trained by `training/train_classifier.py`) runs only on windows
//! around injection cue words, so text without cues costs nothing.

mod classifier;
mod engine;
mod injection;
mod internal;
mod org;
mod pii;
mod rules;
mod secrets;
mod triggers;
mod util;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use classifier::{Classifier, ClassifierError};
pub use org::{CustomPattern, Dictionary, FingerprintSet, Label, OrgRules};
pub use util::{iban_valid, luhn_valid, shannon_entropy};

/// The category of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Personal data.
    Pii,
    /// Credentials and keys.
    Secret,
    /// Internal details: paths, stack traces, internal hosts, SQL errors, labels.
    Internal,
    /// Prompt injection.
    Injection,
}

impl Category {
    /// All categories.
    pub const ALL: [Category; 4] = [
        Category::Pii,
        Category::Secret,
        Category::Internal,
        Category::Injection,
    ];

    /// The lowercase name (`pii`, `secret`, `internal`, `injection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Secret => "secret",
            Category::Internal => "internal",
            Category::Injection => "injection",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "pii" => Ok(Category::Pii),
            "secret" | "secrets" => Ok(Category::Secret),
            "internal" => Ok(Category::Internal),
            "injection" => Ok(Category::Injection),
            _ => Err(Error::Config(format!("unknown category {s:?}"))),
        }
    }
}

/// One finding. It never holds the matched text: take it from the input with `start..end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Detector id, e.g. `pii.email`, `secret.aws_access_key`, `injection.override`.
    pub kind: String,
    /// Category.
    pub category: Category,
    /// Byte offset of the start of the span (in the string value, for JSON input).
    pub start: usize,
    /// Byte offset of the end of the span (exclusive).
    pub end: usize,
    /// Confidence in 0..=1 (two decimals).
    #[serde(serialize_with = "ser_confidence")]
    pub confidence: f32,
    /// For JSON input: the JSON pointer (RFC 6901) of the string value the span is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

fn ser_confidence<S: serde::Serializer>(c: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(Finding::confidence_f64(*c))
}

impl Finding {
    /// A confidence as the f64 with two decimals that JSON output shows (0.6, not 0.6000000238).
    pub fn confidence_f64(c: f32) -> f64 {
        (c as f64 * 100.0).round() / 100.0
    }
}

/// Values and patterns that are never reported (against false positives).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowList {
    /// Exact matched values never reported (e.g. a documented test key).
    pub values: Vec<String>,
    /// Regexes: a finding whose matched text matches one of them in full is dropped.
    pub patterns: Vec<String>,
    /// Detector ids (kinds) turned off, e.g. `pii.person_name`; a trailing `*` matches a prefix.
    pub kinds: Vec<String>,
}

/// The local injection classifier's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Run the classifier (on windows around injection cue words).
    pub enabled: bool,
    /// Probability at or above which a window is reported; `None` takes the model's own.
    pub threshold: Option<f32>,
    /// Load weights from this file instead of the built-in model.
    pub model_path: Option<PathBuf>,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            enabled: true,
            threshold: None,
            model_path: None,
        }
    }
}

/// How a [`Detector`] is built.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Enabled categories (all by default).
    pub categories: Vec<Category>,
    /// Findings under this confidence are dropped.
    pub min_confidence: f32,
    /// Organization rules: custom patterns, dictionaries, labels, fingerprints.
    pub org: OrgRules,
    /// Allow-lists against false positives.
    pub allow: AllowList,
    /// The local injection classifier.
    pub classifier: ClassifierConfig,
    /// Hosts to which links and images are fine (no exfiltration finding); subdomains included.
    pub allowed_hosts: Vec<String>,
    /// Extra internal domain suffixes (e.g. `corp.example.com`), reported as `internal.hostname`.
    pub internal_domains: Vec<String>,
    /// At most this many findings per scanned string (bounded memory on hostile input).
    pub max_findings: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            categories: Category::ALL.to_vec(),
            min_confidence: 0.3,
            org: OrgRules::default(),
            allow: AllowList::default(),
            classifier: ClassifierConfig::default(),
            allowed_hosts: Vec::new(),
            internal_domains: Vec::new(),
            max_findings: 10_000,
        }
    }
}

/// Errors building a detector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pattern (built-in or from the config) did not compile.
    #[error("pattern {id}: {message}")]
    Pattern {
        /// The rule id.
        id: String,
        /// Why.
        message: String,
    },
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// The classifier model could not be loaded.
    #[error("classifier: {0}")]
    Classifier(#[from] ClassifierError),
}

/// The detection engine. Build it once; it is `Send + Sync` and cheap to share in an `Arc`.
pub struct Detector {
    engine: engine::Engine,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.engine.rule_count())
            .finish()
    }
}

impl Detector {
    /// Builds a detector from a config: compiles every rule once.
    pub fn new(config: &DetectorConfig) -> Result<Detector, Error> {
        Ok(Detector {
            engine: engine::Engine::build(config)?,
        })
    }

    /// Scans a string. Findings are sorted by start offset.
    pub fn scan_text(&self, text: &str) -> Vec<Finding> {
        self.engine.scan(text, None)
    }

    /// Scans every string value (and number) of a JSON document; findings carry the JSON
    /// pointer of their value and offsets inside it. Object keys give context: a value under
    /// a key such as `password` or `api_key` is reported as a secret.
    pub fn scan_json(&self, value: &serde_json::Value) -> Vec<Finding> {
        let mut walk = JsonWalk {
            engine: &self.engine,
            ptr: String::new(),
            keys: Vec::new(),
            out: Vec::new(),
        };
        walk.value(value, None, 0);
        walk.out
    }

    /// Every detector id (kind) this detector can report.
    pub fn kinds(&self) -> Vec<String> {
        self.engine.kinds()
    }

    /// How often each literal trigger occurs in a text (for tuning rules).
    #[doc(hidden)]
    pub fn trigger_stats(&self, text: &str) -> Vec<(String, usize)> {
        self.engine.trigger_stats(text)
    }

    #[doc(hidden)]
    pub fn debug_patterns(&self) -> Vec<Vec<u8>> {
        self.engine.patterns()
    }

    #[doc(hidden)]
    pub fn debug_literal_pass(&self, text: &str) -> (usize, usize) {
        self.engine.ac_only(text)
    }

    /// The injection classifier's probability for a text (None when the classifier is off).
    pub fn injection_score(&self, text: &str) -> Option<f32> {
        self.engine.classifier_score(text)
    }
}

/// The state of one [`Detector::scan_json`] walk.
struct JsonWalk<'e, 'v> {
    engine: &'e engine::Engine,
    /// The JSON pointer of the value being scanned.
    ptr: String,
    /// What each distinct object key says about its values, computed once per document: the
    /// records of a tool result repeat the same few keys, and working out a key's context is
    /// a few dozen substring tests.
    keys: Vec<(&'v str, engine::KeyFacts)>,
    out: Vec<Finding>,
}

impl<'v> JsonWalk<'_, 'v> {
    /// Most documents have a few dozen distinct keys; past this many, facts are recomputed
    /// rather than searched for in a long list.
    const KEY_CACHE: usize = 64;

    fn key_facts(&mut self, key: &'v str) -> engine::KeyFacts {
        if let Some((_, f)) = self.keys.iter().find(|(k, _)| *k == key) {
            return *f;
        }
        let f = engine::KeyFacts::of(key);
        if self.keys.len() < Self::KEY_CACHE {
            self.keys.push((key, f));
        }
        f
    }

    fn scan(&mut self, text: &str, key: Option<engine::KeyFacts>) {
        let found = self.engine.scan(text, key);
        if !found.is_empty() {
            let ptr = self.ptr.clone();
            self.out.extend(found.into_iter().map(|mut f| {
                f.pointer = Some(ptr.clone());
                f
            }));
        }
    }

    fn value(&mut self, v: &'v serde_json::Value, key: Option<engine::KeyFacts>, depth: usize) {
        use serde_json::Value;
        use std::fmt::Write as _;
        if depth > 256 {
            return;
        }
        match v {
            Value::String(s) => self.scan(s, key),
            Value::Number(n) => {
                // short numbers (counts, prices, ids under 9 digits) hold no identifier
                let s = n.to_string();
                if s.len() >= 9 {
                    self.scan(&s, key);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = self.ptr.len();
                    let _ = write!(self.ptr, "/{i}");
                    self.value(x, key, depth + 1);
                    self.ptr.truncate(len);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    let len = self.ptr.len();
                    self.ptr.push('/');
                    for ch in k.chars() {
                        match ch {
                            '~' => self.ptr.push_str("~0"),
                            '/' => self.ptr.push_str("~1"),
                            c => self.ptr.push(c),
                        }
                    }
                    let facts = self.key_facts(k);
                    self.value(x, Some(facts), depth + 1);
                    self.ptr.truncate(len);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

#[cfg(test)]
mod api_tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn detector_is_send_sync() {
        assert_send_sync::<Detector>();
    }

    #[test]
    fn category_serde_lowercase() {
        assert_eq!(serde_json::to_string(&Category::Pii).unwrap(), "\"pii\"");
        assert_eq!(
            serde_json::to_string(&Category::Injection).unwrap(),
            "\"injection\""
        );
        let c: Category = serde_json::from_str("\"secret\"").unwrap();
        assert_eq!(c, Category::Secret);
    }

    #[test]
    fn json_pointer_and_key_context() {
        let d = Detector::new(&DetectorConfig::default()).unwrap();
        let v = serde_json::json!({
            "users": [{"mail": "bob@example.com"}],
            "a/b": {"password": "Tr0ub4dor&3xyz"},
        });
        let f = d.scan_json(&v);
        let email = f.iter().find(|x| x.kind == "pii.email").unwrap();
        assert_eq!(email.pointer.as_deref(), Some("/users/0/mail"));
        assert_eq!((email.start, email.end), (0, 15));
        let pw = f.iter().find(|x| x.category == Category::Secret).unwrap();
        assert_eq!(pw.pointer.as_deref(), Some("/a~1b/password"));
    }

    #[test]
    fn categories_can_be_disabled() {
        let cfg = DetectorConfig {
            categories: vec![Category::Secret],
            ..Default::default()
        };
        let d = Detector::new(&cfg).unwrap();
        let f = d.scan_text("jane@example.com ghp_0123456789abcdefghijABCDEFGHIJ012345");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "secret.github_pat");
    }

    #[test]
    fn allow_list_drops_values_and_kinds() {
        let mut cfg = DetectorConfig::default();
        cfg.allow.values.push("jane@example.com".into());
        cfg.allow.kinds.push("secret.*".into());
        let d = Detector::new(&cfg).unwrap();
        let f = d
            .scan_text("jane@example.com bob@example.com ghp_0123456789abcdefghijABCDEFGHIJ012345");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].start, 17);
    }
}
