//! The scan engine: one Aho-Corasick pass over every literal, one byte-class tokenizer pass for
//! digit runs, `@` and long tokens, then anchored, bounded regex checks at the hits.

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};

use crate::classifier::Classifier;
use crate::injection::{self, exfil_url, hidden_char, reads_as_instructions};
use crate::org::{norm_words, shingles};
use crate::pii::{self, CTX_NAME, CTX_SECRET};
use crate::rules::{Check, Spec};
use crate::triggers::Triggers;
use crate::util::{self, ceil_boundary, floor_boundary, is_placeholder, shannon_entropy};
use crate::{Category, DetectorConfig, Error, Finding};

const PII: u8 = 1 << (Category::Pii as u8);
const SECRET: u8 = 1 << (Category::Secret as u8);
const INTERNAL: u8 = 1 << (Category::Internal as u8);
const INJECTION: u8 = 1 << (Category::Injection as u8);

/// Decoded payloads are scanned at most this deep.
const MAX_DEPTH: u8 = 2;
/// Window of context words before a candidate.
const CTX_WINDOW: usize = 48;

struct Rule {
    kind: String,
    cat: Category,
    re: Regex,
    back: usize,
    max_len: usize,
    check: Check,
    prio: u8,
    conf: f32,
    left_bound: bool,
    has_group: bool,
    pre: Option<fn(&[u8], usize) -> bool>,
}

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Rule(u32),
    Cue,
    /// The literal itself is the finding (dictionaries, labels, ROT13 phrases).
    Literal {
        kind: u32,
        cat: Category,
        conf: f32,
        whole_word: bool,
    },
}

struct Custom {
    kind: String,
    cat: Category,
    conf: f32,
}

pub(crate) struct Engine {
    cats: u8,
    min_conf: f32,
    max_findings: usize,
    trig: Triggers<Action>,
    /// Context words per class, looked up lazily in the window before a candidate.
    ctx_ac: Vec<AhoCorasick>,
    rules: Vec<Rule>,
    literal_kinds: Vec<String>,
    custom: Option<(Regex, Vec<Custom>)>,
    fingerprints: Vec<(String, Category, HashSet<u64>)>,
    allow_values: HashSet<String>,
    allow_re: Option<Regex>,
    allow_kinds: Vec<String>,
    allowed_hosts: Vec<String>,
    classifier: Option<(Classifier, f32)>,
}

/// A finding before filtering; `kind` borrows from the engine.
#[derive(Clone, Copy)]
struct Raw<'e> {
    kind: &'e str,
    cat: Category,
    start: usize,
    end: usize,
    conf: f32,
    prio: u8,
}

fn compile(id: &str, re: &str) -> Result<Regex, Error> {
    let re = re
        .replace(r"\b", r"(?-u:\b)")
        .replace(r"(?-u:(?-u:\b))", r"(?-u:\b)");
    Regex::builder()
        .configure(
            Regex::config()
                .nfa_size_limit(Some(20 << 20))
                .hybrid_cache_capacity(2 << 20),
        )
        .build(&re)
        .map_err(|e| Error::Pattern {
            id: id.to_string(),
            message: e.to_string(),
        })
}

impl Engine {
    pub(crate) fn build(cfg: &DetectorConfig) -> Result<Engine, Error> {
        let cats = cfg.categories.iter().fold(0u8, |a, c| a | c.bit());
        let mut tb = Triggers::builder();
        let mut rules = Vec::new();
        let all: Vec<&Spec> = crate::secrets::SPECS
            .iter()
            .chain(crate::internal::SPECS)
            .chain(crate::injection::SPECS)
            .chain(crate::pii::SPECS)
            .collect();
        for s in all {
            if cats & s.cat.bit() == 0 {
                continue;
            }
            let re = compile(s.kind, s.re)?;
            let has_group = re.group_info().group_len(regex_automata::PatternID::ZERO) > 1;
            let id = rules.len() as u32;
            rules.push(Rule {
                kind: s.kind.to_string(),
                cat: s.cat,
                re,
                back: s.back,
                max_len: s.max_len,
                check: s.check,
                prio: s.prio,
                conf: s.conf,
                left_bound: s.left_bound,
                has_group,
                pre: s.pre,
            });
            let trig: Vec<&str> = if s.triggers == ["@names"] {
                pii::FIRST_NAMES.to_vec()
            } else {
                s.triggers.to_vec()
            };
            for t in trig {
                tb.add(t.as_bytes(), s.case_variants, Action::Rule(id));
            }
        }
        // internal domains from the config
        for d in &cfg.internal_domains {
            let d = d.trim_start_matches('.');
            let re = format!(
                r"(?i)(?-u:\b)(?:[a-z0-9](?:[a-z0-9-]{{0,62}}\.){{0,8}})?{}(?-u:\b)",
                regex_escape(d)
            );
            let id = rules.len() as u32;
            rules.push(Rule {
                kind: "internal.hostname".into(),
                cat: Category::Internal,
                re: compile("internal_domains", &re)?,
                back: 200,
                max_len: 80,
                check: Check::None,
                prio: 3,
                conf: 0.85,
                left_bound: false,
                has_group: false,
                pre: None,
            });
            tb.add(d.as_bytes(), true, Action::Rule(id));
        }
        // context words: one small case-insensitive automaton per class
        let mut ctx_ac = Vec::new();
        for (i, (class, words)) in pii::CONTEXT.iter().enumerate() {
            debug_assert_eq!(*class as usize, i);
            ctx_ac.push(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(*words)
                    .map_err(|e| Error::Config(format!("context automaton: {e}")))?,
            );
        }
        // literal findings
        let mut literal_kinds: Vec<String> = Vec::new();
        if cats & INJECTION != 0 {
            for c in injection::CUES {
                tb.add(c.as_bytes(), true, Action::Cue);
            }
            literal_kinds.push("injection.encoded_payload".into());
            let k = (literal_kinds.len() - 1) as u32;
            for p in injection::ROT13_PHRASES {
                tb.add(
                    util::rot13(p).as_bytes(),
                    true,
                    Action::Literal {
                        kind: k,
                        cat: Category::Injection,
                        conf: 0.85,
                        whole_word: true,
                    },
                );
            }
        }
        for d in &cfg.org.dictionaries {
            if d.id.is_empty() {
                return Err(Error::Config("dictionary without id".into()));
            }
            literal_kinds.push(format!("org.{}", d.id));
            let k = (literal_kinds.len() - 1) as u32;
            for t in &d.terms {
                tb.add(
                    t.as_bytes(),
                    d.case_insensitive,
                    Action::Literal {
                        kind: k,
                        cat: d.category,
                        conf: d.confidence,
                        whole_word: d.whole_word,
                    },
                );
            }
        }
        for l in &cfg.org.labels {
            literal_kinds.push(format!("org.label.{}", l.id));
            let k = (literal_kinds.len() - 1) as u32;
            for v in [l.text.clone(), l.text.to_uppercase()] {
                tb.add(
                    v.as_bytes(),
                    false,
                    Action::Literal {
                        kind: k,
                        cat: Category::Internal,
                        conf: l.confidence,
                        whole_word: true,
                    },
                );
            }
        }
        let trig = tb.build();
        // custom patterns: one multi-pattern regex
        let custom = if cfg.org.patterns.is_empty() {
            None
        } else {
            let mut v = Vec::new();
            for p in &cfg.org.patterns {
                compile(&p.id, &p.pattern)?; // per-pattern error message
                v.push(p.pattern.clone());
            }
            let re = Regex::new_many(&v).map_err(|e| Error::Pattern {
                id: "org.patterns".into(),
                message: e.to_string(),
            })?;
            let info = cfg
                .org
                .patterns
                .iter()
                .map(|p| Custom {
                    kind: format!("org.{}", p.id),
                    cat: p.category,
                    conf: p.confidence,
                })
                .collect();
            Some((re, info))
        };
        let fingerprints = cfg
            .org
            .fingerprints
            .iter()
            .map(|f| {
                (
                    format!("org.fingerprint.{}", f.id),
                    f.category,
                    f.hashes.iter().copied().collect(),
                )
            })
            .collect();
        let allow_re = if cfg.allow.patterns.is_empty() {
            None
        } else {
            let v: Vec<String> = cfg
                .allow
                .patterns
                .iter()
                .map(|p| format!("^(?:{p})$"))
                .collect();
            Some(Regex::new_many(&v).map_err(|e| Error::Pattern {
                id: "allow.patterns".into(),
                message: e.to_string(),
            })?)
        };
        let classifier = if cfg.classifier.enabled && cats & INJECTION != 0 {
            let c = match &cfg.classifier.model_path {
                Some(p) => Classifier::from_path(p)?,
                None => Classifier::builtin(),
            };
            let t = cfg.classifier.threshold.unwrap_or(c.threshold());
            Some((c, t))
        } else {
            None
        };
        Ok(Engine {
            cats,
            min_conf: cfg.min_confidence,
            max_findings: cfg.max_findings.max(1),
            trig,
            ctx_ac,
            rules,
            literal_kinds,
            custom,
            fingerprints,
            allow_values: cfg.allow.values.iter().cloned().collect(),
            allow_re,
            allow_kinds: cfg.allow.kinds.clone(),
            allowed_hosts: cfg.allowed_hosts.clone(),
            classifier,
        })
    }

