//! `portcullis demo-server`: the built-in demo connector (`crm`) alone, as an MCP server over
//! stdio or Streamable HTTP. The gateway embeds the same server in process; this subcommand is for
//! trying it with any MCP client, or fronting it as an ordinary connector.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `portcullis demo-server`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("transport").required(true).args(["stdio", "listen"]))]
pub struct DemoArgs {
    /// Serve one MCP session over stdin and stdout (for clients that launch servers as child
    /// processes).
    #[arg(long)]
    stdio: bool,
    /// Serve Streamable HTTP at http://ADDR/mcp, e.g. 127.0.0.1:8090 (port 0 picks a free port).
    /// Prints `listening on http://ADDR/mcp` once bound. Requests must carry a loopback Host
    /// header (a guard against DNS rebinding) unless --allow-host names theirs.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// With --listen: also accept this Host header (a name, or name:port); repeatable. The
    /// address given to --listen is accepted already when it is a specific IP.
    #[arg(long = "allow-host", value_name = "HOST", requires = "listen")]
    allow_hosts: Vec<String>,
}

/// Runs `portcullis demo-server`.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime for demo-server")?;
    runtime.block_on(async move {
        if args.stdio {
            portcullis_demo::serve_stdio()
                .await
                .context("demo-server --stdio")?;
            return Ok(ExitCode::SUCCESS);
        }
        let addr = args.listen.context("give --stdio or --listen ADDR")?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("binding {addr} for demo-server --listen (is the port in use?)")
        })?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let mut hosts = args.allow_hosts;
        if bound.ip().is_unspecified() && hosts.is_empty() {
            eprintln!(
                "note: listening on all interfaces, but only loopback Host headers are accepted; \
                 add --allow-host NAME for each name clients use"
            );
        } else if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
            hosts.push(bound.ip().to_string());
        }
        let router = portcullis_demo::http_router_allowing_hosts(&hosts);
        let shutdown = shutdown_signal()?;
        {
            // Scripts and tests wait for this line to learn the port; flush so they see it now.
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{bound}/mcp").context("writing to stdout")?;
            out.flush().context("flushing stdout")?;
        }
        portcullis_demo::serve_http(listener, router, shutdown)
            .await
            .with_context(|| format!("demo-server on {bound}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Installs the Ctrl-C and (on Unix) SIGTERM handlers now, so that a signal sent as soon as the
/// listening line appears is not lost, and returns a future that completes on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
