//! `mcp-sts keys generate|rotate|list`.

use mcp_sts::say;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mcp_sts::config::Config;
use mcp_sts::keys::KeyDir;
use mcp_sts::server::{publish_grace, ring_from};
use mcp_sts_contract::clock::{Clock, SystemClock};

use super::time::rfc3339;

/// Key management actions; all read `[keys]` from the configuration.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Generate a signing key if the directory has none of the configured algorithm.
    Generate {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
    /// Generate a new key: published at once, signing after `[keys] activate_after_seconds`
    /// (or at once with --now); deletes keys whose tokens have all expired.
    Rotate {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
        /// Sign with the new key at once (the current key is compromised). Verifiers
        /// that cached the JWKS recently may refuse new tokens until they refetch it.
        #[arg(long)]
        now: bool,
    },
    /// List keys: kid, algorithm, created, and whether each signs, is published or expired.
    List {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
}

/// Run a key action.
pub fn run(action: KeysAction) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now();
    match action {
        KeysAction::Generate { config } => {
            let config = Config::load(&config)?;
            let dir = KeyDir::new(&config.keys.dir);
            let verb = if dir.ensure(config.keys.algorithm, now)? {
                "generated a"
            } else {
                "there already is a"
            };
            say!("{verb} {:?} key in {}", config.keys.algorithm, dir.path().display());
        }
        KeysAction::Rotate { config, now: at_once } => rotate(&Config::load(&config)?, at_once, now)?,
        KeysAction::List { config } => list(&Config::load(&config)?, now)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(config: &Config, at_once: bool, now: u64) -> anyhow::Result<()> {
    let dir = KeyDir::new(&config.keys.dir);
    let previous = ring_from(config, dir.load()?)
        .ok()
        .map(|ring| ring.signing_key(now).kid.clone());
    let key = if at_once {
        dir.generate_immediate(config.keys.algorithm, now)?
    } else {
        dir.generate(config.keys.algorithm, now)?
    };
    let ring = ring_from(config, dir.load()?)?;
    let signs_at = ring.activation(&key);
    say!(
        "new {:?} key {} in {}",
        config.keys.algorithm,
        key.kid,
        dir.path().display()
    );
    // A key made in the same second as the previous one is dated a second later, so
    // an immediate key may start one second from now.
    if at_once || signs_at <= now {
        say!(
            "it signs now (replicas pick it up within {} s)",
            config.keys.reload_seconds
        );
    } else {
        say!(
            "published now, signs from {} (activate_after_seconds = {}), so verifiers fetch it first",
            rfc3339(signs_at),
            config.keys.activate_after_seconds
        );
    }
    if let Some(previous) = previous.filter(|kid| *kid != key.kid) {
        let until = signs_at + publish_grace(config);
        say!(
            "the previous key {previous} stays published until {} so its tokens still verify",
            rfc3339(until)
        );
        if at_once && let Some(file) = dir.file_of(&previous) {
            say!(
                "if it is compromised, withdraw it now (its tokens stop verifying): rm {}",
                file.display()
            );
        }
    }
    for kid in dir.prune(&ring, now)? {
        say!("deleted expired key {kid}");
    }
    Ok(())
}

fn list(config: &Config, now: u64) -> anyhow::Result<()> {
    let dir = KeyDir::new(&config.keys.dir);
    let ring = ring_from(config, dir.load()?)?;
    let grace = publish_grace(config);
    let signing = ring.signing_key(now).kid.clone();
    say!("{:<45} {:<6} {:<20} status", "kid", "alg", "created");
    for key in ring.all() {
        let status = match ring.retired_at(key, now) {
            None if key.kid == signing => "signing".to_owned(),
            None => format!("published, signs from {}", rfc3339(ring.activation(key))),
            Some(at) if at + grace > now => format!("published until {}", rfc3339(at + grace)),
            Some(_) => "expired (deleted by the next rotate)".to_owned(),
        };
        say!(
            "{:<45} {:<6} {:<20} {status}",
            key.kid,
            format!("{:?}", key.algorithm),
            rfc3339(key.created)
        );
    }
    Ok(())
}
