//! The orders API's subscription to mcp-sts's Shared Signals stream: revocations arrive
//! as signed SETs (RFC 8936 poll), and the orders API refuses revoked tokens locally,
//! with no introspection call per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::contract::revocation::RevocationKind;
use crate::verify::{RevocationStream, RevocationStreamConfig};

use super::DemoError;

/// How often the orders API polls; short, so the story does not wait long.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long the story waits for a revocation to arrive before giving up.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// The orders API's revocation stream and the task polling it.
pub struct OrdersSignals {
    /// The stream the orders API's verifier checks.
    pub stream: Arc<RevocationStream>,
    poller: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for OrdersSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrdersSignals").finish_non_exhaustive()
    }
}

impl Drop for OrdersSignals {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl OrdersSignals {
    /// Subscribe `client_id` (with `secret`) to mcp-sts at `sts_url`, poll once, and
    /// keep polling. Returns once the stream covers tokens minted from now on (it
    /// vouches only for tokens issued after its first poll), so every token of the
    /// story is covered.
    pub async fn subscribe(sts_url: &str, client_id: &str, secret: &str) -> Result<Self, DemoError> {
        let mut config = RevocationStreamConfig::new(sts_url, client_id, secret);
        config.instance = "demo".into();
        config.poll_interval = POLL_INTERVAL;
        // Everything runs in this process on one clock: no skew to allow for.
        config.leeway = Duration::ZERO;
        let stream = Arc::new(RevocationStream::new(config)?);
        stream.poll_once(SystemClock.now()).await?;
        let poller = stream.clone().spawn();
        let covered_since = stream.covered_since().unwrap_or_default();
        // Tokens carry whole seconds: wait for the clock to pass the coverage start.
        while SystemClock.now() <= covered_since {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { stream, poller })
    }

    /// Wait until the stream has heard that `value` was revoked as `kind`; returns how
    /// long that took from `since`.
    pub async fn heard(&self, kind: RevocationKind, value: &str, since: Instant) -> Result<Duration, DemoError> {
        let mut applied = self.stream.applied();
        let arrived = tokio::time::timeout(DELIVERY_DEADLINE, async {
            while self.stream.heard(kind, value).is_none() {
                if applied.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await;
        match arrived {
            Ok(true) => Ok(since.elapsed()),
            _ => Err(DemoError::Stream(format!(
                "the {kind} revocation did not arrive on the stream within {} s",
                DELIVERY_DEADLINE.as_secs()
            ))),
        }
    }
}
