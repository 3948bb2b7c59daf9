//! Our own attack suite, against the real router over real HTTP (a `TestSts` with the
//! dev IdP, a second issuer whose key signs raw bytes, and an injected clock).
//!
//! Each group runs a table of named cases and reports every failed case at the end,
//! so one failure never hides another. A refusal is checked by its exact status and
//! `error` code, its no-store headers and description, and by what did not happen:
//! no allow event in the audit tap and the revocations in force unchanged.

mod admin;
mod arena;
mod claims;
mod client_auth;
mod delegation;
mod exhaustion;
mod grants;
mod jws;
mod leaks;
mod lineage;
mod session;
mod slow_clients;
mod ssf;
