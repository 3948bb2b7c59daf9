//! Inbound tokens: the upstream issuers we trust, their keys, and strict validation
//! of subject and actor tokens (and of client assertions' signatures).

pub mod algorithm;
pub mod issuers;
pub mod jwks;
pub mod jwt;
pub mod validate;

pub use issuers::{Issuers, TrustedIssuer};
pub use jwks::{JwksCache, JwksError, JwksPolicy};
pub use validate::{InboundError, Role, ValidatedToken};
