//! The Redis store: shared by every replica, the production choice.
//!
//! Layout, under a configurable prefix so several deployments can share one Redis:
//! `{prefix}rev:{kind}:{value}` (every issuer) or `{prefix}rev:{kind}@{len}:{issuer}:{value}`
//! (one issuer's user or session, [`RevocationKey::storage_name`]) holds the JSON
//! [`Revocation`] and expires (EXAT) at its `expires_at`, or never for an entry held
//! until reinstated; `{prefix}once:{id}` marks a one-time value. The kind is a fixed word
//! without `:`, so the value that follows it can be any string without two keys
//! colliding. No key carries a hash tag, so in a Redis Cluster the entries spread over
//! every shard; one check sends one MGET part per slot, all at once, so it costs one
//! round trip per shard touched and fails (closed) if any of them cannot answer.
//!
//! Redis is one server, a Cluster or a Sentinel-watched master ([`RedisTopology`]).
//! The connection is opened in the background: the service starts (and answers 503)
//! while Redis is down, and reconnects by itself when Redis comes back or a Sentinel
//! failover moves the master. Every round trip is bounded by the store's timeout.
//! Expiry is decided twice: Redis drops keys by its own clock, and reads also filter
//! on the caller's `now`.

mod link;
mod topology;

pub use topology::RedisTopology;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Value};

use super::{Revocation, RevocationKey, RevocationStore, StoreError};
use crate::clock::UnixTime;
use link::Link;
use topology::{Conn, Connector, unavailable};

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

/// How many keys one SCAN page or MGET batch asks for.
const BATCH: usize = 500;

/// The largest expiry Redis accepts comfortably (9999-12-31); later ones are stored
/// without a Redis expiry and still filtered on read.
const MAX_EXPIRE_AT: UnixTime = 253_402_300_799;

/// A [`RevocationStore`] in Redis, shared by all replicas.
pub struct RedisStore {
    link: Arc<Link>,
    topology: RedisTopology,
    pub(super) prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisStore {
    // URLs may carry a password, so only addresses and harmless settings are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the one Redis at `url` (`redis://[:password@]host:port[/db]`), keys
    /// under `prefix`, each operation bounded by `timeout`. See [`RedisStore::open`].
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        Self::open(RedisTopology::Single(url.to_owned()), prefix, timeout).await
    }

    /// A store on `topology`. Fails only on a malformed URL: connecting happens in the
    /// background, so Redis may be down at start-up. Must be called within Tokio.
    pub async fn open(topology: RedisTopology, prefix: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        let connector = Arc::new(Connector::new(&topology, timeout, CONNECT_TIMEOUT)?);
        let link = Link::new(connector, CONNECT_TIMEOUT);
        link.start();
        Ok(RedisStore {
            link,
            topology,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// Where the store connects, without credentials (for logs).
    pub fn describe(&self) -> String {
        self.topology.describe()
    }

    /// Ping until Redis answers or `within` has passed; the last error otherwise.
    /// Used at start-up so an unreachable store is reported, not found out later.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let error = match self.ping().await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if tokio::time::Instant::now() + self.timeout >= deadline {
                // Say why as Redis said it (refused, timed out, auth), not only that
                // the operation missed its deadline.
                return match tokio::time::timeout(CONNECT_TIMEOUT, self.link.connector().probe()).await {
                    Ok(Err(cause)) => Err(unavailable(cause)),
                    Err(_) => Err(StoreError::Timeout),
                    Ok(Ok(())) => Err(error),
                };
            }
            tokio::time::sleep(self.timeout).await;
        }
    }

    pub(super) fn entry_key(&self, key: &RevocationKey) -> String {
        format!("{}rev:{}", self.prefix, key.storage_name())
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

    /// One operation on the connection, bounded by the store's timeout (including any
    /// wait for a connection being opened); failures are counted.
    async fn with_conn<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let attempt = async {
            let conn = self.link.conn().await?;
            op(conn).await
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(StoreError::Timeout),
        };
        match &outcome {
            Ok(_) => self.link.succeeded(),
            Err(_) => self.link.failed(),
        }
        outcome
    }

    /// One command, one round trip (per shard, in a cluster).
    pub(super) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.with_conn(|mut conn| async move { conn.query::<T>(cmd).await.map_err(unavailable) })
            .await
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

