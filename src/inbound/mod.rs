//! Inbound tokens: the upstream issuers we trust, their keys, whose keys may sign
//! which token (`trust`), and the rules of subject and actor tokens.

pub(crate) mod issuers;
pub mod jwt;
pub mod trust;
pub mod validate;
pub mod workload;

pub use issuers::{Issuers, TrustedIssuer};
pub(crate) use trust::{Own, Trust};
