//! Issuing an identity assertion grant (draft-ietf-oauth-identity-assertion-authz-grant
//! §4.3): mcp-sts as the enterprise's token service trades the user's ID token for a
//! short-lived ID-JAG addressed to one MCP server's authorization server.

use serde_json::Value;

use super::GrantTarget;
use super::assertions;
use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::exchange::subject::Subject;
use crate::exchanger::{Call, Decision, Minted, Presented, TokenResponse};
use crate::inbound::jwt::{str_claim, time_claim};
use crate::inbound::validate::{DeclaredType, Role, ValidatedToken};
use crate::lineage::Lineage;
use crate::mint::new_jti;
use crate::request::IdJagParams;
use mcp_sts_contract::set::SubjectId;
use mcp_sts_contract::{Actor, Audience, Confirmation, IdJagClaims};

/// Issue a grant to the authenticated caller (the agent application). Refusals follow
/// RFC 8693 §2.2.2: an unacceptable or revoked subject is `invalid_request`, an unknown
/// or forbidden authorization server or resource `invalid_target`.
pub(crate) async fn issue(
    call: &Call<'_>,
    params: Result<IdJagParams, OAuthError>,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.event = "id_jag_issue";
    let (ctx, client) = (call.ctx, &call.client);
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
        call.now,
    )
    .await
    .map_err(|e| e.into_oauth(Role::Subject))?;
    let subject = Subject::from_token(ctx.audiences, &token, client, ctx.tokens.max_delegation_depth)?;
    audit.sub = Some(subject.user.clone());
    audit.sid = Some(subject.sid.clone());
    audit.actor_chain = vec![client.id().to_owned()];
    ctx.rate_limits.check_subject(&subject.user)?;

    let decision = Decision {
        lineage: lineage(call, &subject),
        presented: Presented::Token,
        requested: &params.scopes,
        entitlement: &subject.entitlement,
        policy: &target.policy,
    };
    let scope = call.settle(decision, audit).await?;
    let ttl = target.server.config.grant_ttl().min(token.exp.saturating_sub(call.now));
    if ttl == 0 {
        return Err(OAuthError::invalid_request(
            "subject_token.expired",
            "subject_token has expired",
        ));
    }
    let claims = grant_claims(call, &subject, &token, &target, &scope, ttl);
    let minted = Minted::IdJag {
        claims,
        expires_in: ttl,
        scope,
    };
    call.mint(minted, audit).await
}

/// The client is the agent the grant lets act; whoever the user's token already names
/// as acting answers too.
fn lineage(call: &Call<'_>, subject: &Subject) -> Lineage {
    let client = call.client.id();
    let mut lineage = Lineage::for_caller(client, &call.ctx.issuers.names());
    lineage
        .user(&subject.user, subject.namespace())
        .session(&subject.sid, subject.namespace())
        .actor(&Actor::new(client, None));
    for chain in subject.agent.iter().chain(subject.prior_actors.iter()) {
        lineage.chain(chain);
    }
    lineage
}

/// What the grant says: the user as single sign-on knows them, addressed to the
/// authorization server, for one resource, bound to the caller's key when it proved one.
fn grant_claims(
    call: &Call<'_>,
    subject: &Subject,
    token: &ValidatedToken,
    target: &GrantTarget,
    scope: &str,
    ttl: u64,
) -> IdJagClaims {
    IdJagClaims {
        iss: call.ctx.issuer.to_owned(),
        sub: subject.user.clone(),
        aud: Audience::One(target.server.config.issuer.clone()),
        client_id: call.client.id().to_owned(),
        jti: new_jti(),
        exp: call.now + ttl,
        iat: call.now,
        resource: Some(Audience::One(target.resource.clone())),
        scope: (!scope.is_empty()).then(|| scope.to_owned()),
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
        cnf: call.bound_key().map(|jkt| Confirmation { jkt }),
    }
}

/// An array of strings, carried only when every element is one.
fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|v| v.as_str().map(String::from)).collect()
}
