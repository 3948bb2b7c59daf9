//! The integration tests: the real router, the real binary and real `redis-server`s
//! over real HTTP. One test binary holds them all, so the suite links once; each
//! module below is one area (`cargo test --test integration revocation_flow::`).

mod support;

mod adversarial;
mod algorithms;
mod binary;
mod bounded_fetch;
mod client;
mod delegation;
mod demo;
mod deployment;
mod downstream;
mod dpop;
mod dpop_delegation;
mod dpop_downstream;
mod durable_acks;
mod entitlement;
mod exchange;
mod id_jag;
mod kept_offboardings;
mod key_rotation;
mod mcp_kit;
mod no_leaks;
mod observability;
mod operability;
mod operations;
mod private_key_jwt;
mod rate_limits;
mod readiness;
mod refusals;
mod revocation_backends;
mod revocation_cluster;
mod revocation_flow;
mod revocation_issuers;
mod revocation_redis;
mod revocation_sentinel;
mod ssf_downstream;
mod ssf_push_targets;
mod ssf_queue;
mod ssf_receivers;
mod ssf_restart;
mod ssf_transmitter;
mod ssf_upstream;
mod store_trust;
mod url_clients;
mod verified_tokens;
mod verify;
mod workloads;
