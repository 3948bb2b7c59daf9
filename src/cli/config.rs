//! `mcp-sts config check --config PATH`: every problem in a configuration at once.

use mcp_sts::say;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use std::time::Duration;

use mcp_sts::config::{Config, EntitlementSource, IssuerConfig, Severity};
use mcp_sts::inbound::Issuers;
use mcp_sts::issuer_keys::fetch_all;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_contract::jose::JwksConfig;

/// Configuration actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every error and warning (not only the first); exit non-zero on errors.
    Check {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
        /// Also perform every issuer's discovery and key fetch, and say what was found;
        /// an issuer without usable keys is an error.
        #[arg(long)]
        online: bool,
    },
}

/// Run a configuration action.
pub async fn run(action: ConfigAction) -> anyhow::Result<ExitCode> {
    let ConfigAction::Check { config: path, online } = action;
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
    let mut errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = problems.len() - errors;
    if online {
        errors += check_online(&config).await?;
    }
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

/// Fetch every issuer's keys as the service does at start; print what was found.
/// Returns how many issuers have no usable key.
async fn check_online(config: &Config) -> anyhow::Result<usize> {
    let http = mcp_sts_contract::fetch::http_client(Duration::from_secs(5))?;
    let issuers = Issuers::new(&config.issuers, &http, &JwksConfig::default());
    let found = fetch_all(&issuers, SystemClock.now()).await;
    let mut failed = 0;
    for (i, issuer) in config.issuers.iter().enumerate() {
        let Some(found) = found.iter().find(|f| f.issuer == issuer.issuer) else {
            continue;
        };
        let source = match &issuer.jwks_uri {
            Some(uri) => format!("JWKS {uri}"),
            None => "discovery".to_owned(),
        };
        match &found.keys {
            Ok(kids) => say!(
                "online: `issuers[{i}]` {}: {source}: {} usable key{} (kid {})",
                issuer.issuer,
                kids.len(),
                plural(kids.len()),
                kids.iter()
                    .map(|k| if k.is_empty() { "(none)" } else { k.as_str() })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(why) => {
                failed += 1;
                say!(
                    "error: `issuers[{i}]`: {} via {source}: no usable key: {why}",
                    issuer.issuer
                );
            }
        }
    }
    Ok(failed)
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
