//! `mcp-sts keys generate|rotate|list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mcp_sts::clock::{Clock, SystemClock};
use mcp_sts::config::Config;
use mcp_sts::keys::KeyDir;
use mcp_sts::server::{publish_grace, ring_from};

/// Key management actions; all read `[keys]` from the configuration.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Generate a signing key if the directory has none of the configured algorithm.
    Generate {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
    /// Generate a new signing key (it signs from now on) and delete keys whose tokens have all expired.
    Rotate {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
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
            if dir.ensure(config.keys.algorithm, now)? {
                println!(
                    "generated a {:?} key in {}",
                    config.keys.algorithm,
                    dir.path().display()
                );
            } else {
                println!(
                    "a {:?} key already exists in {}",
                    config.keys.algorithm,
                    dir.path().display()
                );
            }
        }
        KeysAction::Rotate { config } => {
            let config = Config::load(&config)?;
            let dir = KeyDir::new(&config.keys.dir);
            let key = dir.generate(config.keys.algorithm, now)?;
            println!("new signing key {} ({:?})", key.kid, config.keys.algorithm);
            let ring = ring_from(&config, dir.load()?)?;
            for kid in dir.prune(&ring, now)? {
                println!("deleted expired key {kid}");
            }
        }
        KeysAction::List { config } => {
            let config = Config::load(&config)?;
            let dir = KeyDir::new(&config.keys.dir);
            let ring = ring_from(&config, dir.load()?)?;
            let grace = publish_grace(&config);
            let signing = ring.signing_key(now).kid.clone();
            println!("{:<45} {:<6} {:<12} status", "kid", "alg", "created");
            for key in ring.all() {
                let status = match ring.retired_at(key, now) {
                    None if key.kid == signing => "signing".to_owned(),
                    None => "published, not signing yet".to_owned(),
                    Some(at) if at + grace > now => format!("published until {}", at + grace),
                    Some(_) => "expired (deleted by the next rotate)".to_owned(),
                };
                println!(
                    "{:<45} {:<6} {:<12} {status}",
                    key.kid,
                    format!("{:?}", key.algorithm),
                    key.created
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
