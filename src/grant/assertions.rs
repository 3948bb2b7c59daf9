//! The one place the JWTs of enterprise-managed authorization are read: the user's
//! ID token when a grant is issued (its audience is the client asking, not us), and the
//! ID-JAG when it is redeemed (typed `oauth-id-jag+jwt`, addressed to us).
//!
//! Both are read by [`mcp_sts_contract::jose::read`] with the [`Trust`] key source of inbound
//! tokens (keys by `kid` from the issuer's JWKS or our own ring, never
//! `jku`/`x5u`/`jwk`) and report the same `InboundError`s, so this module follows the
//! inbound path wherever it goes.

use std::sync::Arc;

use serde_json::Value;

use crate::error::OAuthError;
use crate::inbound::jwt::{audiences, str_claim};
use crate::inbound::validate::{DeclaredType, InboundError, Limits, Origin, ValidatedToken, profile, validated};
use crate::inbound::{Issuers, Own, Trust, TrustedIssuer};
use crate::keys::KeyRing;
use mcp_sts_contract::IdJagClaims;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{NO_MEMORY, Profile, Types, read};
use mcp_sts_contract::urn::ID_JAG_TYP;

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
    if declared == DeclaredType::AccessToken {
        return Err(InboundError::TypeMismatch);
    }
    let trust = Trust::all(issuers, None);
    // An identity assertion is typed as an ID token is: `jwt` or untyped.
    let jws = read(token, &profile(DeclaredType::IdToken, limits, now), &trust, NO_MEMORY).await?;
    let Origin::Upstream(issuer) = jws.signer.clone() else {
        return Err(InboundError::UntrustedIssuer);
    };
    let claims = jws.claims()?;
    let azp_ok = str_claim(claims, "azp").is_none_or(|azp| azp == client_id);
    if !audiences(claims).contains(&client_id) || !azp_ok {
        return Err(InboundError::WrongAudience);
    }
    let times = jws.times;
    validated(Origin::Upstream(issuer), jws.into_claims()?, times)
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
    let (issuer, ring) = own;
    let trust = Trust {
        own: accept_own.then_some(Own {
            issuer,
            ring,
            typ: None,
        }),
        issuers,
        accepts: |issuer| issuer.config.accept_id_jag,
    };
    let grant_profile = Profile::new(
        Types::Exactly(&[ID_JAG_TYP]),
        limits.max_token_bytes,
        now,
        limits.leeway,
    )
    .max_lifetime(MAX_GRANT_LIFETIME);
    let jws = read(assertion, &grant_profile, &trust, NO_MEMORY)
        .await
        .map_err(|e| refused_grant(e.into()))?;
    let claims = jws.claims().map_err(|e| refused_grant(e.into()))?;
    // draft §4.4.1: one audience, our issuer, whether a string or a one-element array.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(all)) => matches!(all.as_slice(), [Value::String(aud)] if aud == issuer),
        _ => false,
    };
    if !aud_ok {
        return Err(refused_grant(InboundError::WrongAudience));
    }
    // draft §8.6.1: a grant bound to a key is redeemed only with a proof by that key
    // (checked by `redeem`); only DPoP bindings (`jkt`) can be proven here.
    if let Some(cnf) = claims.get("cnf")
        && crate::exchange::binding::jkt(cnf).is_none()
    {
        return Err(OAuthError::invalid_grant(
            "assertion.cnf",
            "the assertion is bound to a key other than by a DPoP key thumbprint (cnf.jkt)",
        ));
    }
    let signer = match &jws.signer {
        Origin::Minted => Signer::Own,
        Origin::Upstream(issuer) => Signer::Upstream(Arc::clone(issuer)),
    };
    let claims = jws.into_claims().map_err(|e| refused_grant(e.into()))?;
    let claims = IdJagClaims::from_claims(claims)
        .map_err(|e| OAuthError::invalid_grant("assertion.claims", format!("the assertion is not an ID-JAG: {e}")))?;
    Ok(VerifiedGrant { signer, claims })
}

/// The answer to a grant that failed verification at redemption: `invalid_grant`
/// (RFC 6749 §5.2, RFC 7523 §3.1) naming the rule; unreachable keys stay a 503.
pub(crate) fn refused_grant(error: InboundError) -> OAuthError {
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
        InboundError::LivesTooLong => ("assertion.lifetime", "the assertion lives too long"),
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
