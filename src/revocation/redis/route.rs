//! The shared connection, and where a key's master is: the one server, the current
//! Sentinel master, or the Cluster master that owns the key's slot (from a shard map
//! read with `CLUSTER NODES`, refreshed when a write is redirected or fails).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionInfo, FromRedisValue, Value};

use super::super::StoreError;
use super::ack::Rewrite;
use super::link::Link;
use super::shards::{Shard, ShardMap};
use super::topology::{Conn, Connector, RedisTopology, at_address, unavailable};

/// Number of Redis Cluster hash slots.
const SLOTS: u16 = 16_384;

/// The slot of `key`, honouring a `{hash tag}` as Redis does.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = key.get(open + 1..)?;
            let close = rest.iter().position(|b| *b == b'}')?;
            (close > 0).then(|| rest.get(..close)).flatten()
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

/// A master a write goes to, and whether the topology gives it replicas.
#[derive(Debug, Clone)]
pub(crate) struct Master {
    /// How to reach it.
    pub info: ConnectionInfo,
    /// Sentinel masters and Cluster shards with replicas: true; one server: false.
    pub has_replicas: bool,
}

/// How often a Cluster that failed is asked whether every master is back.
const RECOVERY_PROBE: Duration = Duration::from_millis(50);

/// What a recovered Cluster must pass before it is served again: the store guard's
/// check of the eviction policy and the marker (a shard may be back empty).
pub(crate) trait RecoveryCheck: Send + Sync {
    /// Check the store through `router`; an error keeps the Cluster refused.
    fn check<'a>(&'a self, router: &'a Router) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;
}

/// The shared connection with its topology.
pub(crate) struct Router {
    link: Arc<Link>,
    topology: RedisTopology,
    timeout: Duration,
    shards: Mutex<Option<ShardMap>>,
    /// Cluster only: false from a failed operation until every master reports
    /// `cluster_state:ok` again. Masters leave a failed state one by one (a restarted
    /// master waits before it serves, the others clear its failure flag at their own
    /// pace), so requests served meanwhile would succeed or fail by which shards they
    /// touch; refusing them all until the cluster is whole means that once one
    /// succeeds, the rest do too.
    whole: AtomicBool,
    probing: AtomicBool,
    me: Weak<Router>,
    /// Checked again before a recovered Cluster is served: a shard may be back empty.
    guard: OnceLock<Weak<dyn RecoveryCheck>>,
    /// The masters when the last failure began, to see whether a failover moved them.
    masters_before: Mutex<Option<Vec<(String, u16)>>>,
}

