//! Audit events: one JSON object per decision, on the `audit` tracing target.
//!
//! The binary routes that target to stdout (or `[audit] file`) as bare JSON lines;
//! everything else goes to stderr. Events carry names and ids, never a raw token.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The tracing target of audit events.
pub(crate) const TARGET: &str = "audit";

/// One audited decision.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    /// RFC 3339 time of the decision.
    pub time: String,
    /// What was decided: `token_exchange`, `revoke`, `introspect`, `admin_revoke`, ...
    pub event: &'static str,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// For denials: the error code and rule, e.g. `invalid_request:subject_token.expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The authenticated (or claimed) client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The actor chain, current actor first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actor_chain: Vec<String>,
    /// The audience asked for or granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The delegation mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For `invalid_scope`: the requested scopes that were refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_scope: Option<String>,
    /// The minted (or affected) token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The trace id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    /// For revocations: what kind and value, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Free text given with an admin action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// A new event of `event` kind at `now`.
    pub fn new(event: &'static str, now: u64) -> Self {
        let time = chrono::DateTime::from_timestamp(i64::try_from(now).unwrap_or(i64::MAX), 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        Self {
            time,
            event,
            decision: "deny",
            ..Self::default()
        }
    }
}

/// Longest caller-supplied identifier a log line repeats (in characters).
const MAX_LOGGED_CHARS: usize = 128;

/// A caller-supplied identifier (a claimed client id) as a log line may carry it:
/// control characters, quotes and backslashes escaped, at most 128 characters, a
/// longer one cut and marked with `...`. Nothing a caller sends can forge a line.
pub(crate) fn loggable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_LOGGED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_LOGGED_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// Emits audit events; tests may attach a tap to read them back.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    tap: Option<Arc<Mutex<Vec<serde_json::Value>>>>,
}

impl AuditLog {
    /// A log that only emits on the tracing target.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that also keeps every event in memory, for tests.
    pub fn with_tap() -> (Self, Arc<Mutex<Vec<serde_json::Value>>>) {
        let tap = Arc::new(Mutex::new(Vec::new()));
        (Self { tap: Some(tap.clone()) }, tap)
    }

    /// Emit one event: serialised once, written off the request path (see
    /// `telemetry`).
    pub fn emit(&self, event: &AuditEvent) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        tracing::info!(target: TARGET, "{line}");
        if let Some(tap) = &self.tap
            && let Ok(value) = serde_json::from_str(&line)
            && let Ok(mut events) = tap.lock()
        {
            events.push(value);
        }
    }
}
