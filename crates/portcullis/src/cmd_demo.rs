//! `portcullis demo-server`. (Owned by the demo connector work.)

/// Arguments of `portcullis demo-server`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs `portcullis demo-server`.
pub fn run(_args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("portcullis demo-server is not built yet")
}