    /// Every entry key: SCAN on the one server, or on every cluster master in turn.
    async fn scan_keys(&self) -> Result<Vec<String>, StoreError> {
        let pattern = self.entry_pattern();
        let scan = |cursor: u64| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(BATCH);
            cmd
        };
        let mut keys = Vec::new();
        if let RedisTopology::Cluster(_) = self.topology {
            // The first page from every master at once, then each master's cursor to its end.
            let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            let first = self
                .with_conn(|mut conn| async move { conn.route(scan(0), all).await })
                .await?;
            for (node, page) in node_pages(first)? {
                let (mut cursor, page) = page;
                keys.extend(page);
                while cursor != 0 {
                    let (host, port) = split_address(&node)?;
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let cmd = scan(cursor);
                    let value = self
                        .with_conn(|mut conn| async move { conn.route(cmd, routing).await })
                        .await?;
                    let (next, page) = scan_page(value)?;
                    keys.extend(page);
                    cursor = next;
                }
            }
            return Ok(keys);
        }
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = self.run(&scan(cursor)).await?;
            keys.extend(page);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// One SCAN page: the cursor to continue from (0: done) and the keys found.
type ScanPage = (u64, Vec<String>);

/// The per-node answers of a command sent to every master: `(address, page)`.
fn node_pages(value: Value) -> Result<Vec<(String, ScanPage)>, StoreError> {
    let Value::Map(entries) = value else {
        return Err(StoreError::Corrupt(
            "SCAN on every master did not answer per node".into(),
        ));
    };
    entries
        .into_iter()
        .map(|(node, page)| {
            let node: String = redis::from_redis_value(node).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((node, scan_page(page)?))
        })
        .collect()
}

fn scan_page(value: Value) -> Result<ScanPage, StoreError> {
    if let Value::ServerError(error) = value {
        return Err(StoreError::Unavailable(format!(
            "SCAN failed on a cluster node: {error:?}"
        )));
    }
    redis::from_redis_value(value).map_err(|e| StoreError::Corrupt(format!("unexpected SCAN answer: {e}")))
}

/// `host:port` (the host may be an IPv6 address) into its parts.
fn split_address(address: &str) -> Result<(String, u16), StoreError> {
    let bad = || StoreError::Corrupt(format!("unexpected cluster node address {address:?}"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}

fn decode(bytes: &[u8]) -> Result<Revocation, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable revocation entry: {e}")))
}

/// Append the expiry to a SET: EXAT, clamped to what Redis accepts; an entry held
/// until reinstated ([`super::NEVER`]) gets none.
fn with_expiry(cmd: &mut Cmd, expires_at: UnixTime) {
    if expires_at < MAX_EXPIRE_AT {
        // EXAT 0 is refused; 1 is equally in the past, so the key vanishes at once.
        cmd.arg("EXAT").arg(expires_at.max(1));
    }
}

#[async_trait]
impl RevocationStore for RedisStore {
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(format!("cannot encode entry: {e}")))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.entry_key(&entry.key())).arg(json);
        with_expiry(&mut cmd, entry.expires_at);
        self.run::<()>(&cmd).await
    }

    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError> {
        let removed: u64 = self.run(redis::cmd("DEL").arg(self.entry_key(key))).await?;
        Ok(removed > 0)
    }

    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let keys = self.scan_keys().await?;
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
        let names: Vec<String> = keys.iter().map(|k| self.entry_key(k)).collect();
        let found = self.fetch(&names, now).await?;
        // An entry stored under another key's name means the data was tampered with.
        for (key, entry) in keys.iter().zip(&found) {
            if let Some(entry) = entry
                && entry.key() != *key
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
        if let RedisTopology::Cluster(_) = self.topology {
            // PING may still reach the masters that are up; the cluster's own view says
            // whether every slot is served.
            let info: String = self.run(redis::cmd("CLUSTER").arg("INFO")).await?;
            if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
                return Err(StoreError::Unavailable(
                    "the Redis Cluster reports a failed state (a shard is unreachable)".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::RevocationKind;

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
        assert_eq!(
            store.entry_key(&RevocationKey::new(RevocationKind::Subject, "x:y")),
            "a*[b]:rev:subject:x:y"
        );
        assert_eq!(
            store.entry_key(&RevocationKey::scoped(
                RevocationKind::Subject,
                Some("https://idp".into()),
                "x:y"
            )),
            "a*[b]:rev:subject@11:https://idp:x:y"
        );
        assert_eq!(store.once_key("j"), "a*[b]:once:j");
        assert_eq!(store.entry_pattern(), "a\\*\\[b\\]:rev:*");
        assert!(!format!("{store:?}").contains("127.0.0.1"));
    }
}
