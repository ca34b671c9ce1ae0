//! Throughput on the benchmark corpus, by wall clock and by this thread's CPU time (from
//! /proc/thread-self/schedstat), so that a loaded machine still gives a one-core figure.
//! `cargo run --release -p portcullis-detect --example prof -- clean|dense [categories...]`
#[path = "../benches/corpus.rs"]
mod corpus;

fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "clean".into());
    let text = match mode.as_str() {
        "dense" => corpus::corpus(8 << 20, true, 42),
        "clean" => corpus::corpus(8 << 20, false, 42),
        k => corpus::single(k, 8 << 20, 7),
    };
    let cats: Vec<String> = std::env::args().skip(2).collect();
    let mut cfg = portcullis_detect::DetectorConfig::default();
    if !cats.is_empty() {
        cfg.categories = cats.iter().map(|c| c.parse().unwrap()).collect();
    }
    cfg.max_findings = usize::MAX;
    let det = portcullis_detect::Detector::new(&cfg).unwrap();
    literal_only(&det, &text);
    literal_only(&det, &text);
    if std::env::var("STATS").is_ok() {
        for (p, k) in det.trigger_stats(&text).iter().take(15) {
            println!("{k:8} {p:?}");
        }
    }
    // RUNS=n scans n times (more samples for `perf record`)
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let c0 = cpu_ns();
    let t = std::time::Instant::now();
    let mut nf = 0;
    for _ in 0..runs {
        nf = det.scan_text(&text).len();
    }
    let wall = t.elapsed().as_secs_f64() / runs as f64;
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / runs as f64,
        _ => f64::NAN,
    };
    let mb = text.len() as f64 / 1e6;
    println!(
        "{mode} {cats:?}: {} bytes, {nf} findings, {:.0} MB/s wall, {:.0} MB/s CPU-time (one core)",
        text.len(),
        mb / wall,
        mb / cpu
    );
}

#[allow(dead_code)]
pub fn literal_only(det: &portcullis_detect::Detector, text: &str) {
    let t = std::time::Instant::now();
    let (k, np) = det.debug_literal_pass(text);
    println!(
        "literal pass alone: {k} hits, {np} literals, {:.0} MB/s",
        text.len() as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}
