//! Strict validation of subject and actor tokens (DESIGN "Rules the exchange enforces").
//!
//! Order matters: shape and size first, then the header rules (`crit`, algorithm,
//! `typ`), then the issuer, then the signature with a key chosen by the issuer's
//! JWKS (never by `jku`, `x5u` or `jwk` headers, which are ignored), and only then
//! the claims, with the time passed in.

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use serde_json::{Map, Value};

use super::issuers::{Issuers, TrustedIssuer};
use super::jwt::{JwtShapeError, UnverifiedJwt, audiences, peek, str_claim, time_claim};
use crate::clock::UnixTime;
use crate::error::OAuthError;
use crate::jose::algorithm::parse_allowed;
use crate::jose::{JwsError, VerificationKey, VerifiedTokens, verify_signature};
use crate::keys::KeyRing;

/// Which parameter a token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `subject_token`.
    Subject,
    /// `actor_token`.
    Actor,
}

impl Role {
    /// The parameter name, for descriptions.
    pub fn param(self) -> &'static str {
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
    pub fn parse(uri: &str) -> Option<Self> {
        match uri {
            "urn:ietf:params:oauth:token-type:jwt" => Some(Self::Jwt),
            "urn:ietf:params:oauth:token-type:access_token" => Some(Self::AccessToken),
            "urn:ietf:params:oauth:token-type:id_token" => Some(Self::IdToken),
            _ => None,
        }
    }
}

/// Where a validated token came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A trusted upstream issuer.
    Upstream(Arc<TrustedIssuer>),
    /// This service (a further hop).
    Minted,
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
    pub fn into_oauth(self, role: Role) -> OAuthError {
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

/// What validation needs to know about this service.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest token accepted.
    pub max_token_bytes: usize,
    /// Clock skew allowed on time claims.
    pub leeway: u64,
}

/// Validate an inbound subject or actor token at time `now`. A signature in
/// `verified` is not checked again; every other rule is.
pub async fn validate(
    token: &str,
    declared: DeclaredType,
    issuers: &Issuers,
    own: (&str, &KeyRing),
    limits: Limits,
    verified: &VerifiedTokens,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let JwsHead { jwt, alg, typ } = read_head(token, limits)?;
    if !typ_fits(typ.as_deref(), declared) {
        return Err(InboundError::TypeMismatch);
    }
    let iss = str_claim(&jwt.claims, "iss").ok_or(InboundError::UntrustedIssuer)?;
    let kid = str_claim(&jwt.header, "kid");
    // A verdict is kept no longer than the token lives; without `exp` it is refused below.
    let remember = match time_claim(&jwt.claims, "exp") {
        Some(Ok(exp)) => Some((verified, exp)),
        _ => None,
    };
    let (own_issuer, ring) = own;
    let origin = if iss == own_issuer {
        // Our own tokens: only our published keys, only our algorithm, only at+jwt.
        if typ.as_deref() != Some("at+jwt") {
            return Err(InboundError::TypeMismatch);
        }
        verify_own(token, ring, kid, alg, remember, now)?;
        Origin::Minted
    } else {
        let Some(issuer) = issuers.get(iss) else {
            // Log only (never in the response): what arrived against what is trusted, so
            // a trailing slash or a scheme mismatch is found at a glance.
            tracing::info!(arrived = ?iss, expected = ?issuers.names(), "refused: token issuer is not trusted");
            return Err(InboundError::UntrustedIssuer);
        };
        if !issuer.algorithms.contains(&alg) {
            return Err(InboundError::Algorithm);
        }
        verify_upstream(token, issuer, kid, alg, remember, now).await?;
        if !audiences(&jwt.claims).contains(&issuer.config.audience.as_str()) {
            tracing::info!(
                issuer = ?iss,
                arrived = ?audiences(&jwt.claims),
                expected = ?issuer.config.audience,
                "refused: token audience does not include this service"
            );
            return Err(InboundError::WrongAudience);
        }
        Origin::Upstream(issuer.clone())
    };
    check_claims(jwt.claims, origin, limits.leeway, now)
}

