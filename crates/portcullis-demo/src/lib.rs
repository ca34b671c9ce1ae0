//! The built-in demo connector, `crm`: a real MCP server over deterministic, synthetic customer
//! data, so that `portcullis serve` with no configuration shows every defence at work (OPS-1).
//!
//! The server (`serverInfo.name` = [`SERVER_NAME`]) offers five tools —
//! `search_customers`, `get_customer` (read-only), `delete_customer` (destructive), `fetch_url`
//! (open-world, over the built-in [`demo_pages`]) and `export_customers` (bulk extraction) — plus
//! the resource [`SCHEMA_URI`] and the prompt [`SUMMARIZE_PROMPT`].
//!
//! It runs three ways:
//! - [`serve_in_process`]: inside the gateway, over an in-memory duplex pipe that carries
//!   newline-delimited JSON-RPC exactly as a stdio child's pipes would;
//! - [`serve_stdio`]: `portcullis demo-server --stdio`;
//! - [`http_router`] / [`serve_http`]: Streamable HTTP at `/mcp`, `portcullis demo-server --listen`.

mod data;
mod server;
mod web;

use std::future::Future;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::local::LocalSessionManager,
};

pub use data::{Address, CUSTOMER_COUNT, Customer, Plan, SEED, customers, generate_customers};
pub use server::{
    CrmServer, CustomerList, DEFAULT_SEARCH_LIMIT, Deleted, MAX_SEARCH_LIMIT, SCHEMA_URI,
    SERVER_NAME, SUMMARIZE_PROMPT, Table, customer_schema,
};
pub use web::{
    ATTACKER_HOST, BIDI_TEXT, ENCODED_TEXT, ENCODED_URL, EXFILTRATION_URL, GETTING_STARTED_URL,
    HIDDEN_HTML_URL, HIDDEN_TAG_TEXT, INJECTION_URL, PRICING_URL, demo_page, demo_pages,
    to_unicode_tags,
};

/// The rmcp version this crate is built against, re-exported so that callers (and tests of the
/// binary) can speak to the server with exactly the same protocol types.
pub use rmcp;

/// Size of each direction's buffer of the in-process pipe. Large enough that a whole
/// `export_customers` result (~195 KB of JSON-RPC) never waits on the reader mid-message.
pub const IN_PROCESS_BUFFER: usize = 1 << 20;

/// Why serving the demo connector failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The MCP session never started: the client closed the connection or did not send a valid
    /// `initialize` first.
    #[error(
        "the demo crm server could not start its MCP session: {0}; check that the client sends `initialize` first"
    )]
    Initialize(#[from] Box<rmcp::service::ServerInitializeError>),
    /// The server task stopped abnormally (it panicked or was aborted).
    #[error("the demo crm server stopped abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The HTTP listener failed.
    #[error("the demo crm HTTP listener failed: {0}; check the address is free and allowed")]
    Io(#[from] std::io::Error),
}

/// Starts a fresh server instance (its own copy of the table) on a spawned Tokio task and returns
/// the client end of an in-memory duplex pipe to it. The gateway speaks newline-delimited JSON-RPC
/// over that end exactly as over a stdio child (`initialize`, `notifications/initialized`,
/// `tools/list`, `tools/call`, ...). Dropping the returned end closes the pipe, which ends the
/// session and the task.
///
/// # Panics
///
/// When called outside a Tokio runtime.
pub fn serve_in_process() -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(IN_PROCESS_BUFFER);
    let server = CrmServer::new();
    tokio::spawn(async move {
        match server.serve(ours).await {
            Ok(running) => {
                if let Err(e) = running.waiting().await {
                    tracing::warn!(error = %e, "demo crm: in-process session ended abnormally");
                }
            }
            // A client that hangs up before `initialize` is not an error worth more than debug.
            Err(e) => tracing::debug!(error = %e, "demo crm: in-process session did not start"),
        }
    });
    theirs
}

/// Serves one fresh server instance over this process's stdin and stdout until the client closes
/// stdin. Nothing else may write to stdout meanwhile: it carries the protocol.
pub async fn serve_stdio() -> Result<(), DemoError> {
    let running = CrmServer::new()
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(Box::new)?;
    running.waiting().await?;
    Ok(())
}

/// The demo server as Streamable HTTP at `/mcp` (stateful sessions, `Mcp-Session-Id`). Every
/// session of one router works on the same copy of the table, so a customer deleted in one session
/// is gone for the others (and a stateless request sees the same data as a session). The `Host`
/// header must name a loopback host, as a guard against DNS rebinding.
pub fn http_router() -> axum::Router {
    http_router_allowing_hosts(&[])
}

/// [`http_router`] that also accepts the `Host` names (or `host:port` authorities) in
/// `extra_hosts`, for a server reached under another name than loopback.
pub fn http_router_allowing_hosts(extra_hosts: &[String]) -> axum::Router {
    let table = Table::fresh();
    let mut config = StreamableHttpServerConfig::default().with_legacy_session_mode(true);
    config.allowed_hosts.extend(extra_hosts.iter().cloned());
    let service: StreamableHttpService<CrmServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(CrmServer::with_table(table.clone())),
        Default::default(),
        config,
    );
    axum::Router::new().nest_service("/mcp", service)
}

/// Serves `router` (usually [`http_router`]) on `listener` until `shutdown` completes, then lets
/// open requests finish.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    use axum::serve::ListenerExt;
    // Streamed responses are written in several small pieces: without TCP_NODELAY, Nagle's
    // algorithm and delayed ACKs add tens of milliseconds per call.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "demo crm: could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
