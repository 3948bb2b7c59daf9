//! Issuing an identity assertion grant (draft-ietf-oauth-identity-assertion-authz-grant
//! §4.3): mcp-sts as the enterprise's token service trades the user's ID token for a
//! short-lived ID-JAG addressed to one MCP server's authorization server.

use serde_json::Value;

use super::assertions;
use crate::audit::AuditEvent;
use crate::client_auth::RegisteredClient;
use crate::dpop::spend;
use crate::error::OAuthError;
use crate::exchange::subject::Subject;
use crate::exchanger::{Exchanger, TokenResponse};
use crate::inbound::jwt::{str_claim, time_claim};
use crate::inbound::validate::{DeclaredType, Role};
use crate::lineage::Lineage;
use crate::mint::{new_jti, sign_id_jag};
use crate::policy::{decide_scopes, grantable};
use crate::request::IdJagParams;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::dpop::Proof;
use mcp_sts_contract::set::SubjectId;
use mcp_sts_contract::urn::{ID_JAG_TOKEN_TYPE, NOT_APPLICABLE_TOKEN_TYPE};
use mcp_sts_contract::{Actor, Audience, Confirmation, IdJagClaims};

/// Issue a grant to the authenticated `client` (the agent application). Refusals follow
/// RFC 8693 §2.2.2: an unacceptable or revoked subject is `invalid_request`, an unknown
/// or forbidden authorization server or resource `invalid_target`.
pub(crate) async fn issue(
    ctx: Exchanger<'_>,
    client: &RegisteredClient,
    params: Result<IdJagParams, OAuthError>,
    proof: Option<Proof>,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.event = "id_jag_issue";
    if client.config.authorization_servers.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_id_jag",
            "this client may not obtain identity assertion grants",
        ));
    }
    let params = params?;
    // draft-ietf-oauth-identity-assertion-authz-grant §4.3: the subject is an identity
    // assertion bound to the caller; an access token is bound to no one in particular.
    if params.subject_type == DeclaredType::AccessToken {
        return Err(OAuthError::invalid_request(
            "subject_token.not_identity_assertion",
            "an identity assertion grant is issued for an ID token addressed to the caller, not an access token",
        ));
    }
    let target = ctx
        .authorization_servers
        .resolve(&params.audience, &params.resource, client)?;
    audit.audience = Some(target.server.config.issuer.clone());

    let token = assertions::identity_assertion(
        params.subject_token.expose(),
        params.subject_type,
        client.id(),
        ctx.issuers,
        ctx.limits,
        now,
    )
    .await
    .map_err(|e| e.into_oauth(Role::Subject))?;
    let subject = Subject::from_token(ctx.audiences, &token, client, ctx.tokens.max_delegation_depth)?;
    audit.sub = Some(subject.user.clone());
    audit.sid = Some(subject.sid.clone());
    audit.actor_chain = vec![client.id().to_owned()];
    ctx.rate_limits.check_subject(&subject.user)?;

    // The client is the agent the grant lets act; whoever the user's token already
    // names as acting answers too.
    let mut lineage = Lineage::for_caller(client.id(), &ctx.issuers.names());
    lineage
        .user(&subject.user, subject.namespace())
        .session(&subject.sid, subject.namespace())
        .actor(&Actor::new(client.id(), None));
    for chain in subject.agent.iter().chain(subject.prior_actors.iter()) {
        lineage.chain(chain);
    }
    lineage.check(ctx.revocations, now).await?.into_exchange_result()?;

    let policy = &target.policy;
    let granted = decide_scopes(&params.scopes, &grantable(policy, &subject.entitlement), policy)?;
    let scope = granted.join(" ");
    audit.scope = Some(scope.clone());

    let ttl = target.server.config.grant_ttl().min(token.exp.saturating_sub(now));
    if ttl == 0 {
        return Err(OAuthError::invalid_request(
            "subject_token.expired",
            "subject_token has expired",
        ));
    }
    let claims = IdJagClaims {
        iss: ctx.issuer.to_owned(),
        sub: subject.user.clone(),
        aud: Audience::One(target.server.config.issuer.clone()),
        client_id: client.id().to_owned(),
        jti: new_jti(),
        exp: now + ttl,
        iat: now,
        resource: Some(Audience::One(target.resource.clone())),
        scope: (!scope.is_empty()).then(|| scope.clone()),
        tenant: subject.tenant.clone(),
        sid: Some(subject.sid.clone()),
        auth_time: time_claim(&token.claims, "auth_time").and_then(Result::ok),
        acr: str_claim(&token.claims, "acr").map(String::from),
        amr: token.claims.get("amr").and_then(string_list),
        email: str_claim(&token.claims, "email").map(String::from),
        act: None,
        sub_id: subject.issuer.clone().map(|iss| SubjectId::IssSub {
            iss,
            sub: subject.user.clone(),
        }),
        cnf: proof.as_ref().map(|p| Confirmation { jkt: p.jkt.clone() }),
    };
    audit.jti = Some(claims.jti.clone());
    spend(proof.as_ref(), ctx.revocations, now).await?;
    let grant = sign_id_jag(ctx.keys.signing_key(now), &claims)?;
    Ok(TokenResponse {
        access_token: grant,
        issued_token_type: Some(ID_JAG_TOKEN_TYPE),
        token_type: NOT_APPLICABLE_TOKEN_TYPE,
        expires_in: ttl,
        scope,
    })
}

/// An array of strings, carried only when every element is one.
fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|v| v.as_str().map(String::from)).collect()
}
