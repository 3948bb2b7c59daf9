//! Shared test support: real servers on free loopback ports.

#![allow(dead_code)]

pub mod attack;
pub mod downstream;
pub mod hostile;
pub mod redis_server;
pub mod redis_topologies;
pub mod relay;
pub mod ssf;
pub mod sts;
pub mod workload;
