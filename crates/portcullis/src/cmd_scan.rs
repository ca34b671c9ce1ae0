//! `portcullis scan`. (Owned by the detection work, issue 5.)

/// Arguments of `portcullis scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or folders to scan.
    pub paths: Vec<std::path::PathBuf>,
}

/// Runs `portcullis scan`.
pub fn run(_args: ScanArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("portcullis scan is not built yet")
}
