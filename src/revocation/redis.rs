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
//! on the caller's `now`. Offboardings written before they held until reinstated
//! still carry the expiry of their day: reads hold them anyway ([`Revocation::kept`]),
//! and `keep_offboardings` rewrites each without its expiry, durably, on every master.
//!
//! Writes that carry a promise (revocations with their events, once-only markers) are
//! acknowledged only once the replicas the policy asks for confirmed them (`ack`);
//! reads never wait. Every operation first asks the guard whether the store can be
//! trusted (`guard`: eviction policy, store marker); a Cluster that failed is served
//! again only once every master is back (`route`).

mod ack;
mod guard;
mod link;
mod route;
mod shards;
mod topology;

pub use ack::{AckPolicy, MinReplicas};
pub use guard::{Distrust, Marker, Origin, Reading, Trust};
pub use topology::RedisTopology;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Value};

use super::{KeptOffboardings, Revocation, RevocationKey, RevocationStore, StoreError};
use ack::{Acks, Rewrite};
pub(super) use ack::{Withdrawal, attempt_id};
use guard::Guard;
use link::Link;
use mcp_sts_contract::clock::UnixTime;
use route::Router;
use topology::{Connector, unavailable};

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

/// How often the eviction policy and the store marker are checked besides at every
/// reconnection.
pub(crate) const CHECK_PERIOD: Duration = Duration::from_secs(2);

/// How many keys one SCAN page or MGET batch asks for.
const BATCH: usize = 500;

/// The largest expiry Redis accepts comfortably (9999-12-31); later ones are stored
/// without a Redis expiry and still filtered on read.
const MAX_EXPIRE_AT: UnixTime = 253_402_300_799;

/// Mark a once-only id with this attempt's value: 1 the first time, or when the marker
/// already holds this attempt's value (the same write sent again after a lost answer;
/// written again so a `WAIT` that follows covers it); 0 when another attempt used it.
const USE_ONCE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
return 1
";

/// Rewrite an entry that predates lasting offboarding (KEYS[1]) to ARGV[2], only while it
/// still holds exactly what was read (ARGV[1]): 1 when rewritten, 0 when it changed
/// (reinstated, revoked again, or already rewritten by another replica). A SET without
/// EXAT drops the old expiry, as PERSIST would.
const KEEP_OFFBOARDING: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

/// How a Redis store is opened, beyond where Redis is.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key.
    pub prefix: String,
    /// Deadline of one operation.
    pub timeout: Duration,
    /// What acknowledging a write requires.
    pub acks: AckPolicy,
    /// Start even when `CONFIG` is refused (managed Redis).
    pub accept_unknown_eviction_policy: bool,
    /// Where this replica remembers the store marker across restarts.
    pub marker_record: Option<PathBuf>,
    /// Keep checking the store in the background (the service); off for the
    /// operator's commands, which only look or adopt.
    pub watch: bool,
}

impl RedisOptions {
    /// Defaults for keys under `prefix`: `auto` acknowledgements, no record file.
    pub fn new(prefix: &str, timeout: Duration) -> Self {
        Self {
            prefix: prefix.to_owned(),
            timeout,
            acks: AckPolicy::default(),
            accept_unknown_eviction_policy: false,
            marker_record: None,
            watch: true,
        }
    }
}

/// How writes to one master are made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterDurability {
    /// `host:port`.
    pub address: String,
    /// Whether the topology gives it replicas.
    pub has_replicas: bool,
    /// Replicas a write waits for.
    pub required: u32,
    /// Whether it supports `WAITAOF` (Redis 7.2 and later).
    pub waitaof: bool,
    /// `appendonly ..., appendfsync ...`, when `CONFIG` answers.
    pub persistence: Option<String>,
}

