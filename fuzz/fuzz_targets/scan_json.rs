//! Fuzzes `Detector::scan_json` on whatever parses as JSON.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_detect::{Detector, DetectorConfig};

fn det() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::new(&DetectorConfig::default()).unwrap())
}

fuzz_target!(init: { det(); }, |data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        for f in det().scan_json(&v) {
            assert!(f.pointer.is_some());
            assert!(f.start < f.end);
        }
    }
});
