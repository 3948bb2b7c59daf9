//! `mcp-sts token exchange|verify`: the client side from a shell. Tokens go to stdout
//! only (the exchange's JSON answer); nothing is logged.

use mcp_sts::say;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mcp_sts_downstream::client::{
    ACCESS_TOKEN_TYPE, ExchangeRequest, JWT_TOKEN_TYPE, Secret, StsClient, StsClientConfig, StsError,
};
use mcp_sts_downstream::verify::{Verifier, VerifierConfig};
use serde_json::json;

/// Token helpers.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Exchange a subject token at mcp-sts (RFC 8693) and print the JSON answer.
    Exchange(ExchangeArgs),
    /// Verify an mcp-sts access token as a downstream service would; print its identity.
    Verify(VerifyArgs),
}

/// `token exchange` options.
#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// mcp-sts base URL (its issuer), or the full token endpoint URL.
    #[arg(long)]
    sts: String,
    /// This caller's client id.
    #[arg(long)]
    client_id: String,
    /// Name of the environment variable holding the client secret.
    #[arg(
        long,
        required_unless_present = "client_secret_file",
        conflicts_with = "client_secret_file"
    )]
    client_secret_env: Option<String>,
    /// File holding the client secret (trailing newline ignored).
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
    /// The subject token, or `-` to read it from standard input.
    #[arg(long)]
    subject_token: String,
    /// The subject token's type URN.
    #[arg(long, default_value = ACCESS_TOKEN_TYPE)]
    subject_token_type: String,
    /// The downstream audience id.
    #[arg(long, required_unless_present = "resource")]
    audience: Option<String>,
    /// The downstream resource URI (RFC 8707).
    #[arg(long)]
    resource: Option<String>,
    /// Scopes to ask for (repeat, or give one space-separated value).
    #[arg(long)]
    scope: Vec<String>,
    /// The acting agent's token, or `-` to read it from standard input.
    #[arg(long)]
    actor_token: Option<String>,
    /// The actor token's type URN.
    #[arg(long, default_value = JWT_TOKEN_TYPE, requires = "actor_token")]
    actor_token_type: String,
}

/// `token verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The access token, or `-` to read it from standard input.
    token: String,
    /// The STS's JWKS URL.
    #[arg(long)]
    jwks_uri: String,
    /// The issuer the token must name.
    #[arg(long)]
    issuer: String,
    /// An audience the token may be for; repeat to accept several (a service's audience
    /// id and its resource URI).
    #[arg(long, required = true)]
    audience: Vec<String>,
}

/// Run a token action.
pub async fn run(action: TokenAction) -> anyhow::Result<ExitCode> {
    match action {
        TokenAction::Exchange(args) => exchange(args).await,
        TokenAction::Verify(args) => verify(args).await,
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read standard input")?;
    Ok(text.trim().to_owned())
}

/// A token argument: itself, or standard input for `-`.
fn token_arg(value: &str) -> anyhow::Result<String> {
    if value == "-" {
        read_stdin()
    } else {
        Ok(value.trim().to_owned())
    }
}

fn client_secret(args: &ExchangeArgs) -> anyhow::Result<Secret> {
    let secret = match (&args.client_secret_env, &args.client_secret_file) {
        (Some(var), _) => std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?,
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, None) => bail!("give --client-secret-env or --client-secret-file"),
    };
    Ok(Secret::new(secret.trim_end_matches(['\n', '\r'])))
}

/// Write `value` as pretty JSON to stdout; a closed pipe ends the command quietly.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    mcp_sts::output::flush();
    Ok(())
}

fn token_endpoint(sts: &str) -> String {
    let sts = sts.trim_end_matches('/');
    if sts.ends_with("/token") {
        sts.to_owned()
    } else {
        format!("{sts}/token")
    }
}

async fn exchange(args: ExchangeArgs) -> anyhow::Result<ExitCode> {
    if args.subject_token == "-" && args.actor_token.as_deref() == Some("-") {
        bail!("only one of --subject-token and --actor-token can be read from standard input");
    }
    let secret = client_secret(&args)?;
    let client = StsClient::new(StsClientConfig::new(token_endpoint(&args.sts), &args.client_id, secret))?;
    let scopes: Vec<String> = args
        .scope
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect();
    let mut request = ExchangeRequest::new(token_arg(&args.subject_token)?)
        .subject_token_type(&args.subject_token_type)
        .scopes(scopes);
    if let Some(audience) = &args.audience {
        request = request.audience(audience);
    }
    if let Some(resource) = &args.resource {
        request = request.resource(resource);
    }
    if let Some(actor) = &args.actor_token {
        request = request.actor(token_arg(actor)?, &args.actor_token_type);
    }
    match client.exchange_uncached(&request).await {
        Ok(minted) => {
            let answer = json!({
                "access_token": minted.access_token.expose(),
                "issued_token_type": minted.issued_token_type,
                "token_type": minted.token_type,
                "expires_in": minted.expires_in.map(|d| d.as_secs()),
                "scope": minted.scope,
            });
            print_json(&answer)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if let StsError::OAuth { code, description, .. } = &error {
                let answer = json!({ "error": code.as_str(), "error_description": description });
                print_json(&answer)?;
            }
            eprintln!("mcp-sts: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let token = token_arg(&args.token)?;
    let mut config = VerifierConfig::new(&args.issuer, "");
    config.audiences = args.audience;
    config.jwks_uri = args.jwks_uri;
    let verifier = Verifier::new(config)?;
    match verifier.verify(&token).await {
        Ok(identity) => {
            print_json(&super::time::readable_times(serde_json::to_value(&identity)?))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("mcp-sts: token refused: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
