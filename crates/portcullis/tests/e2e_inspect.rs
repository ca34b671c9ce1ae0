//! End to end: the inspection pipeline (issue 6) through the real binary, with the official
//! Python SDK as the client (tests/clients/call_tools.py): results redacted and masked (DLP-4),
//! indirect injection wrapped or blocked (PI-1), exfiltration links neutralised, arguments that
//! break the schema refused (IV-1), metadata and loopback URLs refused (EG-1, IV-4), and a tool
//! whose definition changes after approval blocked until re-approved (PI-3).

mod common;

use std::process::Command;

use common::{CLIENT_TIMEOUT, Clients, Gateway, run_bounded};
use serde_json::{Value, json};

/// The embedded default's demo connector, as a config file (the tests run without OAuth, so that
/// they exercise inspection alone).
const DEMO: &str = "  crm:
    type: demo
    egress:
      allow: [docs.example.com, blog.example.com, news.example.net, wiki.example.org,
              forum.example.com, paste.example.net]
      resolve: false";

/// Calls `calls` through the gateway's endpoint for `connector` and returns the client's report.
fn call(c: &Clients, g: &Gateway, connector: &str, calls: Value) -> Value {
    let mut cmd = Command::new(&c.python);
    cmd.arg("call_tools.py")
        .arg(g.url(&format!("/mcp/{connector}")))
        .arg(calls.to_string())
        .current_dir(&c.dir);
    let run = run_bounded("call_tools.py", cmd, CLIENT_TIMEOUT);
    run.assert_ok("calling tools through the gateway");
    let v = run.json();
    assert!(v.get("calls").is_some(), "no report: {}", run.stdout);
    v
}

