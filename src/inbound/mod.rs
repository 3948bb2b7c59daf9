//! Inbound tokens: the upstream issuers we trust, their keys, and strict validation
//! of subject and actor tokens (and of client assertions' signatures).

pub mod issuers;
pub mod jwt;
pub mod validate;

pub use issuers::{Issuers, TrustedIssuer};
pub use validate::{InboundError, Role, ValidatedToken};
