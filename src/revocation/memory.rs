//! An in-process store: for unit tests and single-process tools, not for replicas.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::queue::{QueuedEvent, StreamRecord};
use super::{KeptOffboardings, Revocation, RevocationKey, RevocationStore, StoreError};
use mcp_sts_contract::clock::UnixTime;

/// Once-only markers stored between two prunings of expired ones.
const PRUNE_EVERY: usize = 1024;

/// Streams and their queues, behind the store's queue mutex.
#[derive(Debug, Default)]
pub(super) struct QueueState {
    pub(super) streams: BTreeMap<String, StreamRecord>,
    pub(super) queues: BTreeMap<String, VecDeque<QueuedEvent>>,
}

/// Revocations in a map guarded by a mutex (held only for map operations, never
/// across an await, so a std mutex is right).
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub(super) entries: Mutex<BTreeMap<RevocationKey, Revocation>>,
    pub(super) used_once: Mutex<BTreeMap<String, UnixTime>>,
    /// Shared Signals streams and their queues (`memory_queue`).
    pub(super) queue: Mutex<QueueState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("in-memory store lock poisoned".into())
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError> {
        self.entries.lock().map_err(poisoned)?.insert(entry.key(), entry);
        Ok(())
    }

    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError> {
        Ok(self.entries.lock().map_err(poisoned)?.remove(key).is_some())
    }

    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let entries = self.entries.lock().map_err(poisoned)?;
        Ok(entries
            .values()
            .map(|e| e.clone().kept())
            .filter(|e| e.expires_at > now)
            .collect())
    }

    async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        let entries = self.entries.lock().map_err(poisoned)?;
        Ok(keys
            .iter()
            .map(|k| entries.get(k).map(|e| e.clone().kept()).filter(|e| e.expires_at > now))
            .collect())
    }

    async fn use_once(&self, id: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        let mut used = self.used_once.lock().map_err(poisoned)?;
        if used.get(id).is_some_and(|exp| *exp > now) {
            return Ok(false);
        }
        used.insert(id.to_owned(), expires_at);
        // Expired markers go in batches: a scan on every call would make each use cost
        // as much as every marker alive (a DPoP proof per request is one).
        if used.len() % PRUNE_EVERY == 0 {
            used.retain(|_, exp| *exp > now);
        }
        Ok(true)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn keep_offboardings(&self) -> Result<KeptOffboardings, StoreError> {
        let mut entries = self.entries.lock().map_err(poisoned)?;
        let mut done = KeptOffboardings::default();
        for entry in entries.values_mut().filter(|e| e.predates_lasting_offboarding()) {
            *entry = entry.clone().kept();
            done.kept += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::RevocationKind;

    fn entry(kind: RevocationKind, value: &str, expires_at: UnixTime) -> Revocation {
        Revocation {
            kind,
            value: value.into(),
            issuer: None,
            reason: "test".into(),
            revoked_by: "tester".into(),
            revoked_at: 100,
            expires_at,
            expiry_requested: true,
        }
    }

    #[tokio::test]
    async fn revoke_check_reinstate() {
        let store = MemoryStore::new();
        store
            .revoke(entry(RevocationKind::Subject, "alice", 1000))
            .await
            .unwrap();
        let keys = [
            RevocationKey::new(RevocationKind::Subject, "alice"),
            RevocationKey::new(RevocationKind::Subject, "bob"),
        ];
        let found = store.check(&keys, 500).await.unwrap();
        assert!(found[0].is_some());
        assert!(found[1].is_none());
        assert!(
            store.check(&keys, 1000).await.unwrap()[0].is_none(),
            "expired entries do not count"
        );
        assert!(store.reinstate(&keys[0]).await.unwrap());
        assert!(!store.reinstate(&keys[0]).await.unwrap());
        assert!(store.check(&keys, 500).await.unwrap()[0].is_none());
    }

    #[tokio::test]
    async fn use_once_refuses_replay_until_expiry() {
        let store = MemoryStore::new();
        assert!(store.use_once("a", 200, 100).await.unwrap());
        assert!(!store.use_once("a", 200, 150).await.unwrap());
        assert!(store.use_once("a", 300, 200).await.unwrap());
    }

    #[tokio::test]
    async fn expired_markers_are_pruned_in_batches() {
        let store = MemoryStore::new();
        for n in 0..PRUNE_EVERY - 1 {
            assert!(store.use_once(&format!("old-{n}"), 200, 100).await.unwrap());
        }
        assert!(store.use_once("live", 900, 300).await.unwrap());
        assert_eq!(store.used_once.lock().unwrap().len(), 1);
        assert!(!store.use_once("live", 900, 301).await.unwrap());
    }
}
