//! One authorization decision (issue 4's target: p99 under 50 µs with the baseline plus 1,000
//! generated policies). Prints p50/p99 over many runs for the baseline alone decided by Cedar on
//! every call (the reference, measured in the same run: the ratio column divides by its p99),
//! and for baseline + 1,000 policies: Cedar over the whole set, Cedar over the index's subset,
//! and the default (the index, and per-call plans: `src/plan.rs`); then the first call of each
//! (principal, tool) pair, on fresh engines (what makes a plan); then the divan benches. The
//! machine's load average is printed before and after.
//!
//! `cargo bench -p portcullis-policy --bench authorize`

use std::hint::black_box;
use std::time::Instant;

use portcullis_policy::*;

const CONNECTORS: usize = 50;
const TOOLS: usize = 20;
const USERS: usize = 500;
const GROUPS: usize = 40;

/// 1,000 policies of the kinds an organization writes: per-user grants and bans on single tools,
/// per-group grants on whole connectors, and a few rules on any resource (the ones an index
/// cannot narrow).
fn generated() -> String {
    let mut s = String::new();
    let tool = |i: usize| format!("c{}/t{}", i % CONNECTORS, (i / CONNECTORS) % TOOLS);
    for i in 0..450 {
        s += &format!(
            "@id(\"user-tool-{i}\") @reason(\"u{u} needs {t}\")\npermit (principal == Portcullis::User::\"u{u}\", action == Portcullis::Action::\"call_tool\", resource == Portcullis::Tool::\"{t}\") when {{ context.time.hour >= 7 && context.time.hour < 20 }};\n",
            u = i % USERS,
            t = tool(i * 7)
        );
    }
    for i in 0..250 {
        s += &format!(
            "@id(\"group-connector-{i}\")\npermit (principal in Portcullis::Group::\"g{g}\", action in [Portcullis::Action::\"call_tool\", Portcullis::Action::\"list\"], resource in Portcullis::Connector::\"c{c}\") when {{ resource.classification != \"restricted\" }};\n",
            g = i % GROUPS,
            c = (i * 3) % CONNECTORS
        );
    }
    for i in 0..250 {
        s += &format!(
            "@id(\"user-ban-{i}\")\nforbid (principal == Portcullis::User::\"u{u}\", action, resource == Portcullis::Tool::\"{t}\") unless {{ context.risk < 30 }};\n",
            u = (i * 13) % USERS,
            t = tool(i * 11 + 3)
        );
    }
    for i in 0..50 {
        s += &format!(
            "@id(\"weekend-{i}\")\nforbid (principal in Portcullis::Group::\"g{g}\", action == Portcullis::Action::\"call_tool\", resource) when {{ context.time.weekday >= 5 && resource.destructive }};\n",
            g = i % GROUPS
        );
    }
    s
}

fn request(i: usize) -> AuthzRequest {
    let c = i % CONNECTORS;
    let t = (i / CONNECTORS) % TOOLS;
    let connector = ConnectorFacts::new(format!("c{c}"), "owner");
    let tool = ToolFacts {
        read_only: t.is_multiple_of(3),
        destructive: t.is_multiple_of(7),
        ..ToolFacts::named(format!("t{t}"))
    };
    let mut principal = PrincipalFacts::user(format!("u{}", i % USERS), &["end_user"]);
    principal.groups = vec![format!("g{}", i % GROUPS), format!("g{}", (i + 1) % GROUPS)];
    AuthzRequest {
        principal,
        action: Action::CallTool,
        resource: PreparedResource::new(ResourceFacts::tool(connector, tool)).unwrap(),
        context: ContextFacts {
            scopes: expand_scopes(&[format!("c{c}:admin")]),
            source_ip: "10.0.0.1".parse().unwrap(),
            time: TimeFacts::at(chrono::DateTime::from_timestamp(1_767_614_400, 0).unwrap()),
            risk: 10,
            confirmed: false,
            token_environment: Environment::Prod,
        },
    }
}

fn big() -> [PolicySource; 2] {
    [
        PolicySource::baseline(),
        PolicySource::new("generated.cedar", generated()),
    ]
}

/// The reference row: the ratio column divides by its p99.
const REFERENCE: &str = "baseline only, Cedar per call (reference)";