/// The signature step for a token under our own issuer: only our published keys.
/// With `remember` (a memory and the token's `exp`), a signature verified before by a
/// key still published is not checked again.
pub fn verify_own(
    token: &str,
    ring: &KeyRing,
    kid: Option<&str>,
    alg: Algorithm,
    remember: Option<(&VerifiedTokens, UnixTime)>,
    now: UnixTime,
) -> Result<(), InboundError> {
    ring.verification_keys(kid, alg, now)
        .and_then(|keys| check_signature(token, alg, &keys, remember, now))
        .map_err(|e| match e {
            JwsError::AlgorithmMismatch => InboundError::Algorithm,
            JwsError::BadSignature => InboundError::BadSignature,
            JwsError::UnknownKey | JwsError::KeysUnavailable(_) => InboundError::UnknownKey,
        })
}

/// The signature step for a token from a trusted upstream issuer: keys from its JWKS
/// only (never from `jku`, `x5u` or `jwk` headers); unreachable keys fail closed.
/// `remember` as for [`verify_own`]: the JWKS is consulted either way, so a key
/// removed from it stops vouching at the next refresh.
pub async fn verify_upstream(
    token: &str,
    issuer: &TrustedIssuer,
    kid: Option<&str>,
    alg: Algorithm,
    remember: Option<(&VerifiedTokens, UnixTime)>,
    now: UnixTime,
) -> Result<(), InboundError> {
    let keys = issuer.jwks.keys_for(kid, alg, now).await;
    keys.and_then(|keys| check_signature(token, alg, &keys, remember, now))
        .map_err(|e| match e {
            JwsError::KeysUnavailable(_) => InboundError::KeysUnavailable,
            JwsError::UnknownKey | JwsError::AlgorithmMismatch => InboundError::UnknownKey,
            JwsError::BadSignature => InboundError::BadSignature,
        })
}

fn check_signature(
    token: &str,
    alg: Algorithm,
    keys: &[Arc<VerificationKey>],
    remember: Option<(&VerifiedTokens, UnixTime)>,
    now: UnixTime,
) -> Result<(), JwsError> {
    match remember {
        Some((verified, expires)) => verified.verify(token, alg, keys, expires, now),
        None => verify_signature(token, alg, keys),
    }
}

/// An inbound JWS that passed the checks made before its issuer is looked at.
pub struct JwsHead {
    /// Its header and (not yet trusted) claims.
    pub jwt: UnverifiedJwt,
    /// Its `alg`, on the allowlist.
    pub alg: Algorithm,
    /// Its `typ`, lower-cased and without `application/`.
    pub typ: Option<String>,
}

/// The first checks of every inbound JWS, in order: size, compact JWS shape (never a
/// JWE), no `crit`, an allowed `alg`, a well-formed `typ`.
pub fn read_head(token: &str, limits: Limits) -> Result<JwsHead, InboundError> {
    if token.len() > limits.max_token_bytes {
        return Err(InboundError::TooLarge);
    }
    let jwt = peek(token).map_err(|e| match e {
        JwtShapeError::Encrypted => InboundError::Encrypted,
        JwtShapeError::Malformed => InboundError::Malformed,
    })?;
    if jwt.header.contains_key("crit") {
        return Err(InboundError::CriticalHeader);
    }
    let alg = str_claim(&jwt.header, "alg")
        .and_then(parse_allowed)
        .ok_or(InboundError::Algorithm)?;
    let typ = header_typ(&jwt.header)?;
    Ok(JwsHead { jwt, alg, typ })
}

fn header_typ(header: &Map<String, Value>) -> Result<Option<String>, InboundError> {
    match header.get("typ") {
        None => Ok(None),
        Some(Value::String(t)) => {
            // RFC 7515 §4.1.9: compare case-insensitively; "application/" may be omitted.
            let lower = t.to_ascii_lowercase();
            Ok(Some(
                lower.strip_prefix("application/").map(String::from).unwrap_or(lower),
            ))
        }
        Some(_) => Err(InboundError::Malformed),
    }
}

/// RFC 8725 §3.11: a generic `typ` fits any declared type; `at+jwt` only an access
/// token (or a generic JWT); any other explicit type is never a subject or actor token.
fn typ_fits(typ: Option<&str>, declared: DeclaredType) -> bool {
    match typ {
        None | Some("jwt") => true,
        Some("at+jwt") => matches!(declared, DeclaredType::AccessToken | DeclaredType::Jwt),
        Some(_) => false,
    }
}

