//! `portcullis config schema|check`.

use std::path::PathBuf;

/// Arguments of `portcullis config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of the config file (for editors).
    Schema,
    /// Validate a config file; errors name the file, line and column.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

/// Runs `portcullis config`.
pub fn run(args: ConfigArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        ConfigCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&portcullis_config::schema())?
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => match portcullis_config::load_file(&file) {
            Ok(c) => {
                if let Err(e) = crate::serve_inspect::check_rule_kinds(&c) {
                    eprintln!("{}: {e}", file.display());
                    return Ok(std::process::ExitCode::from(1));
                }
                println!(
                    "{}: valid ({} connector{}: {})",
                    file.display(),
                    c.connectors.len(),
                    if c.connectors.len() == 1 { "" } else { "s" },
                    c.connectors
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(std::process::ExitCode::from(1))
            }
        },
    }
}