    /// Literal-trigger hit counts (for tuning).
    pub(crate) fn trigger_stats(&self, text: &str) -> Vec<(String, usize)> {
        let mut c: HashMap<u32, usize> = HashMap::new();
        self.trig
            .scan(text.as_bytes(), |t, _| *c.entry(t).or_default() += 1);
        let mut v: Vec<(String, usize)> = c
            .into_iter()
            .map(|(p, k)| {
                (
                    String::from_utf8_lossy(&self.trig.trigs[p as usize].lit).into_owned(),
                    k,
                )
            })
            .collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        v
    }

    pub(crate) fn patterns(&self) -> Vec<Vec<u8>> {
        self.trig.trigs.iter().map(|t| t.lit.clone()).collect()
    }

    pub(crate) fn ac_only(&self, text: &str) -> (usize, usize) {
        let mut k = 0;
        self.trig.scan(text.as_bytes(), |_, _| k += 1);
        (k, self.trig.len())
    }

    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub(crate) fn kinds(&self) -> Vec<String> {
        let mut v: Vec<String> = self.rules.iter().map(|r| r.kind.clone()).collect();
        v.extend(self.literal_kinds.iter().cloned());
        if let Some((_, c)) = &self.custom {
            v.extend(c.iter().map(|c| c.kind.clone()));
        }
        v.extend(self.fingerprints.iter().map(|f| f.0.clone()));
        for (cat, k) in [
            (PII, "pii.email"),
            (PII, "pii.phone"),
            (PII, "pii.credit_card"),
            (PII, "pii.iban"),
            (PII, "pii.us_ssn"),
            (PII, "pii.ip_address"),
            (PII, "pii.date_of_birth"),
            (PII, "pii.ca_sin"),
            (PII, "pii.nl_bsn"),
            (PII, "pii.in_aadhaar"),
            (PII, "pii.uk_nhs_number"),
            (PII, "pii.es_dni"),
            (PII, "pii.person_name"),
            (INTERNAL, "internal.private_address"),
            (SECRET, "secret.high_entropy"),
            (SECRET, "secret.json_value"),
            (INJECTION, "injection.encoded_payload"),
            (INJECTION, "injection.classifier"),
            (INJECTION, "injection.homoglyph"),
            (INJECTION, "injection.hidden_unicode.tag"),
            (INJECTION, "injection.hidden_unicode.zero_width"),
            (INJECTION, "injection.hidden_unicode.bidi"),
            (INJECTION, "injection.hidden_unicode.variation_selector"),
        ] {
            if self.cats & cat != 0 {
                v.push(k.to_string());
            }
        }
        v.sort();
        v.dedup();
        v
    }

    pub(crate) fn classifier_score(&self, text: &str) -> Option<f32> {
        self.classifier.as_ref().map(|(c, _)| c.score(text))
    }

    /// Scans a text; `key` is the JSON object key the text is the value of, if any.
    pub(crate) fn scan(&self, text: &str, key: Option<KeyFacts>) -> Vec<Finding> {
        if text.is_empty() {
            return Vec::new();
        }
        let raw = self.scan_raw(text, key, self.cats, 0);
        if raw.is_empty() {
            return Vec::new();
        }
        self.finish(text, raw)
    }

