//! Response inspection on the demo connector's records (DLP-4, DLP-5, PI-1): a ~4 KB and a
//! ~64 KB `search_customers`-shaped result with the built-in rules (every record carries
//! e-mail addresses and phone numbers to mask), the same records minimized by `output_fields`,
//! and a ~4 KB result with nothing to find (the common case, which must stay well under 20 µs).
//!
//! Run: `cargo bench -p portcullis-inspect --bench results`. Each sample inspects a fresh clone
//! of the result (the clone is made outside the timed part).

use std::sync::Arc;

use divan::Bencher;
use portcullis_config::{ValidInspection, ValidToolInspect};
use portcullis_demo::rmcp::model::CallToolResult;
use portcullis_demo::{Customer, CustomerList, customers};
use portcullis_detect::{Detector, DetectorConfig};
use portcullis_inspect::results::{ResultFacts, ResultInspector, ResultMethod};
use portcullis_inspect::transform::PseudonymKey;
use serde_json::{Value, json};

fn main() {
    divan::main();
}

/// The `result` of `search_customers` over the first records whose JSON reaches `bytes`.
fn records(bytes: usize) -> Value {
    let mut list = Vec::<Customer>::new();
    for c in customers() {
        list.push(c.clone());
        if serde_json::to_string(&list).unwrap().len() >= bytes / 2 {
            break;
        }
    }
    // The result holds the records twice (structuredContent and its text mirror).
    let v = serde_json::to_value(CustomerList { customers: list }).unwrap();
    serde_json::to_value(CallToolResult::structured(v)).unwrap()
}

/// A result of `bytes` with nothing for any detector: ids, plans and counters.
fn clean(bytes: usize) -> Value {
    let mut rows = Vec::new();
    let mut i = 0;
    while serde_json::to_string(&rows).unwrap().len() < bytes / 2 {
        i += 1;
        rows.push(
            json!({"id": format!("cus_{i:04}"), "plan": "pro", "seats": i % 40, "active": true}),
        );
    }
    serde_json::to_value(CallToolResult::structured(json!({ "customers": rows }))).unwrap()
}

struct Setup {
    inspector: ResultInspector,
    key: PseudonymKey,
}

fn setup() -> Setup {
    let detector = Arc::new(Detector::new(&DetectorConfig::default()).unwrap());
    Setup {
        inspector: ResultInspector::new(detector, &ValidInspection::default()),
        key: PseudonymKey::for_session(&[7; 32], "bench").unwrap(),
    }
}

fn bench_one(b: Bencher<'_, '_>, result: Value, tool: Option<&ValidToolInspect>) {
    let s = setup();
    let facts = ResultFacts {
        connector: "crm",
        target: "search_customers",
        method: ResultMethod::ToolCall,
        tool,
        egress_allow: &[],
        pseudonym_key: &s.key,
        widget: false,
    };
    b.counter(divan::counter::BytesCount::new(
        serde_json::to_string(&result).unwrap().len(),
    ))
    .with_inputs(|| result.clone())
    .bench_local_refs(|r| s.inspector.inspect(&facts, r));
}

/// Baseline for ratios (BENCHMARKS.md): parsing the same result from its bytes, which the
/// gateway does anyway before it can inspect anything.
#[divan::bench(args = [4096, 65536])]
fn baseline_parse_clean(b: Bencher<'_, '_>, bytes: usize) {
    let raw = serde_json::to_vec(&clean(bytes)).unwrap();
    b.counter(divan::counter::BytesCount::new(raw.len()))
        .bench(|| serde_json::from_slice::<Value>(&raw).unwrap());
}

/// Baseline: parsing the demo records' result.
#[divan::bench(args = [4096, 65536])]
fn baseline_parse_records(b: Bencher<'_, '_>, bytes: usize) {
    let raw = serde_json::to_vec(&records(bytes)).unwrap();
    b.counter(divan::counter::BytesCount::new(raw.len()))
        .bench(|| serde_json::from_slice::<Value>(&raw).unwrap());
}

#[divan::bench]
fn clean_4k(b: Bencher<'_, '_>) {
    let r = clean(4096);
    // The premise of this case: nothing is found, nothing changes.
    let s = setup();
    let mut probe = r.clone();
    let v = s.inspector.inspect(
        &ResultFacts {
            connector: "crm",
            target: "search_customers",
            method: ResultMethod::ToolCall,
            tool: None,
            egress_allow: &[],
            pseudonym_key: &s.key,
            widget: false,
        },
        &mut probe,
    );
    assert!(!v.changed && v.findings.is_empty(), "{v:?}");
    bench_one(b, r, None);
}

#[divan::bench]
fn clean_64k(b: Bencher<'_, '_>) {
    bench_one(b, clean(65536), None);
}

#[divan::bench]
fn demo_records_4k(b: Bencher<'_, '_>) {
    bench_one(b, records(4096), None);
}

#[divan::bench]
fn demo_records_64k(b: Bencher<'_, '_>) {
    bench_one(b, records(65536), None);
}

#[divan::bench]
fn demo_records_64k_minimized(b: Bencher<'_, '_>) {
    let tool = ValidToolInspect {
        output_fields: Some(vec![
            vec!["customers".into(), "*".into(), "id".into()],
            vec!["customers".into(), "*".into(), "plan".into()],
        ]),
        ..Default::default()
    };
    bench_one(b, records(65536), Some(&tool));
}
