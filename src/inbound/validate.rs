//! Strict validation of subject and actor tokens (DESIGN "Rules the exchange enforces").
//!
//! The JWS itself is read by [`mcp_sts_contract::jose::read`] with the subject-token profile
//! ([`profile`]: size, shape, no `crit`, an allowed `alg`, a `typ` consistent with the
//! declared type, the time rule with leeway) and the [`Trust`] key source (our own
//! ring for our issuer, else the trusted issuer's JWKS, never `jku`/`x5u`/`jwk`). What
//! is left here: the audience of an upstream token and the claims every inbound token
//! needs (`sub`, `jti`).

use serde_json::{Map, Value};

use super::issuers::{Issuers, TrustedIssuer};
use super::jwt::{audiences, str_claim};
pub(crate) use super::trust::Origin;
use super::trust::{Own, Trust};
use super::workload::{MAX_WORKLOAD_LIFETIME, names_workload};
use crate::config::IssuerKind;
use crate::error::OAuthError;
use crate::keys::KeyRing;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{Profile, Refusal, Times, Types, VerifiedTokens, read};
use mcp_sts_contract::urn::ACCESS_TOKEN_TYP;

/// Which parameter a token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `subject_token`.
    Subject,
    /// `actor_token`.
    Actor,
}

impl Role {
    /// The parameter name, for descriptions.
    pub(crate) fn param(self) -> &'static str {
        match self {
            Role::Subject => "subject_token",
            Role::Actor => "actor_token",
        }
    }
}

/// The declared `*_token_type` (RFC 8693 §3) we accept for JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredType {
    /// `urn:ietf:params:oauth:token-type:jwt`.
    Jwt,
    /// `urn:ietf:params:oauth:token-type:access_token` (a JWT access token).
    AccessToken,
    /// `urn:ietf:params:oauth:token-type:id_token`.
    IdToken,
}

impl DeclaredType {
    /// Parse a token type URI; `None` for types we do not accept.
    pub(crate) fn parse(uri: &str) -> Option<Self> {
        match uri {
            "urn:ietf:params:oauth:token-type:jwt" => Some(Self::Jwt),
            "urn:ietf:params:oauth:token-type:access_token" => Some(Self::AccessToken),
            "urn:ietf:params:oauth:token-type:id_token" => Some(Self::IdToken),
            _ => None,
        }
    }

    /// The `typ` values a token of this declared type may carry (RFC 8725 §3.11): a
    /// generic `JWT` (or none) fits any type, `at+jwt` only an access token (or a
    /// generic JWT); any other explicit type is never a subject or actor token.
    pub(crate) fn types(self) -> Types<'static> {
        match self {
            Self::AccessToken | Self::Jwt => Types::OrUntyped(&["jwt", ACCESS_TOKEN_TYP]),
            Self::IdToken => Types::OrUntyped(&["jwt"]),
        }
    }
}

