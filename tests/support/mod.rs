//! Shared test support: real servers on free loopback ports.

#![allow(dead_code)]

pub mod attack;
pub mod downstream;
pub mod redis_server;
pub mod sts;
