//! Revocation: who and what may no longer be used, shared by every replica.
//!
//! The exchange, introspection and the admin API talk to a [`RevocationStore`];
//! the backends (in-memory for unit tests, an embedded file, Redis) sit behind it.
//! Any store error makes callers fail closed (HTTP 503), never allow.
//!
//! The rule: an entry, while present, refuses every token it matches, whenever that
//! token was issued. Subject, agent and client revocations therefore hold until
//! reinstated (no expiry unless one was asked for); a session revocation ends that
//! session (kept `retention_seconds`; a fresh login brings a new `sid`); a token
//! revocation ends that one token and is kept as long as it could live. A subject or
//! session entry may be limited to one issuer's users (`issuer`); one without covers
//! every issuer (`contract::revocation::covers`).

pub mod embedded;
mod embedded_queue;
pub mod gate;
pub mod memory;
mod memory_queue;
pub mod queue;
pub mod redis;
mod redis_queue;
pub mod timed;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

pub use crate::contract::RevocationKind;
pub use gate::RevocationGate;
pub use queue::{Delivery, EventQueue, Pending, Publication, QueuedEvent, StreamRecord, StreamStatus};

/// `expires_at` of an entry that holds until it is reinstated (9999-12-31T23:59:59Z):
/// a number every reader (and every earlier release) treats as far in the future, and
/// to which no backend attaches an expiry of its own.
pub const NEVER: UnixTime = 253_402_300_799;

/// The identity of an entry: its kind, the value it names and, for a user or session,
/// the one issuer it is limited to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevocationKey {
    /// What kind of thing is revoked.
    pub kind: RevocationKind,
    /// The `sub`, `sid`, `client_id` or `jti` it names.
    pub value: String,
    /// The user's issuer a subject or session entry is limited to; `None` covers every
    /// issuer (and is the only value agents, clients and tokens have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl RevocationKey {
    /// A key for every issuer.
    pub fn new(kind: RevocationKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
            issuer: None,
        }
    }

    /// A key limited to `issuer` (`None`: every issuer).
    pub fn scoped(kind: RevocationKind, issuer: Option<String>, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
            issuer,
        }
    }

    /// The name an entry is stored under (embedded and Redis backends): `{kind}:{value}`
    /// for every issuer, the layout entries have always had, and
    /// `{kind}@{issuer length}:{issuer}:{value}` for one issuer. The kind is a fixed
    /// word without `:` or `@` and the issuer's length is spelled out, so no two keys
    /// share a name whatever the value or issuer holds.
    pub fn storage_name(&self) -> String {
        match &self.issuer {
            None => format!("{}:{}", self.kind.as_str(), self.value),
            Some(issuer) => format!("{}@{}:{issuer}:{}", self.kind.as_str(), issuer.len(), self.value),
        }
    }

    /// Who the entry covers, as the admin answer and the audit say it.
    pub fn covers(&self) -> Option<String> {
        match (self.kind, &self.issuer) {
            (RevocationKind::Subject | RevocationKind::Session, None) => Some("every issuer".into()),
            (_, Some(issuer)) => Some(format!("issuer {issuer}")),
            (RevocationKind::Agent | RevocationKind::Client | RevocationKind::Token, None) => None,
        }
    }
}

impl std::fmt::Display for RevocationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)?;
        if let Some(covers) = self.covers() {
            write!(f, " ({covers})")?;
        }
        Ok(())
    }
}

/// One revocation, as stored and as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What is revoked.
    pub kind: RevocationKind,
    /// The value it names.
    pub value: String,
    /// For a subject or session: the user's issuer it is limited to. Absent (every
    /// issuer) for agents, clients and tokens, and in every entry written before
    /// entries recorded an issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Why, as given by whoever revoked it.
    pub reason: String,
    /// Who revoked it (the admin credential's name or the client that called /revoke).
    pub revoked_by: String,
    /// When it was revoked.
    pub revoked_at: UnixTime,
    /// When the entry may be forgotten: [`NEVER`] for offboarding (until reinstated),
    /// else no token it could affect outlives this.
    pub expires_at: UnixTime,
}

impl Revocation {
    /// The key this entry is stored under.
    pub fn key(&self) -> RevocationKey {
        RevocationKey::scoped(self.kind, self.issuer.clone(), self.value.clone())
    }
}

/// A store failure. Callers must treat it as "cannot decide" and refuse (fail closed).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its deadline.
    #[error("revocation store timed out")]
    Timeout,
    /// The store could not be reached or refused the operation.
    #[error("revocation store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("revocation store data is corrupt: {0}")]
    Corrupt(String),
    /// The master took the write, but too few replicas confirmed it in time: a
    /// failover could still lose it, so it is not acknowledged. Retrying is safe.
    #[error("write not confirmed by enough replicas: {0}")]
    Unconfirmed(String),
    /// The store cannot be trusted to hold what was written (it lost its data, or it
    /// may evict): every operation is refused until an operator acts.
    #[error("revocation store not trusted: {0}")]
    Untrusted(String),
}

/// Where revocations live. Every method is one logical operation; implementations
/// must not report success before the entry is durably accepted.
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Record (or overwrite) a revocation. Returns only once the store accepted it.
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError>;

    /// Remove a revocation. `Ok(true)` when an entry was removed.
    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError>;

    /// Every entry still in force at `now`, in a stable order (kind, then value).
    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError>;

    /// For each key asked, the entry in force at `now` if any, in the same order.
    /// Implementations answer with one round trip where the backend allows.
    async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError>;

    /// Mark a one-time value (e.g. a client assertion `jti`) as used until `expires_at`.
    /// `Ok(true)` the first time, `Ok(false)` when it was already used.
    async fn use_once(&self, id: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError>;

    /// A cheap liveness probe for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Convenience: the first entry in force among `keys`, if any.
pub async fn first_revoked(
    store: &dyn RevocationStore,
    keys: &[RevocationKey],
    now: UnixTime,
) -> Result<Option<Revocation>, StoreError> {
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(store.check(keys, now).await?.into_iter().flatten().next())
}
