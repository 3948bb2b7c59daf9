//! Tokens this service issued: verifying one presented to introspection or `/revoke`.
//! What can end such a token is its lineage (`crate::lineage`).

use crate::clock::UnixTime;
use crate::contract::AccessClaims;
use crate::contract::urn::ACCESS_TOKEN_TYP;
use crate::jose::{NO_MEMORY, Profile, Types, read};
use crate::keys::KeyRing;

/// Verify a token as one of ours at `now`: `at+jwt`, signed by a published key of
/// ours, our issuer, one audience, and its times with no leeway (our clock is the
/// one that minted it). `None` for anything else.
pub async fn verify(
    token: &str,
    issuer: &str,
    ring: &KeyRing,
    max_bytes: usize,
    now: UnixTime,
) -> Option<AccessClaims> {
    let profile = Profile::new(Types::Exactly(&[ACCESS_TOKEN_TYP]), max_bytes, now, 0).kid_required();
    let jws = read(token, &profile, ring, NO_MEMORY).await.ok()?;
    let claims = AccessClaims::from_claims(jws.into_claims().ok()?).ok()?;
    (claims.iss == issuer && claims.aud.single().is_some()).then_some(claims)
}
