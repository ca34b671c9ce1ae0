//! Throughput of `Detector::scan_text` with every detector on, one core.
//! `cargo bench -p portcullis-detect --bench throughput`
//! Corpora: benches/corpus.rs (JSON tool outputs, access logs, prose; mixed without findings,
//! mixed with a finding every ~250 bytes).

#[path = "corpus.rs"]
mod corpus;

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::BytesCount;
use portcullis_detect::{Detector, DetectorConfig};

const SIZE: usize = 4 << 20;

static DET: LazyLock<Detector> =
    LazyLock::new(|| Detector::new(&DetectorConfig::default()).unwrap());
static CLEAN: LazyLock<String> = LazyLock::new(|| corpus::corpus(SIZE, false, 42));
static DENSE: LazyLock<String> = LazyLock::new(|| corpus::corpus(SIZE, true, 42));

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 20)]
fn mixed_no_findings(b: Bencher) {
    let t: &str = &CLEAN;
    LazyLock::force(&DET);
    b.counter(BytesCount::of_str(t))
        .bench(|| DET.scan_text(divan::black_box(t)).len());
}

#[divan::bench(sample_count = 20)]
fn mixed_dense_findings(b: Bencher) {
    let t: &str = &DENSE;
    LazyLock::force(&DET);
    b.counter(BytesCount::of_str(t))
        .bench(|| DET.scan_text(divan::black_box(t)).len());
}

#[divan::bench(args = ["json", "logs", "prose"], sample_count = 20)]
fn single_kind(b: Bencher, kind: &str) {
    let t = corpus::single(kind, SIZE, 7);
    LazyLock::force(&DET);
    b.counter(BytesCount::of_str(&t))
        .bench(|| DET.scan_text(divan::black_box(&t)).len());
}

/// A 2 KB tool output (the gateway's typical unit), to show per-call overhead.
#[divan::bench(sample_count = 200)]
fn tool_output_2kb(b: Bencher) {
    let t: String = CLEAN.chars().take(2048).collect();
    LazyLock::force(&DET);
    b.counter(BytesCount::of_str(&t))
        .bench(|| DET.scan_text(divan::black_box(&t)).len());
}

#[divan::bench(sample_count = 5)]
fn build_detector() -> Detector {
    Detector::new(&DetectorConfig::default()).unwrap()
}
