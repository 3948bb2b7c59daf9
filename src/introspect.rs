//! RFC 7662 introspection and RFC 7009 revocation of tokens this service issued.

use serde_json::{Value, json};

use crate::audit::AuditEvent;
use std::sync::Arc;

use crate::client_auth::{RegisteredClient, authenticate};
use crate::clock::UnixTime;
use crate::contract::AccessClaims;
use crate::error::OAuthError;
use crate::issued;
use crate::lineage::Lineage;
use crate::request::TokenQuery;
use crate::revocation::{Revocation, RevocationKind};
use crate::secret::Secret;
use crate::service::Sts;
use crate::ssf::publish::{Initiator, RevocationNotice};

/// Whether `caller` may learn about or revoke `claims`: it is the token's audience or
/// the client it was issued to (RFC 7662 §2.2, RFC 7009 §2.1).
pub fn caller_may_see(sts: &Sts, caller: &RegisteredClient, claims: &AccessClaims) -> bool {
    let aud = claims.aud.single().unwrap_or_default();
    let audience_id = sts.audiences.by_aud(aud).map_or(aud, |a| a.id.as_str());
    caller.id() == claims.client_id || caller.id() == audience_id
}

/// Authenticate the caller of `/introspect` or `/revoke`, then read its `token`.
async fn authenticated(
    sts: &Sts,
    query: TokenQuery,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<(Arc<RegisteredClient>, Secret), OAuthError> {
    let credentials = query.credentials?;
    audit.client_id = credentials.claimed_id().map(crate::audit::loggable);
    let client = authenticate(&sts.clients, &credentials, sts.auth_context(), &sts.revocations, now).await?;
    audit.client_id = Some(client.id().to_owned());
    Ok((client, query.token?))
}

/// The introspection answer to `query` (RFC 7662 §2.2).
pub async fn introspect(
    sts: &Sts,
    query: TokenQuery,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<Value, OAuthError> {
    let (caller, token) = authenticated(sts, query, now, audit).await?;
    let caller = caller.as_ref();
    let inactive = json!({ "active": false });
    let ring = sts.keys.current();
    let claims = issued::verify(
        token.expose(),
        sts.issuer(),
        &ring,
        sts.config.server.max_token_bytes,
        now,
    )
    .await;
    if let Some(claims) = &claims {
        audit.jti = Some(claims.jti.clone());
        audit.sub = Some(claims.user_sub().to_owned());
    }
    let active = check_lineage(sts, caller, claims.as_ref(), now).await?;
    let Some(claims) = claims.filter(|c| active && caller_may_see(sts, caller, c)) else {
        audit.detail = Some("inactive".into());
        return Ok(inactive);
    };
    audit.detail = Some("active".into());
    let mut answer = json!({
        "active": true,
        "iss": claims.iss,
        "sub": claims.sub,
        "aud": claims.aud,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
        "sid": claims.sid,
        "delegation_mode": claims.delegation_mode,
        "token_type": crate::exchange::token_type(&claims),
    });
    // RFC 9449 §6.2: a bound token's key, so a resource server can check the proof.
    if let (Some(cnf), Some(map)) = (&claims.cnf, answer.as_object_mut()) {
        map.insert("cnf".into(), serde_json::json!({ "jkt": cnf.jkt }));
    }
    if let (Some(act), Some(map)) = (&claims.act, answer.as_object_mut()) {
        map.insert("act".into(), serde_json::to_value(act).unwrap_or(Value::Null));
    }
    // The user's issuer, as the token records it (RFC 9493 `sub_id`).
    if let (Some(sub_id), Some(map)) = (&claims.sub_id, answer.as_object_mut()) {
        map.insert("sub_id".into(), serde_json::to_value(sub_id).unwrap_or(Value::Null));
    }
    Ok(answer)
}

/// Revoke the token in `query` for its caller. Unknown or invalid tokens succeed
/// without change (RFC 7009 §2.2); a token issued neither to nor for the caller is
/// refused.
pub async fn revoke(sts: &Sts, query: TokenQuery, now: UnixTime, audit: &mut AuditEvent) -> Result<(), OAuthError> {
    let (caller, token) = authenticated(sts, query, now, audit).await?;
    let caller = caller.as_ref();
    let ring = sts.keys.current();
    let claims = issued::verify(
        token.expose(),
        sts.issuer(),
        &ring,
        sts.config.server.max_token_bytes,
        now,
    )
    .await;
    check_lineage(sts, caller, claims.as_ref(), now).await?;
    let Some(claims) = claims else {
        audit.detail = Some("unknown, invalid or expired token; nothing to revoke".into());
        return Ok(());
    };
    audit.jti = Some(claims.jti.clone());
    audit.sub = Some(claims.user_sub().to_owned());
    audit.sid = Some(claims.sid.clone());
    audit.audience = claims.aud.single().map(String::from);
    if !caller_may_see(sts, caller, &claims) {
        return Err(OAuthError::unauthorized_client(
            "revoke.not_yours",
            "the token was not issued to or for this client",
        ));
    }
    let entry = Revocation {
        kind: RevocationKind::Token,
        value: claims.jti.clone(),
        issuer: None,
        reason: "revoked through /revoke".into(),
        revoked_by: caller.id().to_owned(),
        revoked_at: now,
        expires_at: claims.exp.saturating_add(sts.config.tokens.leeway_seconds),
        expiry_requested: false,
    };
    audit.target = Some(format!("token:{}", claims.jti));
    let notice = RevocationNotice {
        entry,
        initiator: Initiator::User,
        once: None,
    };
    crate::ssf::publish::revoke(sts, notice, now).await.map(|_| ())
}

/// One store round trip for the caller and, when the token is ours, its lineage:
/// a revoked caller fails authentication; `Ok(false)` when the token is revoked.
async fn check_lineage(
    sts: &Sts,
    caller: &RegisteredClient,
    claims: Option<&AccessClaims>,
    now: UnixTime,
) -> Result<bool, OAuthError> {
    let mut lineage = Lineage::for_caller(caller.id(), &sts.issuers.names());
    if let Some(claims) = claims {
        lineage.minted(claims);
    }
    let keys = lineage.keys();
    let found = sts.store_call(sts.store.check(&keys, now)).await?;
    lineage.verdict(&keys, &found).token_active()
}
