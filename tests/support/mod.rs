//! Shared test support: real servers on free loopback ports.

pub mod sts;
