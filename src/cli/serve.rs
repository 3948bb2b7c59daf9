//! `mcp-sts serve --config PATH`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mcp_sts::audit::AuditLog;
use mcp_sts::clock::SystemClock;
use mcp_sts::config::Config;

/// Load the configuration, start the service and serve until interrupted.
pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    mcp_sts::telemetry::init(config.audit.file.as_deref()).context("cannot set up logging")?;
    let sts = mcp_sts::server::build(config, Arc::new(SystemClock), AuditLog::new()).await?;
    mcp_sts::server::run(sts).await?;
    Ok(ExitCode::SUCCESS)
}
