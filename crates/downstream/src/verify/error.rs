//! Why a token was refused, as one enum a downstream service can match on.
//!
//! Messages never contain the token itself; anything taken from the token (an
//! algorithm name, a `kid`) is cut to a short, printable form first.

use mcp_sts_contract::jose::Refusal;

/// Every reason [`super::Verifier`] can refuse a token.
///
/// Two kinds matter to callers: the token is bad (answer 401 `invalid_token`), or a
/// dependency is down (answer 503 and fail closed); [`VerifyError::is_unavailable`]
/// tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No bearer token was presented at all (RFC 6750 §3.1: answer with a bare challenge).
    #[error("no bearer token")]
    Missing,
    /// The token is not a well-formed JWS compact serialisation, or a claim has the
    /// wrong JSON type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm outside the allowlist (the asymmetric algorithms
    /// mcp-sts accepts, [`mcp_sts_contract::jose::algorithm::ASYMMETRIC`]); `none` and HMAC are
    /// always refused (RFC 8725 §3.1).
    #[error("algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    /// The header's algorithm is not the algorithm of the key its `kid` names; the
    /// algorithm is taken from the key, never from the token alone.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// The header carries `crit`; no critical extension is understood (RFC 7515 §4.1.11).
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The `kid` is not in the issuer's JWKS, even after a refetch.
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    /// The signature does not verify against the key the `kid` names.
    #[error("signature does not verify")]
    BadSignature,
    /// The header `typ` is not one this reader accepts (`at+jwt` for an access token,
    /// RFC 9068 §4; `secevent+jwt` for a SET): some other kind of JWT.
    #[error("token type is not accepted here")]
    WrongType,
    /// `iss` is not the configured issuer (exact match).
    #[error("token issuer is not trusted")]
    WrongIssuer,
    /// `aud` does not name this service.
    #[error("token audience is not this service")]
    WrongAudience,
    /// A claim the token format requires is absent.
    #[error("token lacks the {0} claim")]
    MissingClaim(String),
    /// `exp` (plus leeway) has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` (minus leeway) is still in the future.
    #[error("token is not yet valid")]
    NotYetValid,
    /// Introspection (RFC 7662) says the token is no longer active.
    #[error("token has been revoked")]
    Revoked,
    /// The JWKS could not be fetched and no cached keys are usable, so nothing can be
    /// verified: fail closed.
    #[error("signing keys unavailable: {0}")]
    JwksUnavailable(String),
    /// The introspection endpoint could not answer, so revocation is unknown: fail closed.
    #[error("introspection unavailable: {0}")]
    IntrospectionUnavailable(String),
    /// The revocation stream has not been heard from within the configured staleness
    /// and no introspection fallback is configured: revocation is unknown, fail closed.
    #[error("revocation stream is stale: {0}")]
    RevocationStreamStale(String),
    /// Polling the revocation stream failed (returned by a poll, never by `verify`).
    #[error("revocation stream unavailable: {0}")]
    RevocationStreamUnavailable(String),
    /// The [`super::VerifierConfig`] cannot be used (for example an HTTP client could
    /// not be built).
    #[error("verifier configuration: {0}")]
    Config(String),
    /// A token bound to a DPoP key (`cnf.jkt`) was sent as a bearer token (RFC 9449 §7.2).
    #[error("the token is bound to a key; send it with the DPoP scheme and a proof")]
    BoundToKey,
    /// A token bound to no key was sent with the `DPoP` scheme.
    #[error("the token is not bound to a key; send it as a bearer token")]
    NotBound,
    /// The DPoP proof is missing or breaks a rule (RFC 9449 §4.3, §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidProof(String),
    /// The proof must carry the server nonce given here (RFC 9449 §9): answer
    /// `use_dpop_nonce` with it in `DPoP-Nonce`.
    #[error("the DPoP proof must carry the server nonce given in the DPoP-Nonce header")]
    UseDpopNonce(String),
    /// The memory of proofs seen is full of proofs still in their window: fail closed.
    #[error("the DPoP replay memory is full")]
    ReplayMemoryFull,
}

