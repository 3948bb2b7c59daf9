//! Logging set-up: audit events as bare JSON lines on stdout (or a file), every
//! other log line on stderr, as text (coloured only on a terminal) or JSON.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, Targets, filter_fn};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::audit::TARGET;

/// How the operational log (not the audit log) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The audit file could not be opened for appending.
    #[error("audit.file {path}: cannot open it for appending ({source}); make sure its folder exists and is writable")]
    AuditFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another subscriber was installed first.
    #[error("cannot set up logging: {0}")]
    Install(String),
}

/// Install the global subscriber. `RUST_LOG` tunes the operational logs.
pub fn init(audit_file: Option<&Path>, format: LogFormat) -> Result<(), TelemetryError> {
    let audit_format = fmt::format()
        .without_time()
        .with_level(false)
        .with_target(false)
        .compact();
    let audit_layer = match audit_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| TelemetryError::AuditFile {
                    path: path.to_owned(),
                    source,
                })?;
            fmt::layer()
                .event_format(audit_format)
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .boxed()
        }
        None => fmt::layer()
            .event_format(audit_format)
            .with_ansi(false)
            .with_writer(std::io::stdout)
            .boxed(),
    }
    .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO));
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    }
    .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
    .with_filter(filter_fn(|meta| meta.target() != TARGET));
    tracing_subscriber::registry()
        .with(audit_layer)
        .with(logs)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))
}
