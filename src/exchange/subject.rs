//! What a validated subject token says about the user, for either origin: an
//! upstream issuer's token, or one of our own tokens presented for a further hop.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client_auth::RegisteredClient;
use crate::config::DelegationMode;
use crate::error::OAuthError;
use crate::inbound::jwt::{scopes, str_claim, string_at, string_list_at};
use crate::inbound::validate::{Origin, Role, ValidatedToken};
use crate::mint::{AccessClaims, Actor};
use crate::policy::Entitlement;
use crate::service::Sts;

/// The user behind a subject token.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The user's `sub`.
    pub user: String,
    /// The user's tenant.
    pub tenant: Option<String>,
    /// The session id: carried, or derived when the token has none.
    pub sid: String,
    /// A trace id carried from a minted token.
    pub txn: Option<String>,
    /// What the user may be granted.
    pub entitlement: Entitlement,
    /// Actors already in the chain (nested, most recent first).
    pub prior_actors: Option<Actor>,
    /// `may_act` (RFC 8693 §4.4), when the token restricts who may act.
    may_act: Option<Value>,
}

impl Subject {
    /// Read the subject from a validated token presented by `client`.
    pub fn from_token(
        sts: &Sts,
        token: &ValidatedToken,
        client: &RegisteredClient,
        raw: &str,
    ) -> Result<Self, OAuthError> {
        match &token.origin {
            Origin::Upstream(issuer) => {
                let claims = &token.claims;
                let prior_actors = match claims.get("act") {
                    None => None,
                    Some(act) => Some(serde_json::from_value::<Actor>(act.clone()).map_err(|_| {
                        OAuthError::invalid_request("subject_token.act", "subject_token act claim is malformed")
                    })?),
                };
                let sid = str_claim(claims, "sid")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .unwrap_or_else(|| derive_sid(&token.iss, token.jti.as_deref(), raw));
                Ok(Self {
                    user: token.sub.clone(),
                    tenant: issuer.config.tenant_claim.as_deref().and_then(|c| string_at(claims, c)),
                    sid,
                    txn: None,
                    entitlement: Entitlement::Upstream {
                        roles: string_list_at(claims, &issuer.config.roles_claim),
                        scopes: scopes(claims),
                    },
                    prior_actors,
                    may_act: claims.get("may_act").cloned(),
                })
            }
            Origin::Minted => {
                check_minted_audience(sts, token, client, Role::Subject)?;
                let claims: AccessClaims =
                    serde_json::from_value(Value::Object(token.claims.clone())).map_err(|_| {
                        OAuthError::invalid_request("subject_token.claims", "subject_token claims are malformed")
                    })?;
                let prior_actors = match claims.delegation_mode {
                    DelegationMode::OnBehalfOf => claims.act.clone(),
                    DelegationMode::ServiceIdentity => Some(Actor {
                        sub: claims.sub.clone(),
                        iss: None,
                        act: None,
                    }),
                    DelegationMode::RestrictedUser => None,
                };
                let tenant = claims
                    .tenant
                    .clone()
                    .or_else(|| claims.user.as_ref().and_then(|u| u.tenant.clone()));
                Ok(Self {
                    user: claims.user_sub().to_owned(),
                    tenant,
                    sid: claims.sid.clone(),
                    txn: Some(claims.txn.clone()),
                    entitlement: Entitlement::Minted {
                        scopes: claims.scopes(),
                    },
                    prior_actors,
                    may_act: None,
                })
            }
        }
    }

    /// RFC 8693 §4.4: when `may_act` is present, the actor must be the one it names.
    pub fn check_may_act(&self, actor: &Actor, from_actor_token: bool) -> Result<(), OAuthError> {
        let Some(may_act) = &self.may_act else {
            return Ok(());
        };
        let refused = || {
            OAuthError::invalid_request(
                "subject_token.may_act",
                "the actor is not allowed to act for the subject (may_act)",
            )
        };
        let allowed_sub = may_act.get("sub").and_then(Value::as_str).ok_or_else(refused)?;
        if allowed_sub != actor.sub {
            return Err(refused());
        }
        if let Some(allowed_iss) = may_act.get("iss").and_then(Value::as_str)
            && (!from_actor_token || actor.iss.as_deref() != Some(allowed_iss))
        {
            return Err(refused());
        }
        Ok(())
    }
}

/// A minted token may be exchanged further only by the client that was its audience.
pub fn check_minted_audience(
    sts: &Sts,
    token: &ValidatedToken,
    client: &RegisteredClient,
    role: Role,
) -> Result<(), OAuthError> {
    let aud = str_claim(&token.claims, "aud").unwrap_or_default();
    let audience_id = sts.audiences.by_aud(aud).map_or(aud, |a| a.id.as_str());
    if audience_id == client.id() {
        return Ok(());
    }
    let rule = match role {
        Role::Subject => "subject_token.wrong_presenter",
        Role::Actor => "actor_token.wrong_presenter",
    };
    Err(OAuthError::invalid_request(
        rule,
        format!("{} was minted for another audience than this client", role.param()),
    ))
}

/// A stable session id for tokens without `sid`: from issuer and `jti`, else from the token.
fn derive_sid(iss: &str, jti: Option<&str>, raw: &str) -> String {
    let mut hasher = Sha256::new();
    match jti {
        Some(jti) => {
            hasher.update(iss.as_bytes());
            hasher.update([0u8]);
            hasher.update(jti.as_bytes());
        }
        None => hasher.update(raw.as_bytes()),
    }
    let digest = hasher.finalize();
    format!(
        "derived-{}",
        URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_sids_are_stable_and_distinct() {
        assert_eq!(derive_sid("a", Some("1"), "x"), derive_sid("a", Some("1"), "y"));
        assert_ne!(derive_sid("a", Some("1"), "x"), derive_sid("b", Some("1"), "x"));
        assert_ne!(derive_sid("a", None, "x"), derive_sid("a", None, "y"));
        assert!(derive_sid("a", None, "x").starts_with("derived-"));
    }
}