    fn scan_raw<'e>(
        &'e self,
        text: &str,
        key: Option<KeyFacts>,
        cats: u8,
        depth: u8,
    ) -> Vec<Raw<'e>> {
        let b = text.as_bytes();
        let n = b.len();
        let mut out: Vec<Raw<'e>> = Vec::new();
        let mut cues: Vec<usize> = Vec::new();
        let mut hits: Vec<(u32, usize)> = Vec::new();
        let key_ctx = key.map_or(0, |k| k.ctx);

        // 1. one pass of the literal automaton
        self.trig.scan(b, |t, s| {
            let tr = &self.trig.trigs[t as usize];
            let e = s + tr.lit.len();
            let prev_alnum = s > 0 && b[s - 1].is_ascii_alphanumeric();
            for &a in &tr.actions {
                match a {
                    Action::Rule(r) => {
                        let rule = &self.rules[r as usize];
                        if cats & rule.cat.bit() != 0
                            && !(rule.left_bound && prev_alnum)
                            && rule.pre.is_none_or(|f| f(b, s))
                        {
                            hits.push((r, s));
                        }
                    }
                    Action::Cue => cues.push(s),
                    Action::Literal {
                        kind,
                        cat,
                        conf,
                        whole_word,
                    } => {
                        if cats & cat.bit() == 0 {
                            continue;
                        }
                        if whole_word && (prev_alnum || (e < n && b[e].is_ascii_alphanumeric())) {
                            continue;
                        }
                        out.push(Raw {
                            kind: &self.literal_kinds[kind as usize],
                            cat,
                            start: s,
                            end: e,
                            conf,
                            prio: 3,
                        });
                    }
                }
            }
        });
        let has_ctx = |class: u16, pos: usize| -> bool {
            if key_ctx & (1 << class) != 0 {
                return true;
            }
            let lo = floor_boundary(text, pos.saturating_sub(CTX_WINDOW));
            let pos = floor_boundary(text, pos);
            self.ctx_ac[class as usize]
                .find_iter(&b[lo..pos])
                .any(|m| m.start() + lo == 0 || !b[m.start() + lo - 1].is_ascii_alphanumeric())
        };

        // 2. the tokenizer pass: digit runs, e-mail, long tokens
        if cats & (PII | SECRET | INTERNAL | INJECTION) != 0 {
            self.token_pass(text, cats, depth, &has_ctx, &mut out);
        }

        // 3. rules at their literal hits
        hits.sort_unstable();
        let mut last: Option<(u32, usize)> = None;
        // each rule may scan at most this many window bytes per text: a flood of one trigger
        // (`](http` repeated a million times) cannot make the scan quadratic, and only mutes
        // that rule
        let budget = 16 * n + (256 << 10);
        let mut work = (u32::MAX, 0usize);
        for &(r, p) in &hits {
            if let Some((lr, le)) = last
                && lr == r
                && p < le
            {
                continue;
            }
            if work.0 != r {
                work = (r, 0);
            }
            let rule = &self.rules[r as usize];
            work.1 += rule.back + rule.max_len.min(n - p);
            if work.1 > budget {
                continue;
            }
            if let Some(f) = self.run_rule(text, r, p, &has_ctx) {
                last = Some((r, f.end.max(p + 1)));
                out.push(f);
            }
        }

        // 4. organization regexes: one multi-pattern pass
        if let Some((re, info)) = &self.custom {
            for m in re.find_iter(text) {
                let c = &info[m.pattern().as_usize()];
                if cats & c.cat.bit() != 0 {
                    out.push(Raw {
                        kind: &c.kind,
                        cat: c.cat,
                        start: m.start(),
                        end: m.end(),
                        conf: c.conf,
                        prio: 3,
                    });
                }
            }
        }

        // 5. exact-data fingerprints
        if !self.fingerprints.is_empty() {
            let words = norm_words(text);
            let sh = shingles(text, &words);
            for (kind, cat, set) in &self.fingerprints {
                if cats & cat.bit() == 0 {
                    continue;
                }
                let mut run: Option<(usize, usize, usize)> = None;
                for &(h, s, e) in &sh {
                    if set.contains(&h) {
                        run = Some(match run {
                            Some((rs, re, k)) if s <= re => (rs, e.max(re), k + 1),
                            Some((rs, re, k)) => {
                                out.push(Raw {
                                    kind,
                                    cat: *cat,
                                    start: rs,
                                    end: re,
                                    conf: if k > 1 { 0.95 } else { 0.8 },
                                    prio: 3,
                                });
                                (s, e, 1)
                            }
                            None => (s, e, 1),
                        });
                    }
                }
                if let Some((rs, re, k)) = run {
                    out.push(Raw {
                        kind,
                        cat: *cat,
                        start: rs,
                        end: re,
                        conf: if k > 1 { 0.95 } else { 0.8 },
                        prio: 3,
                    });
                }
            }
        }

        // 6. JSON key context: a value under a secret-named key
        if let Some(k) = key {
            if cats & SECRET != 0 && k.secret && value_like_secret(text) {
                out.push(Raw {
                    kind: "secret.json_value",
                    cat: Category::Secret,
                    start: 0,
                    end: n,
                    conf: 0.75,
                    prio: 1,
                });
            }
            if cats & PII != 0 && key_ctx & (1 << CTX_NAME) != 0 && looks_like_name_value(text) {
                out.push(Raw {
                    kind: "pii.person_name",
                    cat: Category::Pii,
                    start: 0,
                    end: n,
                    conf: 0.75,
                    prio: 2,
                });
            }
        }

        // 7. the classifier, on windows around cue words
        if depth == 0
            && cats & INJECTION != 0
            && !cues.is_empty()
            && let Some((c, thr)) = &self.classifier
        {
            cues.sort_unstable();
            const WHOLE: usize = 2048;
            const HALF: usize = 512;
            let mut covered = 0usize;
            let mut windows = 0;
            for &p in &cues {
                if p < covered {
                    continue;
                }
                let (s, e) = if n <= WHOLE {
                    (0, n)
                } else {
                    (
                        floor_boundary(text, p.saturating_sub(HALF)),
                        ceil_boundary(text, p + HALF),
                    )
                };
                covered = e;
                windows += 1;
                let prob = c.score(&text[s..e]);
                if prob >= *thr {
                    out.push(Raw {
                        kind: "injection.classifier",
                        cat: Category::Injection,
                        start: s,
                        end: e,
                        conf: prob.min(0.99),
                        prio: 0,
                    });
                }
                if windows >= 64 || e >= n {
                    break;
                }
            }
        }
        out
    }

    fn run_rule<'e>(
        &'e self,
        text: &str,
        r: u32,
        p: usize,
        has_ctx: &dyn Fn(u16, usize) -> bool,
    ) -> Option<Raw<'e>> {
        let rule = &self.rules[r as usize];
        let b = text.as_bytes();
        let hi = ceil_boundary(text, p.saturating_add(rule.max_len).min(b.len()));
        let mut slots = [None::<NonMaxUsize>; 4];
        let (ms, me, gs, ge);
        if rule.back == 0 {
            let input = Input::new(b).range(p..hi).anchored(Anchored::Yes);
            rule.re.search_slots(&input, &mut slots)?;
        } else {
            let mut lo = floor_boundary(text, p.saturating_sub(rule.back));
            loop {
                let input = Input::new(b).range(lo..hi);
                rule.re.search_slots(&input, &mut slots)?;
                let (s, e) = (slots[0]?.get(), slots[1]?.get());
                if s > p {
                    return None;
                }
                if e > p {
                    break;
                }
                lo = if e > s { e } else { ceil_boundary(text, s + 1) };
                if lo >= hi {
                    return None;
                }
            }
        }
        ms = slots[0]?.get();
        me = slots[1]?.get();
        if rule.has_group && slots[2].is_some() {
            gs = slots[2]?.get();
            ge = slots[3]?.get();
        } else {
            gs = ms;
            ge = me;
        }
        if ge <= gs {
            return None;
        }
        let val = &text[gs..ge];
        let mut conf = rule.conf;
        match rule.check {
            Check::None => {}
            Check::NotPlaceholder => {
                if is_placeholder(val) {
                    return None;
                }
            }
            Check::Generic => {
                if !generic_ok(&text[ms..gs], val) {
                    return None;
                }
                if val.len() >= 16 && shannon_entropy(val.as_bytes()) >= 3.5 {
                    conf = 0.85;
                }
            }
            Check::Entropy(min) => {
                if shannon_entropy(val.as_bytes()) < min || is_placeholder(val) {
                    return None;
                }
            }
            Check::ExfilUrl { image } => {
                conf = exfil_url(val, image, &self.allowed_hosts)?;
            }
            Check::HiddenInstr => {
                if !reads_as_instructions(val) {
                    return None;
                }
            }
            Check::Name => {
                let last = val.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
                let first = val.split(|c: char| c.is_whitespace()).next().unwrap_or("");
                if pii::NOT_SURNAMES.contains(&last) || pii::NOT_SURNAMES.contains(&first) {
                    return None;
                }
                if last.len() < 2 || last.bytes().skip(1).all(|c| c.is_ascii_uppercase()) {
                    return None;
                }
                if has_ctx(CTX_NAME, gs) {
                    conf = (conf + 0.25).min(0.9);
                }
            }
            Check::Path => {
                if ms > 0 && matches!(b[ms - 1], b':' | b'/' | b'.' | b'~' | b'-' | b'_' | b'%') {
                    return None;
                }
                if ge - gs < 8 {
                    return None;
                }
            }
        }
        // a quoted mention ('ignore previous instructions' in a text about attacks) is weaker
        if rule.cat == Category::Injection && quoted(b, ms, me) {
            conf *= 0.55;
        }
        Some(Raw {
            kind: &rule.kind,
            cat: rule.cat,
            start: gs,
            end: ge,
            conf,
            prio: rule.prio,
        })
    }

    fn token_pass<'e>(
        &'e self,
        text: &str,
        cats: u8,
        depth: u8,
        has_ctx: &dyn Fn(u16, usize) -> bool,
        out: &mut Vec<Raw<'e>>,
    ) {
        let b = text.as_bytes();
        let n = b.len();
        let pii_on = cats & PII != 0;
        let num_on = cats & (PII | INTERNAL) != 0;
        let sec_on = cats & SECRET != 0;
        let inj_on = cats & INJECTION != 0 && depth < MAX_DEPTH;
        let mut floor;
        let mut i = 0;
        // words are only inspected around a digit or an `@`: every numeric identifier, e-mail,
        // high-entropy token (two digits at least) and encoded payload has one
        while i < n {
            floor = i;
            i = next_interesting(b, i, inj_on);
            if i >= n {
                break;
            }
            if b[i] >= 0x80 {
                // hidden code points (tag characters, zero-width, bidi controls)
                if !text.is_char_boundary(i) {
                    i += 1;
                    continue;
                }
                match hidden_run(text, i) {
                    Some((end, r)) => {
                        if let Some(r) = r {
                            out.push(r);
                        }
                        i = end;
                    }
                    None => {
                        let ch = text[i..].chars().next().unwrap_or(' ');
                        let l = ch.len_utf8();
                        // Cyrillic or Greek letters glued to Latin ones: homoglyph obfuscation
                        if matches!(ch as u32, 0x370..=0x4FF) && ch.is_alphabetic() {
                            let prev_latin = i > 0 && b[i - 1].is_ascii_alphabetic();
                            let next_latin = i + l < n && b[i + l].is_ascii_alphabetic();
                            if prev_latin || next_latin {
                                out.push(Raw {
                                    kind: "injection.homoglyph",
                                    cat: Category::Injection,
                                    start: i,
                                    end: i + l,
                                    conf: 0.6,
                                    prio: 3,
                                });
                            }
                        }
                        i += l;
                    }
                }
                continue;
            }
            let c = CLASS[b[i] as usize];
            if c == AT {
                if pii_on && let Some((s, e)) = pii::email_at(b, i) {
                    out.push(Raw {
                        kind: "pii.email",
                        cat: Category::Pii,
                        start: s,
                        end: e,
                        conf: 0.95,
                        prio: 3,
                    });
                    i = e;
                    continue;
                }
                i += 1;
                continue;
            }
            // expand to the word around the digit (not before the last word handled)
            let ws = word_start(b, floor, i);
            i = word_end(b, i);
            let we = i;
            let mut fl = 0u8;
            for &x in &b[ws..we] {
                fl |= CLASS[x as usize];
            }
            if fl & DIGIT != 0 && num_on {
                let w = &b[ws..we];
                if pii_on
                    && w[0].is_ascii_digit()
                    && w.len() <= 5
                    && ws >= 4
                    && b[ws - 1] == b' '
                    && let Some((s, e)) = pii::de_address(text, ws)
                {
                    out.push(Raw {
                        kind: "pii.postal_address",
                        cat: Category::Pii,
                        start: s,
                        end: e,
                        conf: 0.75,
                        prio: 3,
                    });
                    i = i.max(e);
                    continue;
                }
                if fl & (LOWER | UPPER) != 0 {
                    // letters and digits: IBAN, DNI/NIE, IPv6 only
                    if pii_on
                        && w.len() >= 4
                        && w[0].is_ascii_uppercase()
                        && w[1].is_ascii_uppercase()
                        && w[2].is_ascii_digit()
                        && let Some(e) = pii::iban_at(b, ws)
                    {
                        out.push(Raw {
                            kind: "pii.iban",
                            cat: Category::Pii,
                            start: ws,
                            end: e,
                            conf: 0.95,
                            prio: 3,
                        });
                        i = i.max(e);
                        continue;
                    }
                    if pii_on && w.len() == 9 && pii::es_dni(w) {
                        let conf = if has_ctx(pii::CTX_DNI, ws) { 0.9 } else { 0.7 };
                        out.push(Raw {
                            kind: "pii.es_dni",
                            cat: Category::Pii,
                            start: ws,
                            end: we,
                            conf,
                            prio: 3,
                        });
                        continue;
                    }
                    if we < n
                        && b[we] == b':'
                        && w.len() <= 4
                        && w.iter().all(|c| c.is_ascii_hexdigit())
                        && let Some((e, private)) = pii::ipv6_at(text, ws)
                    {
                        push_ip(out, ws, e, private, cats);
                        i = i.max(e);
                        continue;
                    }
                } else if inj_on && w.len() == 8 && w.iter().all(|c| *c == b'0' || *c == b'1') {
                    // space-separated 8-bit groups: binary-encoded text
                    let mut e = we;
                    let mut bytes = vec![bin8(w)];
                    while e + 9 <= n
                        && b[e] == b' '
                        && b[e + 1..e + 9].iter().all(|c| *c == b'0' || *c == b'1')
                        && (e + 9 == n || !b[e + 9].is_ascii_digit())
                    {
                        bytes.push(bin8(&b[e + 1..e + 9]));
                        e += 9;
                    }
                    if bytes.len() >= 6
                        && util::printable_share(&bytes) >= 0.9
                        && let Some(conf) = self.decoded_injection(&bytes, depth)
                    {
                        out.push(Raw {
                            kind: "injection.encoded_payload",
                            cat: Category::Injection,
                            start: ws,
                            end: e,
                            conf,
                            prio: 3,
                        });
                    }
                    i = i.max(e);
                    continue;
                } else if let Some(d0) = w.iter().position(|c| c.is_ascii_digit()) {
                    let s = ws + d0;
                    if we < n
                        && b[we] == b':'
                        && d0 == 0
                        && w.len() <= 4
                        && let Some((e, private)) = pii::ipv6_at(text, ws)
                    {
                        push_ip(out, ws, e, private, cats);
                        i = i.max(e);
                        continue;
                    }
                    let (end, hit) = pii::numeric(b, s, has_ctx);
                    if let Some(h) = hit
                        && cats & h.cat.bit() != 0
                    {
                        out.push(Raw {
                            kind: h.kind,
                            cat: h.cat,
                            start: h.start,
                            end: h.end,
                            conf: h.conf,
                            prio: 3,
                        });
                    }
                    i = i.max(end);
                    continue;
                }
            }
            if we - ws >= 20 && (sec_on || inj_on) {
                let mut e = we;
                while e > ws && matches!(b[e - 1], b'.' | b'-' | b',') {
                    e -= 1;
                }
                let w = &b[ws..e];
                if inj_on && w.len() >= 16 && self.encoded_injection(w, depth) {
                    out.push(Raw {
                        kind: "injection.encoded_payload",
                        cat: Category::Injection,
                        start: ws,
                        end: e,
                        conf: 0.9,
                        prio: 3,
                    });
                }
                if sec_on && w.len() <= 1024 && !(ws >= 7 && &b[ws - 7..ws] == b"base64,") {
                    entropy_tokens(text, ws, e, has_ctx, out);
                }
            }
        }
    }

    /// Does a base64 or hex token decode to text that holds injection?
    fn encoded_injection(&self, w: &[u8], depth: u8) -> bool {
        let w = &w[..w.len().min(65536)];
        let mut buf = Vec::new();
        let hex =
            w.len() >= 24 && w.len().is_multiple_of(2) && w.iter().all(|c| c.is_ascii_hexdigit());
        let ok = if hex {
            util::hex_decode(w, &mut buf)
        } else {
            let b64 = w
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=_-".contains(c));
            let mixed = w.iter().any(|c| c.is_ascii_uppercase())
                && w.iter().any(|c| c.is_ascii_lowercase());
            b64 && mixed && util::base64_decode(w, &mut buf)
        };
        if !ok || buf.len() < 10 || util::printable_share(&buf) < 0.9 {
            return false;
        }
        self.decoded_injection(&buf, depth).is_some()
    }

    /// Confidence that decoded bytes hold instructions for the model.
    fn decoded_injection(&self, buf: &[u8], depth: u8) -> Option<f32> {
        let s = String::from_utf8_lossy(buf);
        let raw = self.scan_raw(&s, None, INJECTION, depth + 1);
        if raw
            .iter()
            .any(|r| r.conf >= 0.6 && r.kind != "injection.exfil_link")
        {
            return Some(0.9);
        }
        let l = s.to_ascii_lowercase();
        const IMPERATIVE: &[&str] = &[
            "ignore",
            "disregard",
            "forget",
            "instruction",
            "reply with",
            "respond with",
            "reply only",
            "output ",
            "reveal",
            "system prompt",
            "you are now",
            "you must",
            "send ",
            "forward ",
            "execute",
            "call ",
            "delete ",
        ];
        IMPERATIVE.iter().any(|w| l.contains(w)).then_some(0.7)
    }

    fn finish(&self, text: &str, mut raw: Vec<Raw<'_>>) -> Vec<Finding> {
        raw.retain(|r| {
            r.conf >= self.min_conf
                && r.end > r.start
                && r.end <= text.len()
                && !self.allow_kinds.iter().any(|k| match k.strip_suffix('*') {
                    Some(p) => r.kind.starts_with(p),
                    None => r.kind == k,
                })
        });
        if !self.allow_values.is_empty() || self.allow_re.is_some() {
            raw.retain(|r| {
                let v = &text[r.start..r.end];
                !self.allow_values.contains(v)
                    && !self.allow_re.as_ref().is_some_and(|re| re.is_match(v))
            });
        }
        // known documentation examples
        raw.retain(|r| r.cat != Category::Secret || !is_doc_example(&text[r.start..r.end]));
        // overlaps: within a category keep the better finding (injection: within a kind)
        raw.sort_unstable_by(|a, b| {
            a.cat
                .cmp(&b.cat)
                .then_with(|| {
                    if a.cat == Category::Injection {
                        a.kind.cmp(b.kind)
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .then_with(|| a.start.cmp(&b.start))
                .then_with(|| b.end.cmp(&a.end))
                .then_with(|| b.prio.cmp(&a.prio))
        });
        let mut kept: Vec<Raw<'_>> = Vec::with_capacity(raw.len());
        for r in raw {
            if let Some(last) = kept.last_mut() {
                let same_group =
                    last.cat == r.cat && (r.cat != Category::Injection || last.kind == r.kind);
                if same_group && r.start < last.end {
                    let better = (r.prio, r.conf, r.end - r.start)
                        > (last.prio, last.conf, last.end - last.start);
                    if better {
                        *last = r;
                    }
                    continue;
                }
            }
            kept.push(r);
        }
        kept.sort_unstable_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then_with(|| a.end.cmp(&b.end))
                .then_with(|| a.kind.cmp(b.kind))
        });
        kept.truncate(self.max_findings);
        kept.into_iter()
            .map(|r| Finding {
                kind: r.kind.to_string(),
                category: r.cat,
                start: r.start,
                end: r.end,
                confidence: (r.conf * 100.0).round() / 100.0,
                pointer: None,
            })
            .collect()
    }
}

