//! The demo's subscriptions to mcp-sts's Shared Signals stream: the orders API's (a
//! verifier's [`RevocationStream`]) and the MCP server kit's. Revocations arrive as
//! signed SETs (RFC 8936 poll), and each service refuses revoked tokens locally, with
//! no introspection call per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_contract::revocation::RevocationKind;
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig};

use super::DemoError;

/// How often the demo's services poll; short, so the story does not wait long.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long the story waits for a revocation to arrive before giving up.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// The demo's settings for a subscription of `client_id` (with `secret`) to mcp-sts at
/// `sts_url`, one stream named `instance`.
pub fn config(sts_url: &str, client_id: &str, secret: &str, instance: &str) -> RevocationStreamConfig {
    let mut config = RevocationStreamConfig::new(sts_url, client_id, secret);
    config.instance = instance.into();
    config.poll_interval = POLL_INTERVAL;
    // Everything runs in this process on one clock: no skew to allow for.
    config.leeway = Duration::ZERO;
    config
}

/// One service's revocation stream (and, for the orders API, the task polling it; the
/// kit polls its own).
pub struct Signals {
    /// The service that subscribed.
    pub service: &'static str,
    /// The stream the service checks.
    pub stream: Arc<RevocationStream>,
    poller: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if let Some(poller) = &self.poller {
            poller.abort();
        }
    }
}

impl Signals {
    /// Subscribe `service` (client `client_id` with `secret`) to mcp-sts at `sts_url`,
    /// poll once, and keep polling. Returns once the stream covers tokens minted from
    /// now on (it vouches only for tokens issued after its first poll), so every token
    /// of the story is covered.
    pub async fn subscribe(
        service: &'static str,
        sts_url: &str,
        client_id: &str,
        secret: &str,
    ) -> Result<Self, DemoError> {
        let stream = Arc::new(RevocationStream::new(config(sts_url, client_id, secret, "demo"))?);
        let poller = Some(Arc::clone(&stream).spawn());
        Self::covering(service, stream, poller).await
    }

    /// The stream a kit subscribed with (it polls it itself); returns once it covers
    /// tokens minted from now on.
    pub async fn of_kit(service: &'static str, stream: Arc<RevocationStream>) -> Result<Self, DemoError> {
        Self::covering(service, stream, None).await
    }

    async fn covering(
        service: &'static str,
        stream: Arc<RevocationStream>,
        poller: Option<tokio::task::JoinHandle<()>>,
    ) -> Result<Self, DemoError> {
        stream.poll_once(SystemClock.now()).await?;
        let covered_since = stream.covered_since().unwrap_or_default();
        // Tokens carry whole seconds: wait for the clock to pass the coverage start.
        while SystemClock.now() <= covered_since {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            service,
            stream,
            poller,
        })
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
                "the {kind} revocation did not reach {} within {} s",
                self.service,
                DELIVERY_DEADLINE.as_secs()
            ))),
        }
    }
}
