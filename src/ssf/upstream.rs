//! mcp-sts as a Shared Signals receiver of its upstream IdPs (filled in below).

use std::sync::Arc;

use crate::service::Sts;

/// Start one receiver per issuer that names a transmitter.
pub fn spawn_all(_sts: Arc<Sts>) -> Vec<tokio::task::JoinHandle<()>> {
    Vec::new()
}
