//! JOSE for every door: reading compact JWS, the asymmetric algorithm allowlist, one
//! signature check and one JWKS cache.
//!
//! The server (upstream subject and actor tokens, `private_key_jwt` client assertions,
//! our own tokens at `/introspect` and `/revoke`) and the downstream [`crate::verify`]
//! library verify signatures the same way: a key source hands over
//! [`VerificationKey`]s for the token's `kid` and `alg` (a [`JwksCache`] for keys fetched
//! or configured, the server's key ring for its own), and [`verify_signature`] checks
//! the signature with them; a [`VerifiedTokens`] memory spares repeating that check
//! for a token seen before. Nothing here needs the `server` feature.
//!
//! Headers that name their own key (`jku`, `x5u`, `jwk`) are never read: keys come only
//! from the key source the caller chose for the token's issuer.

pub mod algorithm;
pub mod compact;
pub mod jwks;
mod key;
pub mod verified;

pub use compact::{JwtShapeError, UnverifiedJwt, peek};
pub use jwks::{JwksCache, JwksConfig, JwksSource, JwksStats};
pub(crate) use key::verifying_key;
pub use key::{JwsError, VerificationKey, select, verify_signature};
pub use verified::{VerifiedStats, VerifiedTokens};
