//! The configured revocation backend as the service holds it: one store seen as the
//! revocation store and as the Shared Signals event queue, and what an acknowledged
//! write requires of it.

use std::sync::Arc;
use std::time::Duration;

use super::redis::{AckPolicy, MinReplicas, Trust};
use super::{EventQueue, RevocationStore};
use crate::config::{MinReplicasAcked, RevocationConfig};

/// The configured backend, seen as the revocation store and as the event queue.
pub(crate) struct Backend {
    /// Revocation entries.
    pub store: Arc<dyn RevocationStore>,
    /// Shared Signals streams and queued SETs, in the same backend.
    pub events: Arc<dyn EventQueue>,
    /// Whether the store can be trusted, as it changes (Redis only).
    pub trust: Option<tokio::sync::watch::Receiver<Trust>>,
}

/// What acknowledging a write requires, from `[revocation]`.
pub(crate) fn ack_policy(revocation: &RevocationConfig) -> AckPolicy {
    AckPolicy {
        min_replicas: match revocation.min_replicas_acked {
            MinReplicasAcked::Auto => MinReplicas::Auto,
            MinReplicasAcked::Exactly(n) => MinReplicas::Exactly(n),
        },
        replication_timeout: Duration::from_millis(revocation.replication_timeout_ms),
        fsync: revocation.fsync_acked,
    }
}
