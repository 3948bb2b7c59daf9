//! RFC 7662 introspection of tokens this service issued, for their audience or the
//! client they were issued to.

use serde_json::{Value, json};

use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::issued::{Issued, caller_may_see, check_lineage, presented};
use crate::request::TokenQuery;
use mcp_sts_contract::clock::UnixTime;

/// The introspection answer to `query` (RFC 7662 §2.2).
pub(crate) async fn introspect(
    issued: Issued<'_>,
    query: TokenQuery,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<Value, OAuthError> {
    let (caller, claims) = presented(issued, query, now, audit).await?;
    let caller = caller.as_ref();
    let inactive = json!({ "active": false });
    if let Some(claims) = &claims {
        audit.jti = Some(claims.jti.clone());
        audit.sub = Some(claims.user_sub().to_owned());
    }
    let active = check_lineage(issued, caller, claims.as_ref(), now).await?;
    let Some(claims) = claims.filter(|c| active && caller_may_see(issued, caller, c)) else {
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
        "token_type": claims.token_type(),
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