/// The time rules of every inbound JWT: `exp` required and not past, `nbf` and `iat`
/// not in the future, all with `leeway`.
pub fn check_times(claims: &Map<String, Value>, leeway: u64, now: UnixTime) -> Result<Times, InboundError> {
    let exp = match time_claim(claims, "exp") {
        Some(Ok(exp)) => exp,
        _ => return Err(InboundError::MissingClaim("exp")),
    };
    if exp.saturating_add(leeway) <= now {
        return Err(InboundError::Expired);
    }
    match time_claim(claims, "nbf") {
        Some(Ok(nbf)) if nbf > now.saturating_add(leeway) => return Err(InboundError::NotYetValid),
        Some(Err(())) => return Err(InboundError::MissingClaim("nbf")),
        _ => {}
    }
    let iat = match time_claim(claims, "iat") {
        Some(Ok(iat)) if iat > now.saturating_add(leeway) => {
            return Err(InboundError::IssuedInFuture);
        }
        Some(Ok(iat)) => Some(iat),
        Some(Err(())) => return Err(InboundError::MissingClaim("iat")),
        None => None,
    };
    Ok(Times { exp, iat })
}

/// The times of a JWT that passed [`check_times`].
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at, when present.
    pub iat: Option<UnixTime>,
}

/// The claims rules of every inbound token, once its signature holds: the times
/// ([`check_times`]), a non-empty `sub`, and `jti`, when present, a non-empty string.
pub fn check_claims(
    claims: Map<String, Value>,
    origin: Origin,
    leeway: u64,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let Times { exp, iat } = check_times(&claims, leeway, now)?;
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
        iat,
        jti,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules() {
        assert!(typ_fits(None, DeclaredType::IdToken));
        assert!(typ_fits(Some("jwt"), DeclaredType::IdToken));
        assert!(typ_fits(Some("at+jwt"), DeclaredType::AccessToken));
        assert!(!typ_fits(Some("at+jwt"), DeclaredType::IdToken));
        for other in [
            "dpop+jwt",
            "secevent+jwt",
            "logout+jwt",
            "txntoken+jwt",
            "token-introspection+jwt",
        ] {
            assert!(!typ_fits(Some(other), DeclaredType::Jwt), "{other}");
        }
    }

    #[test]
    fn header_typ_is_case_insensitive_and_drops_application_prefix() {
        let header = serde_json::json!({"typ": "Application/AT+JWT"});
        assert_eq!(
            header_typ(header.as_object().unwrap()).unwrap().as_deref(),
            Some("at+jwt")
        );
    }

    #[test]
    fn time_rules_use_leeway() {
        let jwt = |claims: Value| claims.as_object().unwrap().clone();
        let ok = check_claims(
            jwt(serde_json::json!({"sub": "a", "exp": 1000})),
            Origin::Minted,
            30,
            1029,
        );
        assert!(ok.is_ok());
        let expired = check_claims(
            jwt(serde_json::json!({"sub": "a", "exp": 1000})),
            Origin::Minted,
            30,
            1030,
        );
        assert_eq!(expired.unwrap_err(), InboundError::Expired);
        let nbf = check_claims(
            jwt(serde_json::json!({"sub": "a", "exp": 2000, "nbf": 1031})),
            Origin::Minted,
            30,
            1000,
        );
        assert_eq!(nbf.unwrap_err(), InboundError::NotYetValid);
        let iat = check_claims(
            jwt(serde_json::json!({"sub": "a", "exp": 2000, "iat": 1031})),
            Origin::Minted,
            30,
            1000,
        );
        assert_eq!(iat.unwrap_err(), InboundError::IssuedInFuture);
        let no_exp = check_claims(jwt(serde_json::json!({"sub": "a"})), Origin::Minted, 30, 1000);
        assert_eq!(no_exp.unwrap_err(), InboundError::MissingClaim("exp"));
        let no_sub = check_claims(jwt(serde_json::json!({"exp": 2000})), Origin::Minted, 30, 1000);
        assert_eq!(no_sub.unwrap_err(), InboundError::MissingClaim("sub"));
    }
}
