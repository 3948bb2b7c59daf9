//! Redeeming an identity assertion grant (draft-ietf-oauth-identity-assertion-authz-grant
//! §4.4, RFC 7523 §2.1): mcp-sts as an MCP server's authorization server trades an
//! ID-JAG from a trusted issuer for an access token to that MCP server. The token is
//! an ordinary mcp-sts access token (the user as `sub`, the client as the agent), so
//! the MCP server can exchange it further like any other.

use super::assertions::{self, Signer, VerifiedGrant};
use crate::audit::AuditEvent;
use crate::dpop::required_by_audience;
use crate::error::OAuthError;
use crate::exchange::subject::{derive_sid, too_deep, upstream_actors};
use crate::exchanger::{Call, Decision, Minted, Presented, TokenResponse};
use crate::lineage::Lineage;
use crate::mint::NewToken;
use crate::policy::{Entitlement, Target};
use crate::request::AssertionParams;
use mcp_sts_contract::identifier::check as check_identifier;
use mcp_sts_contract::revocation::Namespace;
use mcp_sts_contract::{Actor, IdJagClaims, SubProfile};

/// Redeem a grant presented by the authenticated caller. A grant that is invalid,
/// expired, replayed, revoked, bound to a key, addressed elsewhere, issued to another
/// client or naming a resource not served here is `invalid_grant`; a served resource
/// the client may not reach `invalid_target`; the user's rate limit applies (429).
pub(crate) async fn redeem(
    call: &Call<'_>,
    params: Result<AssertionParams, OAuthError>,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.event = "id_jag_redeem";
    let ctx = call.ctx;
    if call.client.config.audiences.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_grant",
            "this client may not redeem authorization grants",
        ));
    }
    let params = params?;
    // We redeem our own grants only when we issue grants for ourselves.
    let accept_own = ctx.authorization_servers.get(ctx.issuer).is_some();
    let own = (ctx.issuer, ctx.keys);
    let assertion = params.assertion.expose();
    let grant = assertions::id_jag(assertion, own, accept_own, ctx.issuers, ctx.limits, call.now).await?;
    let claims = &grant.claims;
    check_presented(call, claims)?;
    audit.sub = Some(claims.sub.clone());
    ctx.rate_limits.check_subject(&claims.sub)?;
    let target = target(call, claims)?;
    audit.audience = Some(target.aud.clone());
    audit.mode = Some(target.audience.mode.as_str());
    required_by_audience(call.proof.as_ref(), &target.audience)?;

    let redeemed = Redeemed::read(call, &grant)?;
    audit.actor_chain = redeemed.chain.chain();
    audit.sid = Some(redeemed.sid.clone());
    let entitlement = Entitlement::Minted {
        scopes: claims.scopes(),
    };
    let decision = Decision {
        lineage: redeemed.lineage(call, claims),
        presented: Presented::Grant,
        requested: &params.scopes,
        entitlement: &entitlement,
        policy: &target.audience,
    };
    let scope = call.settle(decision, audit).await?;
    use_once(call, claims).await?;

    let ttl = ctx
        .tokens
        .default_ttl_seconds
        .min(target.audience.ttl_cap().unwrap_or(u64::MAX));
    let txn = call.txn(None, audit);
    let token = NewToken {
        issuer: ctx.issuer.to_owned(),
        aud: target.aud.clone(),
        mode: target.audience.mode,
        client_id: call.client.id().to_owned(),
        user: claims.sub.clone(),
        user_issuer: redeemed.user_issuer.map(str::to_owned),
        tenant: claims.tenant.clone(),
        agent: None,
        chain: redeemed.chain,
        scope,
        sid: redeemed.sid,
        txn,
        now: call.now,
        ttl,
        cnf_jkt: call.bound_key(),
    };
    let issued_token_type = None;
    call.mint(
        Minted::Access {
            token,
            issued_token_type,
        },
        audit,
    )
    .await
}

