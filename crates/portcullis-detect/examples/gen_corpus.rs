//! Writes the benchmark corpora to files, for the peers' throughput run (eval/bench_peers.py).
//! `cargo run --release -p portcullis-detect --example gen_corpus -- OUT_DIR [MB]`
#[path = "../benches/corpus.rs"]
mod corpus;

fn main() {
    let mut a = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(a.next().unwrap_or_else(|| "bench-corpus".into()));
    let mb: usize = a.next().and_then(|x| x.parse().ok()).unwrap_or(8);
    std::fs::create_dir_all(&dir).unwrap();
    let det = portcullis_detect::Detector::new(&Default::default()).unwrap();
    for (name, dense) in [("clean", false), ("dense", true)] {
        let text = corpus::corpus(mb << 20, dense, 42);
        let t = std::time::Instant::now();
        let f = det.scan_text(&text);
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {} bytes, {} findings, {:.0} MB/s (one core, one call)",
            text.len(),
            f.len(),
            text.len() as f64 / s / 1e6
        );
        std::fs::write(dir.join(format!("{name}.txt")), &text).unwrap();
    }
}
