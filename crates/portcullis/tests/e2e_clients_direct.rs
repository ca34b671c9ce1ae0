//! The real third-party clients against @modelcontextprotocol/server-everything directly (no
//! gateway): proves the clients and their checks are known-good, so that a failure of the same
//! client through the gateway (e2e_gateway.rs) points at the gateway.

mod common;

use common::{Clients, Target, inspector, py_client, start_everything_http, ts_client};

#[test]
fn typescript_sdk_client_exercises_every_feature_of_server_everything_directly() {
    let c = Clients::locate();
    let server = start_everything_http(&c);
    let run = ts_client(
        &c,
        &Target::new(format!("{}/mcp", server.url), "everything"),
    );
    run.assert_ok(&format!(
        "server-everything stderr:\n{}",
        server.stderr_tail()
    ));
}

#[test]
fn python_sdk_client_exercises_every_feature_of_server_everything_directly() {
    let c = Clients::locate();
    let server = start_everything_http(&c);
    let run = py_client(
        &c,
        &Target::new(format!("{}/mcp", server.url), "everything"),
    );
    run.assert_ok(&format!(
        "server-everything stderr:\n{}",
        server.stderr_tail()
    ));
}

#[test]
fn inspector_cli_lists_and_calls_server_everything_directly() {
    let c = Clients::locate();
    let server = start_everything_http(&c);
    let run = inspector(
        &c,
        &Target::new(format!("{}/mcp", server.url), "everything"),
    );
    run.assert_ok(&format!(
        "server-everything stderr:\n{}",
        server.stderr_tail()
    ));
}

#[test]
fn python_sdk_client_on_the_previous_protocol_revision_against_server_everything_directly() {
    let c = Clients::locate();
    let server = start_everything_http(&c);
    let t = Target::new(format!("{}/mcp", server.url), "everything").protocol_version("2025-06-18");
    py_client(&c, &t).assert_ok(&format!(
        "server-everything stderr:\n{}",
        server.stderr_tail()
    ));
}