fn bin8(w: &[u8]) -> u8 {
    w.iter().fold(0u8, |a, c| (a << 1) | (c - b'0'))
}

/// Is `s..e` inside quotes (ASCII or typographic)?
fn quoted(b: &[u8], s: usize, e: usize) -> bool {
    const LDQ: [u8; 3] = [0xE2, 0x80, 0x9C];
    const LSQ: [u8; 3] = [0xE2, 0x80, 0x98];
    const RDQ: [u8; 3] = [0xE2, 0x80, 0x9D];
    const RSQ: [u8; 3] = [0xE2, 0x80, 0x99];
    let open = (s >= 1 && matches!(b[s - 1], b'\'' | b'"' | b'`'))
        || (s >= 3 && (b[s - 3..s] == LDQ || b[s - 3..s] == LSQ));
    if !open {
        return false;
    }
    let tail = &b[e..b.len().min(e + 6)];
    tail.iter().any(|c| matches!(c, b'\'' | b'"' | b'`'))
        || tail.windows(3).any(|w| w == RDQ || w == RSQ)
}

fn push_ip(out: &mut Vec<Raw<'_>>, s: usize, e: usize, private: bool, cats: u8) {
    if private {
        if cats & INTERNAL != 0 {
            out.push(Raw {
                kind: "internal.private_address",
                cat: Category::Internal,
                start: s,
                end: e,
                conf: 0.8,
                prio: 3,
            });
        }
    } else if cats & PII != 0 {
        out.push(Raw {
            kind: "pii.ip_address",
            cat: Category::Pii,
            start: s,
            end: e,
            conf: 0.85,
            prio: 3,
        });
    }
}

