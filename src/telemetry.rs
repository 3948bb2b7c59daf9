//! Logging set-up: audit events as bare JSON lines on stdout (or a file), every
//! other log line on stderr, as text (coloured only on a terminal) or JSON.
//!
//! Audit lines are written by a thread of their own, so a slow disk or pipe never
//! stalls a request on the runtime; none is dropped (a full buffer makes emitters
//! wait) and what is buffered is flushed when the [`LogGuard`] drops at shutdown.
//!
//! With `[telemetry] otlp_endpoint` set, spans (see [`crate::spans`]) are exported over
//! OTLP/HTTP too; the logs never show spans, so they read the same with or without.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::filter::{EnvFilter, Targets, filter_fn};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::audit::TARGET;
use crate::config::TelemetryConfig;

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
    #[error(
        "audit.file {path}: cannot create its folder or open it for appending ({source}); make sure this user may write there"
    )]
    AuditFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The OTLP exporter could not be built.
    #[error(transparent)]
    Exporter(#[from] crate::spans::ExporterError),
    /// Another subscriber was installed first.
    #[error("cannot set up logging: {0}")]
    Install(String),
}

/// Keeps the audit writer running; dropping it flushes what is buffered.
#[must_use = "dropping the guard stops the audit writer"]
pub struct LogGuard {
    _audit: tracing_appender::non_blocking::WorkerGuard,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for LogGuard {
    /// Export the spans still batched. On a thread of its own: the exporter's HTTP
    /// client blocks, which the async runtime must not.
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            let flushed = std::thread::spawn(move || provider.shutdown());
            if let Ok(Err(error)) = flushed.join() {
                tracing::warn!(%error, "spans not exported at shutdown");
            }
        }
    }
}

/// Open the audit file for appending, creating its folder first (as the embedded
/// store's is), so a fresh deployment needs no `mkdir`.
fn open_audit_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

/// Install the global subscriber. `RUST_LOG` tunes the operational logs. Hold the
/// guard until the process ends.
pub fn init(audit_file: Option<&Path>, format: LogFormat) -> Result<LogGuard, TelemetryError> {
    init_with_traces(audit_file, format, &TelemetryConfig::default())
}

/// [`init`], and export spans as `traces` says.
pub fn init_with_traces(
    audit_file: Option<&Path>,
    format: LogFormat,
    traces: &TelemetryConfig,
) -> Result<LogGuard, TelemetryError> {
    let audit_format = fmt::format()
        .without_time()
        .with_level(false)
        .with_target(false)
        .compact();
    let sink: Box<dyn std::io::Write + Send> = match audit_file {
        Some(path) => Box::new(open_audit_file(path).map_err(|source| TelemetryError::AuditFile {
            path: path.to_owned(),
            source,
        })?),
        None => Box::new(std::io::stdout()),
    };
    let (audit_writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-sts-audit")
        .finish(sink);
    let audit_layer = fmt::layer()
        .event_format(audit_format)
        .with_ansi(false)
        .with_writer(audit_writer)
        .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO));
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    }
    .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
    .with_filter(filter_fn(|meta| {
        meta.target() != TARGET && !(meta.is_span() && meta.target() == crate::spans::TARGET)
    }));
    let provider = crate::spans::provider(traces)?;
    let spans = provider
        .as_ref()
        .map(|provider| crate::spans::layer(provider).with_filter(filter_fn(|meta| meta.is_span())));
    tracing_subscriber::registry()
        .with(audit_layer)
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    Ok(LogGuard {
        _audit: guard,
        traces: provider,
    })
}
