//! Real multi-process Redis set-ups for one test: a 3-master Cluster joined with
//! `redis-cli --cluster create`, and a Sentinel set (master, replica, three sentinels).
//! Every process is a [`RedisServer`] on free loopback ports, killed on drop.

use std::process::Command;
use std::time::{Duration, Instant};

use super::redis_server::{RedisOptions, RedisServer, free_port, on_path};
use super::relay::Relay;

/// How long a set-up may take to settle (cluster state ok, sentinels agreeing).
const SETTLE: Duration = Duration::from_secs(30);
/// How long a restarted old master may take to become an in-sync replica: the sentinels
/// first see it up (`down-after-milliseconds`), then convert it, then the new master sends
/// a full copy after its diskless-sync delay; on a loaded machine each step is slow.
const REJOIN: Duration = Duration::from_secs(60);

/// Poll `ready` until it holds or `within` passes; panic with `what` otherwise.
/// Real processes settle in real time, so this pauses briefly between looks.
pub fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis Cluster of three masters, and optionally a replica of the first.
pub struct RedisCluster {
    /// The masters, in creation order (then the replica, when there is one).
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start three cluster-enabled servers, join them, and wait for `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    /// Three masters started with `options` (cluster mode added).
    pub fn start_with(options: RedisOptions) -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(RedisOptions {
                    cluster_bus_port: Some(free_port()),
                    ..options.clone()
                })
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let output = Command::new(on_path("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        wait_for("cluster state ok on every node", SETTLE, || {
            cluster.nodes.iter().all(|n| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut n.connection())
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
            })
        });
        cluster
    }

    /// Three masters (append-only, fsync always) and a replica of the first, joined
    /// with `redis-cli --cluster add-node --cluster-slave`; waits until it is in sync.
    pub fn start_with_replica() -> Self {
        let options = RedisOptions {
            appendonly: true,
            ..RedisOptions::default()
        };
        let mut cluster = Self::start_with(options.clone());
        let replica = RedisServer::start_with(RedisOptions {
            cluster_bus_port: Some(free_port()),
            ..options
        });
        let master_id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut cluster.nodes[0].connection())
            .expect("CLUSTER MYID");
        let output = Command::new(on_path("redis-cli"))
            .args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{}", replica.port()))
            .arg(format!("127.0.0.1:{}", cluster.nodes[0].port()))
            .args(["--cluster-slave", "--cluster-master-id", &master_id])
            .output()
            .expect("run redis-cli --cluster add-node");
        assert!(
            output.status.success(),
            "redis-cli --cluster add-node failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.nodes.push(replica);
        let master = &cluster.nodes[0];
        wait_for("the replica in sync with the first master", SETTLE, || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut master.connection())
                .unwrap_or_default();
            info.contains("connected_slaves:1") && info.contains("state=online")
        });
        wait_for("every node lists the replica", SETTLE, || {
            cluster.nodes.iter().all(|n| {
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut n.connection())
                    .unwrap_or_default();
                nodes.lines().filter(|l| l.contains("slave")).count() == 1
            })
        });
        cluster
    }

    /// The node URLs, as `[revocation] cluster` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The index of the master that holds `key` (it must exist).
    pub fn holder_of(&self, key: &str) -> usize {
        let first = self.nodes.iter().find(|n| n.pid().is_some()).expect("a running node");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut first.connection())
            .expect("CLUSTER KEYSLOT");
        let holders: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.pid().is_some())
            .filter(|(_, n)| {
                let count: u64 = redis::cmd("CLUSTER")
                    .arg("COUNTKEYSINSLOT")
                    .arg(slot)
                    .query(&mut n.connection())
                    .unwrap_or(0);
                count > 0 && {
                    let exists: Result<u64, _> = redis::cmd("EXISTS").arg(key).query(&mut n.connection());
                    exists == Ok(1)
                }
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(holders.len(), 1, "{key} (slot {slot}) should be on exactly one master");
        holders[0]
    }
}

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// A master, one replica and three sentinels watching them (quorum 2).
pub struct SentinelSet {
    /// The master at start-up.
    pub master: RedisServer,
    /// Its replica, promoted by a failover.
    pub replica: RedisServer,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
    /// The relay the replica reaches the master through, when started relayed.
    pub relay: Option<Relay>,
}

impl SentinelSet {
    /// Start the master and its replica, wait for replication, then the sentinels, and
    /// wait until each sentinel knows the replica and the other sentinels.
    pub fn start() -> Self {
        Self::start_relayed(false)
    }

    /// As [`SentinelSet::start`]; with `relayed`, the replica replicates through a
    /// [`Relay`] the test can cut.
    pub fn start_relayed(relayed: bool) -> Self {
        let master = RedisServer::start();
        let relay = relayed.then(|| Relay::start(master.port()));
        let replica = RedisServer::start_with(RedisOptions {
            replica_of: Some(relay.as_ref().map_or(master.port(), Relay::port)),
            ..RedisOptions::default()
        });
        wait_for("replica linked to its master", SETTLE, || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut replica.connection())
                .unwrap_or_default();
            info.contains("master_link_status:up")
        });
        let lines = vec![
            format!("sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2", master.port()),
            format!("sentinel down-after-milliseconds {MASTER_NAME} 1000"),
            format!("sentinel failover-timeout {MASTER_NAME} 10000"),
            format!("sentinel parallel-syncs {MASTER_NAME} 1"),
        ];
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(RedisOptions {
                    sentinel: Some(lines.clone()),
                    ..RedisOptions::default()
                })
            })
            .collect();
        let set = Self {
            master,
            replica,
            sentinels,
            relay,
        };
        wait_for("sentinels know the replica and each other", SETTLE, || {
            set.sentinels.iter().all(|s| {
                let mut conn = s.connection();
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(MASTER_NAME)
                    .query(&mut conn)
                    .unwrap_or_default();
                let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("SENTINELS")
                    .arg(MASTER_NAME)
                    .query(&mut conn)
                    .unwrap_or_default();
                replicas.len() == 1 && others.len() == 2
            })
        });
        set
    }

    /// The sentinel URLs, as `[revocation] sentinels` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The port the sentinels name as master now.
    pub fn master_port(&self) -> u16 {
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER_NAME)
            .query(&mut self.sentinels[0].connection())
            .expect("SENTINEL GET-MASTER-ADDR-BY-NAME");
        port
    }

    /// After a failover: start the old master again (empty); the sentinels make it a
    /// replica of the promoted one. Waits until it is in sync.
    pub fn rejoin_old_master(&mut self) {
        self.master.start_again();
        let promoted = &self.replica;
        wait_for("the old master rejoined as a replica", REJOIN, || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut promoted.connection())
                .unwrap_or_default();
            info.contains("role:master") && info.contains("connected_slaves:1") && info.contains("state=online")
        });
        // Online for the master once the copy is sent; acknowledging writes once loaded.
        let rejoined = &self.master;
        wait_for("the rejoined replica loaded its copy", SETTLE, || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut rejoined.connection())
                .unwrap_or_default();
            info.contains("master_link_status:up")
        });
    }

    /// Block until the replica has every write the master acknowledged so far.
    pub fn sync_replica(&self) {
        let acked: u64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut self.master.connection())
            .expect("WAIT");
        assert_eq!(acked, 1, "the replica did not acknowledge the writes");
    }
}
