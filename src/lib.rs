//! mcp-sts: an OAuth 2.0 Token Exchange (RFC 8693) service for agent and MCP deployments.
//!
//! The request travels one way: `http` -> `token_endpoint` -> `exchange` (or `grant`)
//! -> `inbound` -> `policy` -> `mint` -> `audit`, with `revocation` behind a trait. The
//! wire contract (claims, the one JWS pipeline, the capped fetch, the clock) is the
//! `mcp-sts-contract` crate; the downstream side (verifier, Shared Signals receiver, STS client, MCP kit) is
//! `mcp-sts-downstream`, which never depends on this crate; the demo and the development
//! IdP are `mcp-sts-demo`, started here through [`demo_host`].

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod admin;
pub mod audit;
pub mod client_auth;
pub mod config;
pub mod demo_host;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod exchanger;
pub mod grant;
pub mod http;
pub mod inbound;
pub mod introspect;
pub mod issued;
pub mod issuer_keys;
pub mod keys;
pub mod lineage;
pub mod metrics;
pub mod mint;
pub mod outbound_guard;
pub mod output;
pub mod policy;
pub mod rate_limit;
pub mod request;
pub mod revocation;
pub mod revoke;
pub mod server;
pub mod service;
pub mod spans;
pub mod ssf;
pub mod telemetry;
pub mod token_endpoint;
