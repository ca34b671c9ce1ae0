//! Fuzzes `Detector::scan_text`: no panic, spans in bounds and on char boundaries, and no
//! input that makes it slow (libFuzzer's -timeout and -rss_limit_mb catch those).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_detect::{Detector, DetectorConfig};

fn det() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        let mut cfg = DetectorConfig::default();
        cfg.min_confidence = 0.0;
        cfg.org.dictionaries.push(portcullis_detect::Dictionary {
            id: "codename".into(),
            terms: vec!["falcon".into(), "Ölkanne".into()],
            case_insensitive: true,
            whole_word: true,
            category: portcullis_detect::Category::Internal,
            confidence: 0.9,
        });
        cfg.org.fingerprints.push(portcullis_detect::FingerprintSet::from_document(
            "doc",
            "one two three four five six seven eight nine ten eleven twelve",
        ));
        Detector::new(&cfg).unwrap()
    })
}

fuzz_target!(init: { det(); }, |data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let findings = det().scan_text(&text);
    for f in &findings {
        assert!(f.start < f.end && f.end <= text.len(), "{f:?}");
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end), "{f:?}");
        assert!((0.0..=1.0).contains(&f.confidence));
    }
});
