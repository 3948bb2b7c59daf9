//! JOSE for every door: the one JWS pipeline ([`read`]), the asymmetric algorithm
//! list, one signature check and one JWKS cache.
//!
//! Every JWS the server or the downstream side reads (subject and actor tokens,
//! `private_key_jwt` client assertions, our own tokens at `/introspect`, `/revoke` and
//! further hops, Shared Signals SETs in both directions, identity assertion grants,
//! tokens at the [`crate::verify`] library and the MCP kit) goes through [`read`],
//! given a [`Profile`] (accepted `typ`s, algorithms, `kid` rule, size, the time rule)
//! and a [`KeySource`] (a [`JwksCache`] for keys fetched or configured, the server's
//! key ring for its own, an issuer chosen by `iss`). Its refusals are one
//! [`Refusal`] per rule, which each door maps once to its own answer. A
//! [`VerifiedTokens`] memory spares repeating the signature check for a token seen
//! before. Nothing here needs the `server` feature.
//!
//! Headers that name their own key (`jku`, `x5u`, `jwk`) are never read: keys come
//! only from the key source the door chose.

pub mod algorithm;
pub mod compact;
pub mod dpop;
mod jwk;
pub mod jwks;
mod key;
pub mod nonce;
pub mod profile;
mod read;
mod refusal;
mod signing;
pub mod verified;

pub use compact::{JwtShapeError, UnverifiedJwt, peek};
pub use jwk::thumbprint;
pub use jwks::{JwksCache, JwksConfig, JwksSource, JwksStats};
pub use key::{JwsError, VerificationKey, select, verify_signature};
pub use profile::{Profile, TimeRule, Times, Types, Validity};
pub use read::{Jws, KeySource, NO_MEMORY, Unverified, read};
pub use refusal::Refusal;
pub use signing::{SigningAlgorithm, SigningKey, SigningKeyError, algorithm_name};
pub use verified::{VerifiedStats, VerifiedTokens};
