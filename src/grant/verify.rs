//! The one place the JWTs of enterprise-managed authorization are verified: the user's
//! ID token when a grant is issued (its audience is the client asking, not us), and the
//! ID-JAG when it is redeemed (typed `oauth-id-jag+jwt`, addressed to us).
//!
//! Both are built from the same blocks as `inbound::validate` (its `read_head`: size,
//! shape, `crit`, the algorithm allowlist, `typ`; keys by `kid` from the issuer's JWKS
//! or our own ring, never `jku`/`x5u`/`jwk`) and report the same `InboundError`s, so
//! this module can follow the inbound verification path wherever it goes.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::contract::IdJagClaims;
use crate::contract::urn::is_id_jag_typ;
use crate::error::OAuthError;
use crate::inbound::jwt::{audiences, str_claim};
use crate::inbound::validate::{
    DeclaredType, InboundError, JwsHead, Limits, Origin, ValidatedToken, check_claims, check_times, read_head,
    verify_own, verify_upstream,
};
use crate::inbound::{Issuers, TrustedIssuer};
use crate::keys::KeyRing;

/// Longest remaining lifetime of a grant we redeem: bounds how long its `jti` is kept.
pub const MAX_GRANT_LIFETIME: u64 = 3_600;

/// Who signed a JWT that verified.
#[derive(Debug, Clone)]
pub enum Signer {
    /// This service.
    Own,
    /// A trusted upstream issuer.
    Upstream(Arc<TrustedIssuer>),
}

/// A verified ID-JAG.
#[derive(Debug, Clone)]
pub struct VerifiedGrant {
    /// Who issued it.
    pub signer: Signer,
    /// Its claims.
    pub claims: IdJagClaims,
}

/// Whose signatures a verification accepts.
struct Trust<'a> {
    /// Our issuer and keys, when our own JWTs are acceptable.
    own: Option<(&'a str, &'a KeyRing)>,
    /// The upstream issuers, filtered by `accepts`.
    issuers: &'a Issuers,
    accepts: fn(&TrustedIssuer) -> bool,
}

/// Verify a user's identity assertion presented to obtain a grant. It must be bound
/// to the client asking (draft §4.3.3): its `aud` names that client and, when it
/// names an authorized party (`azp`, OpenID Connect Core §2), that is the client too.
/// An access token is not an identity assertion, and our own tokens are none either.
pub async fn identity_assertion(
    token: &str,
    declared: DeclaredType,
    client_id: &str,
    issuers: &Issuers,
    limits: Limits,
    now: UnixTime,
) -> Result<ValidatedToken, InboundError> {
    let trust = Trust {
        own: None,
        issuers,
        accepts: |_| true,
    };
    if declared == DeclaredType::AccessToken {
        return Err(InboundError::TypeMismatch);
    }
    let typ_fits = |typ: Option<&str>| matches!(typ, None | Some("jwt"));
    let (claims, signer) = verify_jws(token, typ_fits, &trust, limits, now).await?;
    let Signer::Upstream(issuer) = signer else {
        return Err(InboundError::UntrustedIssuer);
    };
    let azp_ok = str_claim(&claims, "azp").is_none_or(|azp| azp == client_id);
    if !audiences(&claims).contains(&client_id) || !azp_ok {
        return Err(InboundError::WrongAudience);
    }
    check_claims(claims, Origin::Upstream(issuer), limits.leeway, now)
}

/// Verify an ID-JAG presented as a JWT bearer grant: `typ` `oauth-id-jag+jwt`, signed
/// by us (when we issue grants for ourselves) or by an issuer trusted for grants,
/// addressed to exactly our issuer, with `iat`, `exp` and a bounded lifetime.
/// Every refusal is `invalid_grant` naming the rule (RFC 6749 §5.2, RFC 7523 §3.1);
/// unreachable keys are a 503.
pub async fn id_jag(
    assertion: &str,
    own: (&str, &KeyRing),
    accept_own: bool,
    issuers: &Issuers,
    limits: Limits,
    now: UnixTime,
) -> Result<VerifiedGrant, OAuthError> {
    let trust = Trust {
        own: accept_own.then_some(own),
        issuers,
        accepts: |issuer| issuer.config.accept_id_jag,
    };
    let typ_fits = |typ: Option<&str>| typ.is_some_and(is_id_jag_typ);
    let (claims, signer) = verify_jws(assertion, typ_fits, &trust, limits, now)
        .await
        .map_err(refused_grant)?;
    // draft §4.4.1: one audience, our issuer, whether a string or a one-element array.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == own.0,
        Some(Value::Array(all)) => matches!(all.as_slice(), [Value::String(aud)] if aud == own.0),
        _ => false,
    };
    if !aud_ok {
        return Err(refused_grant(InboundError::WrongAudience));
    }
    // draft §8.6.1: a grant bound to a key is redeemed only with a proof by that key.
    // Until sender-constrained tokens are supported, no bound grant is redeemed.
    if claims.contains_key("cnf") {
        return Err(OAuthError::invalid_grant(
            "assertion.cnf",
            "the assertion is bound to a key (cnf); key-bound grants are not accepted",
        ));
    }
    let times = check_times(&claims, limits.leeway, now).map_err(refused_grant)?;
    if times.exp > now.saturating_add(MAX_GRANT_LIFETIME) {
        return Err(OAuthError::invalid_grant(
            "assertion.lifetime",
            "the assertion lives too long",
        ));
    }
    let claims = IdJagClaims::from_claims(claims)
        .map_err(|e| OAuthError::invalid_grant("assertion.claims", format!("the assertion is not an ID-JAG: {e}")))?;
    Ok(VerifiedGrant { signer, claims })
}