impl Router {
    /// Route over `link`, each operation bounded by `timeout`.
    pub(crate) fn new(link: Arc<Link>, topology: RedisTopology, timeout: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            link,
            topology,
            timeout,
            shards: Mutex::new(None),
            whole: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            me: me.clone(),
            guard: OnceLock::new(),
            masters_before: Mutex::new(None),
        })
    }

    /// The guard to consult before a recovered Cluster is served again.
    pub(crate) fn set_guard(&self, guard: Weak<dyn RecoveryCheck>) {
        let _ = self.guard.set(guard);
    }

    /// The link (for its reconnection signals and diagnostics).
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.topology, RedisTopology::Cluster(_))
    }

    /// One operation on the shared connection, bounded by the store's timeout
    /// (including any wait for a connection being opened); failures are counted.
    pub(crate) async fn with_conn<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if !self.whole.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "the Redis Cluster is recovering: not every master reports cluster_state:ok yet".into(),
            ));
        }
        let outcome = self.counted(op).await;
        if self.is_cluster() && matches!(outcome, Err(StoreError::Timeout | StoreError::Unavailable(_))) {
            self.recovering();
        }
        outcome
    }

    /// The operation itself, its success or failure counted on the link.
    async fn counted<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
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
            // The cluster client reassembles a multi-slot answer from a slot map that no
            // longer matches the cluster (after a failover): it stays wrong until the
            // connection is opened afresh.
            Err(StoreError::Unavailable(why)) if why.contains("Mismatch in the number of multi-slot results") => {
                self.link.broken();
            }
            Err(_) => self.link.failed(),
        }
        outcome
    }

    /// A cluster operation failed: refuse everything until every master says the
    /// cluster is whole again, which a background probe finds out.
    fn recovering(&self) {
        self.whole.store(false, Ordering::Release);
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        if let (Ok(known), Ok(mut before)) = (self.shards.lock(), self.masters_before.lock()) {
            *before = known.as_ref().map(master_addresses);
        }
        tokio::spawn(probe_until_whole(self.me.clone()));
    }

    /// One command, one round trip (per shard, in a cluster).
    pub(crate) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.with_conn(|mut conn| async move { conn.query::<T>(cmd).await.map_err(unavailable) })
            .await
    }

    /// One command for the store's own checks: it passes while a Cluster recovers,
    /// since the checks decide whether it may be served again.
    pub(crate) async fn run_check<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.counted(|mut conn| async move { conn.query::<T>(cmd).await.map_err(unavailable) })
            .await
    }

    /// `cmd` on every master: one answer per master (the one server or Sentinel
    /// master answers alone). For the store's checks: not held back by a recovery.
    pub(crate) async fn on_every_master(&self, cmd: Cmd) -> Result<Vec<(String, Value)>, StoreError> {
        if !self.is_cluster() {
            let value: Value = self.run_check(&cmd).await?;
            return Ok(vec![(self.topology.describe(), value)]);
        }
        let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let value = self
            .counted(|mut conn| async move { conn.route(cmd, all).await })
            .await?;
        match value {
            Value::Map(entries) => entries
                .into_iter()
                .map(|(node, answer)| {
                    let node: String = redis::from_redis_value(node).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Ok((node, answer))
                })
                .collect(),
            other => Err(StoreError::Corrupt(format!(
                "a command on every master did not answer per node: {other:?}"
            ))),
        }
    }

    /// The master that owns `key` now.
    pub(crate) async fn master_for(&self, key: &str) -> Result<Master, StoreError> {
        match &self.topology {
            RedisTopology::Single(_) | RedisTopology::Sentinel { .. } => {
                if self.link.master().is_none() {
                    // Wait (within the deadline) for the connection being opened.
                    self.with_conn(|_| async { Ok(()) }).await?;
                }
                let info = self
                    .link
                    .master()
                    .ok_or_else(|| StoreError::Unavailable("no Redis master is known yet".into()))?;
                Ok(Master {
                    info,
                    has_replicas: matches!(self.topology, RedisTopology::Sentinel { .. }),
                })
            }
            RedisTopology::Cluster(_) => {
                let shard = self.shard_for(key_slot(key.as_bytes())).await?;
                self.master_of(&shard)
            }
        }
    }

    /// Every master with whether it has replicas (one, for one server or Sentinel).
    pub(crate) async fn masters(&self) -> Result<Vec<Master>, StoreError> {
        if !self.is_cluster() {
            return Ok(vec![self.master_for("").await?]);
        }
        let map = self.shard_map(true).await?;
        map.masters().iter().map(|shard| self.master_of(shard)).collect()
    }

    fn master_of(&self, shard: &Shard) -> Result<Master, StoreError> {
        let settings = self
            .link
            .connector()
            .node_settings()
            .ok_or_else(|| StoreError::Unavailable("no settings for cluster nodes".into()))?;
        Ok(Master {
            info: at_address(&settings, &shard.host, shard.port),
            has_replicas: shard.replicas > 0,
        })
    }

    async fn shard_for(&self, slot: u16) -> Result<Shard, StoreError> {
        let map = self.shard_map(false).await?;
        if let Some(shard) = map.for_slot(slot) {
            return Ok(shard.clone());
        }
        self.shard_map(true)
            .await?
            .for_slot(slot)
            .cloned()
            .ok_or_else(|| StoreError::Unavailable(format!("no Redis Cluster master serves slot {slot}")))
    }

    /// The shard map, read again when `fresh` or not read yet.
    async fn shard_map(&self, fresh: bool) -> Result<ShardMap, StoreError> {
        if !fresh
            && let Ok(known) = self.shards.lock()
            && let Some(map) = known.as_ref()
        {
            return Ok(map.clone());
        }
        let text: String = self.run(redis::cmd("CLUSTER").arg("NODES")).await?;
        let map = ShardMap::parse(&text)?;
        if let Ok(mut known) = self.shards.lock() {
            *known = Some(map.clone());
        }
        Ok(map)
    }

    /// A write to a master failed: forget the shard map (a slot may have moved, a
    /// replica been promoted) and count the failure on the link (a Sentinel master
    /// that died or was demoted is asked for again after a few).
    pub(crate) fn write_failed(&self) {
        if let Ok(mut known) = self.shards.lock() {
            *known = None;
        }
        self.link.failed();
    }

    /// How to open connections (for diagnostics).
    pub(crate) fn connector(&self) -> &Connector {
        self.link.connector()
    }
}

