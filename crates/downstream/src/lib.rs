//! The side of mcp-sts that services behind it run: [`verify`] reads a token mcp-sts
//! minted into a typed `ExecutionIdentity` (user, agent chain, session, scopes, delegation
//! mode) and hears revocations over its Shared Signals stream, [`client`] exchanges
//! tokens at mcp-sts, [`receiver`] is the Shared Signals poll receiver (used here and by
//! the server for its upstream IdPs), and `mcp` (feature `mcp-server`) is the kit for MCP
//! servers built on them.
//!
//! This crate never depends on the token service: it shares only the wire contract
//! (`mcp-sts-contract`), so a downstream service compiles none of the server.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod client;
#[cfg(feature = "mcp-server")]
pub mod mcp;
pub mod receiver;
pub mod trace_context;
pub mod verify;
