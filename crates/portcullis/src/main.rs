//! `portcullis`: the one binary. Subcommands live in their own modules (`cmd_*.rs`), one job each.

mod cmd_audit;
mod cmd_config;
mod cmd_demo;
mod cmd_scan;
mod cmd_serve;
mod logging;

use clap::{Parser, Subcommand};

/// Portcullis: security gateway and governance control plane for AI-assistant tool integrations.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (with no config: the embedded default on 127.0.0.1:8080).
    Serve(cmd_serve::ServeArgs),
    /// Validate a config file, or print its JSON Schema.
    Config(cmd_config::ConfigArgs),
    /// Scan files or JSON Lines on stdin for personal data, secrets, internal leaks and injection.
    Scan(cmd_scan::ScanArgs),
    /// Tamper-evident audit log: verify, search, export, retention, erasure.
    Audit(cmd_audit::AuditArgs),
    /// Run the built-in demo connector (`crm`) alone, as an MCP server over stdio or HTTP.
    DemoServer(cmd_demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(args),
        Command::Config(args) => cmd_config::run(args),
        Command::Scan(args) => cmd_scan::run(args),
        Command::Audit(args) => cmd_audit::run(args),
        Command::DemoServer(args) => cmd_demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
