//! `mcp-sts config check --config PATH`: every problem in a configuration at once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mcp_sts::config::{Config, Severity};

/// Configuration actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every error and warning (not only the first); exit non-zero on errors.
    Check {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
}

/// Run a configuration action.
pub fn run(action: ConfigAction) -> anyhow::Result<ExitCode> {
    let ConfigAction::Check { config: path } = action;
    let config = match Config::parse_file(&path) {
        Ok(config) => config,
        Err(error) => {
            // Syntax and type errors stop parsing, so there is only one to show.
            println!("error: {error}");
            println!("{}: 1 error", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let problems = config.problems();
    for problem in &problems {
        println!("{problem}");
    }
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = problems.len() - errors;
    println!(
        "{}: {errors} error{}, {warnings} warning{}",
        path.display(),
        plural(errors),
        plural(warnings)
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
