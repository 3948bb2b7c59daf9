//! The revocation stream's state file: what a verifier heard, kept across restarts.
//!
//! The transmitter never resends an acknowledged event, so a revocation heard and
//! acknowledged lives only here after a restart. The file is therefore written before
//! the events are acknowledged, and atomically (a temporary file in the same directory,
//! fsync, rename, fsync of the directory): a crash leaves either the old state or the
//! new one, never a torn file. It is small (one line per revocation heard within
//! `retain`) and written only when something new was heard, so a plain blocking write
//! is cheap.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::revocation::RevocationKind;

/// The layout version this code writes and reads.
const VERSION: u32 = 1;

/// Everything the stream must remember across a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StreamState {
    /// The layout version.
    pub version: u32,
    /// The stream at mcp-sts whose events these are; a different stream means a gap.
    pub stream_id: Option<String>,
    /// Tokens issued after this (plus leeway) are covered by what was heard.
    pub covered_since: Option<UnixTime>,
    /// Every revocation heard and still kept.
    pub revoked: Vec<HeardRevocation>,
    /// Reinstatements heard and not yet past `retain` (`revoked_at`: when lifted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifted: Vec<HeardRevocation>,
}

/// One revocation heard on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeardRevocation {
    /// What it names.
    pub kind: RevocationKind,
    /// The identifier it names.
    pub value: String,
    /// The issuer a user or session revocation is limited to; absent (every issuer)
    /// in files written before revocations named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When it was made (the event's `event_timestamp`).
    pub revoked_at: UnixTime,
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum StateError {
    /// Reading, writing, syncing or renaming failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a state this code wrote.
    #[error("state file {0} is not readable (unknown version or damaged)")]
    Unreadable(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The saved state, or `None` when there is no file yet (a first start).
pub(super) fn load(path: &Path) -> Result<Option<StreamState>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let state: StreamState =
        serde_json::from_slice(&bytes).map_err(|_| StateError::Unreadable(path.display().to_string()))?;
    if state.version != VERSION {
        return Err(StateError::Unreadable(path.display().to_string()));
    }
    Ok(Some(state))
}

/// Replace the saved state with `state`, durably, before anything is acknowledged.
pub(super) fn store(path: &Path, state: &StreamState) -> Result<(), StateError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let state = StreamState {
        version: VERSION,
        ..state.clone()
    };
    let bytes = serde_json::to_vec(&state).map_err(|e| io(path)(std::io::Error::other(e)))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io(path))?;
    temp.write_all(&bytes).map_err(io(path))?;
    temp.as_file().sync_all().map_err(io(path))?;
    temp.persist(path).map_err(|e| io(path)(e.error))?;
    // The rename itself is durable only once the directory is synced.
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(path))?;
    Ok(())
}
