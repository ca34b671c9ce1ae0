//! End to end through the real `portcullis` binary with real third-party MCP clients: the MCP
//! Inspector CLI, the official TypeScript SDK and the official Python SDK. Each test starts the
//! gateway with its own config and data dir on an OS-chosen loopback port, then drives:
//! the embedded demo (`/mcp/crm`), @modelcontextprotocol/server-everything behind the gateway as a
//! stdio child and over Streamable HTTP, and the federated endpoint (`/mcp`). Every feature that
//! server-everything exercises must come through intact (tests/clients/profiles.ts lists them).

mod common;

use common::*;

#[test]
fn demo_connector_serves_real_clients_on_its_own_endpoint() {
    let c = Clients::locate();
    let gw = Gateway::start(&config(&[demo_connector("crm")]));
    let t = Target::new(gw.url("/mcp/crm"), "crm");
    let runs = [ts_client(&c, &t), py_client(&c, &t), inspector(&c, &t)];
    assert_all_ok(
        &runs,
        &format!("gateway stderr tail:\n{}", gw.proc.stderr_tail()),
    );
}

#[test]
fn server_everything_as_stdio_child_passes_every_feature_through_the_gateway() {
    let c = Clients::locate();
    let gw = Gateway::start(&config(&[everything_stdio_connector(&c, "everything")]));
    let t = Target::new(gw.url("/mcp/everything"), "everything");
    let runs = [ts_client(&c, &t), py_client(&c, &t), inspector(&c, &t)];
    assert_all_ok(
        &runs,
        &format!("gateway stderr tail:\n{}", gw.proc.stderr_tail()),
    );
}

#[test]
fn server_everything_over_http_passes_every_feature_through_the_gateway() {
    let c = Clients::locate();
    let upstream = start_everything_http(&c);
    let gw = Gateway::start(&config(&[http_connector(
        "remote",
        &format!("{}/mcp", upstream.url),
    )]));
    let t = Target::new(gw.url("/mcp/remote"), "everything");
    let runs = [ts_client(&c, &t), py_client(&c, &t), inspector(&c, &t)];
    assert_all_ok(
        &runs,
        &format!(
            "gateway stderr tail:\n{}\nupstream stderr tail:\n{}",
            gw.proc.stderr_tail(),
            upstream.stderr_tail()
        ),
    );
}

#[test]
fn federated_endpoint_namespaces_and_passes_every_feature() {
    let c = Clients::locate();
    let gw = Gateway::start(&config(&[
        demo_connector("crm"),
        everything_stdio_connector(&c, "everything"),
    ]));
    // resources/read through the federated endpoint has its own test below.
    let everything = Target::new(gw.url("/mcp"), "everything")
        .federated("everything")
        .features("tools,prompts,progress,sampling,elicitation,subscriptions,cancellation,logging");
    let crm = Target::new(gw.url("/mcp"), "crm")
        .federated("crm")
        .features("tools,prompts");
    let runs = [
        ts_client(&c, &everything),
        py_client(&c, &everything),
        inspector(&c, &everything),
        ts_client(&c, &crm),
        py_client(&c, &crm),
        inspector(&c, &crm),
    ];
    assert_all_ok(
        &runs,
        &format!("gateway stderr tail:\n{}", gw.proc.stderr_tail()),
    );
}

/// resources/list gives `{connector}+{uri}` on the federated endpoint; reading such a URI must
/// return contents under the same namespaced URI, or a client cannot match what it asked for.
#[test]
fn federated_resources_read_returns_the_namespaced_uri() {
    let c = Clients::locate();
    let gw = Gateway::start(&config(&[
        demo_connector("crm"),
        everything_stdio_connector(&c, "everything"),
    ]));
    let everything = Target::new(gw.url("/mcp"), "everything")
        .federated("everything")
        .features("resources");
    let crm = Target::new(gw.url("/mcp"), "crm")
        .federated("crm")
        .features("resources");
    let runs = [
        ts_client(&c, &everything),
        py_client(&c, &everything),
        inspector(&c, &everything),
        ts_client(&c, &crm),
        py_client(&c, &crm),
        inspector(&c, &crm),
    ];
    assert_all_ok(
        &runs,
        &format!("gateway stderr tail:\n{}", gw.proc.stderr_tail()),
    );
}

