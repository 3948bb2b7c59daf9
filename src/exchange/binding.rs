//! A bound subject token stays bound (RFC 9449 through a delegation chain): a subject
//! or actor token with `cnf.jkt` is exchanged only with a proof; when the proof's key
//! is not the subject's, the delegation to that key must be named (an upstream token's
//! `may_act`, or its issuer's `dpop_delegates`; a minted token's audience, already the
//! only client that may present it), and the earlier key is recorded as `cnf_jkt` on
//! the earlier holder's entry of the chain. The minted token is bound to the proof's
//! key by the exchange, so a bound subject never yields an unbound token.

use serde_json::Value;

use super::subject::Subject;
use crate::client_auth::RegisteredClient;
use crate::error::OAuthError;
use crate::inbound::validate::{Origin, Role, ValidatedToken};
use mcp_sts_contract::Actor;
use mcp_sts_contract::jose::dpop::Proof;

/// The DPoP key thumbprint a `cnf` claim binds to, when it binds by one.
pub(crate) fn jkt(cnf: &Value) -> Option<&str> {
    cnf.get("jkt")?.as_str().filter(|jkt| !jkt.is_empty())
}

/// The key a presented token is bound to; a binding by anything but a DPoP key
/// (`x5t#S256`, `jwk`) cannot be proven here and is refused.
fn bound_key(token: &ValidatedToken, role: Role) -> Result<Option<&str>, OAuthError> {
    match token.claims.get("cnf") {
        None => Ok(None),
        Some(cnf) => jkt(cnf).map(Some).ok_or_else(|| {
            OAuthError::invalid_request(
                match role {
                    Role::Subject => "subject_token.cnf",
                    Role::Actor => "actor_token.cnf",
                },
                format!(
                    "{} is bound to a key other than by a DPoP key thumbprint (cnf.jkt)",
                    role.param()
                ),
            )
        }),
    }
}

/// Check the bindings of the subject and actor tokens against the request's proof,
/// and record a delegated subject's key on its earlier holder in `subject`'s chain.
pub(crate) fn keep_bound(
    subject_token: &ValidatedToken,
    subject: &mut Subject,
    actor_token: Option<&ValidatedToken>,
    proof: Option<&Proof>,
    client: &RegisteredClient,
) -> Result<(), OAuthError> {
    if let Some(actor) = actor_token
        && let Some(actor_jkt) = bound_key(actor, Role::Actor)?
        && proof.is_none_or(|p| p.jkt != actor_jkt)
    {
        return Err(OAuthError::invalid_dpop_proof(
            "actor_token.dpop_key",
            "actor_token is bound to a key; the request's DPoP proof must be made with that key",
        ));
    }
    let Some(subject_jkt) = bound_key(subject_token, Role::Subject)? else {
        return Ok(());
    };
    let proof = proof.ok_or_else(|| {
        OAuthError::invalid_dpop_proof(
            "subject_token.bound",
            "subject_token is bound to a key; it is exchanged only with a DPoP proof",
        )
    })?;
    if proof.jkt == subject_jkt {
        return Ok(());
    }
    let holder = earlier_holder(subject_token, subject, actor_token.is_some(), client)?;
    holder.cnf_jkt = Some(subject_jkt.to_owned());
    Ok(())
}

/// The chain entry of whoever held the subject token before this caller, once the
/// delegation to the caller's key is known to be named.
fn earlier_holder<'s>(
    subject_token: &ValidatedToken,
    subject: &'s mut Subject,
    with_actor_token: bool,
    client: &RegisteredClient,
) -> Result<&'s mut Actor, OAuthError> {
    let own_key_only = || {
        OAuthError::invalid_dpop_proof(
            "subject_token.dpop_key",
            "subject_token is bound to another key and names no agent that held it; use its own key",
        )
    };
    match &subject_token.origin {
        // Presented only by the client that was its audience: the hop it exists for.
        Origin::Minted => subject.prior_actors.as_mut().ok_or_else(own_key_only),
        Origin::Upstream(issuer) => {
            let named =
                subject.may_act_names(client.id()) || issuer.config.dpop_delegates.iter().any(|d| d == client.id());
            if !named {
                return Err(OAuthError::invalid_request(
                    "subject_token.dpop_delegation",
                    "subject_token is bound to another key, and neither its may_act nor its issuer's \
                     dpop_delegates names this client",
                ));
            }
            if with_actor_token {
                return Err(own_key_only());
            }
            subject.agent.as_mut().ok_or_else(own_key_only)
        }
    }
}
