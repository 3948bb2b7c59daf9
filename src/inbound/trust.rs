//! Whose keys may have signed an inbound JWT: our own key ring for our issuer, a
//! trusted upstream issuer's JWKS for theirs. The key source of subject and actor
//! tokens and of the JWTs of enterprise-managed authorization, chosen by the token's
//! (not yet trusted) `iss`; the signature then proves that issuer wrote it.

use std::sync::Arc;

use serde_json::Value;

use super::issuers::{Issuers, TrustedIssuer};
use crate::config::IssuerKind;
use crate::keys::KeyRing;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::algorithm::name;
use mcp_sts_contract::jose::{KeySource, Refusal, Unverified, VerificationKey};

/// Where a validated token came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A trusted upstream issuer.
    Upstream(Arc<TrustedIssuer>),
    /// This service (a further hop).
    Minted,
}

/// Our own issuer as a signer a door accepts.
#[derive(Debug, Clone, Copy)]
pub struct Own<'a> {
    /// Our issuer URL: tokens with this `iss` are read with our keys only.
    pub issuer: &'a str,
    /// Our published keys.
    pub ring: &'a KeyRing,
    /// The `typ` our tokens must carry at this door (without `application/`, compared
    /// case-insensitively), if the profile admits more than that for upstream tokens.
    pub typ: Option<&'static str>,
}

/// The signers a door accepts: perhaps ourselves, and the upstream issuers `accepts`
/// admits.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// Ourselves, when our own tokens are acceptable here.
    pub own: Option<Own<'a>>,
    /// Every configured upstream issuer.
    pub issuers: &'a Issuers,
    /// Which of them this door accepts.
    pub accepts: fn(&TrustedIssuer) -> bool,
}

impl<'a> Trust<'a> {
    /// Every configured identity provider (never a workload issuer: a workload is
    /// not a user), and ourselves when `own` is given.
    pub(crate) fn all(issuers: &'a Issuers, own: Option<Own<'a>>) -> Self {
        Self {
            own,
            issuers,
            accepts: |issuer| issuer.config.kind == IssuerKind::Oidc,
        }
    }

    /// Every configured issuer, workload issuers too: the signers of actor tokens.
    pub(crate) fn actors(issuers: &'a Issuers, own: Option<Own<'a>>) -> Self {
        Self {
            own,
            issuers,
            accepts: |_| true,
        }
    }

    /// Workload issuers only: the signers of workload client assertions.
    pub(crate) fn workloads(issuers: &'a Issuers) -> Self {
        Self {
            own: None,
            issuers,
            accepts: |issuer| issuer.config.kind != IssuerKind::Oidc,
        }
    }
}

impl KeySource for Trust<'_> {
    type Signer = Origin;

    async fn keys(&self, jws: &Unverified<'_>, now: UnixTime) -> Result<(Origin, Vec<Arc<VerificationKey>>), Refusal> {
        let claims = jws.claims()?;
        let iss = claims.get("iss").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        if let Some(own) = &self.own
            && iss == Some(own.issuer)
        {
            if own
                .typ
                .is_some_and(|typ| !jws.typ().is_some_and(|t| t.eq_ignore_ascii_case(typ)))
            {
                return Err(Refusal::Type);
            }
            let ((), keys) = own.ring.keys(jws, now).await?;
            return Ok((Origin::Minted, keys));
        }
        let Some(issuer) = self.issuers.for_token(iss, sub).filter(|issuer| (self.accepts)(issuer)) else {
            // Log only (never in the response): what arrived against what is trusted, so
            // a trailing slash or a scheme mismatch is found at a glance.
            tracing::info!(arrived = ?iss, expected = ?self.issuers.names(), "refused: token issuer is not trusted");
            return Err(Refusal::UntrustedIssuer);
        };
        let ((), keys) = issuer.keys(jws, now).await?;
        Ok((Origin::Upstream(Arc::clone(issuer)), keys))
    }
}

/// One upstream issuer's keys, for the algorithms it is configured with; never keys
/// named by the token's own `jku`, `x5u` or `jwk` headers. Unreachable keys fail closed.
impl KeySource for TrustedIssuer {
    type Signer = ();

    async fn keys(&self, jws: &Unverified<'_>, now: UnixTime) -> Result<((), Vec<Arc<VerificationKey>>), Refusal> {
        if !self.algorithms.contains(&jws.alg()) {
            return Err(Refusal::Algorithm(Some(name(jws.alg()).to_owned())));
        }
        Ok(((), jws.keys_from(&self.jwks, now).await?))
    }
}