#[test]
fn correlation_id_health_readiness_and_metrics_endpoints_answer() {
    let _ = Clients::locate();
    let gw = Gateway::start(&config(&[demo_connector("crm")]));
    let a = gw.proc.authority();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1"}}}"#;
    let (status, headers, body) = http_post_json(
        &a,
        "/mcp/crm",
        &[("X-Request-Id", "e2e-correlation-42")],
        init,
    )
    .unwrap_or_else(|e| panic!("POST initialize to {a}/mcp/crm failed: {e}"));
    assert_eq!(
        status, 200,
        "initialize on /mcp/crm: HTTP {status}, body: {body}"
    );
    let rid = headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        rid,
        Some("e2e-correlation-42"),
        "the response must echo the client's X-Request-Id; headers: {headers:?}"
    );
    let (status, headers, _) =
        http_post_json(&a, "/mcp/crm", &[], init).expect("second initialize");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-request-id" && !v.is_empty()),
        "a request without X-Request-Id must get a generated one; headers: {headers:?}"
    );
    for path in ["/healthz", "/readyz"] {
        let (status, body) = http_get(&a, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(status, 200, "GET {path}: HTTP {status}, body: {body}");
    }
    let (status, body) = http_get(&a, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "GET /metrics: HTTP {status}");
    assert!(
        body.contains("# TYPE"),
        "/metrics is not Prometheus text: {}",
        &body[..body.len().min(400)]
    );
    // The audit log's counters are served beside the gateway's (AU-6: dropped must stay 0).
    assert!(
        body.contains("portcullis_audit_events_dropped_total 0"),
        "/metrics lacks the audit counters: {body}"
    );
}

/// Several clients at once on one gateway: each must get its own server-to-client requests
/// (sampling, elicitation: the clients count them and expect exactly one each), its own progress
/// and its own notifications. Over HTTP each client session maps to its own upstream session, so
/// every feature applies; a stdio child is one upstream session shared by all clients, where the
/// server's per-session toggles (logging, subscription updates) would interfere, so those two are
/// left out there.
#[test]
fn concurrent_clients_each_get_their_own_requests_and_notifications() {
    let c = Clients::locate();
    let upstream = start_everything_http(&c);
    let gw = Gateway::start(&config(&[
        http_connector("remote", &format!("{}/mcp", upstream.url)),
        everything_stdio_connector(&c, "everything"),
    ]));
    let remote = Target::new(gw.url("/mcp/remote"), "everything");
    let stdio = Target::new(gw.url("/mcp/everything"), "everything")
        .features("tools,resources,prompts,progress,sampling,elicitation,cancellation");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let c = &c;
        let handles = [
            s.spawn(|| ts_client(c, &remote)),
            s.spawn(|| py_client(c, &remote)),
            s.spawn(|| ts_client(c, &stdio)),
            s.spawn(|| py_client(c, &stdio)),
        ];
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    assert_all_ok(
        &runs,
        &format!(
            "gateway stderr tail:\n{}\nupstream stderr tail:\n{}",
            gw.proc.stderr_tail(),
            upstream.stderr_tail()
        ),
    );
}

/// The revision before the current one (2025-06-18) is served too, for every feature, over both
/// kinds of upstream.
#[test]
fn previous_protocol_revision_passes_every_feature_through_the_gateway() {
    let c = Clients::locate();
    let upstream = start_everything_http(&c);
    let gw = Gateway::start(&config(&[
        http_connector("remote", &format!("{}/mcp", upstream.url)),
        everything_stdio_connector(&c, "everything"),
    ]));
    let runs = [
        py_client(
            &c,
            &Target::new(gw.url("/mcp/remote"), "everything").protocol_version("2025-06-18"),
        ),
        py_client(
            &c,
            &Target::new(gw.url("/mcp/everything"), "everything").protocol_version("2025-06-18"),
        ),
    ];
    assert_all_ok(
        &runs,
        &format!(
            "gateway stderr tail:\n{}\nupstream stderr tail:\n{}",
            gw.proc.stderr_tail(),
            upstream.stderr_tail()
        ),
    );
}
