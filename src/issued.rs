//! Tokens this service issued: verifying them, and the revocation entries that can
//! end them (their lineage).
//!
//! A minted token is no longer active when its own `jti` is revoked, or its user
//! (as subject or actor), its session, its calling client or any agent in its chain
//! is revoked. Introspection, `/revoke` and further exchanges share these rules.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::clock::UnixTime;
use crate::jose::algorithm::parse_allowed;
use crate::jose::compact::{peek, str_claim};
use crate::jose::verify_signature;
use crate::keys::KeyRing;
use crate::mint::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::revocation::{RevocationKey, RevocationKind};

/// Verify a token as one of ours: our issuer, `at+jwt`, a published key, a good
/// signature, and not expired at `now`. `None` for anything else.
pub fn verify(token: &str, issuer: &str, ring: &KeyRing, max_bytes: usize, now: UnixTime) -> Option<AccessClaims> {
    if token.len() > max_bytes {
        return None;
    }
    let jwt = peek(token).ok()?;
    if jwt.header.contains_key("crit") || str_claim(&jwt.header, "typ")?.to_ascii_lowercase() != ACCESS_TOKEN_TYP {
        return None;
    }
    let alg = parse_allowed(str_claim(&jwt.header, "alg")?)?;
    let keys = ring.verification_keys(str_claim(&jwt.header, "kid"), alg, now).ok()?;
    verify_signature(token, alg, &keys).ok()?;
    let claims: AccessClaims = serde_json::from_value(Value::Object(jwt.claims)).ok()?;
    (claims.iss == issuer && claims.exp > now && claims.nbf <= now).then_some(claims)
}

/// Every revocation entry that ends this token, for one round trip to the store.
pub fn lineage(claims: &AccessClaims) -> Vec<RevocationKey> {
    let mut keys = BTreeSet::new();
    keys.insert(RevocationKey::new(RevocationKind::Token, claims.jti.as_str()));
    keys.insert(RevocationKey::new(RevocationKind::Subject, claims.user_sub()));
    keys.insert(RevocationKey::new(RevocationKind::Session, claims.sid.as_str()));
    keys.insert(RevocationKey::new(RevocationKind::Client, claims.client_id.as_str()));
    let mut actors: Vec<String> = claims.act.as_ref().map(|a| a.chain()).unwrap_or_default();
    if let Some(agent) = claims.user.as_ref().and_then(|u| u.agent.clone()) {
        actors.push(agent);
    }
    for actor in actors {
        keys.insert(RevocationKey::new(RevocationKind::Agent, actor.as_str()));
        keys.insert(RevocationKey::new(RevocationKind::Subject, actor));
    }
    keys.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DelegationMode;
    use crate::mint::{Actor, UserContext};

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://sts".into(),
            sub: "alice".into(),
            aud: "orders-api".into(),
            exp: 200,
            iat: 100,
            nbf: 100,
            jti: "j1".into(),
            client_id: "orders-mcp".into(),
            scope: "orders:read".into(),
            delegation_mode: DelegationMode::OnBehalfOf,
            act: Some(Actor {
                sub: "hop".into(),
                iss: None,
                act: Some(Box::new(Actor {
                    sub: "agent".into(),
                    iss: None,
                    act: None,
                })),
            }),
            sid: "s1".into(),
            txn: "t".into(),
            tenant: None,
            user: None,
        }
    }

    #[test]
    fn lineage_covers_token_user_session_client_and_every_actor() {
        let keys = lineage(&claims());
        for (kind, value) in [
            (RevocationKind::Token, "j1"),
            (RevocationKind::Subject, "alice"),
            (RevocationKind::Session, "s1"),
            (RevocationKind::Client, "orders-mcp"),
            (RevocationKind::Agent, "hop"),
            (RevocationKind::Agent, "agent"),
            (RevocationKind::Subject, "agent"),
        ] {
            assert!(keys.contains(&RevocationKey::new(kind, value)), "{kind}:{value}");
        }
    }

    #[test]
    fn service_identity_lineage_names_the_user_and_agent_from_context() {
        let mut c = claims();
        c.delegation_mode = DelegationMode::ServiceIdentity;
        c.sub = "orders-mcp".into();
        c.act = None;
        c.user = Some(UserContext {
            sub: "alice".into(),
            tenant: None,
            agent: Some("agent-7".into()),
        });
        let keys = lineage(&c);
        assert!(keys.contains(&RevocationKey::new(RevocationKind::Subject, "alice")));
        assert!(keys.contains(&RevocationKey::new(RevocationKind::Agent, "agent-7")));
    }
}
