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

use crate::service::Sts;

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
    let mut workers = vec![push::spawn(sts.clone())];
    workers.extend(upstream::spawn_all(sts));
    workers
}

pub(crate) use mcp_sts_contract::identifier::printable;
