//! The token service the demo plays against. The demo does not build mcp-sts: whoever
//! runs it (the `mcp-sts demo` command, the tests) starts it from the configuration the
//! demo writes, exactly as an operator's file would configure it, and hands back what it
//! audits.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// mcp-sts's audit events as it records them, one JSON object per decision.
pub type AuditEvents = Arc<Mutex<Vec<Value>>>;

/// Starts mcp-sts for the demo.
pub trait TokenService: Send + Sync {
    /// Serve mcp-sts configured by `config` (TOML, the shape of `mcp-sts.toml`) on
    /// `listener` until `stop` turns true. The events it audits are appended to the
    /// returned list; an error says why the configuration was refused or the start failed.
    fn start(
        &self,
        config: String,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Result<AuditEvents, String>> + Send + '_>>;
}
