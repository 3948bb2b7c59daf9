//! What mcp-sts's integration tests run against: the real service on a free loopback
//! port, real `redis-server` topologies the tests start and stop, an IdP, hostile peers
//! and a relay that cuts links on demand. Nothing here is a stand-in for a part users run.

pub mod attack;
pub mod downstream;
pub mod hostile;
pub mod redis_server;
pub mod redis_topologies;
pub mod relay;
pub mod ssf;
pub mod sts;
pub mod workload;