/// The grant was issued to this caller, is redeemed with its key when bound to one,
/// and names its user and session by identifiers we accept.
fn check_presented(call: &Call<'_>, claims: &IdJagClaims) -> Result<(), OAuthError> {
    if claims.client_id != call.client.id() {
        return Err(OAuthError::invalid_grant(
            "assertion.client_id",
            "the assertion was issued to another client",
        ));
    }
    // draft §8.6.1: a bound grant is redeemed only with a proof by its key.
    if let Some(cnf) = &claims.cnf
        && call.proof.as_ref().is_none_or(|p| p.jkt != cnf.jkt)
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
    Ok(())
}

/// MCP's profile: the grant names exactly one resource, the MCP server, and one this
/// server does not serve makes the grant unusable here (`invalid_grant`).
fn target(call: &Call<'_>, claims: &IdJagClaims) -> Result<Target, OAuthError> {
    let resources = claims.resources();
    let [resource] = resources.as_slice() else {
        return Err(OAuthError::invalid_grant(
            "assertion.resource",
            "the assertion must name exactly one resource",
        ));
    };
    call.ctx
        .audiences
        .resolve(None, Some(resource), &call.client)
        .map_err(|e| match e.rule {
            "target.unknown_resource" | "target.invalid_resource" => OAuthError::invalid_grant(
                "assertion.resource_unknown",
                "the assertion names a resource this server does not serve",
            ),
            _ => e,
        })
}

/// Who a redeemed grant speaks for: the chain led by the redeemer, the session, and
/// the user's issuer.
struct Redeemed<'g> {
    chain: Actor,
    sid: String,
    user_issuer: Option<&'g str>,
}

impl<'g> Redeemed<'g> {
    /// The redeemer of an identity assertion grant is the agent application it names,
    /// followed by whoever the grant says already acts (an upstream grant's `act` marked
    /// with its issuer). The user belongs to the independent issuer that signed the
    /// grant, or to the issuer our own grant records.
    fn read(call: &Call<'_>, grant: &'g VerifiedGrant) -> Result<Self, OAuthError> {
        let claims = &grant.claims;
        let max_depth = call.ctx.tokens.max_delegation_depth;
        let grant_issuer = match &grant.signer {
            Signer::Own => None,
            Signer::Upstream(issuer) => Some(issuer.config.issuer.as_str()),
        };
        let prior = match grant_issuer {
            Some(issuer) => {
                let act = claims.act.as_ref().map(|a| ("act".to_owned(), serde_json::json!(a)));
                let map = act.into_iter().collect();
                upstream_actors(&map, issuer, max_depth)
                    .map_err(|e| OAuthError::invalid_grant("assertion.act", e.description))?
            }
            None => claims.act.clone(),
        };
        let chain = Actor::new(call.client.id(), None)
            .with_profile(SubProfile::AiAgent)
            .followed_by(prior);
        if chain.depth() > max_depth {
            let refused = too_deep();
            return Err(OAuthError::invalid_grant(refused.rule, refused.description));
        }
        let sid = match &claims.sid {
            Some(sid) => sid.clone(),
            None => derive_sid(&claims.iss, Some(&claims.jti), &serde_json::Map::new()),
        };
        let user_issuer = grant_issuer.or_else(|| claims.user_issuer());
        Ok(Self {
            chain,
            sid,
            user_issuer,
        })
    }

    /// The caller, the user and session, the grant itself and every actor.
    fn lineage(&self, call: &Call<'_>, claims: &IdJagClaims) -> Lineage {
        let namespace = Namespace::of_user(self.user_issuer);
        let mut lineage = Lineage::for_caller(call.client.id(), &call.ctx.issuers.names());
        lineage
            .user(&claims.sub, namespace)
            .session(&self.sid, namespace)
            .token(&claims.jti)
            .chain(&self.chain);
        lineage
    }
}

/// Single use across replicas, decided after every other check so a refusal does not
/// spend the grant.
async fn use_once(call: &Call<'_>, claims: &IdJagClaims) -> Result<(), OAuthError> {
    let once = format!("id-jag:{}:{}", claims.iss, claims.jti);
    let expires = claims.exp.saturating_add(call.ctx.limits.leeway);
    if call.ctx.revocations.use_once(&once, expires, call.now).await? {
        return Ok(());
    }
    Err(OAuthError::invalid_grant(
        "assertion.replay",
        "the assertion has already been used",
    ))
}
