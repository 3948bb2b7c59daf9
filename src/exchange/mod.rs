//! The token exchange decision (RFC 8693 §2): from a parsed request and `now` to a
//! token or a refusal. No HTTP types here; the HTTP layer only adapts.

pub(crate) mod actor;
pub(crate) mod binding;
pub(crate) mod subject;

use crate::audit::{AuditEvent, loggable};
use crate::client_auth::{RegisteredClient, authenticate};
use crate::dpop::{required_by_audience, spend, token_proof};
use crate::error::OAuthError;
use crate::inbound::validate::{Origin, Role, ValidatedToken, validate, validate_actor};
use crate::lineage::Lineage;
use crate::mint::{NewToken, new_jti, sign};
use crate::policy::{Audiences, decide_scopes, grantable};
use crate::request::{Grant, TokenRequest};
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::clock::UnixTime;

use subject::Subject;

pub(crate) use crate::exchanger::{Exchanger, TokenResponse};
pub(crate) use crate::request::trace_id;

/// Answer one `/token` request: authenticate the caller, then decide its grant (an
/// exchange here; identity assertion grants in `crate::grant`). `audit` is filled in
/// as facts become known, for both outcomes; the caller records it.
pub async fn exchange(
    ctx: Exchanger<'_>,
    request: TokenRequest,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.client_id = request.claimed_client_id.as_deref().map(loggable);
    let credentials = request.credentials?;
    if let Some(claimed) = credentials.claimed_id() {
        audit.client_id = Some(loggable(claimed));
    }
    let client = authenticate(ctx.clients, &credentials, ctx.auth, ctx.revocations, now).await?;
    audit.client_id = Some(client.id().to_owned());
    ctx.rate_limits.check_client(client.id())?;
    let proof = token_proof(ctx.token_endpoint(), &request.dpop, &client, now).await?;
    let params = match request.grant {
        Grant::TokenExchange(params) => params,
        Grant::IdJag(params) => return crate::grant::issue(ctx, &client, params, proof, now, audit).await,
        Grant::JwtBearer(params) => {
            let traceparent = request.traceparent.as_deref();
            return crate::grant::redeem(ctx, &client, params, proof, traceparent, now, audit).await;
        }
    };
    if client.config.audiences.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_exchange",
            "this client may not use token exchange",
        ));
    }

    let params = params?;
    let target = ctx
        .audiences
        .resolve(params.audience.as_deref(), params.resource.as_deref(), &client)?;
    audit.audience = Some(target.aud.clone());
    audit.mode = Some(target.audience.mode.as_str());
    required_by_audience(proof.as_ref(), &target.audience)?;

    let own = (ctx.issuer, ctx.keys);
    let subject_token = validate(
        params.subject_token.expose(),
        params.subject_type,
        ctx.issuers,
        own,
        ctx.limits,
        ctx.verified,
        now,
    )
    .await
    .map_err(|e| e.into_oauth(Role::Subject))?;
    let max_depth = ctx.tokens.max_delegation_depth;
    let mut subject = Subject::from_token(ctx.audiences, &subject_token, &client, max_depth)?;
    audit.sub = Some(subject.user.clone());
    audit.sid = Some(subject.sid.clone());
    ctx.rate_limits.check_subject(&subject.user)?;

    let actor_token = match &params.actor {
        Some((token, declared)) => Some(
            validate_actor(
                token.expose(),
                *declared,
                ctx.issuers,
                own,
                ctx.limits,
                ctx.verified,
                now,
            )
            .await
            .map_err(|e| e.into_oauth(Role::Actor))?,
        ),
        None => None,
    };
    binding::keep_bound(
        &subject_token,
        &mut subject,
        actor_token.as_ref(),
        proof.as_ref(),
        &client,
    )?;
    let minted_actor = match &actor_token {
        Some(actor) => actor_claims(ctx.audiences, actor, &client)?,
        None => None,
    };
    let (current_actor, prior_actors) = match &actor_token {
        Some(actor) => (
            actor::from_actor_token(ctx.issuers, actor, minted_actor.as_ref())?,
            subject.prior_actors.clone(),
        ),
        // The agent application named in the user's token acts through the client.
        None => (
            actor::client(&client),
            match subject.agent.clone() {
                Some(agent) => Some(agent.followed_by(subject.prior_actors.clone())),
                None => subject.prior_actors.clone(),
            },
        ),
    };
    subject.check_may_act(&current_actor, actor_token.is_some())?;
    let chain = current_actor.followed_by(prior_actors);
    audit.actor_chain = chain.chain();
    if chain.depth() > max_depth {
        return Err(subject::too_deep());
    }

    let mut lineage = Lineage::for_caller(client.id(), &ctx.issuers.names());
    lineage
        .user(&subject.user, subject.namespace())
        .session(&subject.sid, subject.namespace());
    lineage.chain(&chain);
    for minted in subject.minted.iter().chain(minted_actor.iter()) {
        lineage.minted(minted);
    }
    lineage.check(ctx.revocations, now).await?.into_exchange_result()?;

    let audience = &target.audience;
    let granted = decide_scopes(&params.scopes, &grantable(audience, &subject.entitlement), audience)?;
    let scope = granted.join(" ");
    audit.scope = Some(scope.clone());

    let remaining = subject_token
        .exp
        .min(actor_token.as_ref().map_or(u64::MAX, |a| a.exp))
        .saturating_sub(now);
    let ttl = [
        Some(ctx.tokens.default_ttl_seconds),
        audience.ttl_cap(),
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
    let txn = trace_id(request.traceparent.as_deref())
        .or_else(|| subject.txn.clone())
        .or_else(crate::spans::current_trace_id)
        .unwrap_or_else(new_jti);
    audit.txn = Some(txn.clone());
    spend(proof.as_ref(), ctx.revocations, now).await?;
    let claims = NewToken {
        issuer: ctx.issuer.to_owned(),
        aud: target.aud.clone(),
        mode: audience.mode,
        client_id: client.id().to_owned(),
        user: subject.user.clone(),
        user_issuer: subject.issuer.clone(),
        tenant: subject.tenant.clone(),
        agent: actor_token
            .as_ref()
            .map(|a| a.sub.clone())
            .or_else(|| subject.agent.as_ref().map(|a| a.sub.clone())),
        chain,
        scope: scope.clone(),
        sid: subject.sid.clone(),
        txn,
        now,
        ttl,
        cnf_jkt: proof.map(|p| p.jkt),
    }
    .into_claims();
    audit.jti = Some(claims.jti.clone());
    let access_token = sign(ctx.keys.signing_key(now), &claims)?;
    Ok(TokenResponse {
        access_token,
        issued_token_type: Some(params.issued_type),
        token_type: claims.token_type(),
        expires_in: ttl,
        scope,
    })
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
