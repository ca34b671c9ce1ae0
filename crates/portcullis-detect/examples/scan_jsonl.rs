//! The `portcullis scan --jsonl` protocol on the library alone (the eval harness uses it so that
//! it needs only this crate built): `{"id", "text"}` lines in, one result line out per input.
//! `cargo run --release -p portcullis-detect --example scan_jsonl < in.jsonl > out.jsonl`
use std::io::{BufRead, Write};

fn main() {
    let det = portcullis_detect::Detector::new(&Default::default()).expect("detector");
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().split(b'\n') {
        let line = line.expect("stdin");
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let v = match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(v) if v.get("text").and_then(|t| t.as_str()).is_some() => {
                let f = det.scan_text(v["text"].as_str().unwrap());
                let mut cats: Vec<&str> = f.iter().map(|x| x.category.as_str()).collect();
                cats.sort_unstable();
                cats.dedup();
                let mut kinds: Vec<&str> = f.iter().map(|x| x.kind.as_str()).collect();
                kinds.sort_unstable();
                kinds.dedup();
                let list: Vec<serde_json::Value> = f
                    .iter()
                    .map(|x| serde_json::json!({"kind": x.kind, "category": x.category, "start": x.start, "end": x.end, "confidence": portcullis_detect::Finding::confidence_f64(x.confidence)}))
                    .collect();
                serde_json::json!({"id": v.get("id"), "categories": cats, "kinds": kinds, "findings": list})
            }
            Ok(_) => serde_json::json!({"id": null, "error": "missing string field \"text\""}),
            Err(e) => serde_json::json!({"id": null, "error": e.to_string()}),
        };
        serde_json::to_writer(&mut out, &v).unwrap();
        out.write_all(b"\n").unwrap();
    }
}