/// The first index at or after `i` holding an ASCII digit, `@` or (if `high`) a non-ASCII
/// byte (`b.len()` if none), many bytes at a time.
#[inline]
fn next_interesting(b: &[u8], i: usize, high: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        next_interesting_sse2(b, i, high)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        next_interesting_swar(b, i, high)
    }
}

/// [`next_interesting`] 16 bytes at a time with SSE2 (part of every x86-64 CPU), then the SWAR
/// loop for the tail.
#[cfg(target_arch = "x86_64")]
#[inline]
fn next_interesting_sse2(b: &[u8], mut i: usize, high: bool) -> usize {
    use std::arch::x86_64::*;
    let hm: i32 = if high { 0xffff } else { 0 };
    // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline features), and every
    // load reads bytes i..i+16, which are in bounds; loadu needs no alignment.
    unsafe {
        // digits: byte + (0x80 - '0') below -128 + 10, as signed bytes
        let off = _mm_set1_epi8((0x80u8 - b'0') as i8);
        let lim = _mm_set1_epi8((0x80u8 + 10) as i8);
        let at = _mm_set1_epi8(b'@' as i8);
        while i + 16 <= b.len() {
            let x = _mm_loadu_si128(b.as_ptr().add(i).cast());
            let digit = _mm_cmplt_epi8(_mm_add_epi8(x, off), lim);
            let m = _mm_movemask_epi8(_mm_or_si128(digit, _mm_cmpeq_epi8(x, at)))
                | (_mm_movemask_epi8(x) & hm);
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    next_interesting_swar(b, i, high)
}

/// [`next_interesting`] 8 bytes at a time in a `u64`.
#[inline]
fn next_interesting_swar(b: &[u8], mut i: usize, high: bool) -> usize {
    let hm: u64 = if high { 0x8080_8080_8080_8080 } else { 0 };
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let d = x ^ (LO * 0x30); // digits become 0..9
        let has_digit = d.wrapping_sub(LO * 10) & !d & HI;
        let a = x ^ (LO * 0x40); // '@' becomes 0
        let has_at = a.wrapping_sub(LO) & !a & HI;
        let m = has_digit | has_at | (x & hm);
        if m != 0 {
            // the lowest flagged byte is exact (borrows only run upwards)
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'@' || (high && b[i] >= 0x80)) {
        i += 1;
    }
    i
}

/// Word bytes of the tokenizer: ASCII letters, digits and `+/=_-.` (`CLASS` non-zero, `@`
/// excepted), as a mask of 16 bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn word_mask_sse2(b: &[u8], at: usize) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86-64 CPU; the callers pass `at + 16 <= b.len()`, so the
    // load is in bounds (checked below as well); loadu needs no alignment.
    assert!(at + 16 <= b.len());
    unsafe {
        let x = _mm_loadu_si128(b.as_ptr().add(at).cast());
        // a byte is in [lo, lo + k) when byte + (0x80 - lo) < -128 + k, as signed bytes
        let range = |lo: u8, k: u8| {
            let t = _mm_add_epi8(x, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
            _mm_cmplt_epi8(t, _mm_set1_epi8((0x80u8 + k) as i8))
        };
        let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
        // `-./0123456789` are one range
        let m = _mm_or_si128(
            _mm_or_si128(range(b'a', 26), range(b'A', 26)),
            _mm_or_si128(
                range(b'-', 13),
                _mm_or_si128(eq(b'+'), _mm_or_si128(eq(b'='), eq(b'_'))),
            ),
        );
        _mm_movemask_epi8(m) as u32
    }
}

#[inline(always)]
fn word_byte(c: u8) -> bool {
    CLASS[c as usize] != 0 && c != b'@'
}

/// The start of the run of word bytes that ends at `i`, not before `floor`.
#[inline]
fn word_start(b: &[u8], floor: usize, mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    while i >= floor + 16 {
        // 16 bytes at a time backwards: long words (URLs, paths) are walked to their start
        let other = !word_mask_sse2(b, i - 16) & 0xffff;
        if other != 0 {
            return i - 16 + (32 - other.leading_zeros()) as usize;
        }
        i -= 16;
    }
    while i > floor && word_byte(b[i - 1]) {
        i -= 1;
    }
    i
}

/// The end of the run of word bytes that starts at `i`.
#[inline]
fn word_end(b: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= b.len() {
        let other = !word_mask_sse2(b, i) & 0xffff;
        if other != 0 {
            return i + other.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i < b.len() && word_byte(b[i]) {
        i += 1;
    }
    i
}

const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const SYM: u8 = 8;
const AT: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_lowercase() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'@' {
            AT
        } else if matches!(c, b'+' | b'/' | b'=' | b'_' | b'-' | b'.') {
            SYM
        } else {
            0
        };
        i += 1;
    }
    t
};

/// High-entropy tokens (unknown secrets) inside the word `ws..we`.
fn entropy_tokens<'e>(
    text: &str,
    ws: usize,
    we: usize,
    has_ctx: &dyn Fn(u16, usize) -> bool,
    out: &mut Vec<Raw<'e>>,
) {
    let b = text.as_bytes();
    let w = &b[ws..we];
    let split = w.windows(2).any(|x| x == b"//") || w[0] == b'/' || w.contains(&b'.');
    let mut push = |s: usize, e: usize| {
        let t = &b[s..e];
        if t.len() < 20 {
            return;
        }
        let (mut lo, mut up, mut di) = (0usize, 0usize, 0usize);
        for &c in t {
            lo += c.is_ascii_lowercase() as usize;
            up += c.is_ascii_uppercase() as usize;
            di += c.is_ascii_digit() as usize;
        }
        let hex = t.iter().all(|c| c.is_ascii_hexdigit()) && (lo == 0 || up == 0);
        // the tests that need no context lookup first: most long words (URLs, paths, log
        // fields) fail them, and every test only rejects, so the order does not change results
        if hex {
            if t.len() < 32 || di == 0 {
                return;
            }
        } else if lo < 2 || up < 2 || di < 2 || di * 10 > t.len() * 8 {
            return;
        }
        let lw = &b[ws..(ws + 8).min(we)];
        if [
            &b"sha1-"[..],
            b"sha256-",
            b"sha384-",
            b"sha512-",
            b"md5-",
            b"sha256:",
            b"sha512:",
        ]
        .iter()
        .any(|p| lw.len() >= p.len() && lw[..p.len()].eq_ignore_ascii_case(p))
        {
            return;
        }
        let ctx = has_ctx(CTX_SECRET, s);
        if !ctx && has_ctx(pii::CTX_NEG, ws) {
            return;
        }
        #[allow(clippy::needless_late_init)] // each branch returns early or sets it
        let conf;
        if hex {
            if !ctx || shannon_entropy(t) < 3.0 {
                return;
            }
            conf = 0.7;
        } else {
            let l = (t.len().min(64) as f32).log2();
            let thr = (0.85 * l).min(4.5);
            if shannon_entropy(t) < thr {
                return;
            }
            // camelCase identifiers and words with a few digits: many runs of lowercase letters
            let transitions = t
                .windows(2)
                .filter(|x| x[0].is_ascii_lowercase() != x[1].is_ascii_lowercase())
                .count();
            if transitions * 3 < t.len() {
                return;
            }
            conf = if ctx { 0.8 } else { 0.55 };
        }
        out.push(Raw {
            kind: "secret.high_entropy",
            cat: Category::Secret,
            start: s,
            end: e,
            conf,
            prio: 0,
        });
    };
    if split {
        let mut s = ws;
        #[allow(clippy::needless_range_loop)] // `k == we` is one past the last byte looked at
        for k in ws..=we {
            if k == we || b[k] == b'.' || b[k] == b'/' {
                push(s, k);
                s = k + 1;
            }
        }
    } else {
        push(ws, we);
    }
}

/// Hidden code points starting at `s`: the end of the run and the finding, if any.
fn hidden_run<'e>(text: &str, s: usize) -> Option<(usize, Option<Raw<'e>>)> {
    let mut it = text[s..].char_indices();
    let mut end = s;
    let mut count = 0;
    let mut kind: Option<(&'static str, f32)> = None;
    for (off, ch) in it.by_ref() {
        match hidden_char(ch) {
            Some(k) => {
                count += 1;
                end = s + off + ch.len_utf8();
                kind = Some(match kind {
                    None => k,
                    Some(old)
                        if k.0.ends_with(".tag")
                            || (k.0.ends_with(".bidi") && !old.0.ends_with(".tag")) =>
                    {
                        k
                    }
                    Some(old) => old,
                });
            }
            None => break,
        }
    }
    let (k, base) = kind?;
    if s == 0 && text.starts_with('\u{FEFF}') && count == 1 {
        return Some((end, None));
    }
    let prev = text[..s].chars().next_back();
    let next = text[end..].chars().next();
    let ascii_neighbours = prev.is_none_or(|c| c.is_ascii()) && next.is_none_or(|c| c.is_ascii());
    let conf = if k.ends_with(".tag") {
        base
    } else if count >= 2 {
        if k.ends_with(".variation_selector") && !ascii_neighbours {
            return Some((end, None));
        }
        0.85
    } else if !ascii_neighbours {
        // ZWJ in emoji, ZWNJ in Indic and Persian, marks in right-to-left text, VS16 after emoji
        return Some((end, None));
    } else if text[s..end].starts_with('\u{00AD}') {
        0.35
    } else {
        base.max(0.55)
    };
    Some((
        end,
        Some(Raw {
            kind: k,
            cat: Category::Injection,
            start: s,
            end,
            conf,
            prio: 3,
        }),
    ))
}

fn generic_ok(key: &str, v: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const NOT_SECRET_KEYS: &[&str] = &[
        "count",
        "length",
        "len",
        "size",
        "type",
        "name",
        "_id",
        "url",
        "uri",
        "path",
        "file",
        "expir",
        "ttl",
        "limit",
        "index",
        "max",
        "min",
        "timeout",
        "format",
        "field",
        "label",
        "hint",
        "prompt",
        "policy",
        "enabled",
        "required",
        "endpoint",
        "header",
        "algorithm",
        "usage",
        "passenger",
        "passage",
        "passport",
        "passive",
        "bypass",
        "compass",
        "tokeniz",
        "_at",
        "pass_rate",
        "passed",
        "mode",
        "version",
        "manager",
        "store",
        "provider",
        "service",
        "kind",
        "strength",
        "reset",
        "_in",
        "secretary",
    ];
    if NOT_SECRET_KEYS.iter().any(|x| k.contains(x)) {
        return false;
    }
    if is_placeholder(v) {
        return false;
    }
    let vb = v.as_bytes();
    // code references: calls, attribute paths, variables
    if v.contains('(')
        || v.starts_with("self.")
        || v.starts_with("this.")
        || v.starts_with("config.")
        || v.starts_with("settings.")
        || v.starts_with('$')
        || v.starts_with('%')
    {
        return false;
    }
    if vb
        .iter()
        .all(|c| c.is_ascii_lowercase() || *c == b'_' || *c == b'.')
    {
        return false;
    }
    if vb.iter().all(|c| c.is_ascii_alphabetic())
        && !(v.len() >= 16
            && vb.iter().any(|c| c.is_ascii_uppercase())
            && vb.iter().any(|c| c.is_ascii_lowercase()))
    {
        return false;
    }
    if vb.iter().all(|c| c.is_ascii_uppercase() || *c == b'_') {
        return false;
    }
    if vb.iter().all(|c| c.is_ascii_digit()) && v.len() < 8 {
        return false;
    }
    true
}

/// The reference definition of a secret-naming key; [`KeyFacts::of`] computes the same in one
/// automaton pass.
#[cfg(test)]
fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    const YES: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "private_key",
        "privatekey",
        "credential",
        "access_key",
        "accesskey",
        "client_secret",
        "auth",
        "session_key",
        "signing_key",
        "passphrase",
    ];
    const NO: &[&str] = &[
        "url", "uri", "name", "_id", "count", "type", "length", "expir", "_at", "file", "path",
        "hint", "policy", "label", "enabled", "required", "author", "method", "provider", "usage",
        "limit", "format", "endpoint",
    ];
    YES.iter().any(|y| k.contains(y)) && !NO.iter().any(|x| k.contains(x))
}

