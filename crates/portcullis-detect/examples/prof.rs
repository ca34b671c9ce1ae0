#[path = "../benches/corpus.rs"]
mod corpus;
fn main() {
    let dense = std::env::args().nth(1).as_deref() == Some("dense");
    let text = corpus::corpus(8 << 20, dense, 42);
    let cats: Vec<String> = std::env::args().skip(2).collect();
    let mut cfg = portcullis_detect::DetectorConfig::default();
    if !cats.is_empty() { cfg.categories = cats.iter().map(|c| c.parse().unwrap()).collect(); }
    let det = portcullis_detect::Detector::new(&cfg).unwrap();
    if std::env::var("ONLY_LIT").is_ok() { for _ in 0..20 { ac(&det, &text); } return; }
    let t = std::time::Instant::now();
    let mut nf = 0;
    for _ in 0..5 { nf = det.scan_text(&text).len(); }
    let s = t.elapsed().as_secs_f64() / 5.0;
    eprintln!("{cats:?} dense={dense}: {nf} findings, {:.0} MB/s", text.len() as f64 / s / 1e6);
    ac(&det, &text);
    if std::env::var("STATS").is_ok() { for (p, k) in det.trigger_stats(&text).iter().take(25) { eprintln!("{k:8} {p:?}"); } }
}
#[allow(dead_code)]
fn _x() {}
#[allow(dead_code)]
fn ac(det: &portcullis_detect::Detector, text: &str) {
    let t = std::time::Instant::now();
    let (k, np) = det.debug_literal_pass(text);
    eprintln!("literal pass: {k} hits, {np} patterns, {:.0} MB/s", text.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
}
