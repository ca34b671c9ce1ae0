#[path = "../benches/corpus.rs"]
mod corpus;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
fn run(name: &str, ac: &AhoCorasick, text: &str, overlapping: bool) {
    let t = std::time::Instant::now();
    let mut k = 0;
    for _ in 0..3 {
        if overlapping { k = ac.find_overlapping_iter(text).count(); } else { k = ac.find_iter(text).count(); }
    }
    eprintln!("{name}: {k} hits {:.0} MB/s", 3.0 * text.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
}
fn main() {
    let text = corpus::corpus(8 << 20, false, 42);
    let det = portcullis_detect::Detector::new(&Default::default()).unwrap();
    let pats = det.debug_patterns();
    eprintln!("{} patterns", pats.len()); baseline(&text);
    for kind in [AhoCorasickKind::DFA, AhoCorasickKind::ContiguousNFA] {
        for mk in [MatchKind::Standard, MatchKind::LeftmostLongest] {
            for bc in [true, false] {
                let ac = AhoCorasick::builder().kind(Some(kind)).match_kind(mk).byte_classes(bc).build(&pats).unwrap();
                run(&format!("{kind:?} {mk:?} bc={bc}"), &ac, &text, false);
            }
        }
    }
    let lower: Vec<Vec<u8>> = pats.iter().map(|p| p.to_ascii_lowercase()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let ac = AhoCorasick::builder().kind(Some(AhoCorasickKind::DFA)).ascii_case_insensitive(true).build(&lower).unwrap();
    eprintln!("{} ci patterns", lower.len());
    run("DFA ci standard", &ac, &text, false);
    let re = regex_automata::meta::Regex::new_many(&pats.iter().map(|p| regex_automata::util::syntax::parse(&regex_syntax_escape(p)).map(|_| regex_syntax_escape(p)).unwrap()).collect::<Vec<_>>());
    if let Ok(re) = re {
        let t = std::time::Instant::now();
        let k = re.find_iter(text.as_bytes()).count();
        eprintln!("meta many: {k} hits {:.0} MB/s", text.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
}
fn regex_syntax_escape(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(p);
    let mut o = String::new();
    for c in s.chars() { if "\\.+*?()|[]{}^$#&-~ ".contains(c) { o.push('\\'); } if c == '\n' { o.push_str("\\n"); continue; } if c == '\t' { o.push_str("\\t"); continue; } o.push(c); }
    o
}
#[allow(dead_code)]
pub fn baseline(text: &str) {
    let b = text.as_bytes();
    let mut tab = [0u8; 256];
    for c in b'a'..=b'z' { tab[c as usize] = 1; }
    let t = std::time::Instant::now();
    let mut k = 0usize;
    let mut prev = 0u8;
    for &c in b { let x = tab[c as usize]; k += (x & !prev) as usize; prev = x; }
    eprintln!("word-start table loop: {k} {:.0} MB/s", b.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
    for few in [vec![&b"AKIA"[..], b"ghp_", b"xoxb-", b"-----BEGIN", b"sk_live_", b"<|im_start|>", b"xoxp-", b"password"], vec![&b"AKIA"[..]], vec![&b"<!--"[..], b"-----BEGIN", b"<|im", b"[INST]", b"<img", b"](http"]] {
    let ac = AhoCorasick::new(&few).unwrap();
    let t = std::time::Instant::now();
    let k = ac.find_iter(text).count();
    eprintln!("{} literals (teddy): {k} {:.0} MB/s", few.len(), b.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    let t = std::time::Instant::now();
    let k = memchr::memchr_iter(b'Q', b).count();
    eprintln!("memchr Q: {k} {:.0} MB/s", b.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
}
