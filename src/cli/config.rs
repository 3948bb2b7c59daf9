//! `mcp-sts config check --config PATH`: every problem in a configuration at once.

use mcp_sts::say;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mcp_sts::config::{Config, EntitlementSource, IssuerConfig, Severity};

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
            say!("error: {error}");
            say!("{}: 1 error", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let problems = config.problems();
    for problem in &problems {
        say!("{problem}");
    }
    for (i, issuer) in config.issuers.iter().enumerate() {
        say!("{}", describe_entitlement(i, issuer));
    }
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = problems.len() - errors;
    say!(
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

/// Which entitlement applies to an issuer's users, and whether it is the default.
fn describe_entitlement(index: usize, issuer: &IssuerConfig) -> String {
    let source = issuer.entitlement();
    let why = match (issuer.entitlement_setting, source) {
        (Some(_), _) => "set explicitly".to_owned(),
        (None, EntitlementSource::TokenScopes) => "the default: roles_claim is empty".to_owned(),
        (None, _) => format!("the default: roles come from the `{}` claim", issuer.roles_claim),
    };
    let meaning = match source {
        EntitlementSource::Roles => "the audience's role_scopes for the user's roles",
        EntitlementSource::TokenScopes => "the subject token's own scope",
        EntitlementSource::Both => "role_scopes for the user's roles plus the subject token's own scope",
    };
    format!(
        "issuers[{index}] {}: entitlement = {:?} ({why}): users are entitled to {meaning}",
        issuer.issuer,
        source.as_str()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
