//! The token contract: what a token minted by mcp-sts says, and the protocol words
//! (URNs, `typ` values, error codes, Basic credentials, the scope reader) both sides
//! of the wire use.
//!
//! Access tokens (`claims`) and the identity assertion grants of enterprise-managed
//! authorization (`id_jag`) live here. The server mints and re-reads these claims;
//! the downstream verifier and the client read them. Keeping them in one module with no server dependency means the two sides
//! cannot drift apart.

pub mod basic;
pub mod claims;
pub mod error_code;
pub mod id_jag;
pub mod identifier;
pub mod revocation;
pub mod set;
pub mod subject_id;
pub mod urn;

pub use claims::{AccessClaims, Actor, Audience, ClaimsError, Confirmation, DelegationMode, SubProfile, UserContext};
pub use error_code::ErrorCode;
pub use id_jag::IdJagClaims;
pub use identifier::{Identifier, IdentifierError};
pub use revocation::RevocationKind;