fn value_like_secret(v: &str) -> bool {
    (6..=512).contains(&v.len())
        && !v.contains(char::is_whitespace)
        && !is_placeholder(v)
        && !v.starts_with("http")
        && !v.starts_with('/')
}

fn looks_like_name_value(v: &str) -> bool {
    let words: Vec<&str> = v.split(' ').collect();
    (1..=4).contains(&words.len())
        && v.len() <= 60
        && words.iter().all(|w| {
            let mut c = w.chars();
            c.next().is_some_and(|f| f.is_uppercase())
                && c.all(|x| x.is_lowercase() || x == '-' || x == '\'' || x == '.')
        })
        && words.len() >= 2
}

/// What a JSON object key says about its value, computed once per distinct key of a document
/// (a 4 KB object of records repeats the same few keys dozens of times).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyFacts {
    /// Context classes the key implies (`1 << CTX_*`).
    ctx: u32,
    /// The key names a secret (`password`, `api_key`...): a secret-like value is reported.
    secret: bool,
}

// word groups of [`KeyFacts::of`]: a key containing a word of the group gets the bit
const KG_PHONE: u16 = 1;
const KG_CARD: u16 = 1 << 1;
const KG_SSN: u16 = 1 << 2;
const KG_DOB: u16 = 1 << 3;
const KG_SECRET_CTX: u16 = 1 << 4;
const KG_SECRET: u16 = 1 << 5;
const KG_NOT_SECRET: u16 = 1 << 6;
const KG_NOT_NAME: u16 = 1 << 7;

