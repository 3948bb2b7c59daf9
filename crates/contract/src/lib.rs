//! The wire contract of mcp-sts: what a token it mints says, the protocol words (URNs,
//! `typ` values, error codes, Basic credentials, the scope reader) both sides of the wire
//! use, and the machinery both sides read tokens with: the one JWS pipeline
//! ([`jose::read`]), the one capped outbound read ([`fetch`]), the clock, and redacted
//! secrets.
//!
//! Access tokens (`claims`) and the identity assertion grants of enterprise-managed
//! authorization (`id_jag`) live here. The server mints and re-reads these claims; the
//! downstream verifier and the client read them. One crate with no server dependency
//! means the two sides cannot drift apart.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod basic;
pub mod claims;
pub mod clock;
pub mod error_code;
pub mod fetch;
pub mod id_jag;
pub mod identifier;
pub mod jose;
pub mod revocation;
pub mod secret;
pub mod set;
pub mod subject_id;
pub mod urn;

pub use claims::{AccessClaims, Actor, Audience, ClaimsError, Confirmation, DelegationMode, SubProfile, UserContext};
pub use error_code::ErrorCode;
pub use id_jag::IdJagClaims;
pub use identifier::{Identifier, IdentifierError};
pub use revocation::RevocationKind;
