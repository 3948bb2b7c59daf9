//! `mcp-sts serve --config PATH`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use mcp_sts::audit::AuditLog;
use mcp_sts::config::Config;
use mcp_sts::telemetry::LogFormat;
use mcp_sts_contract::clock::SystemClock;

/// Load the configuration, start the service and serve until interrupted.
pub async fn run(config_path: &Path, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let _logs = mcp_sts::telemetry::init_with_traces(config.audit.file.as_deref(), log_format, &config.telemetry)?;
    // The same warnings `config check` prints, from the same source.
    for warning in config.warnings() {
        tracing::warn!(key = %warning.key, "configuration: {}", warning.message);
    }
    let sts = mcp_sts::server::build(config, Arc::new(SystemClock), AuditLog::new()).await?;
    mcp_sts::server::run(sts).await?;
    Ok(ExitCode::SUCCESS)
}
