//! `portcullis`: the one binary. Subcommands live in their own modules (`cmd_*.rs`), one job each.

mod cmd_alerts;
mod cmd_approvals;
mod cmd_audit;
mod cmd_auth;
mod cmd_config;
mod cmd_demo;
mod cmd_permissions;
mod cmd_policy;
mod cmd_scan;
mod cmd_serve;
mod cmd_tools;
mod logging;
mod serve_auth;
mod serve_inspect;
mod serve_monitor;
mod serve_policy;
mod tls;

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
    /// Local users of the built-in authorization server: add, list, disable, enable.
    Users(cmd_auth::UsersArgs),
    /// Users' consents to OAuth clients: list, revoke.
    Consents(cmd_auth::ConsentsArgs),
    /// Registered OAuth clients: list, revoke.
    Clients(cmd_auth::ClientsArgs),
    /// Access tokens of the built-in authorization server: mint one for tests or break-glass.
    Tokens(cmd_auth::TokensArgs),
    /// Cedar policy: print the schema, check policy files, explain a decision, run policy tests.
    Policy(cmd_policy::PolicyArgs),
    /// Calls waiting for a person's confirmation: list, approve, deny.
    Approvals(cmd_approvals::ApprovalsArgs),
    /// Alerts from anomaly detection: list, show, ack, report-leak.
    Alerts(cmd_alerts::AlertsArgs),
    /// Leak reports as incidents: report, list, show.
    Incidents(cmd_alerts::IncidentsArgs),
    /// Least-privilege review: granted scopes and tools that went unused.
    Permissions(cmd_permissions::PermissionsArgs),
    /// Pinned tool definitions: list, diff, approve a changed definition (PI-3).
    Tools(cmd_tools::ToolsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(args),
        Command::Config(args) => cmd_config::run(args),
        Command::Scan(args) => cmd_scan::run(args),
        Command::Audit(args) => cmd_audit::run(args),
        Command::DemoServer(args) => cmd_demo::run(args),
        Command::Users(args) => cmd_auth::run_users(args),
        Command::Consents(args) => cmd_auth::run_consents(args),
        Command::Clients(args) => cmd_auth::run_clients(args),
        Command::Tokens(args) => cmd_auth::run_tokens(args),
        Command::Policy(args) => cmd_policy::run(args),
        Command::Approvals(args) => cmd_approvals::run(args),
        Command::Alerts(args) => cmd_alerts::run_alerts(args),
        Command::Incidents(args) => cmd_alerts::run_incidents(args),
        Command::Permissions(args) => cmd_permissions::run(args),
        Command::Tools(args) => cmd_tools::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
