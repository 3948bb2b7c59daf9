//! `mcp-sts demo` runs this service in process: the demo crate writes the configuration
//! and plays the story, this starts the service it plays against.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mcp_sts_contract::clock::SystemClock;
use mcp_sts_demo::{AuditEvents, TokenService};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::config::Config;

/// mcp-sts built from the demo's configuration and served on the demo's listener.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl TokenService for InProcess {
    fn start(
        &self,
        config: String,
        listener: TcpListener,
        mut stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Result<AuditEvents, String>> + Send + '_>> {
        Box::pin(async move {
            let config = Config::from_toml(&config).map_err(|e| e.to_string())?;
            let (audit_log, events) = AuditLog::with_tap();
            let sts = crate::server::build(config, Arc::new(SystemClock), audit_log)
                .await
                .map_err(|e| format!("{e:#}"))?;
            tokio::spawn(async move {
                let until = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(error) = crate::http::serve(listener, sts, until).await {
                    tracing::error!(%error, "demo mcp-sts stopped");
                }
            });
            Ok(events)
        })
    }
}
