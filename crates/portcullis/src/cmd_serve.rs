//! `portcullis serve`: the gateway, on the embedded default or a config file (OPS-1, OPS-3).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use portcullis_core::{Clock, SystemClock};
use tokio::io::AsyncWriteExt;

/// Arguments of `portcullis serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (YAML). Without it, the embedded default: the demo connector `crm`.
    #[arg(long, short = 'c', env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides the config), e.g. 127.0.0.1:8080; port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// State directory (overrides the config).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Audit policy file (overrides the config's `audit.policy`): data classes, retention,
    /// payloads, memory-off connectors, live sinks.
    #[arg(long, env = "PORTCULLIS_AUDIT_POLICY")]
    pub audit_policy: Option<PathBuf>,
    /// DEVELOPMENT ONLY: serve the MCP endpoints without OAuth, so that anyone who can reach
    /// the port can call every tool. Refused when the config's environment is `prod`.
    #[arg(long)]
    pub no_auth: bool,
}

/// Runs `portcullis serve` until SIGINT or SIGTERM, then drains and flushes.
pub fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut config = match &args.config {
        Some(path) => portcullis_config::load_file(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => portcullis_config::embedded_default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(p) = args.audit_policy {
        config.audit_policy = Some(p);
    }
    if args.no_auth {
        if config.environment == portcullis_config::Environment::Prod {
            anyhow::bail!(
                "--no-auth is refused: the config says `environment: prod`; production endpoints always require OAuth"
            );
        }
        config.auth.enabled = false;
    }
    // MON-5: logs, and traces when an OTLP endpoint is configured, before the runtime starts.
    let _telemetry = crate::logging::init_with_traces(config.monitor.otlp_traces_url.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, args.config.is_none()))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(config: portcullis_config::ValidConfig, embedded: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut audit_config = portcullis_audit::AuditConfig::embedded(&config.data_dir);
    if let Some(p) = &config.audit_policy {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the audit policy {}", p.display()))?;
        portcullis_audit::AuditPolicy::from_yaml(&text, p)?.apply(&mut audit_config);
    }
    audit_config.validate()?;
    let database = audit_config.database.clone();
    let audit = portcullis_audit::AuditLog::open(audit_config, clock.clone())
        .await
        .with_context(|| format!("cannot open the audit log in {}", config.data_dir.display()))?;
    // AU-4: retention runs in the background for as long as the log is open.
    let _retention = audit.spawn_retention();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}: is another program using it? Use --listen to pick another address", config.listen))?;
    let addr = listener.local_addr()?;
    // TLS termination (issue 3): the certificate is loaded before anything is announced.
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::TlsServer::load)
        .transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let connectors: Vec<String> = config.connectors.iter().map(|c| c.name.clone()).collect();
    let audit_metrics = audit.metrics();
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    // Issue 8: the monitor sees every event (after the audit log has it) and guards calls.
    let monitor = if config.monitor.enabled {
        Some(crate::serve_monitor::start(&config, &database, clock.clone()).await?)
    } else {
        None
    };
    let sink: Arc<dyn portcullis_core::EventSink> = match &monitor {
        Some(m) => Arc::new(crate::serve_monitor::TeeSink {
            audit: audit.clone(),
            monitor: m.handle.clone(),
        }),
        None => audit.clone(),
    };
    let auth = if config.auth.enabled {
        Some(
            crate::serve_auth::start(
                &config,
                &database,
                &public_url,
                clock.clone(),
                embedded,
                sink.clone(),
            )
            .await?,
        )
    } else {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--no-auth): anyone who can reach {addr} can call every tool; never use this outside development"
        );
        None
    };
    let trusted_proxies = config.trusted_proxies.clone();
    let policy = if auth.is_some() {
        Some(crate::serve_policy::start(&config, &database, clock.clone()).await?)
    } else {
        None
    };
    // Issue 6: arguments and results are inspected on every connector.
    let inspection = crate::serve_inspect::start(&config, &database, clock.clone()).await?;
    let monitor_metrics = monitor.as_ref().map(|m| m.monitor.clone());
    let mut gateway = portcullis_gateway::Gateway::new(config, sink.clone(), clock)
        .with_extra_metrics(Arc::new(move || {
            let mut text = audit_metrics.render_prometheus();
            if let Some(m) = &monitor_metrics {
                text.push_str(&m.render_prometheus());
            }
            text
        }));
    gateway = gateway.with_inspection(inspection);
    if let Some(m) = &monitor {
        gateway = gateway.with_guard(Arc::new(crate::serve_monitor::Guard(m.monitor.clone())));
    }
    if let Some(a) = &auth {
        gateway = gateway.with_auth(a.gateway_auth.clone());
    }
    if let Some(p) = policy {
        gateway = gateway.with_policy(p);
    }
    let mut router = gateway.router();
    if let Some(a) = &auth {
        router = router.merge(a.router.clone());
    }
    if let (Some(m), Some(a)) = (&monitor, &auth) {
        // MON-4: users report leaks with the token their MCP client uses.
        router = router.merge(crate::serve_monitor::leak_report_router(
            m,
            &a.gateway_auth,
            connectors.clone(),
            sink.clone(),
            Arc::new(SystemClock),
        )?);
    }
    // Outside loopback the authorization server and the MCP endpoints refuse plain HTTP; a
    // trusted proxy's forwarded headers say who the client is and whether it used https.
    if let Some(m) = &monitor {
        router = router.layer(axum::middleware::from_fn_with_state(
            m.monitor.clone(),
            crate::serve_monitor::block_sources,
        ));
    }
    let router = portcullis_gateway::transport::TransportPolicy::new(trusted_proxies)
        .apply(router)
        .layer(axum::middleware::from_fn(
            crate::serve_monitor::trace_requests,
        ));

    // The one line on stdout: tests and scripts read the bound address from it.
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening on {scheme}://{addr}\n").as_bytes())
        .await?;
    out.flush().await?;
    tracing::info!("Portcullis listening on {scheme}://{addr}");
    for c in &connectors {
        tracing::info!("connector {c}: {public_url}/mcp/{c}");
    }
    tracing::info!("all connectors, federated: {public_url}/mcp");
    if embedded {
        tracing::info!(
            "embedded default: point an MCP client at {public_url}/mcp/crm: it is sent to the login page, where the demo user signs in"
        );
    }

    if let Some(tls) = tls {
        tls.serve(listener, router, shutdown_signal()).await?;
    } else {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            // Small JSON-RPC answers must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    }
    tracing::info!("stopped accepting; closing sessions and flushing the audit log");
    gateway.shutdown().await;
    audit.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