fn engines() -> [(&'static str, PolicyEngine); 7] {
    [
        (
            "no policies, Cedar per call (request building)",
            PolicyEngine::load(&[]).unwrap().without_plans(),
        ),
        ("no policies, planned", PolicyEngine::load(&[]).unwrap()),
        (REFERENCE, PolicyEngine::baseline().without_plans()),
        ("baseline only, planned", PolicyEngine::baseline()),
        (
            "baseline + 1,000, no index",
            PolicyEngine::load(&big()).unwrap().without_index(),
        ),
        (
            "baseline + 1,000, indexed, Cedar per call",
            PolicyEngine::load(&big()).unwrap().without_plans(),
        ),
        (
            "baseline + 1,000, indexed + planned (the default)",
            PolicyEngine::load(&big()).unwrap(),
        ),
    ]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn p(ns: &mut [u64], q: f64) -> f64 {
    ns.sort_unstable();
    ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0
}

fn percentiles() {
    const RUNS: usize = 20_000;
    let requests: Vec<AuthzRequest> = (0..1000).map(request).collect();
    let mut base_p99 = 0.0;
    println!("load average before: {}", load_average());
    println!("| engine | p50 µs | p99 µs | p99 / reference p99 |");
    println!("|---|---|---|---|");
    for (name, engine) in engines() {
        // Warm the index caches and the allocator.
        for r in &requests {
            black_box(engine.authorize(r));
        }
        let mut ns: Vec<u64> = (0..RUNS)
            .map(|i| {
                let r = &requests[i % requests.len()];
                let t = Instant::now();
                black_box(engine.authorize(black_box(r)));
                t.elapsed().as_nanos() as u64
            })
            .collect();
        let (p50, p99) = (p(&mut ns, 0.50), p(&mut ns, 0.99));
        if name == REFERENCE {
            base_p99 = p99;
        }
        let ratio = if base_p99 > 0.0 {
            format!("{:.2}", p99 / base_p99)
        } else {
            "-".into()
        };
        let (planned, cedar) = engine.plan_counts();
        let plans = if planned + cedar > 0 {
            format!(" ({planned} plans, {cedar} on Cedar's path)")
        } else {
            String::new()
        };
        println!("| {name}{plans} | {p50:.1} | {p99:.1} | {ratio} |");
    }
    // The first call of each (principal, tool) pair: a fresh engine per round, so that every
    // call makes its principal's entities, its entity store, its index subsets and its plan.
    for (name, planned) in [("indexed, Cedar per call", false), ("the default", true)] {
        let mut cold: Vec<u64> = Vec::new();
        for _ in 0..5 {
            let engine = PolicyEngine::load(&big()).unwrap();
            let engine = if planned {
                engine
            } else {
                engine.without_plans()
            };
            for r in &requests {
                let t = Instant::now();
                black_box(engine.authorize(black_box(r)));
                cold.push(t.elapsed().as_nanos() as u64);
            }
        }
        let (p50, p99) = (p(&mut cold, 0.50), p(&mut cold, 0.99));
        println!(
            "| first call of a pair, baseline + 1,000, {name} (fresh engines) | {p50:.1} | {p99:.1} | {:.2} |",
            p99 / base_p99
        );
    }
    println!("load average after: {}", load_average());
}

fn main() {
    // With a divan filter (`-- build_only`), only the divan benches run.
    if std::env::args().skip(1).all(|a| a.starts_with('-')) {
        percentiles();
    }
    divan::main();
}

#[divan::bench(args = [REFERENCE, "baseline only, planned", "baseline + 1,000, indexed, Cedar per call", "baseline + 1,000, indexed + planned (the default)"])]
fn authorize(bencher: divan::Bencher, which: &str) {
    let engine = engines().into_iter().find(|(n, _)| *n == which).unwrap().1;
    let requests: Vec<AuthzRequest> = (0..1000).map(request).collect();
    for r in &requests {
        black_box(engine.authorize(r));
    }
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % requests.len();
        engine.authorize(black_box(&requests[i]))
    });
}

#[divan::bench]
fn prepare_resource(bencher: divan::Bencher) {
    let facts = ResourceFacts::tool(
        ConnectorFacts::new("crm", "alice"),
        ToolFacts::named("delete_customer"),
    );
    bencher.bench_local(|| PreparedResource::new(black_box(facts.clone())).unwrap());
}

#[divan::bench]
fn build_only(bencher: divan::Bencher) {
    let requests: Vec<AuthzRequest> = (0..1000).map(request).collect();
    let engine = PolicyEngine::load(&[]).unwrap();
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % requests.len();
        portcullis_policy::engine::bench_build_only(&engine, black_box(&requests[i]))
    });
}