/// A [`RevocationStore`] in Redis, shared by all replicas.
pub struct RedisStore {
    router: Arc<Router>,
    acks: Acks,
    guard: Arc<Guard>,
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
        Self::open(
            RedisTopology::Single(url.to_owned()),
            RedisOptions::new(prefix, timeout),
        )
        .await
    }

    /// A store on `topology`. Fails only on a malformed URL: connecting happens in the
    /// background, so Redis may be down at start-up. Must be called within Tokio.
    pub async fn open(topology: RedisTopology, options: RedisOptions) -> Result<RedisStore, StoreError> {
        let timeout = options.timeout;
        let connector = Arc::new(Connector::new(&topology, timeout, CONNECT_TIMEOUT)?);
        let link = Link::new(connector, CONNECT_TIMEOUT);
        link.start();
        let router = Router::new(link, topology.clone(), timeout);
        let guard = Arc::new(Guard::new(
            &options.prefix,
            options.accept_unknown_eviction_policy,
            options.marker_record,
        ));
        let check: std::sync::Weak<Guard> = Arc::downgrade(&guard);
        router.set_guard(check);
        if options.watch {
            tokio::spawn(guard::watch(
                Arc::downgrade(&router),
                Arc::downgrade(&guard),
                CHECK_PERIOD,
            ));
        }
        Ok(RedisStore {
            router,
            acks: Acks::new(options.acks, timeout, CONNECT_TIMEOUT),
            guard,
            topology,
            prefix: options.prefix,
            timeout,
        })
    }

    /// Where the store connects, without credentials (for logs).
    pub fn describe(&self) -> String {
        self.topology.describe()
    }

    /// The longest a write that waits for replicas may take, queueing included.
    pub(crate) fn write_deadline(timeout: Duration, acks: AckPolicy) -> Duration {
        acks.batch_bound(timeout, CONNECT_TIMEOUT) * 2
    }

    /// Ping until Redis answers or `within` has passed; the last error otherwise.
    /// Used at start-up so an unreachable store is reported, not found out later.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let error = match self.router.run::<String>(&redis::cmd("PING")).await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if tokio::time::Instant::now() + self.timeout >= deadline {
                // Say why as Redis said it (refused, timed out, auth), not only that
                // the operation missed its deadline.
                return match tokio::time::timeout(CONNECT_TIMEOUT, self.router.connector().probe()).await {
                    Ok(Err(cause)) => Err(unavailable(cause)),
                    Err(_) => Err(StoreError::Timeout),
                    Ok(Ok(())) => Err(error),
                };
            }
            tokio::time::sleep(self.timeout).await;
        }
    }

    /// The guard's conclusion once it has checked the store (waiting up to `within`).
    pub(crate) async fn checked(&self, within: Duration) -> Trust {
        let _ = self.guard.ensure(within).await;
        self.guard.trust()
    }

    /// Changes of the store's trust (for audit events and readiness).
    pub(crate) fn trust_changes(&self) -> tokio::sync::watch::Receiver<Trust> {
        self.guard.subscribe()
    }

    /// Check the eviction policy and the marker now.
    pub async fn check_trust(&self) -> Result<Trust, StoreError> {
        self.guard.check_trust(&self.router).await
    }

    /// The eviction policy of every master; `Err` with Redis's words when `CONFIG`
    /// is refused.
    pub async fn eviction_policies(&self) -> Result<Result<Vec<(String, String)>, String>, StoreError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        guard::read_config(&self.router, cmd).await
    }

    /// The marker now in the store and the one this replica knows.
    pub async fn marker(&self) -> Result<(guard::Reading, Option<String>), StoreError> {
        Ok((self.guard.read(&self.router).await?, self.guard.known()))
    }

    /// An operator's decision: take the store as it is now (after a loss) and write a
    /// new marker, so every replica serves again.
    pub async fn adopt(&self) -> Result<Marker, StoreError> {
        self.guard.adopt(&self.router).await
    }

    /// Per master: its address, the replicas a write waits for, whether it has
    /// `WAITAOF`, and its persistence settings (when `CONFIG` answers).
    pub async fn durability(&self) -> Result<Vec<MasterDurability>, StoreError> {
        let mut report = Vec::new();
        for master in self.router.masters().await? {
            let address = master.info.addr().to_string();
            let required = self.acks.required(master.has_replicas);
            let mut conn = redis::Client::open(master.info.clone())
                .map_err(unavailable)?
                .get_multiplexed_async_connection()
                .await
                .map_err(unavailable)?;
            let waitaof: Vec<Value> = redis::cmd("COMMAND")
                .arg("INFO")
                .arg("WAITAOF")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let config: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendonly")
                .arg("appendfsync")
                .query_async(&mut conn)
                .await;
            let persistence = config.ok().map(|pairs| {
                pairs
                    .chunks(2)
                    .filter_map(|pair| match pair {
                        [name, value] => Some(format!("{name} {value}")),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            report.push(MasterDurability {
                address,
                has_replicas: master.has_replicas,
                required,
                waitaof: matches!(waitaof.first(), Some(Value::Array(_))),
                persistence,
            });
        }
        Ok(report)
    }

    /// What acknowledging a write requires here.
    pub fn ack_policy(&self) -> AckPolicy {
        self.acks.policy()
    }

    /// One operation on the trusted store.
    async fn with_trust(&self) -> Result<(), StoreError> {
        self.guard.ensure(self.timeout).await
    }

    /// One command on the shared connection, once the store is trusted.
    pub(super) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.with_trust().await?;
        self.router.run(cmd).await
    }

    /// A write that carries a promise: acknowledged only once the replicas the
    /// policy asks for confirmed it. `key` decides the master; `withdrawal` names a
    /// once-only marker the write sets.
    pub(super) async fn write_durably(
        &self,
        key: &str,
        cmd: Cmd,
        withdrawal: Option<Withdrawal>,
    ) -> Result<Value, StoreError> {
        self.with_trust().await?;
        let mut retried = false;
        loop {
            let master = self.router.master_for(key).await?;
            let replicas = self.acks.required(master.has_replicas);
            if !self.acks.waits(replicas) {
                return self.router.run(&cmd).await;
            }
            let rewrite: Weak<dyn Rewrite> = Arc::downgrade(&self.router) as Weak<dyn Rewrite>;
            let outcome = self
                .acks
                .write(&master.info, replicas, cmd.clone(), withdrawal.clone(), rewrite)
                .await;
            match &outcome {
                Ok(_) | Err(StoreError::Unconfirmed(_)) => return outcome,
                Err(StoreError::Unavailable(why)) if !retried && (why.contains("MOVED") || why.contains("ASK")) => {
                    // A slot moved: learn where, and try once more.
                    self.router.write_failed();
                    retried = true;
                }
                Err(_) => {
                    self.router.write_failed();
                    return outcome;
                }
            }
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

    /// MGET `keys` (in batches) and decode every entry still in force at `now`.
    async fn fetch(&self, keys: &[String], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        // On one server or Sentinel the store marker rides along with the first batch,
        // so a store that lost its data is noticed by the very next check.
        let mut marker = (!self.router.is_cluster()).then(|| self.guard.marker_key());
        for batch in keys.chunks(BATCH) {
            let mut cmd = redis::cmd("MGET");
            cmd.arg(&marker).arg(batch);
            let mut raw: Vec<Option<Vec<u8>>> = self.run(&cmd).await?;
            if marker.take().is_some() {
                if raw.is_empty() {
                    return Err(StoreError::Corrupt("MGET answered a different number of values".into()));
                }
                if raw.remove(0).is_none() {
                    return Err(self.guard.marker_missing_on_read());
                }
            }
            if raw.len() != batch.len() {
                return Err(StoreError::Corrupt("MGET answered a different number of values".into()));
            }
            for bytes in raw {
                found.push(bytes.map(|b| decode(&b)).transpose()?.filter(|e| e.expires_at > now));
            }
        }
        Ok(found)
    }

    /// Every entry that predates lasting offboarding, as stored: its key and bytes.
    pub async fn offboardings_to_keep(&self) -> Result<(Vec<StoredEntry>, u64), StoreError> {
        let keys = self.scan_keys().await?;
        let mut found = Vec::new();
        let mut unreadable = 0;
        for batch in keys.chunks(BATCH) {
            let raw: Vec<Option<Vec<u8>>> = self.run(redis::cmd("MGET").arg(batch)).await?;
            if raw.len() != batch.len() {
                return Err(StoreError::Corrupt("MGET answered a different number of values".into()));
            }
            for (key, bytes) in batch.iter().zip(raw) {
                let Some(bytes) = bytes else { continue };
                match decode_stored(&bytes) {
                    Ok(entry) if entry.predates_lasting_offboarding() => found.push(StoredEntry {
                        key: key.clone(),
                        bytes,
                        entry,
                    }),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
        }
        Ok((found, unreadable))
    }

    /// Rewrite each entry found by [`RedisStore::offboardings_to_keep`] to hold until
    /// reinstated, each only if it is still as it was read, each acknowledged as a
    /// revocation is (through the key's master, waiting for its replicas).
    pub async fn keep(&self, found: &[StoredEntry]) -> Result<KeptOffboardings, StoreError> {
        let mut done = KeptOffboardings::default();
        for stored in found {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(KEEP_OFFBOARDING)
                .arg(1)
                .arg(&stored.key)
                .arg(stored.bytes.as_slice())
                .arg(encode(&stored.entry.clone().kept())?);
            match self.write_durably(&stored.key, cmd, None).await? {
                Value::Int(1) => done.kept += 1,
                _ => done.changed_meanwhile += 1,
            }
        }
        Ok(done)
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
            self.with_trust().await?;
            let first = self.router.on_every_master(scan(0)).await?;
            for (node, page) in first {
                let page = scan_page(page)?;
                let (mut cursor, page) = page;
                keys.extend(page);
                while cursor != 0 {
                    let (host, port) = split_address(&node)?;
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let cmd = scan(cursor);
                    let value = self
                        .router
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

/// One entry as Redis holds it, read for rewriting.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    key: String,
    bytes: Vec<u8>,
    entry: Revocation,
}

impl StoredEntry {
    /// The entry as stored.
    pub fn entry(&self) -> &Revocation {
        &self.entry
    }
}

/// One SCAN page: the cursor to continue from (0: done) and the keys found.
type ScanPage = (u64, Vec<String>);

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
        let json = encode(&entry)?;
        let key = self.entry_key(&entry.key());
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(json);
        with_expiry(&mut cmd, entry.expires_at);
        self.write_durably(&key, cmd, None).await.map(|_| ())
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
        // Redis expires the marker by its own clock, so one atomic SET NX decides. The
        // value is this attempt's own, so an unconfirmed marker can be withdrawn
        // without touching another request's.
        let key = self.once_key(id);
        let attempt = ack::attempt_id();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(USE_ONCE)
            .arg(1)
            .arg(&key)
            .arg(&attempt)
            .arg(expires_at.clamp(1, MAX_EXPIRE_AT));
        let withdrawal = Withdrawal {
            key: key.clone(),
            attempt,
            already_used: Value::Int(0),
        };
        let set = self.write_durably(&key, cmd, Some(withdrawal)).await?;
        Ok(matches!(set, Value::Int(1)))
    }

    async fn keep_offboardings(&self) -> Result<KeptOffboardings, StoreError> {
        let (found, unreadable) = self.offboardings_to_keep().await?;
        let mut done = self.keep(&found).await?;
        done.unreadable = unreadable;
        Ok(done)
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

    async fn diagnose(&self) -> Option<String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.router.connector().probe()).await {
            Ok(Ok(())) => None,
            Ok(Err(cause)) => Some(cause.to_string()),
            Err(_) => Some(format!("no connection within {} ms", CONNECT_TIMEOUT.as_millis())),
        }
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
