//! Inbound tokens: the upstream issuers we trust, their keys, whose keys may sign
//! which token (`trust`), and the rules of subject and actor tokens.

pub mod issuers;
pub mod jwt;
pub mod trust;
pub mod validate;
pub mod workload;

pub use issuers::{Issuers, TrustedIssuer};
pub use trust::{Own, Trust};
pub use validate::{InboundError, Role, ValidatedToken};
