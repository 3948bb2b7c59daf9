//! Tokens this service issued: verifying one presented to introspection or `/revoke`.
//! What can end such a token is its lineage (`crate::lineage`).

use crate::clock::UnixTime;
use crate::contract::AccessClaims;
use crate::contract::urn::is_access_token_typ;
use crate::jose::algorithm::parse_allowed;
use crate::jose::compact::{peek, str_claim};
use crate::jose::verify_signature;
use crate::keys::KeyRing;

/// Verify a token as one of ours: our issuer, `at+jwt`, a published key, a good
/// signature, and not expired at `now`. `None` for anything else.
pub fn verify(token: &str, issuer: &str, ring: &KeyRing, max_bytes: usize, now: UnixTime) -> Option<AccessClaims> {
    if token.len() > max_bytes {
        return None;
    }
    let jwt = peek(token).ok()?;
    if jwt.header.contains_key("crit") || !is_access_token_typ(str_claim(&jwt.header, "typ")?) {
        return None;
    }
    let alg = parse_allowed(str_claim(&jwt.header, "alg")?)?;
    let keys = ring.verification_keys(str_claim(&jwt.header, "kid"), alg, now).ok()?;
    verify_signature(token, alg, &keys).ok()?;
    let claims = AccessClaims::from_claims(jwt.claims).ok()?;
    let started = claims.nbf.is_none_or(|nbf| nbf <= now);
    (claims.iss == issuer && claims.aud.single().is_some() && claims.exp > now && started).then_some(claims)
}
