//! mcp-sts: an OAuth 2.0 Token Exchange (RFC 8693) service for agent and MCP deployments.
//!
//! The request travels one way: `http` -> `exchange` -> `inbound` -> `policy` ->
//! `mint` -> `audit`, with `revocation` behind a trait. `verify` is the downstream
//! side and depends on none of the server modules.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod client;
pub mod clock;
pub mod error;
pub mod revocation;
pub mod verify;
