//! `portcullis audit`. (Owned by the audit work, issue 7.)

/// Arguments of `portcullis audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {}

/// Runs `portcullis audit`.
pub fn run(_args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("portcullis audit is not built yet")
}
