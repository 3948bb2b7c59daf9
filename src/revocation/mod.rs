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
//!
//! Entries written before offboarding held until reinstated carry the retention of
//! their day as `expires_at`; every backend reads them as held until reinstated
//! ([`Revocation::kept`]) and rewrites them once ([`RevocationStore::keep_offboardings`],
//! run by `upgrade` at start-up and by `mcp-sts store migrate`).

pub mod backend;
pub mod embedded;
mod embedded_queue;
mod embedded_tables;
pub mod gate;
pub mod memory;
mod memory_queue;
mod outage;
pub mod publish;
pub mod queue;
pub mod redis;
mod redis_queue;
pub(crate) mod timed;
pub mod upgrade;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use mcp_sts_contract::clock::UnixTime;

pub use gate::RevocationGate;
pub use mcp_sts_contract::RevocationKind;
pub use publish::{Initiator, Publisher, RevocationNotice};
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
    pub(crate) fn scoped(kind: RevocationKind, issuer: Option<String>, value: impl Into<String>) -> Self {
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
    pub(crate) fn storage_name(&self) -> String {
        match &self.issuer {
            None => format!("{}:{}", self.kind.as_str(), self.value),
            Some(issuer) => format!("{}@{}:{issuer}:{}", self.kind.as_str(), issuer.len(), self.value),
        }
    }

    /// Who the entry covers, as the admin answer and the audit say it.
    pub(crate) fn covers(&self) -> Option<String> {
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
    /// Whether `expires_at` was asked for (`expires_in`) rather than given by kind.
    /// Written only when true, so entries stay readable by every earlier release;
    /// a subject, agent or client entry without it and with an end predates the rule
    /// that offboarding holds until reinstated ([`Revocation::predates_lasting_offboarding`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expiry_requested: bool,
}

impl Revocation {
    /// The key this entry is stored under.
    pub fn key(&self) -> RevocationKey {
        RevocationKey::scoped(self.kind, self.issuer.clone(), self.value.clone())
    }

    /// Whether this entry was written before offboarding held until reinstated: a
    /// subject, agent or client entry whose end nobody asked for (the retention that
    /// earlier releases gave every entry). Such an offboarding was never meant to lapse.
    pub(crate) fn predates_lasting_offboarding(&self) -> bool {
        matches!(
            self.kind,
            RevocationKind::Subject | RevocationKind::Agent | RevocationKind::Client
        ) && !self.expiry_requested
            && self.expires_at < NEVER
    }

    /// The entry as it is in force: one that predates lasting offboarding holds until
    /// reinstated, like every offboarding written since. Every backend reads through this.
    pub(crate) fn kept(mut self) -> Self {
        if self.predates_lasting_offboarding() {
            self.expires_at = NEVER;
        }
        self
    }
}

/// What one pass of [`RevocationStore::keep_offboardings`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeptOffboardings {
    /// Entries rewritten to hold until reinstated.
    pub kept: u64,
    /// Entries found but changed before they could be rewritten (reinstated, revoked
    /// again, or rewritten by another replica): left as they now are.
    pub changed_meanwhile: u64,
    /// Entries that could not be decoded: left alone (reads report them).
    pub unreadable: u64,
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

    /// Why the store cannot be reached, in the backend's words (connection refused,
    /// authentication failed, ...), for the log line that opens an outage: a call
    /// that failed only says it missed its deadline. `None` when it answers or
    /// cannot say more.
    async fn diagnose(&self) -> Option<String> {
        None
    }

    /// Rewrite every entry that predates lasting offboarding so that it holds until
    /// reinstated in storage too (in Redis: without the expiry it was given). Safe to
    /// run again, from several replicas at once and beside traffic: an entry changed
    /// since it was read (reinstated, above all) is never written back. Durable like
    /// a revocation.
    async fn keep_offboardings(&self) -> Result<KeptOffboardings, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: RevocationKind, expires_at: UnixTime, expiry_requested: bool) -> Revocation {
        Revocation {
            kind,
            value: "v".into(),
            issuer: None,
            reason: "r".into(),
            revoked_by: "admin".into(),
            revoked_at: 100,
            expires_at,
            expiry_requested,
        }
    }

    #[test]
    fn only_unasked_ends_of_offboardings_predate_the_rule() {
        use RevocationKind::*;
        for kind in RevocationKind::ALL {
            let offboarding = matches!(kind, Subject | Agent | Client);
            let old = entry(kind, 1000, false);
            assert_eq!(old.predates_lasting_offboarding(), offboarding, "{kind}");
            assert_eq!(old.clone().kept().expires_at, if offboarding { NEVER } else { 1000 });
            let asked = entry(kind, 1000, true);
            assert!(!asked.predates_lasting_offboarding(), "{kind}: an asked-for end stays");
            assert_eq!(asked.clone().kept(), asked);
            let lasting = entry(kind, NEVER, false);
            assert!(!lasting.predates_lasting_offboarding());
            assert_eq!(lasting.clone().kept(), lasting);
        }
    }

    #[test]
    fn stored_json_stays_readable_both_ways() {
        // An earlier release's entry reads as one whose end nobody asked for.
        let old = r#"{"kind":"subject","value":"alice","reason":"left","revoked_by":"admin","revoked_at":100,"expires_at":2692100}"#;
        let read: Revocation = serde_json::from_str(old).unwrap();
        assert!(!read.expiry_requested && read.predates_lasting_offboarding());
        // Written back without the flag, it is byte for byte what that release wrote.
        assert_eq!(serde_json::to_string(&read).unwrap(), old);

        // An asked-for end carries the flag, which an earlier release's reader (no
        // such field, unknown fields ignored) passes over.
        #[derive(Deserialize)]
        struct EarlierRelease {
            kind: RevocationKind,
            expires_at: UnixTime,
        }
        let asked = serde_json::to_value(entry(RevocationKind::Subject, 5000, true)).unwrap();
        assert_eq!(asked["expiry_requested"], true);
        let earlier: EarlierRelease = serde_json::from_value(asked).unwrap();
        assert_eq!((earlier.kind, earlier.expires_at), (RevocationKind::Subject, 5000));
        let lasting = serde_json::to_value(entry(RevocationKind::Agent, NEVER, false)).unwrap();
        assert!(lasting.get("expiry_requested").is_none());
    }
}
