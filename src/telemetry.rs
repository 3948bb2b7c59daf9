//! Logging set-up: audit events as bare JSON lines on stdout (or a file), every
//! other log line on stderr.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, Targets, filter_fn};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::audit::TARGET;

/// Install the global subscriber. `RUST_LOG` tunes the operational logs.
pub fn init(audit_file: Option<&Path>) -> anyhow::Result<()> {
    let audit_format = fmt::format()
        .without_time()
        .with_level(false)
        .with_target(false)
        .compact();
    let audit_layer = match audit_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
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
    let logs = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_filter(filter_fn(|meta| meta.target() != TARGET));
    tracing_subscriber::registry().with(audit_layer).with(logs).try_init()?;
    Ok(())
}
