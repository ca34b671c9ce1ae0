//! The request side of a tool call, per 4 KB arguments object (IV-1, PI-2, IV-4): schema
//! validation with a warm cache, the inspection stage (one detector pass, rules, URL
//! discovery; no URLs, so no resolution), and both together. The target is the whole pipeline
//! under 100 µs per call; `serialize_baseline` (serializing the same object once) is measured
//! in the same run so figures can be given as ratios on a noisy machine.
//!
//! Run with `cargo bench -p portcullis-inspect --bench request` (release profile).

use std::sync::Arc;

use portcullis_config::inspect::{ValidEgress, ValidInspection};
use portcullis_detect::{Detector, DetectorConfig};
use portcullis_inspect::arguments::{CallFacts, RequestInspector};
use portcullis_inspect::egress::{EgressGuard, FixedResolver};
use portcullis_inspect::schema::{ArgumentValidator, ToolSchemas};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

/// A search-and-update style call: free text, a few records, numbers, no URLs, no secrets.
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
    let v = json!({
        "query": "accounts in the enterprise segment with open renewals",
        "limit": 50,
        "include_archived": false,
        "records": records,
    });
    let n = serde_json::to_vec(&v).unwrap().len();
    assert!(
        (3500..=4700).contains(&n),
        "arguments are {n} bytes, not about 4 KB"
    );
    v
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 500},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "include_archived": {"type": "boolean"},
            "records": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": "^cus_[0-9]{6}$"},
                        "segment": {"enum": ["smb", "mid", "enterprise"]},
                        "score": {"type": "integer", "minimum": 0},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "comment": {"type": "string", "maxLength": 2000}
                    },
                    "required": ["id"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["query"],
        "additionalProperties": false
    })
}

struct Fixture {
    validator: ArgumentValidator,
    inspector: RequestInspector,
    guard: EgressGuard,
    resolver: FixedResolver,
    schema: Value,
    args: Value,
}

impl Fixture {
    fn new() -> Self {
        let settings = ValidInspection::default();
        let detector = Arc::new(Detector::new(&DetectorConfig::default()).unwrap());
        let f = Self {
            validator: ArgumentValidator::new(&settings),
            inspector: RequestInspector::new(detector, &settings),
            guard: EgressGuard::new("crm", &ValidEgress::default()),
            resolver: FixedResolver::new(),
            schema: schema(),
            args: arguments(),
        };
        // Warm the cache, and make sure the benchmark measures a passing call.
        f.validate();
        assert!(f.inspect(&mut f.args.clone()).refusal.is_none());
        f
    }

    fn validate(&self) {
        let schemas = ToolSchemas {
            connector: "crm",
            tool: "update_customers",
            input_schema: Some(&self.schema),
            override_schema: None,
        };
        self.validator.validate(&schemas, Some(&self.args)).unwrap();
    }

    fn inspect(&self, args: &mut Value) -> portcullis_inspect::arguments::RequestVerdict {
        let call = CallFacts {
            connector: "crm",
            tool: "update_customers",
            open_world: true,
            tool_inspect: None,
            egress: &self.guard,
        };
        futures::executor::block_on(self.inspector.inspect(&call, args, &self.resolver))
    }
}

#[divan::bench]
fn serialize_baseline(bencher: divan::Bencher) {
    let args = arguments();
    bencher.bench(|| serde_json::to_vec(divan::black_box(&args)).unwrap().len());
}

/// The detector's own pass over the same arguments: the floor under `inspect`.
#[divan::bench]
fn detector_scan_json(bencher: divan::Bencher) {
    let detector = Detector::new(&DetectorConfig::default()).unwrap();
    let args = arguments();
    bencher.bench(|| detector.scan_json(divan::black_box(&args)).len());
}

#[divan::bench]
fn schema_validate(bencher: divan::Bencher) {
    let f = Fixture::new();
    bencher.bench(|| f.validate());
}

#[divan::bench]
fn inspect(bencher: divan::Bencher) {
    let f = Fixture::new();
    bencher
        .with_inputs(|| f.args.clone())
        .bench_local_refs(|args| f.inspect(args).findings.len());
}

#[divan::bench]
fn pipeline(bencher: divan::Bencher) {
    let f = Fixture::new();
    bencher
        .with_inputs(|| f.args.clone())
        .bench_local_refs(|args| {
            f.validate();
            f.inspect(args).findings.len()
        });
}