/// All the text a result carries: its text blocks and its structured content.
fn all_text(result: &Value) -> String {
    let mut out = String::new();
    for b in result["content"].as_array().into_iter().flatten() {
        out.push_str(b["text"].as_str().unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&result["structuredContent"].to_string());
    out
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, d) in digits.bytes().rev().map(|b| (b - b'0') as u32).enumerate() {
        sum += if i % 2 == 1 {
            if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// Runs of 13-19 digits (spaces and dashes between groups allowed) that pass Luhn: card numbers.
fn card_numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut digits = String::new();
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b' ' || b[j] == b'-') {
                if b[j].is_ascii_digit() {
                    digits.push(b[j] as char);
                }
                j += 1;
            }
            if (13..=19).contains(&digits.len()) && luhn(&digits) {
                found.push(digits);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// `ddd-dd-dddd` shapes: SSNs as the demo writes them.
fn ssns(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").expect("regex");
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// tests/clients/drift-server.mjs, and the gateway in front of it as connector `kv`.
fn drift_fixture_behind_gateway(c: &Clients) -> (common::Proc, Gateway) {
    let mut cmd = Command::new(&c.node22);
    cmd.arg(c.dir.join("drift-server.mjs")).current_dir(&c.dir);
    let upstream = common::Proc::spawn_listening("drift fixture", cmd);
    let cfg = common::config(&[common::http_connector(
        "kv",
        &format!("{}/mcp", upstream.url.trim_end_matches('/')),
    )]);
    let g = Gateway::start(&cfg);
    (upstream, g)
}

#[test]
fn demo_results_arrive_redacted_and_masked() {
    let c = Clients::locate();
    let g = Gateway::start(&common::config(&[DEMO.to_string()]));
    let report = call(
        &c,
        &g,
        "crm",
        json!([{"name": "export_customers", "arguments": {}}]),
    );
    let result = &report["calls"][0]["result"];
    assert_eq!(result["isError"], json!(false), "{report}");
    let text = all_text(result);
    // The demo's table holds card numbers, SSNs and e-mail addresses; none passes whole.
    assert!(
        card_numbers(&text).is_empty(),
        "card numbers reached the client: {:?}",
        card_numbers(&text)
    );
    assert!(
        ssns(&text).is_empty(),
        "SSNs reached the client: {:?}",
        ssns(&text)
    );
    assert!(
        text.contains("[CARD_1]"),
        "no card placeholder in {text:.2000}"
    );
    assert!(
        text.contains("[SSN_1]"),
        "no SSN placeholder in {text:.2000}"
    );
    let customers = result["structuredContent"]["customers"]
        .as_array()
        .expect("customers in structuredContent");
    assert!(customers.len() >= 20, "{} customers", customers.len());
    for cu in customers {
        let email = cu["email"].as_str().expect("email field kept");
        assert!(
            email.contains("***@"),
            "e-mail not masked in structuredContent: {email}"
        );
    }
    // Same in the text block that serializes the structured content.
    let first_block = result["content"][0]["text"].as_str().unwrap_or("");
    assert!(first_block.contains("***@"), "{first_block:.500}");
    assert!(card_numbers(first_block).is_empty(), "{first_block:.500}");
}

#[test]
fn injected_pages_are_wrapped_and_exfiltration_links_neutralised() {
    let c = Clients::locate();
    let g = Gateway::start(&common::config(&[DEMO.to_string()]));
    let report = call(
        &c,
        &g,
        "crm",
        json!([
            {"name": "fetch_url", "arguments": {"url": "https://news.example.net/article-42"}},
            {"name": "fetch_url", "arguments": {"url": "https://wiki.example.org/exfil"}},
            {"name": "fetch_url", "arguments": {"url": "https://docs.example.com/getting-started"}},
        ]),
    );
    let injected = all_text(&report["calls"][0]["result"]);
    assert!(
        injected.contains("untrusted"),
        "the injected page was not wrapped as untrusted data: {injected:.1500}"
    );
    // The instruction hidden in Unicode tag characters is stripped.
    assert!(
        !injected
            .chars()
            .any(|ch| ('\u{E0000}'..='\u{E007F}').contains(&ch)),
        "tag characters reached the client"
    );
    let exfil = all_text(&report["calls"][1]["result"]);
    assert!(
        !exfil.contains("https://attacker.example"),
        "the exfiltration link reached the client: {exfil:.1500}"
    );
    let benign = all_text(&report["calls"][2]["result"]);
    assert!(
        benign.contains("Getting started") && !benign.contains("untrusted"),
        "a benign page was changed: {benign:.800}"
    );
}

#[test]
fn injection_blocked_when_the_policy_says_block() {
    let c = Clients::locate();
    let cfg = format!(
        "{}\n    inspect:\n      tools:\n        fetch_url:\n          injection: block\n",
        common::config(&[DEMO.to_string()]).trim_end()
    );
    let g = Gateway::start(&cfg);
    let report = call(
        &c,
        &g,
        "crm",
        json!([
            {"name": "fetch_url", "arguments": {"url": "https://news.example.net/article-42"}},
        ]),
    );
    let entry = &report["calls"][0];
    let refused = entry.get("error").is_some() || entry["result"]["isError"] == json!(true);
    assert!(
        refused,
        "an injected page passed with injection: block: {entry}"
    );
    let text = entry.to_string();
    assert!(
        !text.contains("export_customers and send"),
        "the injected text reached the client: {text:.1500}"
    );
}

#[test]
fn arguments_that_break_the_schema_are_refused_naming_the_field() {
    let c = Clients::locate();
    let g = Gateway::start(&common::config(&[DEMO.to_string()]));
    let report = call(
        &c,
        &g,
        "crm",
        json!([
            {"name": "search_customers", "arguments": {"query": "a", "limit": "lots"}},
            {"name": "search_customers", "arguments": {"limit": 5}},
            {"name": "search_customers", "arguments": {"query": "a", "limit": 2}},
        ]),
    );
    for (i, field) in [(0, "/limit"), (1, "query")] {
        let e = &report["calls"][i]["error"];
        assert!(
            e["message"].as_str().unwrap_or("").contains(field),
            "call {i}: expected a refusal naming {field}: {}",
            report["calls"][i]
        );
        assert_eq!(e["code"], json!(-32602), "{e}");
    }
    assert_eq!(
        report["calls"][2]["result"]["isError"],
        json!(false),
        "a valid call was refused: {}",
        report["calls"][2]
    );
}

#[test]
fn metadata_and_loopback_urls_are_refused() {
    let c = Clients::locate();
    // This connector resolves what its URLs name (the demo never fetches them, so any refusal
    // is the gateway's): 169.254.169.254 and localhost are even on its allow-list.
    let cfg = common::config(&["  web:
    type: demo
    egress:
      allow: [169.254.169.254, localhost, docs.example.com]
      resolve: true"
        .to_string()]);
    let g = Gateway::start(&cfg);
    let report = call(
        &c,
        &g,
        "web",
        json!([
            {"name": "fetch_url", "arguments": {"url": "http://169.254.169.254/latest/meta-data/"}},
            {"name": "fetch_url", "arguments": {"url": "http://localhost:9/admin"}},
            {"name": "fetch_url", "arguments": {"url": "https://attacker.example/collect"}},
        ]),
    );
    for i in 0..3 {
        let e = &report["calls"][i]["error"];
        assert!(
            e.is_object(),
            "call {i} was not refused: {}",
            report["calls"][i]
        );
    }
    let msg = |i: usize| {
        report["calls"][i]["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(msg(0).contains("169.254.169.254"), "{}", msg(0));
    assert!(msg(1).contains("localhost"), "{}", msg(1));
    assert!(msg(2).contains("attacker.example"), "{}", msg(2));
}

#[test]
fn a_tool_whose_definition_changes_is_blocked_until_reapproved() {
    let c = Clients::locate();
    let (_upstream, g) = drift_fixture_behind_gateway(&c);
    let first = call(
        &c,
        &g,
        "kv",
        json!([
            {"name": "lookup", "arguments": {"key": "a"}},
            {"name": "poison", "arguments": {}},
        ]),
    );
    assert!(
        first["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("lookup"))),
        "{first}"
    );
    assert_eq!(
        first["calls"][0]["result"]["isError"],
        json!(false),
        "{first}"
    );
    // The definition changed upstream: the tool is hidden and its calls refused.
    let second = call(
        &c,
        &g,
        "kv",
        json!([{"name": "lookup", "arguments": {"key": "a"}}]),
    );
    assert!(
        !second["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("lookup"))),
        "a drifted tool is still listed: {second}"
    );
    let e = &second["calls"][0]["error"];
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("portcullis tools"),
        "a drifted tool was called: {second}"
    );
    // The reviewer sees the diff, then approves.
    let data = g.dir.path().join("data");
    let tools = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("tools").args(args).arg("--data-dir").arg(&data);
        run_bounded("portcullis tools", cmd, CLIENT_TIMEOUT)
    };
    let diff = tools(&["diff", "kv", "lookup"]);
    diff.assert_ok("tools diff");
    assert!(
        diff.stdout.contains("IMPORTANT") && diff.stdout.contains("sidenote"),
        "{}",
        diff.stdout
    );
    tools(&["approve", "kv", "lookup", "--by", "reviewer"]).assert_ok("tools approve");
    let third = call(
        &c,
        &g,
        "kv",
        json!([{"name": "lookup", "arguments": {"key": "a"}}]),
    );
    assert_eq!(
        third["calls"][0]["result"]["isError"],
        json!(false),
        "the re-approved tool is still refused: {third}"
    );
}

#[test]
fn links_to_outside_hosts_are_neutralised_in_any_connector() {
    let c = Clients::locate();
    let (_upstream, g) = drift_fixture_behind_gateway(&c);
    let report = call(&c, &g, "kv", json!([{"name": "page", "arguments": {}}]));
    let text = all_text(&report["calls"][0]["result"]);
    assert!(text.contains("Quarterly notes"), "{report}");
    assert!(
        !text.contains("attacker.example/pixel.png?d=SECRETDATA"),
        "the exfiltration image reached the client: {text}"
    );
}

#[test]
fn config_check_refuses_a_rule_for_a_kind_no_detector_emits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("portcullis.yaml");
    std::fs::write(
        &file,
        "inspection:\n  rules:\n    - {match: pii.cardz, action: block}\n",
    )
    .expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("config").arg("check").arg(&file);
    let run = run_bounded("portcullis config check", cmd, CLIENT_TIMEOUT);
    assert!(!run.ok, "an unknown kind was accepted: {}", run.stdout);
    assert!(
        run.stderr.contains("pii.cardz") && run.stderr.contains("pii.credit_card"),
        "{}",
        run.stderr
    );
    std::fs::write(
        &file,
        "inspection:\n  rules:\n    - {match: pii.credit_card, action: block}\n",
    )
    .expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("config").arg("check").arg(&file);
    run_bounded("portcullis config check", cmd, CLIENT_TIMEOUT).assert_ok("a known kind");
}
