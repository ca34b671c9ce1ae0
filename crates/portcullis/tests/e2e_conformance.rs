//! The MCP conformance suite (@modelcontextprotocol/conformance, server scenarios) against
//! @modelcontextprotocol/server-everything directly and through the gateway, in the same run: the
//! gateway must pass every scenario the bare server passes.

mod common;

use common::*;

#[test]
fn gateway_passes_every_conformance_scenario_the_bare_server_passes() {
    let c = Clients::locate();
    let upstream = start_everything_http(&c);
    let gw = Gateway::start(&config(&[http_connector(
        "everything",
        &format!("{}/mcp", upstream.url),
    )]));

    let direct = conformance(&c, &format!("{}/mcp", upstream.url));
    let through = conformance(&c, &gw.url("/mcp/everything"));
    let direct_passed = passed_scenarios(&direct);
    let through_passed = passed_scenarios(&through);
    println!(
        "conformance {}: server-everything directly passed {}/{}; through portcullis passed {}/{}",
        direct["suite"],
        direct_passed.len(),
        direct["counts"]["total"],
        through_passed.len(),
        through["counts"]["total"]
    );
    println!("direct passed: {direct_passed:?}\ngateway passed: {through_passed:?}");
    assert!(
        direct_passed.len() >= 5,
        "server-everything directly passed only {direct_passed:?}: the suite or the upstream is broken; summary: {direct}"
    );
    let lost: Vec<&String> = direct_passed
        .iter()
        .filter(|s| !through_passed.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "through the gateway these scenarios fail that pass against server-everything directly: {lost:?}\nfailures: {}\ngateway stderr tail:\n{}",
        serde_json::to_string_pretty(&through["failures"]).unwrap_or_default(),
        gw.proc.stderr_tail()
    );
}
