//! Who takes part in an exchange: the user behind the subject token, the actor (from
//! the actor token, or the calling client), and the delegation chain they make.

use super::{actor, binding, subject};
use crate::audit::AuditEvent;
use crate::client_auth::RegisteredClient;
use crate::error::OAuthError;
use crate::exchanger::Call;
use crate::inbound::validate::{Origin, Role, ValidatedToken, validate, validate_actor};
use crate::policy::Audiences;
use crate::request::ExchangeParams;
use mcp_sts_contract::{AccessClaims, Actor};

use subject::Subject;

/// The parties of one exchange, read from its validated tokens.
pub(super) struct Parties {
    /// The user behind the subject token.
    pub subject: Subject,
    /// The actor token's `sub`, when one was sent.
    pub actor: Option<String>,
    /// The claims of a minted actor token, whose lineage is checked too.
    pub minted_actor: Option<AccessClaims>,
    /// The new delegation chain, current actor first.
    pub chain: Actor,
    /// When the earlier of the subject and actor tokens expires.
    pub expires_at: u64,
}

impl Parties {
    /// Validate the subject and actor tokens, keep a bound subject bound, and build
    /// the chain (recorded in the audit event as it becomes known).
    pub(crate) async fn read(
        call: &Call<'_>,
        params: &ExchangeParams,
        audit: &mut AuditEvent,
    ) -> Result<Self, OAuthError> {
        let ctx = call.ctx;
        let own = (ctx.issuer, ctx.keys);
        let subject_token = validate(
            params.subject_token.expose(),
            params.subject_type,
            ctx.issuers,
            own,
            ctx.limits,
            ctx.verified,
            call.now,
        )
        .await
        .map_err(|e| e.into_oauth(Role::Subject))?;
        let max_depth = ctx.tokens.max_delegation_depth;
        let mut subject = Subject::from_token(ctx.audiences, &subject_token, &call.client, max_depth)?;
        audit.sub = Some(subject.user.clone());
        audit.sid = Some(subject.sid.clone());
        ctx.rate_limits.check_subject(&subject.user)?;

        let actor_token = actor_token(call, params).await?;
        let actor_token = actor_token.as_ref();
        binding::keep_bound(
            &subject_token,
            &mut subject,
            actor_token,
            call.proof.as_ref(),
            &call.client,
        )?;
        let minted_actor = match actor_token {
            Some(actor) => actor_claims(ctx.audiences, actor, &call.client)?,
            None => None,
        };
        let chain = chain(call, &subject, actor_token, minted_actor.as_ref())?;
        audit.actor_chain = chain.chain();
        if chain.depth() > max_depth {
            return Err(subject::too_deep());
        }
        Ok(Self {
            expires_at: subject_token.exp.min(actor_token.map_or(u64::MAX, |a| a.exp)),
            actor: actor_token.map(|a| a.sub.clone()),
            subject,
            minted_actor,
            chain,
        })
    }
}

/// The actor token, validated, when one was sent.
async fn actor_token(call: &Call<'_>, params: &ExchangeParams) -> Result<Option<ValidatedToken>, OAuthError> {
    let Some((token, declared)) = &params.actor else {
        return Ok(None);
    };
    let ctx = call.ctx;
    validate_actor(
        token.expose(),
        *declared,
        ctx.issuers,
        (ctx.issuer, ctx.keys),
        ctx.limits,
        ctx.verified,
        call.now,
    )
    .await
    .map(Some)
    .map_err(|e| e.into_oauth(Role::Actor))
}

/// The new chain: the actor token's actor followed by the subject's prior actors, or,
/// without an actor token, the client acting for the user after the agent
/// application the user's token names; `may_act` must allow the current actor.
fn chain(
    call: &Call<'_>,
    subject: &Subject,
    actor_token: Option<&ValidatedToken>,
    minted_actor: Option<&AccessClaims>,
) -> Result<Actor, OAuthError> {
    let (current_actor, prior_actors) = match actor_token {
        Some(token) => (
            actor::from_actor_token(call.ctx.issuers, token, minted_actor)?,
            subject.prior_actors.clone(),
        ),
        // The agent application named in the user's token acts through the client.
        None => (
            actor::client(&call.client),
            match subject.agent.clone() {
                Some(agent) => Some(agent.followed_by(subject.prior_actors.clone())),
                None => subject.prior_actors.clone(),
            },
        ),
    };
    subject.check_may_act(&current_actor, actor_token.is_some())?;
    Ok(current_actor.followed_by(prior_actors))
}

/// A minted actor token: presented by the client that was its audience, naming an
/// actor acting as itself; its claims join the lineage.
fn actor_claims(
    audiences: &Audiences,
    actor: &ValidatedToken,
    client: &RegisteredClient,
) -> Result<Option<AccessClaims>, OAuthError> {
    subject::check_id(&actor.sub, Role::Actor, "sub")?;
    if !matches!(actor.origin, Origin::Minted) {
        return Ok(None);
    }
    subject::check_minted_audience(audiences, actor, client, Role::Actor)?;
    let claims = subject::minted_claims(actor, Role::Actor)?;
    subject::check_minted_actor(&claims)?;
    Ok(Some(claims))
}
