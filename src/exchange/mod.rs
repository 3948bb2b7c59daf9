//! The token exchange decision (RFC 8693 §2): from an authenticated call and its
//! parameters to a token or a refusal. No HTTP types here; the HTTP layer only adapts.

pub(crate) mod actor;
pub(crate) mod binding;
mod parties;
pub(crate) mod subject;

use crate::audit::AuditEvent;
use crate::dpop::required_by_audience;
use crate::error::OAuthError;
use crate::exchanger::{Call, Decision, Minted, Presented};
use crate::lineage::Lineage;
use crate::mint::NewToken;
use crate::policy::Target;
use crate::request::ExchangeParams;

use parties::Parties;

pub(crate) use crate::exchanger::TokenResponse;

/// Exchange the subject (and actor) token of an authenticated call for a token to the
/// audience asked for. Refusals follow RFC 8693 §2.2.2.
pub(crate) async fn exchange(
    call: &Call<'_>,
    params: Result<ExchangeParams, OAuthError>,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    if call.client.config.audiences.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_exchange",
            "this client may not use token exchange",
        ));
    }
    let params = params?;
    let target = call
        .ctx
        .audiences
        .resolve(params.audience.as_deref(), params.resource.as_deref(), &call.client)?;
    audit.audience = Some(target.aud.clone());
    audit.mode = Some(target.audience.mode.as_str());
    required_by_audience(call.proof.as_ref(), &target.audience)?;

    let parties = Parties::read(call, &params, audit).await?;
    let decision = Decision {
        lineage: lineage(call, &parties),
        presented: Presented::Token,
        requested: &params.scopes,
        entitlement: &parties.subject.entitlement,
        policy: &target.audience,
    };
    let scope = call.settle(decision, audit).await?;
    let ttl = lifetime(call, &parties, &target)?;
    let txn = call.txn(parties.subject.txn.clone(), audit);
    let token = new_token(call, parties, &target, scope, txn, ttl);
    let issued_token_type = Some(params.issued_type);
    call.mint(
        Minted::Access {
            token,
            issued_token_type,
        },
        audit,
    )
    .await
}

/// Everything the exchange answers for: the caller, the user and session, every actor
/// of the new chain, and the whole lineage of minted subject and actor tokens.
fn lineage(call: &Call<'_>, parties: &Parties) -> Lineage {
    let subject = &parties.subject;
    let mut lineage = Lineage::for_caller(call.client.id(), &call.ctx.issuers.names());
    lineage
        .user(&subject.user, subject.namespace())
        .session(&subject.sid, subject.namespace());
    lineage.chain(&parties.chain);
    for minted in subject.minted.iter().chain(parties.minted_actor.iter()) {
        lineage.minted(minted);
    }
    lineage
}

/// The new token's lifetime: the default, capped by the audience and by what is left of
/// the subject and actor tokens; none left is an expired subject.
fn lifetime(call: &Call<'_>, parties: &Parties, target: &Target) -> Result<u64, OAuthError> {
    let remaining = parties.expires_at.saturating_sub(call.now);
    let ttl = [
        Some(call.ctx.tokens.default_ttl_seconds),
        target.audience.ttl_cap(),
        Some(remaining),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    if ttl == 0 {
        return Err(OAuthError::invalid_request(
            "subject_token.expired",
            "subject_token has expired",
        ));
    }
    Ok(ttl)
}

/// What the new token says.
fn new_token(call: &Call<'_>, parties: Parties, target: &Target, scope: String, txn: String, ttl: u64) -> NewToken {
    let Parties {
        subject, actor, chain, ..
    } = parties;
    NewToken {
        issuer: call.ctx.issuer.to_owned(),
        aud: target.aud.clone(),
        mode: target.audience.mode,
        client_id: call.client.id().to_owned(),
        user: subject.user,
        user_issuer: subject.issuer,
        tenant: subject.tenant,
        agent: actor.or_else(|| subject.agent.map(|a| a.sub)),
        chain,
        scope,
        sid: subject.sid,
        txn,
        now: call.now,
        ttl,
        cnf_jkt: call.bound_key(),
    }
}