/// Ask every master serving slots (as `CLUSTER NODES` lists them now, so a promoted
/// replica counts and a dead master is not forgotten) for `CLUSTER INFO` until all
/// say `cluster_state:ok`.
async fn probe_until_whole(router: Weak<Router>) {
    loop {
        let Some(strong) = router.upgrade() else { return };
        if strong.all_masters_ok().await {
            // A master may be back without its data: check the marker before serving.
            if let Some(guard) = strong.guard.get().and_then(Weak::upgrade)
                && let Err(error) = guard.check(&strong).await
            {
                tracing::debug!(%error, "revocation store check after recovery did not complete");
                drop(strong);
                tokio::time::sleep(RECOVERY_PROBE).await;
                continue;
            }
            strong.whole.store(true, Ordering::Release);
            strong.probing.store(false, Ordering::Release);
            tracing::info!("every Redis Cluster master reports cluster_state:ok; serving again");
            return;
        }
        drop(strong);
        tokio::time::sleep(RECOVERY_PROBE).await;
    }
}

impl Router {
    async fn all_masters_ok(&self) -> bool {
        let nodes = self
            .counted(|mut conn| async move {
                conn.query::<String>(redis::cmd("CLUSTER").arg("NODES"))
                    .await
                    .map_err(unavailable)
            })
            .await;
        let Ok(map) = nodes.and_then(|text| ShardMap::parse(&text)) else {
            return false;
        };
        if map.masters().is_empty() {
            return false;
        }
        for shard in map.masters() {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: shard.host.clone(),
                port: shard.port,
            });
            let cmd = redis::cmd("CLUSTER").arg("INFO").to_owned();
            let info = self
                .counted(|mut conn| async move { conn.route(cmd, routing).await })
                .await
                .and_then(|value| {
                    redis::from_redis_value::<String>(value).map_err(|e| StoreError::Corrupt(e.to_string()))
                });
            if !info.is_ok_and(|text| text.lines().any(|line| line.trim() == "cluster_state:ok")) {
                return false;
            }
        }
        // A failover moved a master: the cluster client's slot map may still pair
        // slots with the old one and mis-assemble multi-slot answers; open afresh.
        let moved = self
            .masters_before
            .lock()
            .ok()
            .and_then(|mut before| before.take())
            .is_none_or(|before| before != master_addresses(&map));
        if moved {
            self.link.broken();
        }
        if let Ok(mut known) = self.shards.lock() {
            *known = Some(map);
        }
        true
    }
}

fn master_addresses(map: &ShardMap) -> Vec<(String, u16)> {
    let mut addresses: Vec<(String, u16)> = map.masters().iter().map(|m| (m.host.clone(), m.port)).collect();
    addresses.sort();
    addresses
}

impl Rewrite for Router {
    fn send(&self, key: String, cmd: Cmd) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
        Box::pin(async move {
            if self.is_cluster() {
                // The cluster connection follows the key's slot by itself.
                return self.run::<Value>(&cmd).await.map(|_| ());
            }
            let master = self.master_for(&key).await?;
            let client = redis::Client::open(master.info).map_err(unavailable)?;
            let attempt = async {
                let mut conn = client.get_multiplexed_async_connection().await.map_err(unavailable)?;
                cmd.query_async::<Value>(&mut conn).await.map_err(unavailable)
            };
            match tokio::time::timeout(self.timeout * 10, attempt).await {
                Ok(outcome) => outcome.map(|_| ()),
                Err(_) => Err(StoreError::Timeout),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_redis_computes_them() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }
}
