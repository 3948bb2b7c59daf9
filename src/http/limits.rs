//! What a connection and the request it carries may cost, from `[server]`: read by
//! the connection loop and by the edge that reads each body.

use std::time::Duration;

use crate::config::ServerConfig;

/// What a connection may cost, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdgeLimits {
    /// Longest wait for a complete request head.
    pub header_read: Duration,
    /// Longest wait for a complete request body, once the head is read.
    pub body_read: Duration,
    /// Longest a kept-alive connection waits for its next request.
    pub keep_alive: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long requests in flight may take after shutdown begins.
    pub shutdown: Duration,
    /// Largest request body read.
    pub max_body_bytes: usize,
}

impl EdgeLimits {
    /// The limits `[server]` configures.
    pub(crate) fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read: Duration::from_millis(server.header_read_timeout_ms),
            body_read: Duration::from_millis(server.body_read_timeout_ms),
            keep_alive: Duration::from_millis(server.keep_alive_timeout_ms),
            max_connections: server.max_connections.max(1),
            shutdown: Duration::from_millis(server.shutdown_timeout_ms),
            max_body_bytes: server.max_body_bytes,
        }
    }
}
