//! `mcp-sts secret hash|generate`: secrets are configured as SHA-256 digests.

use mcp_sts::say;
use std::io::Read;
use std::process::ExitCode;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Subcommand;
use mcp_sts::client_auth::hash_secret;

/// Secret helpers.
#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Print the SHA-256 hex of a secret read from standard input (for `secret_sha256`).
    Hash,
    /// Print a new random secret and its SHA-256 hex.
    Generate,
}

/// Run a secret action.
pub fn run(action: SecretAction) -> anyhow::Result<ExitCode> {
    match action {
        SecretAction::Hash => {
            let mut secret = String::new();
            std::io::stdin().read_to_string(&mut secret)?;
            say!("{}", hash_secret(secret.trim_end_matches(['\n', '\r'])));
        }
        SecretAction::Generate => {
            let mut bytes = [0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("no system randomness"))?;
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            say!("secret:        {secret}");
            say!("secret_sha256: {}", hash_secret(&secret));
        }
    }
    Ok(ExitCode::SUCCESS)
}
