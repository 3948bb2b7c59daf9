//! Tokens this service issued, presented back by a client at `/introspect` or
//! `/revoke`: the caller authenticated, the token read as one of ours, who may learn
//! about it, and what can end it (its lineage, `crate::lineage`).

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::client_auth::{AuthContext, Clients};
use crate::client_auth::{RegisteredClient, authenticate};
use crate::error::OAuthError;
use crate::inbound::Issuers;
use crate::keys::KeyRing;
use crate::keys::SharedKeyRing;
use crate::lineage::Lineage;
use crate::policy::Audiences;
use crate::request::TokenQuery;
use crate::revocation::{Publisher, RevocationGate};
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{NO_MEMORY, Profile, Types};
use mcp_sts_contract::urn::ACCESS_TOKEN_TYP;

/// What the doors for our own tokens need of the service, and nothing more.
#[derive(Clone, Copy)]
pub(crate) struct Issued<'a> {
    /// Our issuer URL.
    pub issuer: &'a str,
    /// The registered callers.
    pub clients: &'a Clients,
    /// What client authentication needs.
    pub auth: AuthContext<'a>,
    /// Our keys: what verifies a token presented back.
    pub keys: &'a SharedKeyRing,
    /// The downstream audiences (who may see a token).
    pub audiences: &'a Audiences,
    /// The trusted upstream issuers (the issuer rule of a lineage).
    pub issuers: &'a Issuers,
    /// The revocation store, behind its deadline.
    pub revocations: &'a RevocationGate,
    /// The size cap of a presented token.
    pub max_token_bytes: usize,
    /// Clock-skew leeway, added to how long a revoked token is remembered.
    pub leeway: u64,
    /// The one door revocations are written through.
    pub publisher: Publisher<'a>,
}

/// Read a token as one of ours at `now`: `at+jwt`, signed by a published key of
/// ours, our issuer, one audience, and its times with no leeway (our clock is the
/// one that minted it). `None` for anything else.
pub async fn read(token: &str, issuer: &str, ring: &KeyRing, max_bytes: usize, now: UnixTime) -> Option<AccessClaims> {
    let profile = Profile::new(Types::Exactly(&[ACCESS_TOKEN_TYP]), max_bytes, now, 0).kid_required();
    let jws = mcp_sts_contract::jose::read(token, &profile, ring, NO_MEMORY)
        .await
        .ok()?;
    let claims = AccessClaims::from_claims(jws.into_claims().ok()?).ok()?;
    (claims.iss == issuer && claims.aud.single().is_some()).then_some(claims)
}

/// Authenticate the caller of `/introspect` or `/revoke`, then read the `token` it
/// presents as one of ours (`None`: unknown, invalid or expired).
pub(crate) async fn presented(
    issued: Issued<'_>,
    query: TokenQuery,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<(Arc<RegisteredClient>, Option<AccessClaims>), OAuthError> {
    let credentials = query.credentials?;
    audit.client_id = credentials.claimed_id().map(crate::audit::loggable);
    let client = authenticate(issued.clients, &credentials, issued.auth, issued.revocations, now).await?;
    audit.client_id = Some(client.id().to_owned());
    let token = query.token?;
    let ring = issued.keys.current();
    let claims = read(token.expose(), issued.issuer, &ring, issued.max_token_bytes, now).await;
    Ok((client, claims))
}

/// Whether `caller` may learn about or revoke `claims`: it is the token's audience or
/// the client it was issued to (RFC 7662 §2.2, RFC 7009 §2.1).
pub(crate) fn caller_may_see(issued: Issued<'_>, caller: &RegisteredClient, claims: &AccessClaims) -> bool {
    let aud = claims.aud.single().unwrap_or_default();
    let audience_id = issued.audiences.by_aud(aud).map_or(aud, |a| a.id.as_str());
    caller.id() == claims.client_id || caller.id() == audience_id
}

/// One store round trip for the caller and, when the token is ours, its lineage:
/// a revoked caller fails authentication; `Ok(false)` when the token is revoked.
pub(crate) async fn check_lineage(
    issued: Issued<'_>,
    caller: &RegisteredClient,
    claims: Option<&AccessClaims>,
    now: UnixTime,
) -> Result<bool, OAuthError> {
    let mut lineage = Lineage::for_caller(caller.id(), &issued.issuers.names());
    if let Some(claims) = claims {
        lineage.minted(claims);
    }
    let keys = lineage.keys();
    let found = issued.revocations.check(&keys, now).await?;
    lineage.verdict(&keys, &found).token_active()
}