/// A token whose signature and claims passed every rule.
#[derive(Debug, Clone)]
pub struct ValidatedToken {
    /// Who issued it.
    pub origin: Origin,
    /// `iss`.
    pub iss: String,
    /// `sub`.
    pub sub: String,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`, when present.
    pub iat: Option<UnixTime>,
    /// `jti`, when present.
    pub jti: Option<String>,
    /// Every claim.
    pub claims: Map<String, Value>,
}

/// Why a token was refused. Each maps to `invalid_request` except `KeysUnavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboundError {
    /// Larger than `server.max_token_bytes`.
    TooLarge,
    /// A JWE; we accept only signed tokens.
    Encrypted,
    /// Not a compact JWS of JSON objects.
    Malformed,
    /// A `crit` header: we implement no JWS extensions, so any is unknown (RFC 7515 §4.1.11).
    CriticalHeader,
    /// `alg` missing, `none`, HMAC, or not allowed for this issuer or key.
    Algorithm,
    /// `typ` contradicts the declared token type (RFC 8725 §3.11).
    TypeMismatch,
    /// `iss` missing or not a trusted issuer.
    UntrustedIssuer,
    /// No published key fits `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `aud` does not name this service.
    WrongAudience,
    /// `exp` is past (with leeway).
    Expired,
    /// `exp` is further ahead than the door allows (a grant whose `jti` is kept).
    LivesTooLong,
    /// `nbf` is in the future (with leeway).
    NotYetValid,
    /// `iat` is in the future (with leeway).
    IssuedInFuture,
    /// A required claim is missing or of the wrong type.
    MissingClaim(&'static str),
    /// The issuer's keys cannot be fetched and none are cached: fail closed (503).
    KeysUnavailable,
}

impl InboundError {
    /// The protocol error, naming the rule and the parameter, never the token.
    pub(crate) fn into_oauth(self, role: Role) -> OAuthError {
        macro_rules! rule {
            ($name:literal) => {
                match role {
                    Role::Subject => concat!("subject_token.", $name),
                    Role::Actor => concat!("actor_token.", $name),
                }
            };
        }
        let p = role.param();
        let (rule, text): (&'static str, String) = match self {
            InboundError::TooLarge => (rule!("too_large"), format!("{p} is larger than allowed")),
            InboundError::Encrypted => (
                rule!("encrypted"),
                format!("{p} is encrypted; only signed JWTs are accepted"),
            ),
            InboundError::Malformed => (rule!("malformed"), format!("{p} is not a well-formed signed JWT")),
            InboundError::CriticalHeader => (
                rule!("crit"),
                format!("{p} has a crit header with unsupported extensions"),
            ),
            InboundError::Algorithm => (rule!("algorithm"), format!("{p} uses an algorithm that is not allowed")),
            InboundError::TypeMismatch => (
                rule!("typ"),
                format!("{p} typ header contradicts its declared token type"),
            ),
            InboundError::UntrustedIssuer => (rule!("issuer"), format!("{p} is not from a trusted issuer")),
            InboundError::UnknownKey => (rule!("unknown_key"), format!("{p} is signed with an unknown key")),
            InboundError::BadSignature => (rule!("signature"), format!("{p} signature is invalid")),
            InboundError::WrongAudience => (rule!("audience"), format!("{p} audience does not include this service")),
            InboundError::Expired => (rule!("expired"), format!("{p} has expired")),
            InboundError::LivesTooLong => (rule!("lifetime"), format!("{p} lives too long")),
            InboundError::NotYetValid => (rule!("not_yet_valid"), format!("{p} is not valid yet")),
            InboundError::IssuedInFuture => (rule!("iat"), format!("{p} is issued in the future")),
            InboundError::MissingClaim(claim) => (rule!("claims"), format!("{p} lacks a valid {claim} claim")),
            InboundError::KeysUnavailable => {
                return OAuthError::unavailable(
                    rule!("keys_unavailable"),
                    format!("keys for {p} issuer are unavailable; retry later"),
                );
            }
        };
        OAuthError::invalid_request(rule, text)
    }
}

impl From<Refusal> for InboundError {
    /// The pipeline's refusals as inbound errors: the one mapping for every door built
    /// on this module (exchange, grants).
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooLarge => InboundError::TooLarge,
            Refusal::Encrypted => InboundError::Encrypted,
            Refusal::Malformed => InboundError::Malformed,
            Refusal::CriticalHeader => InboundError::CriticalHeader,
            Refusal::Algorithm(_) | Refusal::AlgorithmMismatch => InboundError::Algorithm,
            Refusal::Type => InboundError::TypeMismatch,
            Refusal::UntrustedIssuer => InboundError::UntrustedIssuer,
            Refusal::MissingKid | Refusal::UnknownKey(_) | Refusal::EmbeddedKey(_) => InboundError::UnknownKey,
            Refusal::KeysUnavailable(_) => InboundError::KeysUnavailable,
            Refusal::BadSignature => InboundError::BadSignature,
            Refusal::MissingClaim(claim) | Refusal::BadClaim(claim) => InboundError::MissingClaim(claim),
            Refusal::Expired | Refusal::TooOld => InboundError::Expired,
            Refusal::NotYetValid => InboundError::NotYetValid,
            Refusal::IssuedInFuture => InboundError::IssuedInFuture,
            Refusal::LivesTooLong => InboundError::LivesTooLong,
        }
    }
}

/// What validation needs to know about this service.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest token accepted.
    pub max_token_bytes: usize,
    /// Clock skew allowed on time claims.
    pub leeway: u64,
}

/// The profile of a subject or actor token (and of an identity assertion): the `typ`
/// its declared type allows, every allowed algorithm (each issuer narrows it), `kid`
/// optional, `exp` required.
pub(crate) fn profile(declared: DeclaredType, limits: Limits, now: UnixTime) -> Profile<'static> {
    Profile::new(declared.types(), limits.max_token_bytes, now, limits.leeway)
}

/// Validate an inbound subject token at time `now`: from an identity provider or
/// ourselves, never from a workload issuer. A signature in `verified` is not checked
/// again; every other rule is.
pub async fn validate(
    token: &str,
    declared: DeclaredType,
    issuers: &Issuers,
    own: (&str, &KeyRing),
    limits: Limits,
    verified: &VerifiedTokens,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let own = own_tokens(own);
    let trust = Trust::all(issuers, Some(own));
    validate_with(token, declared, &trust, limits, verified, now).await
}

/// Validate an actor token: as [`validate`], and a workload issuer's token too (a
/// JWT-SVID or a service-account token).
pub(crate) async fn validate_actor(
    token: &str,
    declared: DeclaredType,
    issuers: &Issuers,
    own: (&str, &KeyRing),
    limits: Limits,
    verified: &VerifiedTokens,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let own = own_tokens(own);
    let trust = Trust::actors(issuers, Some(own));
    validate_with(token, declared, &trust, limits, verified, now).await
}

