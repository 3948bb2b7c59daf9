//! Where Redis is: one server, a Cluster, or a master found through Sentinel; and how
//! to open a connection to it.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisResult, Value};

use super::super::StoreError;

/// Shortest pause before a cluster client retries a failed request, in ms.
const RETRY_MIN_MS: u64 = 5;

/// Longest such pause, in ms: three retries fit well inside a 100 ms deadline.
const RETRY_MAX_MS: u64 = 25;

/// How the configuration says Redis is reached.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server: `redis://[:password@]host:port[/db]`.
    Single(String),
    /// A Redis Cluster, from the URLs of some of its nodes.
    Cluster(Vec<String>),
    /// A master watched by Sentinel: the sentinels' URLs and the master's name. The
    /// password and database of the first sentinel URL are used for the master too.
    Sentinel {
        /// URLs of the sentinels.
        sentinels: Vec<String>,
        /// The master's name in the sentinels' configuration.
        master_name: String,
    },
}

impl fmt::Debug for RedisTopology {
    // URLs may carry passwords: show only addresses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl RedisTopology {
    /// Addresses only (never a password), for logs and start-up warnings.
    pub(crate) fn describe(&self) -> String {
        match self {
            RedisTopology::Single(url) => address(url),
            RedisTopology::Cluster(nodes) => format!("cluster {}", addresses(nodes)),
            RedisTopology::Sentinel { sentinels, master_name } => {
                format!("master {master_name:?} through sentinels {}", addresses(sentinels))
            }
        }
    }
}

fn addresses(urls: &[String]) -> String {
    urls.iter().map(|u| address(u)).collect::<Vec<_>>().join(", ")
}

/// `host:port` of a URL, or a placeholder when it does not parse.
fn address(url: &str) -> String {
    match url.into_connection_info() {
        Ok(info) => info.addr().to_string(),
        Err(_) => "(unparsable Redis URL)".to_owned(),
    }
}

/// An open connection of either shape. Both reconnect by themselves after I/O errors;
/// the cluster one also follows `MOVED`/`ASK` and refreshes its slot map.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (directly or as the current Sentinel master).
    Single(ConnectionManager),
    /// A cluster: commands are routed by key slot.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Send one command. In a cluster, a multi-key command (MGET) is split by slot
    /// and the parts go out together, one round trip per shard touched.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Conn::Single(manager) => cmd.query_async(manager).await,
            Conn::Cluster(cluster) => cmd.query_async(cluster).await,
        }
    }

    /// Send a command to the nodes `routing` names (cluster only).
    pub(crate) async fn route(&mut self, cmd: Cmd, routing: RoutingInfo) -> Result<Value, StoreError> {
        match self {
            Conn::Cluster(cluster) => cluster.route_command(cmd, routing).await.map_err(unavailable),
            Conn::Single(_) => Err(StoreError::Unavailable("node routing needs a cluster".into())),
        }
    }
}

/// A Redis error as a store error: a timeout stays a timeout, anything else keeps
/// Redis's own wording ("Connection refused", "READONLY", "CLUSTERDOWN", ...).
pub(crate) fn unavailable(error: redis::RedisError) -> StoreError {
    if error.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::Unavailable(error.to_string())
    }
}

/// What opens a [`Conn`]: built once from the topology, used at start and after
/// repeated failures (when a Sentinel master may have moved).
pub(crate) enum Connector {
    /// One server: a lazy connection manager that connects on first use.
    Single {
        /// The server.
        client: Client,
        /// Timeouts and reconnection pacing.
        config: ConnectionManagerConfig,
    },
    /// A cluster client; connecting reads the slot map from any reachable node.
    Cluster {
        /// The client.
        client: ClusterClient,
        /// The first node's settings (credentials, TLS), for connections to any node.
        settings: ConnectionInfo,
    },
    /// Ask the sentinels for the master (which must confirm its role), then connect.
    Sentinel {
        /// The sentinels and the master's name.
        client: tokio::sync::Mutex<SentinelClient>,
        /// Timeouts and reconnection pacing of the master connection.
        config: ConnectionManagerConfig,
    },
}

