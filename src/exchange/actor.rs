//! The current actor of an exchange and its actor profile (`sub_profile`): always
//! from configuration and from who vouched for the actor, never from the subject token.

use crate::client_auth::RegisteredClient;
use crate::config::IssuerKind;
use crate::error::OAuthError;
use crate::inbound::Issuers;
use crate::inbound::validate::{Origin, ValidatedToken};
use mcp_sts_contract::{AccessClaims, Actor, DelegationMode, SubProfile};

/// The actor an actor token names, with its issuer and profile: an identity
/// provider's actor is `ai_agent` unless the issuer says `actor_profile`; a workload
/// (SPIFFE ID or service account) must match a `[[workloads]]` rule with
/// `actor = true` and takes that rule's profile; one of our own tokens acting as
/// itself keeps the profile it was minted with.
pub(crate) fn from_actor_token(
    issuers: &Issuers,
    token: &ValidatedToken,
    minted: Option<&AccessClaims>,
) -> Result<Actor, OAuthError> {
    let profile = match &token.origin {
        Origin::Minted => minted.map_or(SubProfile::User, minted_profile),
        Origin::Upstream(issuer) if issuer.config.kind == IssuerKind::Oidc => {
            issuer.config.actor_profile.unwrap_or(SubProfile::AiAgent)
        }
        Origin::Upstream(issuer) => issuers
            .workloads()
            .rule(&issuer.config.issuer, &token.sub)
            .filter(|rule| rule.actor)
            .map(|rule| rule.profile())
            .ok_or_else(|| {
                tracing::info!(issuer = ?issuer.config.issuer, "refused: no workload rule lets this workload act");
                OAuthError::invalid_request(
                    "actor_token.workload",
                    "actor_token names a workload that no rule allows to act",
                )
            })?,
    };
    Ok(Actor::new(token.sub.clone(), Some(token.iss.clone())).with_profile(profile))
}

/// The calling client acting for the user itself: a service, or a workload client
/// with its issuer and its rule's profile.
pub(crate) fn client(client: &RegisteredClient) -> Actor {
    client.as_actor()
}

/// A minted token acting as itself: a service in `service_identity`, else the
/// profile its own entry carries, else a user acting as themselves.
fn minted_profile(claims: &AccessClaims) -> SubProfile {
    if claims.delegation_mode == DelegationMode::ServiceIdentity {
        return SubProfile::Service;
    }
    claims
        .act
        .as_ref()
        .filter(|act| act.sub == claims.sub)
        .and_then(|act| act.sub_profile)
        .unwrap_or(SubProfile::User)
}
