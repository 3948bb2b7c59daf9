//! Subcommands. Each lives in its own file and returns an exit code.

mod config;
mod demo;
mod keys;
mod revoke;
mod secret;
mod serve;
mod store;
mod time;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_sts::telemetry::LogFormat;

/// mcp-sts: OAuth 2.0 Token Exchange for AI agents and MCP servers.
#[derive(Debug, Parser)]
#[command(name = "mcp-sts", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the token service.
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
        /// Format of the operational log on stderr (audit events are always JSON).
        #[arg(long, value_enum, env = "MCP_STS_LOG_FORMAT", default_value = "text")]
        log_format: LogFormat,
    },
    /// Check a configuration file.
    Config {
        #[command(subcommand)]
        action: config::ConfigAction,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: keys::KeysAction,
    },
    /// Revoke, list or reinstate users, sessions, agents, clients and tokens (admin API).
    Revoke(revoke::RevokeArgs),
    /// Inspect the Redis revocation store, or adopt it after it lost its data.
    Store {
        #[command(subcommand)]
        action: store::StoreAction,
    },
    /// Hash or generate client and admin secrets.
    Secret {
        #[command(subcommand)]
        action: secret::SecretAction,
    },
    /// Exchange or verify tokens from the shell.
    Token {
        #[command(subcommand)]
        action: token::TokenAction,
    },
    /// Run the whole flow in one process: IdP, mcp-sts, an MCP server, an agent, three APIs.
    Demo {
        /// Leave everything running afterwards and print URLs and example commands.
        #[arg(long)]
        keep_running: bool,
    },
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, log_format } => serve::run(&config, log_format).await,
        Command::Config { action } => config::run(action).await,
        Command::Keys { action } => keys::run(action),
        Command::Secret { action } => secret::run(action),
        Command::Token { action } => token::run(action).await,
        Command::Demo { keep_running } => demo::run(keep_running).await,
        Command::Revoke(args) => revoke::run(args).await,
        Command::Store { action } => store::run(action).await,
    }
}
