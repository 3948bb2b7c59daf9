//! Shared Signals (OpenID SSF 1.0, CAEP 1.0): revocations as Security Event Tokens.
//!
//! As a transmitter, mcp-sts turns every revocation into one signed SET per stream that
//! asked for its event type (written by the revocation door,
//! `revocation::publish`), queued durably in the revocation backend
//! (`revocation::queue`) until the receiver acknowledges it; receivers manage their
//! streams ([`streams`]) and poll them ([`poll`], RFC 8936) or have them pushed
//! ([`push`], RFC 8935). As a receiver ([`upstream`], through the one receiver in
//! `receiver`), it applies an upstream IdP's session and account events as revocations.
//! The SET contract itself (event types, subject formats) is `contract::set`.

pub mod error;
pub mod poll;
pub mod push;
pub mod push_target;
pub mod streams;
pub mod upstream;

use std::sync::Arc;

pub(crate) use error::SsfError;

use crate::client_auth::{AuthContext, Clients};
use crate::config::SsfConfig;
use crate::inbound::Issuers;
use crate::metrics::Metrics;
use crate::revocation::{EventQueue, Publisher, RevocationGate, StoreError};
use crate::service::Sts;
use mcp_sts_contract::clock::Clock;

/// What the transmitter's endpoints (stream management and polling) need of the
/// service, and nothing more.
#[derive(Clone, Copy)]
pub(crate) struct Transmitter<'a> {
    /// Our issuer URL: the streams' `iss`.
    pub issuer: &'a str,
    /// `[ssf]`.
    pub config: &'a SsfConfig,
    /// The registered callers (receivers are clients).
    pub clients: &'a Clients,
    /// What client authentication needs.
    pub auth: AuthContext<'a>,
    /// The trusted upstream issuers (the issuer rule of a caller's lineage).
    pub issuers: &'a Issuers,
    /// The revocation store, behind its deadline.
    pub revocations: &'a RevocationGate,
    /// Streams and queued SETs: reached only through `store_call`.
    pub events: &'a dyn EventQueue,
    /// Wakes long polls on this replica when an event is queued.
    pub wake: &'a tokio::sync::Notify,
    /// Prometheus metrics.
    pub metrics: &'a Metrics,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// The one door SETs are queued through (a verification event).
    pub publisher: Publisher<'a>,
}

impl<'a> Transmitter<'a> {
    /// The view of `sts`.
    pub(crate) fn of(sts: &'a Sts) -> Self {
        Self {
            issuer: sts.issuer(),
            config: &sts.config().ssf,
            clients: sts.clients(),
            auth: sts.auth_context(),
            issuers: sts.issuers(),
            revocations: sts.revocations(),
            events: sts.events().as_ref(),
            wake: sts.ssf_wake(),
            metrics: sts.metrics(),
            clock: sts.clock().as_ref(),
            publisher: sts.publisher(),
        }
    }

    /// Run a stream or queue operation under the store deadline; any failure is a 503.
    pub(crate) async fn store_call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, crate::error::OAuthError> {
        self.revocations.call(operation).await
    }
}

/// Path of the transmitter's configuration document (SSF 1.0 §7.2).
pub(crate) const CONFIGURATION_PATH: &str = "/.well-known/ssf-configuration";
/// Path of the stream configuration endpoint.
pub(crate) const STREAMS_PATH: &str = "/ssf/streams";
/// Path of the stream status endpoint.
pub(crate) const STATUS_PATH: &str = "/ssf/status";
/// Path of the verification endpoint.
pub(crate) const VERIFY_PATH: &str = "/ssf/verify";
/// Prefix of each poll stream's endpoint: `/ssf/poll/{stream_id}`.
pub(crate) const POLL_PATH: &str = "/ssf/poll";

/// Start the background work of the Shared Signals side: the push deliverer and one
/// receiver per upstream issuer that names a transmitter.
pub(crate) fn spawn_workers(sts: Arc<Sts>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut workers = vec![push::spawn(push::Pushing::of(&sts))];
    workers.extend(upstream::spawn_all(sts));
    workers
}

pub(crate) use mcp_sts_contract::identifier::printable;