/// Every word [`KeyFacts::of`] looks for, with its groups.
const KEY_WORDS: &[(&str, u16)] = &[
    ("phone", KG_PHONE),
    ("mobile", KG_PHONE),
    ("tel", KG_PHONE),
    ("fax", KG_PHONE),
    ("cell", KG_PHONE),
    ("card", KG_CARD),
    ("pan", KG_CARD),
    ("cc_number", KG_CARD),
    ("ssn", KG_SSN),
    ("social_security", KG_SSN),
    ("dob", KG_DOB),
    ("birth", KG_DOB),
    ("key", KG_SECRET_CTX),
    ("token", KG_SECRET_CTX | KG_SECRET),
    ("secret", KG_SECRET_CTX | KG_SECRET),
    ("password", KG_SECRET_CTX | KG_SECRET),
    ("auth", KG_SECRET_CTX | KG_SECRET),
    ("passwd", KG_SECRET),
    ("pwd", KG_SECRET),
    ("api_key", KG_SECRET),
    ("apikey", KG_SECRET),
    ("api-key", KG_SECRET),
    ("private_key", KG_SECRET),
    ("privatekey", KG_SECRET),
    ("credential", KG_SECRET),
    ("access_key", KG_SECRET),
    ("accesskey", KG_SECRET),
    ("client_secret", KG_SECRET),
    ("session_key", KG_SECRET),
    ("signing_key", KG_SECRET),
    ("passphrase", KG_SECRET),
    ("url", KG_NOT_SECRET),
    ("uri", KG_NOT_SECRET),
    ("name", KG_NOT_SECRET),
    ("_id", KG_NOT_SECRET),
    ("count", KG_NOT_SECRET),
    ("type", KG_NOT_SECRET | KG_NOT_NAME),
    ("length", KG_NOT_SECRET),
    ("expir", KG_NOT_SECRET),
    ("_at", KG_NOT_SECRET),
    ("file", KG_NOT_SECRET | KG_NOT_NAME),
    ("path", KG_NOT_SECRET),
    ("hint", KG_NOT_SECRET),
    ("policy", KG_NOT_SECRET),
    ("label", KG_NOT_SECRET),
    ("enabled", KG_NOT_SECRET),
    ("required", KG_NOT_SECRET),
    ("author", KG_NOT_SECRET),
    ("method", KG_NOT_SECRET),
    ("provider", KG_NOT_SECRET),
    ("usage", KG_NOT_SECRET),
    ("limit", KG_NOT_SECRET),
    ("format", KG_NOT_SECRET),
    ("endpoint", KG_NOT_SECRET),
    ("user", KG_NOT_NAME),
    ("host", KG_NOT_NAME),
    ("tool", KG_NOT_NAME),
];

/// Keys whose value is a person's name (whole key, `_`-suffix, or suffix of a short key).
const NAME_KEYS: &[&str] = &[
    "name",
    "full_name",
    "fullname",
    "first_name",
    "last_name",
    "customer",
    "contact",
    "author",
    "owner",
    "assignee",
    "patient",
    "employee",
];

static KEY_AUTOMATON: std::sync::LazyLock<AhoCorasick> = std::sync::LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(KEY_WORDS.iter().map(|(w, _)| w))
        .expect("the key words compile")
});

impl KeyFacts {
    /// The facts of one key: one case-insensitive automaton pass over the key for every word
    /// (the reference definitions, `key_context` and `secret_key`, test each word in turn).
    pub(crate) fn of(key: &str) -> KeyFacts {
        let mut groups = 0u16;
        for m in KEY_AUTOMATON.find_overlapping_iter(key) {
            groups |= KEY_WORDS[m.pattern().as_usize()].1;
        }
        let mut ctx = 0u32;
        for (group, class) in [
            (KG_PHONE, pii::CTX_PHONE),
            (KG_CARD, pii::CTX_CARD),
            (KG_SSN, pii::CTX_SSN),
            (KG_DOB, pii::CTX_DOB),
            (KG_SECRET_CTX, CTX_SECRET),
        ] {
            if groups & group != 0 {
                ctx |= 1 << class;
            }
        }
        if groups & KG_NOT_NAME == 0 && name_key(key) {
            ctx |= 1 << CTX_NAME;
        }
        KeyFacts {
            ctx,
            secret: groups & KG_SECRET != 0 && groups & KG_NOT_SECRET == 0,
        }
    }
}

