//! `/token`'s one front: the request is parsed once (`request`), the caller
//! authenticated once and its DPoP proof checked once, then the grant is routed to its
//! decision: token exchange (`exchange`), an identity assertion grant issued
//! (`grant::issue`) or redeemed (`grant::redeem`). Each ends with the same final steps
//! (`exchanger::Call`). No HTTP types here; the HTTP layer only adapts.

use crate::audit::{AuditEvent, loggable};
use crate::client_auth::{RegisteredClient, authenticate};
use crate::dpop::token_proof;
use crate::error::OAuthError;
use crate::exchanger::{Call, Exchanger, TokenResponse};
use crate::request::ClientCredentials;
use crate::request::{Grant, TokenRequest};
use mcp_sts_contract::clock::UnixTime;

/// Answer one `/token` request. `audit` is filled in as facts become known, for both
/// outcomes; the caller records it.
pub async fn answer(
    ctx: Exchanger<'_>,
    request: TokenRequest,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    audit.client_id = request.claimed_client_id.as_deref().map(loggable);
    let client = caller(ctx, request.credentials?, now, audit).await?;
    ctx.rate_limits.check_client(client.id())?;
    let proof = token_proof(ctx.token_endpoint(), &request.dpop, &client, now).await?;
    let call = Call {
        ctx,
        client,
        proof,
        traceparent: request.traceparent.as_deref(),
        now,
    };
    match request.grant {
        Grant::TokenExchange(params) => crate::exchange::exchange(&call, params, audit).await,
        Grant::IdJag(params) => crate::grant::issue(&call, params, audit).await,
        Grant::JwtBearer(params) => crate::grant::redeem(&call, params, audit).await,
    }
}

/// The authenticated caller, named in the audit event as soon as it is claimed.
async fn caller(
    ctx: Exchanger<'_>,
    credentials: ClientCredentials,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<std::sync::Arc<RegisteredClient>, OAuthError> {
    if let Some(claimed) = credentials.claimed_id() {
        audit.client_id = Some(loggable(claimed));
    }
    let client = authenticate(ctx.clients, &credentials, ctx.auth, ctx.revocations, now).await?;
    audit.client_id = Some(client.id().to_owned());
    Ok(client)
}
