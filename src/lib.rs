//! mcp-sts: an OAuth 2.0 Token Exchange (RFC 8693) service for agent and MCP deployments.
//!
//! The request travels one way: `http` -> `token_endpoint` -> `exchange` (or `grant`)
//! -> `inbound` -> `policy` -> `mint` -> `audit`, with `revocation` behind a trait.
//! `verify` and `client` are the downstream side, and `mcp` (feature `mcp-server`) the
//! kit for MCP servers built on them; they depend on none of the server modules.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod audit;
pub mod client;
#[cfg(feature = "server")]
pub mod client_auth;
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
pub mod contract;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod dev_idp;
#[cfg(feature = "server")]
pub mod dpop;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod exchange;
#[cfg(feature = "server")]
pub mod exchanger;
pub mod fetch;
#[cfg(feature = "server")]
pub mod grant;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod inbound;
#[cfg(feature = "server")]
pub mod introspect;
#[cfg(feature = "server")]
pub mod issued;
#[cfg(feature = "server")]
pub mod issuer_keys;
pub mod jose;
#[cfg(feature = "server")]
pub mod keys;
#[cfg(feature = "server")]
pub mod lineage;
#[cfg(feature = "mcp-server")]
pub mod mcp;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod mint;
#[cfg(feature = "server")]
pub mod outbound_guard;
#[cfg(feature = "server")]
pub mod output;
#[cfg(feature = "server")]
pub mod policy;
#[cfg(feature = "server")]
pub mod rate_limit;
pub mod receiver;
#[cfg(feature = "server")]
pub mod request;
#[cfg(feature = "server")]
pub mod revocation;
#[cfg(feature = "server")]
pub mod revoke;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod spans;
#[cfg(feature = "server")]
pub mod ssf;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod token_endpoint;
pub mod trace_context;
pub mod verify;