impl Connector {
    /// Validate the URLs and build the connector; nothing is contacted yet.
    pub(crate) fn new(
        topology: &RedisTopology,
        op_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        // Parse errors never echo a URL, which may hold a password.
        let bad = |e: redis::RedisError| StoreError::Unavailable(format!("invalid Redis URL: {e}"));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_max_delay(super::MAX_RECONNECT_DELAY);
        Ok(match topology {
            RedisTopology::Single(url) => Connector::Single {
                client: Client::open(url.as_str()).map_err(bad)?,
                config,
            },
            RedisTopology::Cluster(nodes) => {
                let settings = nodes
                    .first()
                    .ok_or_else(|| StoreError::Unavailable("no cluster node URL given".into()))?
                    .as_str()
                    .into_connection_info()
                    .map_err(bad)?;
                let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(connect_timeout)
                    .response_timeout(op_timeout)
                    // A transient error (CLUSTERDOWN while a restarted master rejoins, a
                    // connection being re-opened) is retried within the operation's
                    // deadline: the client's default first pause (1.28 s) outlives it, so
                    // every such request failed as a timeout.
                    .retries(3)
                    .min_retry_wait(RETRY_MIN_MS)
                    .max_retry_wait(RETRY_MAX_MS)
                    .build()
                    .map_err(bad)?;
                Connector::Cluster { client, settings }
            }
            RedisTopology::Sentinel { sentinels, master_name } => {
                let first = sentinels
                    .first()
                    .ok_or_else(|| StoreError::Unavailable("no sentinel URL given".into()))?
                    .as_str()
                    .into_connection_info()
                    .map_err(bad)?;
                let master_info =
                    SentinelNodeConnectionInfo::default().set_redis_connection_info(first.redis_settings().clone());
                let client = SentinelClient::build(
                    sentinels.iter().map(String::as_str).collect(),
                    master_name.clone(),
                    Some(master_info),
                    SentinelServerType::Master,
                )
                .map_err(bad)?;
                Connector::Sentinel {
                    client: tokio::sync::Mutex::new(client),
                    config,
                }
            }
        })
    }

    /// Connect once, directly, and report exactly what went wrong ("Connection
    /// refused", a timeout, an authentication error): for start-up diagnostics, where
    /// the lazy connection of a single server would only say it timed out.
    pub(crate) async fn probe(&self) -> RedisResult<()> {
        match self {
            Connector::Single { client, .. } => {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ())
            }
            Connector::Cluster { .. } | Connector::Sentinel { .. } => self.connect().await.map(|_| ()),
        }
    }

    /// The connection settings of the configured nodes (the first cluster URL), for
    /// dedicated connections to nodes found later.
    pub(crate) fn node_settings(&self) -> Option<ConnectionInfo> {
        match self {
            Connector::Single { client, .. } => Some(client.get_connection_info().clone()),
            Connector::Cluster { settings, .. } => Some(settings.clone()),
            Connector::Sentinel { .. } => None,
        }
    }

    /// Open a connection, with the master it reaches (one server, or the Sentinel
    /// master; none for a cluster, whose masters are found per slot). For one server
    /// this only sets up a lazy manager; for a cluster or a Sentinel master it talks to
    /// the network.
    pub(crate) async fn connect(&self) -> RedisResult<(Conn, Option<ConnectionInfo>)> {
        match self {
            Connector::Single { client, config } => Ok((
                Conn::Single(ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?),
                Some(client.get_connection_info().clone()),
            )),
            Connector::Cluster { client, .. } => Ok((Conn::Cluster(client.get_async_connection().await?), None)),
            Connector::Sentinel { client, config } => {
                let master = client.lock().await.async_get_client().await?;
                tracing::info!(master = %master.get_connection_info().addr(), "Redis master found through Sentinel");
                let info = master.get_connection_info().clone();
                Ok((
                    Conn::Single(ConnectionManager::new_with_config(master, config.clone()).await?),
                    Some(info),
                ))
            }
        }
    }
}

/// `info` (credentials, database, TLS settings) pointed at another node.
pub(crate) fn at_address(info: &ConnectionInfo, host: &str, port: u16) -> ConnectionInfo {
    let addr = match info.addr() {
        ConnectionAddr::TcpTls {
            insecure, tls_params, ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    info.clone().set_addr(addr)
}