/// Our own tokens: only our published keys, only at+jwt.
fn own_tokens<'a>((issuer, ring): (&'a str, &'a KeyRing)) -> Own<'a> {
    Own {
        issuer,
        ring,
        typ: Some(ACCESS_TOKEN_TYP),
    }
}

/// The pipeline with `trust` as key source, then the audience of an upstream token
/// and, for a workload issuer, the workload rules.
pub(crate) async fn validate_with(
    token: &str,
    declared: DeclaredType,
    trust: &Trust<'_>,
    limits: Limits,
    verified: &VerifiedTokens,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let jws = read(token, &profile(declared, limits, now), trust, Some(verified)).await?;
    if let Origin::Upstream(issuer) = &jws.signer {
        let claims = jws.claims()?;
        if !audiences(claims).contains(&issuer.config.audience.as_str()) {
            tracing::info!(
                issuer = ?issuer.config.issuer,
                arrived = ?audiences(claims),
                expected = ?issuer.config.audience,
                "refused: token audience does not include this service"
            );
            return Err(InboundError::WrongAudience);
        }
        check_workload(issuer, claims, jws.times, now)?;
    }
    jws.remember(());
    let (origin, times) = (jws.signer.clone(), jws.times);
    let mut token = validated(origin, jws.into_claims()?, times)?;
    if let Origin::Upstream(issuer) = &token.origin
        && issuer.config.kind != IssuerKind::Oidc
    {
        // A JWT-SVID's `iss` is optional and says nothing trust hangs on: its issuer
        // is its trust domain.
        token.iss = issuer.config.issuer.clone();
    }
    Ok(token)
}

/// A workload issuer's token names a workload of its own trust domain or cluster (a
/// SPIFFE ID of another trust domain, or not a service account, lacks a valid `sub`) and
/// lives at most [`MAX_WORKLOAD_LIFETIME`] ahead (it is reused, not single-use).
fn check_workload(
    issuer: &TrustedIssuer,
    claims: &Map<String, Value>,
    times: Times,
    now: UnixTime,
) -> Result<(), InboundError> {
    let kind = issuer.config.kind;
    if kind == IssuerKind::Oidc {
        return Ok(());
    }
    let sub = str_claim(claims, "sub").unwrap_or_default();
    if !names_workload(kind, &issuer.config.issuer, sub) {
        tracing::info!(issuer = ?issuer.config.issuer, "refused: token sub is not a workload of its issuer");
        return Err(InboundError::MissingClaim("sub"));
    }
    if times
        .exp
        .is_some_and(|exp| exp > now.saturating_add(MAX_WORKLOAD_LIFETIME))
    {
        return Err(InboundError::LivesTooLong);
    }
    Ok(())
}

/// The claims rules of every inbound token, once its signature and times hold: a
/// non-empty `sub`, and `jti`, when present, a non-empty string.
pub(crate) fn validated(
    origin: Origin,
    claims: Map<String, Value>,
    times: Times,
) -> Result<ValidatedToken, InboundError> {
    let exp = times.exp.ok_or(InboundError::MissingClaim("exp"))?;
    let sub = match str_claim(&claims, "sub") {
        Some(sub) if !sub.is_empty() => sub.to_owned(),
        _ => return Err(InboundError::MissingClaim("sub")),
    };
    let iss = str_claim(&claims, "iss").unwrap_or_default().to_owned();
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(j)) if !j.is_empty() => Some(j.clone()),
        Some(_) => return Err(InboundError::MissingClaim("jti")),
    };
    Ok(ValidatedToken {
        origin,
        iss,
        sub,
        exp,
        iat: times.iat,
        jti,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules() {
        let fits = |typ: Option<&str>, declared: DeclaredType| declared.types().admits(typ);
        assert!(fits(None, DeclaredType::IdToken));
        assert!(fits(Some("jwt"), DeclaredType::IdToken));
        assert!(fits(Some("at+jwt"), DeclaredType::AccessToken));
        assert!(!fits(Some("at+jwt"), DeclaredType::IdToken));
        for other in [
            "dpop+jwt",
            "secevent+jwt",
            "logout+jwt",
            "txntoken+jwt",
            "token-introspection+jwt",
        ] {
            assert!(!fits(Some(other), DeclaredType::Jwt), "{other}");
        }
    }

    #[test]
    fn claims_rules() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let times = Times {
            exp: Some(2000),
            ..Times::default()
        };
        assert!(validated(Origin::Minted, claims(serde_json::json!({"sub": "a"})), times).is_ok());
        let no_sub = validated(Origin::Minted, claims(serde_json::json!({})), times);
        assert_eq!(no_sub.unwrap_err(), InboundError::MissingClaim("sub"));
        let bad_jti = validated(Origin::Minted, claims(serde_json::json!({"sub": "a", "jti": 7})), times);
        assert_eq!(bad_jti.unwrap_err(), InboundError::MissingClaim("jti"));
    }
}
