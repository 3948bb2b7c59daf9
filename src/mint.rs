//! Minting: signing the claims of the token contract (`contract::claims`,
//! `contract::id_jag`) with the current key.

use crate::error::OAuthError;
use crate::keys::SigningKey;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::set::SubjectId;
use mcp_sts_contract::urn::{ACCESS_TOKEN_TYP, ID_JAG_TYP};
use mcp_sts_contract::{AccessClaims, Actor, Audience, Confirmation, DelegationMode, IdJagClaims, UserContext};

/// Sign claims with the current key; a signing failure is a server error.
pub fn sign(key: &SigningKey, claims: &AccessClaims) -> Result<String, OAuthError> {
    key.sign_jwt(ACCESS_TOKEN_TYP, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %key.kid, "signing failed");
        OAuthError::server_error("mint.sign")
    })
}

/// Sign an identity assertion grant (`typ` `oauth-id-jag+jwt`) with the current key.
pub(crate) fn sign_id_jag(key: &SigningKey, claims: &IdJagClaims) -> Result<String, OAuthError> {
    key.sign_jwt(ID_JAG_TYP, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %key.kid, "signing failed");
        OAuthError::server_error("mint.sign")
    })
}

/// A fresh unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Everything a new access token says, before its audience's mode decides how.
#[derive(Debug, Clone)]
pub(crate) struct NewToken {
    /// Our issuer.
    pub issuer: String,
    /// The `aud` value (audience id or resource URI).
    pub aud: String,
    /// How user and agent are represented.
    pub mode: DelegationMode,
    /// The authenticated caller of `/token`.
    pub client_id: String,
    /// The user.
    pub user: String,
    /// The user's issuer, recorded so issuer-scoped revocations reach the token
    /// (`None` only when the subject was a token minted before issuers were recorded).
    pub user_issuer: Option<String>,
    /// The user's tenant.
    pub tenant: Option<String>,
    /// The agent named as context in `service_identity` tokens.
    pub agent: Option<String>,
    /// The delegation chain, current actor first.
    pub chain: Actor,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The session.
    pub sid: String,
    /// The trace id.
    pub txn: String,
    /// When it is issued.
    pub now: UnixTime,
    /// How long it lives.
    pub ttl: u64,
    /// The thumbprint of the DPoP key the token is bound to, if any.
    pub cnf_jkt: Option<String>,
}

impl NewToken {
    /// The claims, by the one rule for modes: `on_behalf_of` names the chain in `act`;
    /// `restricted_user` and `service_identity` name no actor but record the chain in
    /// `delegation_chain`, so a further hop keeps counting and checking it;
    /// `service_identity` is the client acting as itself with the user as context. The
    /// user's issuer is `sub_id` (`iss_sub`) in the user modes and `user.iss` in
    /// `service_identity`, where `sub` is the client.
    pub(crate) fn into_claims(self) -> AccessClaims {
        let sub_id = |user: &str, issuer: Option<String>| {
            issuer.map(|iss| SubjectId::IssSub {
                iss,
                sub: user.to_owned(),
            })
        };
        let (sub, act, delegation_chain, user, sub_id) = match self.mode {
            DelegationMode::OnBehalfOf => {
                let sub_id = sub_id(&self.user, self.user_issuer);
                (self.user, Some(self.chain), None, None, sub_id)
            }
            DelegationMode::RestrictedUser => {
                let sub_id = sub_id(&self.user, self.user_issuer);
                (self.user, None, Some(self.chain), None, sub_id)
            }
            DelegationMode::ServiceIdentity => (
                self.client_id.clone(),
                None,
                Some(self.chain),
                Some(UserContext {
                    sub: self.user,
                    tenant: self.tenant.clone(),
                    agent: self.agent,
                    iss: self.user_issuer,
                }),
                None,
            ),
        };
        AccessClaims {
            iss: self.issuer,
            sub,
            aud: Audience::One(self.aud),
            exp: self.now.saturating_add(self.ttl),
            iat: Some(self.now),
            nbf: Some(self.now),
            jti: new_jti(),
            client_id: self.client_id,
            scope: self.scope,
            delegation_mode: self.mode,
            act,
            delegation_chain,
            sid: self.sid,
            txn: self.txn,
            tenant: self.tenant,
            user,
            sub_id,
            cnf: self.cnf_jkt.map(|jkt| Confirmation { jkt }),
        }
    }
}
