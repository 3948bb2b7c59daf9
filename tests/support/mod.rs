//! Shared test support: real servers on free loopback ports.

#![allow(dead_code)]

pub mod downstream;
pub mod hostile;
pub mod redis_server;
pub mod redis_topologies;
pub mod sts;
