//! RFC 7009 revocation of a token this service issued, by its audience or the client
//! it was issued to. The entry goes through the one revocation door, so receivers hear
//! of it.

use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::issued::{Issued, caller_may_see, check_lineage, presented};
use crate::request::TokenQuery;
use crate::revocation::{Initiator, RevocationNotice};
use crate::revocation::{Revocation, RevocationKind};
use mcp_sts_contract::clock::UnixTime;

/// Revoke the token in `query` for its caller. Unknown or invalid tokens succeed
/// without change (RFC 7009 §2.2); a token issued neither to nor for the caller is
/// refused.
pub(crate) async fn revoke(
    issued: Issued<'_>,
    query: TokenQuery,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<(), OAuthError> {
    let (caller, claims) = presented(issued, query, now, audit).await?;
    let caller = caller.as_ref();
    check_lineage(issued, caller, claims.as_ref(), now).await?;
    let Some(claims) = claims else {
        audit.detail = Some("unknown, invalid or expired token; nothing to revoke".into());
        return Ok(());
    };
    audit.jti = Some(claims.jti.clone());
    audit.sub = Some(claims.user_sub().to_owned());
    audit.sid = Some(claims.sid.clone());
    audit.audience = claims.aud.single().map(String::from);
    if !caller_may_see(issued, caller, &claims) {
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
        expires_at: claims.exp.saturating_add(issued.leeway),
        expiry_requested: false,
    };
    audit.target = Some(format!("token:{}", claims.jti));
    let notice = RevocationNotice {
        entry,
        initiator: Initiator::User,
        once: None,
    };
    issued.publisher.revoke(notice, now).await.map(|_| ())
}