impl VerifyError {
    /// True when the refusal is about a dependency, not the token: answer 503, never 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            VerifyError::JwksUnavailable(_)
                | VerifyError::IntrospectionUnavailable(_)
                | VerifyError::RevocationStreamStale(_)
                | VerifyError::RevocationStreamUnavailable(_)
                | VerifyError::Config(_)
                | VerifyError::ReplayMemoryFull
        )
    }

    /// A short, stable rule name for logs and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            VerifyError::Missing => "missing",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            VerifyError::AlgorithmMismatch => "algorithm_mismatch",
            VerifyError::CriticalHeader => "critical_header",
            VerifyError::UnknownKey(_) => "unknown_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::WrongType => "wrong_type",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::Revoked => "revoked",
            VerifyError::JwksUnavailable(_) => "jwks_unavailable",
            VerifyError::IntrospectionUnavailable(_) => "introspection_unavailable",
            VerifyError::RevocationStreamStale(_) => "revocation_stream_stale",
            VerifyError::RevocationStreamUnavailable(_) => "revocation_stream_unavailable",
            VerifyError::Config(_) => "config",
            VerifyError::BoundToKey => "bound_to_key",
            VerifyError::NotBound => "not_bound",
            VerifyError::InvalidProof(_) => "invalid_dpop_proof",
            VerifyError::UseDpopNonce(_) => "use_dpop_nonce",
            VerifyError::ReplayMemoryFull => "dpop_replay_memory_full",
        }
    }

    /// Whether the refusal is about DPoP (its challenge is `DPoP`, RFC 9449 §7.1).
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            VerifyError::BoundToKey
                | VerifyError::NotBound
                | VerifyError::InvalidProof(_)
                | VerifyError::UseDpopNonce(_)
        )
    }
}

impl From<Refusal> for VerifyError {
    /// What the one JWS pipeline's refusals mean downstream: the verifier, its
    /// revocation stream and the MCP kit answer alike.
    fn from(refusal: Refusal) -> Self {
        let malformed = |why: &str| VerifyError::Malformed(why.to_owned());
        match refusal {
            Refusal::TooLarge => malformed("token too large"),
            Refusal::Encrypted => malformed("encrypted tokens are not accepted"),
            Refusal::Malformed => malformed("not a well-formed JWS compact serialisation"),
            Refusal::CriticalHeader => VerifyError::CriticalHeader,
            Refusal::Algorithm(name) => VerifyError::AlgorithmNotAllowed(printable(name.as_deref().unwrap_or("none"))),
            Refusal::Type => VerifyError::WrongType,
            Refusal::MissingKid => malformed("header has no kid"),
            Refusal::UntrustedIssuer => VerifyError::WrongIssuer,
            Refusal::KeysUnavailable(why) => VerifyError::JwksUnavailable(why),
            Refusal::UnknownKey(kid) => VerifyError::UnknownKey(printable(kid.as_deref().unwrap_or_default())),
            Refusal::AlgorithmMismatch => VerifyError::AlgorithmMismatch,
            Refusal::BadSignature => VerifyError::BadSignature,
            Refusal::MissingClaim(name) => VerifyError::MissingClaim(name.into()),
            Refusal::BadClaim(name) => VerifyError::Malformed(format!("claim {name} is not a valid time")),
            Refusal::Expired | Refusal::TooOld => VerifyError::Expired,
            Refusal::NotYetValid | Refusal::IssuedInFuture => VerifyError::NotYetValid,
            Refusal::LivesTooLong => malformed("token lives longer than allowed"),
            Refusal::EmbeddedKey(why) => malformed(why),
        }
    }
}

/// A refusal's text made safe for a header: printable ASCII without quotes or
/// backslashes, at most 200 characters.
pub(crate) fn printable_text(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .take(200)
        .collect()
}

pub(crate) use mcp_sts_contract::identifier::printable;
