//! The Redis store: shared by every replica, the production choice.
//!
//! Layout, under a configurable prefix so several deployments can share one Redis:
//! `{prefix}rev:{kind}:{value}` holds the JSON [`Revocation`] and expires (EXAT) at its
//! `expires_at`; `{prefix}once:{id}` marks a one-time value. The kind is a fixed word
//! without `:`, so the value that follows it can be any string without two keys
//! colliding.
//!
//! The connection is a [`ConnectionManager`] created lazily: the service starts (and
//! answers 503) while Redis is down, and reconnects by itself when Redis comes back.
//! Every round trip is bounded by the store's timeout. Expiry is decided twice: Redis
//! drops keys by its own clock, and reads also filter on the caller's `now`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue};

use super::{Revocation, RevocationKey, RevocationStore, StoreError};
use crate::clock::UnixTime;

/// The per-operation deadline when the configuration does not set one: revocation
/// checks sit on the token exchange's hot path.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// How long one background connection attempt may take. Longer than an operation's
/// deadline because callers do not wait on it; bounded so a black-holed address
/// cannot stall reconnection forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest pause between reconnection attempts, so recovery after a restart takes
/// well under a second once Redis answers again.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Consecutive failures after which the connection manager is replaced. The manager
/// reconnects on I/O errors by itself, but not after timeouts on a half-open socket
/// or a failed handshake (e.g. `LOADING` while Redis replays its log); a fresh one
/// covers those cases.
const RESET_AFTER_FAILURES: u32 = 3;

/// How many keys one SCAN page or MGET batch asks for.
const BATCH: usize = 500;

/// The largest expiry Redis accepts comfortably (9999-12-31); later ones are stored
/// without a Redis expiry and still filtered on read.
const MAX_EXPIRE_AT: UnixTime = 253_402_300_799;

/// A [`RevocationStore`] in Redis, shared by all replicas.
pub struct RedisStore {
    client: Client,
    config: ConnectionManagerConfig,
    conn: Mutex<Connection>,
    pub(super) prefix: String,
    timeout: Duration,
}

/// The current connection manager and how often it failed in a row.
struct Connection {
    manager: ConnectionManager,
    failures: u32,
}

impl fmt::Debug for RedisStore {
    // The URL may carry a password, so only harmless settings are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[:password@]host:port[/db]`), keys under
    /// `prefix`, each operation bounded by `timeout`. Fails only on a malformed URL:
    /// the connection is made on first use, so Redis may be down at start-up.
    /// Must be called within a Tokio runtime.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        // The parse error never echoes the URL, which may hold a password.
        let client = Client::open(url).map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(timeout))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot set up the Redis connection: {e}")))?;
        Ok(RedisStore {
            client,
            config,
            conn: Mutex::new(Connection { manager, failures: 0 }),
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    pub(super) fn entry_key(&self, kind: &str, value: &str) -> String {
        format!("{}rev:{kind}:{value}", self.prefix)
    }

    pub(super) fn once_key(&self, id: &str) -> String {
        format!("{}once:{id}", self.prefix)
    }

    /// The SCAN pattern matching every entry key: the prefix with glob characters escaped.
    fn entry_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 6);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str("rev:*");
        pattern
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self.conn.lock().map_err(poisoned)?;
        Ok(conn.manager.clone())
    }

    /// Count a failure; after several in a row, start over with a fresh manager.
    fn note_failure(&self) {
        let Ok(mut conn) = self.conn.lock() else {
            return;
        };
        conn.failures = conn.failures.saturating_add(1);
        if conn.failures < RESET_AFTER_FAILURES {
            return;
        }
        conn.failures = 0;
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(manager) => {
                tracing::debug!(prefix = %self.prefix, "replacing the Redis connection after repeated failures");
                conn.manager = manager;
            }
            Err(e) => tracing::warn!(error = %e, "cannot replace the Redis connection"),
        }
    }

    fn note_success(&self) {
        if let Ok(mut conn) = self.conn.lock() {
            conn.failures = 0;
        }
    }

    /// One round trip, bounded by the store's timeout.
    pub(super) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut manager = self.manager()?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut manager)).await {
            Ok(Ok(value)) => {
                self.note_success();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.note_failure();
                if e.is_timeout() {
                    Err(StoreError::Timeout)
                } else {
                    Err(StoreError::Unavailable(e.to_string()))
                }
            }
            Err(_elapsed) => {
                self.note_failure();
                Err(StoreError::Timeout)
            }
        }
    }

    /// MGET `keys` (in batches) and decode every entry still in force at `now`.
    async fn fetch(&self, keys: &[String], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for batch in keys.chunks(BATCH) {
            let raw: Vec<Option<Vec<u8>>> = self.run(redis::cmd("MGET").arg(batch)).await?;
            if raw.len() != batch.len() {
                return Err(StoreError::Corrupt("MGET answered a different number of values".into()));
            }
            for bytes in raw {
                found.push(bytes.map(|b| decode(&b)).transpose()?.filter(|e| e.expires_at > now));
            }
        }
        Ok(found)
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("Redis connection lock poisoned".into())
}

