//! The embedded store: one redb file on disk, for a single node and for the
//! out-of-the-box default.
//!
//! Every write transaction is committed with redb's default (immediate) durability,
//! so an entry is on disk before `revoke`, `reinstate` or `use_once` returns. redb
//! blocks, so each operation runs on Tokio's blocking pool. Expired entries are
//! ignored on read and pruned from time to time by `use_once`, the most frequent writer.
//! Offboardings written before they held until reinstated are read as held
//! ([`Revocation::kept`]), never pruned, and rewritten by `keep_offboardings`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::embedded_tables::{ENTRIES, USED_ONCE, create_tables, db_err};
use super::{KeptOffboardings, Revocation, RevocationKey, RevocationStore, StoreError};
use mcp_sts_contract::clock::UnixTime;

/// Prune expired rows on every this-many `use_once` calls: often enough to keep the
/// file small, rarely enough that the full scan costs nothing noticeable.
const PRUNE_EVERY: u64 = 256;

/// A [`RevocationStore`] in a local redb file.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    use_once_calls: AtomicU64,
}

impl EmbeddedStore {
    /// Open (or create, with its parent directories) the store at `path`. Only one
    /// process may hold the file at a time; a second open fails.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create directory {}: {e}", parent.display())))?;
        }
        let db = Database::create(path).map_err(db_err)?;
        // Every table up front, so readers never meet a missing table.
        let tx = db.begin_write().map_err(db_err)?;
        create_tables(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            use_once_calls: AtomicU64::new(0),
        })
    }

    /// Run a blocking redb operation off the async workers.
    pub(super) async fn blocking<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || op(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("embedded store task failed: {e}")))?
    }
}

pub(super) fn storage_key(key: &RevocationKey) -> String {
    key.storage_name()
}

/// An entry as stored.
fn decode_stored(bytes: &[u8]) -> Result<Revocation, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable revocation entry: {e}")))
}

/// An entry as it is in force.
fn decode(bytes: &[u8]) -> Result<Revocation, StoreError> {
    decode_stored(bytes).map(Revocation::kept)
}

fn encode(entry: &Revocation) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(format!("cannot encode entry: {e}")))
}

/// Drop every row that is no longer in force at `now`.
fn prune(tx: &redb::WriteTransaction, now: UnixTime) -> Result<(), StoreError> {
    tx.open_table(USED_ONCE)
        .map_err(db_err)?
        .retain(|_, exp| exp > now)
        .map_err(db_err)?;
    // Undecodable rows are kept: they are reported by reads, not silently erased.
    tx.open_table(ENTRIES)
        .map_err(db_err)?
        .retain(|_, json| decode(json).map_or(true, |e| e.expires_at > now))
        .map_err(db_err)
}

#[async_trait]
impl RevocationStore for EmbeddedStore {
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError> {
        let json = encode(&entry)?;
        let key = storage_key(&entry.key());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            tx.open_table(ENTRIES)
                .map_err(db_err)?
                .insert(key.as_str(), json.as_slice())
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError> {
        let key = storage_key(key);
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            let removed = tx
                .open_table(ENTRIES)
                .map_err(db_err)?
                .remove(key.as_str())
                .map_err(db_err)?
                .is_some();
            tx.commit().map_err(db_err)?;
            Ok(removed)
        })
        .await
    }

    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.blocking(move |db| {
            let table = db.begin_read().map_err(db_err)?.open_table(ENTRIES).map_err(db_err)?;
            let mut entries = Vec::new();
            for row in table.iter().map_err(db_err)? {
                let (_, json) = row.map_err(db_err)?;
                let entry = decode(json.value())?;
                if entry.expires_at > now {
                    entries.push(entry);
                }
            }
            // Storage order is by the kind's name; callers want the kinds' own order.
            entries.sort_by_key(Revocation::key);
            Ok(entries)
        })
        .await
    }

    async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys.iter().map(storage_key).collect();
        self.blocking(move |db| {
            let table = db.begin_read().map_err(db_err)?.open_table(ENTRIES).map_err(db_err)?;
            names
                .iter()
                .map(|name| match table.get(name.as_str()).map_err(db_err)? {
                    Some(json) => Ok(Some(decode(json.value())?).filter(|e| e.expires_at > now)),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    async fn use_once(&self, id: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let prune_now = self.use_once_calls.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1;
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            let first = {
                let mut table = tx.open_table(USED_ONCE).map_err(db_err)?;
                let live = table
                    .get(id.as_str())
                    .map_err(db_err)?
                    .is_some_and(|exp| exp.value() > now);
                if !live {
                    table.insert(id.as_str(), expires_at).map_err(db_err)?;
                }
                !live
            };
            if prune_now {
                prune(&tx, now)?;
            }
            if first || prune_now {
                tx.commit().map_err(db_err)?;
            }
            Ok(first)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| {
            db.begin_read().map_err(db_err)?.open_table(ENTRIES).map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn keep_offboardings(&self) -> Result<KeptOffboardings, StoreError> {
        // One write transaction reads and rewrites, so nothing can change in between.
        self.blocking(|db| {
            let tx = db.begin_write().map_err(db_err)?;
            let mut done = KeptOffboardings::default();
            {
                let mut table = tx.open_table(ENTRIES).map_err(db_err)?;
                let mut rewrites = Vec::new();
                for row in table.iter().map_err(db_err)? {
                    let (name, json) = row.map_err(db_err)?;
                    match decode_stored(json.value()) {
                        Ok(entry) if entry.predates_lasting_offboarding() => {
                            rewrites.push((name.value().to_owned(), encode(&entry.kept())?));
                        }
                        Ok(_) => {}
                        Err(_) => done.unreadable += 1,
                    }
                }
                for (name, json) in rewrites {
                    table.insert(name.as_str(), json.as_slice()).map_err(db_err)?;
                    done.kept += 1;
                }
            }
            if done.kept > 0 {
                tx.commit().map_err(db_err)?;
            } else {
                tx.abort().map_err(db_err)?;
            }
            Ok(done)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;
    use crate::revocation::RevocationKind;

    #[tokio::test]
    async fn prune_drops_only_expired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("nested/dir/rev.redb")).unwrap();
        for (value, expires_at) in [("old", 100), ("new", 300)] {
            let entry = Revocation {
                kind: RevocationKind::Token,
                value: value.into(),
                issuer: None,
                reason: "r".into(),
                revoked_by: "t".into(),
                revoked_at: 50,
                expires_at,
                expiry_requested: false,
            };
            store.revoke(entry).await.unwrap();
        }
        // An offboarding from an earlier release, its old end passed: still in force.
        let earlier = Revocation {
            kind: RevocationKind::Subject,
            value: "left".into(),
            issuer: None,
            reason: "r".into(),
            revoked_by: "t".into(),
            revoked_at: 50,
            expires_at: 100,
            expiry_requested: false,
        };
        store.revoke(earlier).await.unwrap();
        assert!(store.use_once("x", 100, 50).await.unwrap());
        let tx = store.db.begin_write().unwrap();
        prune(&tx, 200).unwrap();
        tx.commit().unwrap();
        let tx = store.db.begin_read().unwrap();
        assert_eq!(tx.open_table(ENTRIES).unwrap().len().unwrap(), 2);
        assert!(tx.open_table(ENTRIES).unwrap().get("subject:left").unwrap().is_some());
        assert_eq!(tx.open_table(USED_ONCE).unwrap().len().unwrap(), 0);
    }
}
