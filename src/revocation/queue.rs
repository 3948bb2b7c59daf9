//! The Shared Signals event queue: stream registrations and the SETs waiting for each
//! stream, kept in the revocation backend so every replica serves every stream and
//! nothing is lost across restarts.
//!
//! [`EventQueue::publish`] is the one write a revocation makes: the entry, the SETs
//! for every stream and (for events from upstream) a once-only marker are committed
//! together or not at all, so an admin is never told "revoked" while a receiver
//! misses the event, and never told "failed" while the revocation is in force.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Revocation, StoreError};
use mcp_sts_contract::clock::UnixTime;

/// Whether a stream receives events (SSF 1.0 §8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Events are queued and delivered.
    Enabled,
    /// Events are queued but held until the stream is enabled again.
    Paused,
    /// Events are neither queued nor delivered.
    Disabled,
}

/// How a stream's events travel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum Delivery {
    /// RFC 8936: the receiver polls our endpoint.
    #[serde(rename = "urn:ietf:rfc:8936")]
    Poll,
    /// RFC 8935: we push each SET to the receiver's endpoint.
    #[serde(rename = "urn:ietf:rfc:8935")]
    Push {
        /// The receiver's endpoint.
        endpoint_url: String,
        /// The `Authorization` header value to send, if the receiver gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorization_header: Option<String>,
    },
}

/// One registered stream, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The stream's id (random, unguessable).
    pub stream_id: String,
    /// The client that created it and alone may read, change or poll it.
    pub owner: String,
    /// How events are delivered.
    pub delivery: Delivery,
    /// What the receiver asked for.
    pub events_requested: Vec<String>,
    /// What it gets: the requested types we support.
    pub events_delivered: Vec<String>,
    /// Enabled, paused or disabled.
    pub status: StreamStatus,
    /// Why the status was last changed, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The receiver's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created.
    pub created_at: UnixTime,
}

impl StreamRecord {
    /// Whether an event of `event_type` is queued for this stream.
    pub(crate) fn wants(&self, event_type: &str) -> bool {
        self.status != StreamStatus::Disabled && self.events_delivered.iter().any(|e| e == event_type)
    }
}

/// One signed SET waiting for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The stream it is for.
    pub stream_id: String,
    /// The SET's `jti`: what the receiver acknowledges.
    pub jti: String,
    /// The SET, compact JWS.
    pub set: String,
}

/// Everything one revocation (or verification request) writes, committed at once.
#[derive(Debug, Clone, Default)]
pub struct Publication {
    /// A once-only id and when it may be forgotten: if already used, nothing is written.
    pub once: Option<(String, UnixTime)>,
    /// The revocation entry to record.
    pub revocation: Option<Revocation>,
    /// The SETs to queue.
    pub events: Vec<QueuedEvent>,
}

/// A page of a stream's queue, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Up to the asked number of SETs.
    pub events: Vec<QueuedEvent>,
    /// Whether more are queued behind them.
    pub more: bool,
}

/// The `jti` prefix of verification SETs, so a queue can count those waiting.
pub(crate) const VERIFICATION_JTI_PREFIX: &str = "verify-";

/// Where streams and their queued SETs live; implemented by every revocation backend.
#[async_trait]
pub trait EventQueue: Send + Sync + 'static {
    /// Record (or overwrite) a stream.
    async fn put_stream(&self, stream: &StreamRecord) -> Result<(), StoreError>;

    /// Record a new stream unless its owner already holds `max_per_owner` streams. The
    /// count and the write are one atomic step of the backend, so no number of
    /// simultaneous creations passes the quota. `Ok(false)` (nothing written) at it.
    async fn create_stream(&self, stream: &StreamRecord, max_per_owner: usize) -> Result<bool, StoreError>;

    /// Overwrite a stream only while it exists, atomically: a stream deleted meanwhile
    /// stays deleted. `Ok(false)` (nothing written) when it is gone.
    async fn replace_stream(&self, stream: &StreamRecord) -> Result<bool, StoreError>;

    /// Queue a verification SET (its `jti` starts with [`VERIFICATION_JTI_PREFIX`])
    /// unless `max_pending` of the stream's verification SETs already wait, atomically.
    /// `Ok(false)` (nothing written) when they do.
    async fn queue_verification(&self, event: QueuedEvent, max_pending: usize) -> Result<bool, StoreError>;

    /// A stream by id.
    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRecord>, StoreError>;

    /// Every stream, in a stable order.
    async fn streams(&self) -> Result<Vec<StreamRecord>, StoreError>;

    /// Remove a stream and everything queued for it. `Ok(true)` when it existed.
    async fn delete_stream(&self, stream_id: &str) -> Result<bool, StoreError>;

    /// Write a publication atomically. `Ok(false)` (and nothing written) when its
    /// once-only id was already used.
    async fn publish(&self, publication: Publication) -> Result<bool, StoreError>;

    /// Up to `max` queued SETs of a stream, oldest first; they stay until acknowledged.
    async fn pending(&self, stream_id: &str, max: usize) -> Result<Pending, StoreError>;

    /// Drop acknowledged SETs; unknown ids are ignored.
    async fn acknowledge(&self, stream_id: &str, jtis: &[String]) -> Result<(), StoreError>;
}
