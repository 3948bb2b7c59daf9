//! Why [`super::read`] refused a JWS: one variant per rule, for each door to map once
//! to its own answer (an OAuth error, a 401 `invalid_token`, a `setErrs` entry).

use super::key::JwsError;

/// The rule a JWS broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Exhaustive on purpose: a new rule must be mapped by every door that reads it.
pub enum Refusal {
    /// Larger than the profile's size cap.
    #[error("larger than allowed")]
    TooLarge,
    /// Five segments: a JWE. Only signed tokens are read.
    #[error("encrypted")]
    Encrypted,
    /// Not three base64url segments whose first two are JSON objects, a header member
    /// of the wrong type, or no signature.
    #[error("not a well-formed JWS")]
    Malformed,
    /// A `crit` header: no JWS extension is understood (RFC 7515 §4.1.11).
    #[error("crit header")]
    CriticalHeader,
    /// `alg` missing, `none`, HMAC, or outside the profile's (or the issuer's) list;
    /// the header's value, cut to 64 characters, when it was a string.
    #[error("algorithm not allowed")]
    Algorithm(Option<String>),
    /// `typ` is not one the profile accepts (RFC 8725 §3.11).
    #[error("typ not accepted")]
    Type,
    /// No `kid` where the profile requires one.
    #[error("no kid")]
    MissingKid,
    /// The key source trusts no issuer by the token's `iss`.
    #[error("untrusted issuer")]
    UntrustedIssuer,
    /// The keys could not be fetched and none usable are cached: fail closed.
    #[error("keys unavailable: {0}")]
    KeysUnavailable(String),
    /// No key has the token's `kid` (or fits its `alg` without one); the `kid`, cut
    /// to 64 characters.
    #[error("unknown key")]
    UnknownKey(Option<String>),
    /// A key has the token's `kid` but may not verify its `alg`.
    #[error("algorithm does not fit the key")]
    AlgorithmMismatch,
    /// No candidate key verifies the signature.
    #[error("bad signature")]
    BadSignature,
    /// A claim the profile or key source needs is absent.
    #[error("missing {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong type (a time that is not a non-negative number).
    #[error("malformed {0}")]
    BadClaim(&'static str),
    /// `exp` (plus leeway) has passed.
    #[error("expired")]
    Expired,
    /// `nbf` is after now (plus leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is after now (plus leeway).
    #[error("issued in the future")]
    IssuedInFuture,
    /// `exp` is further ahead than the profile's longest lifetime.
    #[error("lives too long")]
    LivesTooLong,
    /// `iat` is as old as the profile's oldest age, or older.
    #[error("too old")]
    TooOld,
    /// A proof of possession's own key (its `jwk` header) is absent, private or
    /// unusable.
    #[error("{0}")]
    EmbeddedKey(&'static str),
}

impl Refusal {
    /// A key lookup's failure, naming the `kid` that found nothing.
    pub fn keys(error: JwsError, kid: Option<&str>) -> Self {
        match error {
            JwsError::KeysUnavailable(why) => Refusal::KeysUnavailable(why),
            JwsError::UnknownKey => Refusal::UnknownKey(kid.map(cut)),
            JwsError::AlgorithmMismatch => Refusal::AlgorithmMismatch,
            JwsError::BadSignature => Refusal::BadSignature,
        }
    }
}

/// At most 64 characters of a value taken from an untrusted header.
pub(super) fn cut(value: &str) -> String {
    value.chars().take(64).collect()
}
