//! Redeeming an identity assertion grant (draft-ietf-oauth-identity-assertion-authz-grant
//! §4.4, RFC 7523 §2.1): mcp-sts as an MCP server's authorization server trades an
//! ID-JAG from a trusted issuer for an access token to that MCP server. The token is
//! an ordinary mcp-sts access token (the user as `sub`, the client as the agent), so
//! the MCP server can exchange it further like any other.

use super::assertions::{self, Signer};
use crate::audit::AuditEvent;
use crate::client_auth::RegisteredClient;
use crate::dpop::{required_by_audience, spend};
use crate::error::OAuthError;
use crate::exchange::subject::{derive_sid, too_deep, upstream_actors};
use crate::exchanger::{Exchanger, TokenResponse};
use crate::lineage::Lineage;
use crate::mint::{NewToken, new_jti, sign};
use crate::policy::{Entitlement, decide_scopes, grantable};
use crate::request::AssertionParams;
use crate::request::trace_id;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::identifier::check as check_identifier;
use mcp_sts_contract::jose::dpop::Proof;
use mcp_sts_contract::revocation::Namespace;

/// Redeem a grant presented by the authenticated `client`. A grant that is invalid,
/// expired, replayed, revoked, bound to a key, addressed elsewhere, issued to another
/// client or naming a resource not served here is `invalid_grant`; a served resource
/// the client may not reach `invalid_target`; the user's rate limit applies (429).
pub(crate) async fn redeem(
    ctx: Exchanger<'_>,
    client: &RegisteredClient,
    params: Result<AssertionParams, OAuthError>,
    proof: Option<Proof>,
    traceparent: Option<&str>,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.event = "id_jag_redeem";
    if client.config.audiences.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_grant",
            "this client may not redeem authorization grants",
        ));
    }
    let params = params?;
    // We redeem our own grants only when we issue grants for ourselves.
    let accept_own = ctx.authorization_servers.get(ctx.issuer).is_some();
    let own = (ctx.issuer, ctx.keys);
    let grant = assertions::id_jag(params.assertion.expose(), own, accept_own, ctx.issuers, ctx.limits, now).await?;
    let claims = &grant.claims;
    if claims.client_id != client.id() {
        return Err(OAuthError::invalid_grant(
            "assertion.client_id",
            "the assertion was issued to another client",
        ));
    }
    // draft §8.6.1: a bound grant is redeemed only with a proof by its key.
    if let Some(cnf) = &claims.cnf
        && proof.as_ref().is_none_or(|p| p.jkt != cnf.jkt)
    {
        return Err(OAuthError::invalid_grant(
            "assertion.cnf",
            "the assertion is bound to a key; redeem it with a DPoP proof by that key",
        ));
    }
    for (what, value) in [("sub", Some(&claims.sub)), ("sid", claims.sid.as_ref())] {
        if let Some(value) = value
            && let Err(e) = check_identifier(value)
        {
            return Err(OAuthError::invalid_grant(
                "assertion.identifier",
                format!("the assertion {what} {e}"),
            ));
        }
    }
    audit.sub = Some(claims.sub.clone());
    ctx.rate_limits.check_subject(&claims.sub)?;
    // MCP's profile: the grant names exactly one resource, the MCP server, and one
    // this server does not serve makes the grant unusable here (`invalid_grant`).
    let resources = claims.resources();
    let [resource] = resources.as_slice() else {
        return Err(OAuthError::invalid_grant(
            "assertion.resource",
            "the assertion must name exactly one resource",
        ));
    };
    let target = ctx
        .audiences
        .resolve(None, Some(resource), client)
        .map_err(|e| match e.rule {
            "target.unknown_resource" | "target.invalid_resource" => OAuthError::invalid_grant(
                "assertion.resource_unknown",
                "the assertion names a resource this server does not serve",
            ),
            _ => e,
        })?;
    audit.audience = Some(target.aud.clone());
    audit.mode = Some(target.audience.mode.as_str());
    required_by_audience(proof.as_ref(), &target.audience)?;

    let grant_issuer = match &grant.signer {
        Signer::Own => None,
        Signer::Upstream(issuer) => Some(issuer.config.issuer.as_str()),
    };
    let prior = match grant_issuer {
        Some(issuer) => {
            let act = claims.act.as_ref().map(|a| ("act".to_owned(), serde_json::json!(a)));
            let map = act.into_iter().collect();
            upstream_actors(&map, issuer, ctx.tokens.max_delegation_depth)
                .map_err(|e| OAuthError::invalid_grant("assertion.act", e.description))?
        }
        None => claims.act.clone(),
    };
    // The redeemer of an identity assertion grant is the agent application it names.
    let chain = mcp_sts_contract::Actor::new(client.id(), None)
        .with_profile(mcp_sts_contract::SubProfile::AiAgent)
        .followed_by(prior);
    if chain.depth() > ctx.tokens.max_delegation_depth {
        let refused = too_deep();
        return Err(OAuthError::invalid_grant(refused.rule, refused.description));
    }
    audit.actor_chain = chain.chain();
    let sid = match &claims.sid {
        Some(sid) => sid.clone(),
        None => derive_sid(&claims.iss, Some(&claims.jti), &serde_json::Map::new()),
    };
    audit.sid = Some(sid.clone());

    // The user belongs to the independent issuer that signed the grant, or to the
    // issuer our own grant records.
    let user_issuer = grant_issuer.or_else(|| claims.user_issuer());
    let namespace = Namespace::of_user(user_issuer);
    let mut lineage = Lineage::for_caller(client.id(), &ctx.issuers.names());
    lineage
        .user(&claims.sub, namespace)
        .session(&sid, namespace)
        .token(&claims.jti)
        .chain(&chain);
    lineage.check(ctx.revocations, now).await?.into_grant_result()?;

    let audience = &target.audience;
    let entitlement = Entitlement::Minted {
        scopes: claims.scopes(),
    };
    let granted = decide_scopes(&params.scopes, &grantable(audience, &entitlement), audience)?;
    let scope = granted.join(" ");
    audit.scope = Some(scope.clone());

    // Single use across replicas, decided last so a refusal above does not spend it.
    let once = format!("id-jag:{}:{}", claims.iss, claims.jti);
    let expires = claims.exp.saturating_add(ctx.limits.leeway);
    let first_use = ctx.revocations.use_once(&once, expires, now).await?;
    if !first_use {
        return Err(OAuthError::invalid_grant(
            "assertion.replay",
            "the assertion has already been used",
        ));
    }

    let ttl = ctx
        .tokens
        .default_ttl_seconds
        .min(audience.ttl_cap().unwrap_or(u64::MAX));
    let txn = trace_id(traceparent)
        .or_else(crate::spans::current_trace_id)
        .unwrap_or_else(new_jti);
    audit.txn = Some(txn.clone());
    let token = NewToken {
        issuer: ctx.issuer.to_owned(),
        aud: target.aud.clone(),
        mode: audience.mode,
        client_id: client.id().to_owned(),
        user: claims.sub.clone(),
        user_issuer: user_issuer.map(str::to_owned),
        tenant: claims.tenant.clone(),
        agent: None,
        chain,
        scope: scope.clone(),
        sid,
        txn,
        now,
        ttl,
        cnf_jkt: proof.as_ref().map(|p| p.jkt.clone()),
    }
    .into_claims();
    audit.jti = Some(token.jti.clone());
    spend(proof.as_ref(), ctx.revocations, now).await?;
    let access_token = sign(ctx.keys.signing_key(now), &token)?;
    Ok(TokenResponse {
        access_token,
        issued_token_type: None,
        token_type: token.token_type(),
        expires_in: ttl,
        scope,
    })
}