/// `key` (any ASCII case) is one of [`NAME_KEYS`], ends with `_` and one, or is a key of at
/// most 12 bytes ending with one.
fn name_key(key: &str) -> bool {
    let k = key.as_bytes();
    NAME_KEYS.iter().any(|w| {
        let w = w.as_bytes();
        k.len() >= w.len() && k[k.len() - w.len()..].eq_ignore_ascii_case(w) && {
            let rest = k.len() - w.len();
            rest == 0 || k[rest - 1] == b'_' || key.len() <= 12
        }
    })
}

/// The reference definition of a key's context classes (see [`KeyFacts::of`]).
#[cfg(test)]
fn key_context(k: &str) -> u32 {
    let k = k.to_ascii_lowercase();
    let mut m = 0u32;
    let mut set = |c: u16, words: &[&str]| {
        if words.iter().any(|w| k.contains(w)) {
            m |= 1 << c;
        }
    };
    set(pii::CTX_PHONE, &["phone", "mobile", "tel", "fax", "cell"]);
    set(pii::CTX_CARD, &["card", "pan", "cc_number"]);
    set(pii::CTX_SSN, &["ssn", "social_security"]);
    set(pii::CTX_DOB, &["dob", "birth"]);
    set(CTX_SECRET, &["key", "token", "secret", "password", "auth"]);
    if [
        "name",
        "full_name",
        "fullname",
        "first_name",
        "last_name",
        "customer",
        "contact",
        "author",
        "owner",
        "assignee",
        "patient",
        "employee",
    ]
    .iter()
    .any(|w| k == *w || ends_with_part(&k, w) || k.ends_with(w) && k.len() <= 12)
        && !k.contains("file")
        && !k.contains("user")
        && !k.contains("host")
        && !k.contains("tool")
        && !k.contains("type")
    {
        m |= 1 << CTX_NAME;
    }
    m
}

/// `k` ends with `_` and `w`. Not `k.ends_with(&format!("_{w}"))`: this runs for every JSON
/// value, and those allocations were most of the cost of `scan_json` on records.
#[cfg(test)]
fn ends_with_part(k: &str, w: &str) -> bool {
    k.strip_suffix(w).is_some_and(|p| p.ends_with('_'))
}

fn is_doc_example(v: &str) -> bool {
    v.contains("EXAMPLE")
        || v.contains("example")
        || v == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
}

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

#[cfg(test)]
mod tests {
    use crate::{Detector, DetectorConfig};

    /// The one-pass key facts agree with the word-by-word reference definitions, on the keys
    /// of real tool results and on every combination of a prefix, a key word and a suffix.
    #[test]
    fn key_facts_match_the_reference_definitions() {
        let mut keys: Vec<String> = [
            "id",
            "name",
            "Name",
            "FULL_NAME",
            "customer_name",
            "username",
            "hostname",
            "file_name",
            "tool_name",
            "type",
            "owner",
            "co_owner",
            "account_owner_email",
            "password",
            "db_password",
            "PASSWORD_HINT",
            "api_key",
            "apiKeyUrl",
            "token",
            "token_type",
            "expires_at",
            "auth",
            "author",
            "authorization",
            "x-api-key",
            "phone",
            "mobile_number",
            "hotel",
            "card_number",
            "pan",
            "company",
            "ssn",
            "date_of_birth",
            "dob",
            "birthday",
            "secret",
            "client_secret",
            "secretary",
            "signing_key",
            "key",
            "monkey",
            "credentials_path",
            "",
            "é_name",
            "ÉMAIL",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let words: Vec<&str> = super::KEY_WORDS
            .iter()
            .map(|(w, _)| *w)
            .chain(super::NAME_KEYS.iter().copied())
            .collect();
        for w in &words {
            for pre in ["", "x", "my_", "Long_prefix_", "A"] {
                for suf in ["", "s", "_id", "_value", "X"] {
                    keys.push(format!("{pre}{w}{suf}"));
                    keys.push(format!("{pre}{}{suf}", w.to_ascii_uppercase()));
                }
            }
        }
        for k in &keys {
            let got = super::KeyFacts::of(k);
            let want = super::KeyFacts {
                ctx: super::key_context(k),
                secret: super::secret_key(k),
            };
            assert_eq!(got, want, "key {k:?}");
        }
    }

    /// The word-at-a-time searches for the next digit, `@` or non-ASCII byte agree with the
    /// byte-by-byte definition on random bytes (every start offset, both settings of `high`).
    #[test]
    fn next_interesting_matches_the_definition() {
        let mut rng = crate::util::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"ab/:09@ \x7f\x80\xc3Z`?AQ.";
        for round in 0..400 {
            let len = round % 70;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    let x = rng.next();
                    if x.is_multiple_of(4) {
                        x as u8 >> 1
                    } else {
                        alphabet[(x % alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            for high in [false, true] {
                for i in 0..=len {
                    let want = (i..len)
                        .find(|&k| b[k].is_ascii_digit() || b[k] == b'@' || (high && b[k] >= 0x80))
                        .unwrap_or(len);
                    assert_eq!(
                        super::next_interesting(&b, i, high),
                        want,
                        "{b:?} {i} {high}"
                    );
                    assert_eq!(super::next_interesting_swar(&b, i, high), want, "{b:?} {i}");
                }
            }
        }
    }

    /// The 16-byte word boundary searches agree with the byte-by-byte definition.
    #[test]
    fn word_bounds_match_the_definition() {
        let mut rng = crate::util::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let alphabet = b"aZ09+/=_-.@:, \t,\x80\xff`{[";
        for round in 0..300 {
            let len = round % 90;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    let x = rng.next();
                    // mostly word bytes, so that runs cross 16-byte steps
                    if x.is_multiple_of(8) {
                        alphabet[(x >> 8) as usize % alphabet.len()]
                    } else {
                        b"abcXYZ0189+/=_-."[(x >> 8) as usize % 16]
                    }
                })
                .collect();
            let word = |c: u8| super::CLASS[c as usize] != 0 && c != b'@';
            for i in 0..=len {
                let want_end = (i..len).find(|&k| !word(b[k])).unwrap_or(len);
                assert_eq!(super::word_end(&b, i), want_end, "{b:?} {i}");
                for floor in [0, i / 2, i.saturating_sub(17), i] {
                    let mut want = i;
                    while want > floor && word(b[want - 1]) {
                        want -= 1;
                    }
                    assert_eq!(super::word_start(&b, floor, i), want, "{b:?} {floor} {i}");
                }
            }
        }
    }

    fn time(d: &Detector, t: &str) -> std::time::Duration {
        let s = std::time::Instant::now();
        d.scan_text(t);
        s.elapsed()
    }

    /// Hostile inputs scale linearly: 4x the input takes well under 16x the time.
    #[test]
    fn adversarial_inputs_stay_linear() {
        let d = Detector::new(&DetectorConfig::default()).unwrap();
        let units = [
            "](http",
            "://a:",
            "-----BEGIN ",
            "ignore ",
            "@a",
            "1 ",
            "4111 ",
            "a\u{200B}",
            "eyJ",
            "<!--",
            "sk-",
            "AAAA",
            "\tat x(",
            "Traceback (most recent call last):\n ",
            "0",
            "/home/",
            "to http",
            "your reply ",
        ];
        for u in units {
            let small: String = u.repeat(16_000 / u.len());
            let big: String = u.repeat(64_000 / u.len());
            time(&d, &small);
            let ts = time(&d, &small);
            let tb = time(&d, &big);
            assert!(
                tb < ts * 16 + std::time::Duration::from_millis(200),
                "{u:?}: {ts:?} for 16 KB, {tb:?} for 64 KB"
            );
        }
    }
}
