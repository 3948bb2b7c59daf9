//! mcp-sts: an OAuth 2.0 Token Exchange (RFC 8693) service for agent and MCP deployments.
//!
//! The request travels one way: `http` -> `exchange` -> `inbound` -> `policy` ->
//! `mint` -> `audit`, with `revocation` behind a trait. `verify` (and `client`) are
//! the downstream side and depend on none of the server modules.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod admin;
pub mod audit;
pub mod client;
pub mod client_auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dev_idp;
pub mod error;
pub mod exchange;
pub mod http;
pub mod inbound;
pub mod introspect;
pub mod issued;
pub mod keys;
pub mod metrics;
pub mod mint;
pub mod policy;
pub mod revocation;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod verify;