/// The answer to a grant that failed verification at redemption: `invalid_grant`
/// (RFC 6749 §5.2, RFC 7523 §3.1) naming the rule; unreachable keys stay a 503.
pub fn refused_grant(error: InboundError) -> OAuthError {
    let (rule, text) = match error {
        InboundError::TooLarge => ("assertion.too_large", "the assertion is larger than allowed"),
        InboundError::Encrypted => (
            "assertion.encrypted",
            "the assertion is encrypted; only signed JWTs are accepted",
        ),
        InboundError::Malformed => ("assertion.malformed", "the assertion is not a well-formed signed JWT"),
        InboundError::CriticalHeader => (
            "assertion.crit",
            "the assertion has a crit header with unsupported extensions",
        ),
        InboundError::Algorithm => (
            "assertion.algorithm",
            "the assertion uses an algorithm that is not allowed",
        ),
        InboundError::TypeMismatch => ("assertion.typ", "the assertion is not typed oauth-id-jag+jwt"),
        InboundError::UntrustedIssuer => (
            "assertion.issuer",
            "the assertion is not from an issuer trusted for grants",
        ),
        InboundError::UnknownKey => ("assertion.unknown_key", "the assertion is signed with an unknown key"),
        InboundError::BadSignature => ("assertion.signature", "the assertion signature is invalid"),
        InboundError::WrongAudience => (
            "assertion.audience",
            "the assertion is not addressed to this authorization server",
        ),
        InboundError::Expired => ("assertion.expired", "the assertion has expired"),
        InboundError::NotYetValid => ("assertion.not_yet_valid", "the assertion is not valid yet"),
        InboundError::IssuedInFuture => ("assertion.iat", "the assertion is issued in the future"),
        InboundError::MissingClaim(_) => ("assertion.claims", "the assertion lacks a required claim"),
        InboundError::KeysUnavailable => {
            return OAuthError::unavailable(
                "assertion.keys_unavailable",
                "keys for the assertion issuer are unavailable; retry later",
            );
        }
    };
    OAuthError::invalid_grant(rule, text)
}

/// Shape, header rules, issuer and signature; returns the claims and who signed.
async fn verify_jws(
    token: &str,
    typ_fits: impl Fn(Option<&str>) -> bool,
    trust: &Trust<'_>,
    limits: Limits,
    now: UnixTime,
) -> Result<(Map<String, Value>, Signer), InboundError> {
    let JwsHead { jwt, alg, typ } = read_head(token, limits)?;
    if !typ_fits(typ.as_deref()) {
        return Err(InboundError::TypeMismatch);
    }
    let iss = str_claim(&jwt.claims, "iss").ok_or(InboundError::UntrustedIssuer)?;
    let kid = str_claim(&jwt.header, "kid");
    let signer = match trust.own {
        Some((own_issuer, ring)) if iss == own_issuer => {
            verify_own(token, ring, kid, alg, None, now)?;
            Signer::Own
        }
        _ => {
            let issuer = trust
                .issuers
                .get(iss)
                .filter(|i| (trust.accepts)(i))
                .ok_or(InboundError::UntrustedIssuer)?;
            if !issuer.algorithms.contains(&alg) {
                return Err(InboundError::Algorithm);
            }
            verify_upstream(token, issuer, kid, alg, None, now).await?;
            Signer::Upstream(issuer.clone())
        }
    };
    Ok((jwt.claims, signer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_invalid_grant_except_unreachable_keys() {
        use crate::error::ErrorCode;
        assert_eq!(refused_grant(InboundError::TypeMismatch).code, ErrorCode::InvalidGrant);
        assert_eq!(refused_grant(InboundError::TypeMismatch).rule, "assertion.typ");
        assert_eq!(
            refused_grant(InboundError::KeysUnavailable).code,
            ErrorCode::TemporarilyUnavailable
        );
    }
}