fn decode(bytes: &[u8]) -> Result<Revocation, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable revocation entry: {e}")))
}

/// Append the expiry to a SET: EXAT, clamped to what Redis accepts.
fn with_expiry(cmd: &mut Cmd, expires_at: UnixTime) {
    if expires_at <= MAX_EXPIRE_AT {
        // EXAT 0 is refused; 1 is equally in the past, so the key vanishes at once.
        cmd.arg("EXAT").arg(expires_at.max(1));
    }
}

#[async_trait]
impl RevocationStore for RedisStore {
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(format!("cannot encode entry: {e}")))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.entry_key(entry.kind.as_str(), &entry.value)).arg(json);
        with_expiry(&mut cmd, entry.expires_at);
        self.run::<()>(&cmd).await
    }

    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError> {
        let removed: u64 = self
            .run(redis::cmd("DEL").arg(self.entry_key(key.kind.as_str(), &key.value)))
            .await?;
        Ok(removed > 0)
    }

    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let pattern = self.entry_pattern();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(BATCH);
            let (next, page): (u64, Vec<String>) = self.run(&cmd).await?;
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key twice; the map both deduplicates and sorts.
        let mut entries = BTreeMap::new();
        for entry in self.fetch(&keys, now).await?.into_iter().flatten() {
            entries.insert(entry.key(), entry);
        }
        Ok(entries.into_values().collect())
    }

    async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys.iter().map(|k| self.entry_key(k.kind.as_str(), &k.value)).collect();
        let found = self.fetch(&names, now).await?;
        // An entry stored under another key's name means the data was tampered with.
        for (key, entry) in keys.iter().zip(&found) {
            if let Some(entry) = entry
                && (entry.kind != key.kind || entry.value != key.value)
            {
                return Err(StoreError::Corrupt("entry does not match its key".into()));
            }
        }
        Ok(found)
    }

    async fn use_once(&self, id: &str, expires_at: UnixTime, _now: UnixTime) -> Result<bool, StoreError> {
        // Redis expires the marker by its own clock, so one atomic SET NX decides.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.once_key(id)).arg(expires_at).arg("NX");
        with_expiry(&mut cmd, expires_at);
        let set: Option<String> = self.run(&cmd).await?;
        Ok(set.is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _pong: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_url_is_refused_at_construction() {
        let err = RedisStore::connect("not a url", "p:", DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn keys_and_pattern() {
        let store = RedisStore::connect("redis://127.0.0.1:1/", "a*[b]:", DEFAULT_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(store.entry_key("subject", "x:y"), "a*[b]:rev:subject:x:y");
        assert_eq!(store.once_key("j"), "a*[b]:once:j");
        assert_eq!(store.entry_pattern(), "a\\*\\[b\\]:rev:*");
        assert!(!format!("{store:?}").contains("127.0.0.1"));
    }
}
