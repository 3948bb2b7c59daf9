//! What the downstream services saw: one audit line per decision, shared by the demo.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use mcp_sts_downstream::verify::ExecutionIdentity;

/// One downstream decision, as its service recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEntry {
    /// The service that decided (`orders-api`, `inventory-api`, `legacy-api`).
    pub service: &'static str,
    /// The user the request was for, from the verified token.
    pub user: String,
    /// The delegation mode of the token.
    pub mode: String,
    /// The audit line, e.g. `alice@example.com via agent claude-desktop (orders-mcp) read order 42`.
    pub line: String,
}

/// The shared, append-only audit trail of the demo's downstream services.
#[derive(Debug, Clone, Default)]
pub struct AuditTrail(Arc<Mutex<Vec<TrailEntry>>>);

impl AuditTrail {
    /// Record that `identity` did `action` at `service`.
    pub fn record(&self, service: &'static str, identity: &ExecutionIdentity, action: &str) {
        let entry = TrailEntry {
            service,
            user: identity.user().to_owned(),
            mode: identity.delegation_mode().as_str().to_owned(),
            line: format!("{} {action}", identity.describe()),
        };
        tracing::info!(target: "demo", service, line = %entry.line, mode = %entry.mode, "downstream decision");
        if let Ok(mut entries) = self.0.lock() {
            entries.push(entry);
        }
    }

    /// Every entry so far, oldest first.
    pub fn entries(&self) -> Vec<TrailEntry> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// A refusal by a downstream API: JSON `{"error", "error_description"}` with a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short machine-readable code.
    pub code: &'static str,
    /// What happened, for people.
    pub description: String,
}

impl ApiError {
    /// A refusal with this status, code and description.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "error_description": self.description });
        (self.status, Json(body)).into_response()
    }
}

/// Serve `router` on `listener` in the background until `shutdown` flips to true.
pub fn spawn_server(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    name: &'static str,
) {
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::error!(%error, service = name, "demo service stopped");
        }
    });
}
