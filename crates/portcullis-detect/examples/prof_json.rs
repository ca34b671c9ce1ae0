//! Time of `scan_json` on a ~4 KB tool-call arguments object made of many short strings (the
//! gateway's argument stage), by wall clock and by this thread's CPU time.
//! `cargo run --release -p portcullis-detect --example prof_json [-- ITERATIONS]`
use serde_json::{Value, json};

fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The same shape as the inspection crate's request benchmark: free text, records, numbers.
fn arguments() -> Value {
    let note = "Customer asked about the renewal of the enterprise plan and the migration of \
                their reporting dashboards; follow up after the quarterly review with the \
                account team. ";
    let records: Vec<Value> = (0..15)
        .map(|i| {
            json!({
                "id": format!("cus_{i:06}"),
                "segment": "enterprise",
                "score": i * 7,
                "tags": ["renewal", "dashboard", "q3"],
                "comment": note,
            })
        })
        .collect();
    json!({
        "query": "accounts in the enterprise segment with open renewals",
        "limit": 50,
        "include_archived": false,
        "records": records,
    })
}

fn main() {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let det = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
        .expect("detector");
    let v = arguments();
    let bytes = serde_json::to_vec(&v).expect("json").len();
    let mut strings = 0usize;
    count_strings(&v, &mut strings);
    for _ in 0..200 {
        std::hint::black_box(det.scan_json(&v));
    }
    let c0 = cpu_ns();
    let t = std::time::Instant::now();
    let mut nf = 0;
    for _ in 0..iters {
        nf = std::hint::black_box(det.scan_json(&v)).len();
    }
    let wall = t.elapsed().as_secs_f64() / iters as f64;
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / iters as f64,
        _ => f64::NAN,
    };
    // the baseline: serializing the same object, measured in the same run
    let t = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(serde_json::to_vec(std::hint::black_box(&v)).expect("json"));
    }
    let ser = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "scan_json: {bytes} bytes, {strings} strings, {nf} findings: {:.1} µs wall, {:.1} µs CPU, \
         {:.1}x serializing it ({:.1} µs)",
        wall * 1e6,
        cpu * 1e6,
        wall / ser,
        ser * 1e6
    );
}

fn count_strings(v: &Value, n: &mut usize) {
    match v {
        Value::String(_) => *n += 1,
        Value::Array(a) => a.iter().for_each(|x| count_strings(x, n)),
        Value::Object(m) => m.values().for_each(|x| count_strings(x, n)),
        _ => {}
    }
}
