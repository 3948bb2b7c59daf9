//! The minted token: its claims (see docs/token.md) and its signature.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config::DelegationMode;
use crate::error::OAuthError;
use crate::keys::SigningKey;

/// RFC 8693 §4.1 actor: identity claims only, earlier actors nested inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party: an agent, or the client when no actor token was sent.
    pub sub: String,
    /// The actor token's issuer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The actor before this one in a multi-hop chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// How many actors the chain holds (this one included).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }

    /// Every actor's `sub`, current first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.sub.clone()];
        let mut next = self.act.as_deref();
        while let Some(actor) = next {
            out.push(actor.sub.clone());
            next = actor.act.as_deref();
        }
        out
    }
}

/// In `service_identity` tokens, the user the service acts for, as context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserContext {
    /// The user's `sub`.
    pub sub: String,
    /// The user's tenant, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The agent acting, when an actor token named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The claims of a minted access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// This service's issuer.
    pub iss: String,
    /// The user, or the client in `service_identity`.
    pub sub: String,
    /// Exactly one audience.
    pub aud: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Unique id.
    pub jti: String,
    /// The authenticated caller of `/token`.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// How user and agent are represented.
    pub delegation_mode: DelegationMode,
    /// The actor chain (`on_behalf_of` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The session.
    pub sid: String,
    /// The trace / transaction id.
    pub txn: String,
    /// The user's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user as context (`service_identity` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserContext>,
}

impl AccessClaims {
    /// The user this token is about, whatever the mode.
    pub fn user_sub(&self) -> &str {
        match &self.user {
            Some(user) if self.delegation_mode == DelegationMode::ServiceIdentity => &user.sub,
            _ => &self.sub,
        }
    }

    /// Granted scopes as a list.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
}

/// The JWS `typ` of minted tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Sign claims with the current key; a signing failure is a server error.
pub fn sign(key: &SigningKey, claims: &AccessClaims) -> Result<String, OAuthError> {
    key.sign_jwt(ACCESS_TOKEN_TYP, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %key.kid, "signing failed");
        OAuthError::server_error("mint.sign")
    })
}

/// A fresh unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_nest_and_count() {
        let inner = Actor {
            sub: "hop-1".into(),
            iss: None,
            act: None,
        };
        let outer = Actor {
            sub: "hop-2".into(),
            iss: Some("https://idp".into()),
            act: Some(Box::new(inner)),
        };
        assert_eq!(outer.depth(), 2);
        assert_eq!(outer.chain(), vec!["hop-2", "hop-1"]);
        let json = serde_json::to_value(&outer).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sub": "hop-2", "iss": "https://idp", "act": {"sub": "hop-1"}})
        );
    }
}
