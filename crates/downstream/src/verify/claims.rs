//! What a downstream service accepts of a token's JWS (its [`profile`] for the one
//! pipeline), and the claims' projection into an [`ExecutionIdentity`] once the
//! signature and standard claims have been checked.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{VerifyError, printable};
use super::identity::{Actor, DelegationMode, ExecutionIdentity, UserContext};
use mcp_sts_contract::claims::scope_list;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{Profile, Types};
use mcp_sts_contract::urn::ACCESS_TOKEN_TYP;
use mcp_sts_contract::{AccessClaims, ClaimsError};

/// Longest token accepted; mcp-sts tokens are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a downstream service accepts of a token minted by mcp-sts (RFC 9068 §4): typed
/// `at+jwt`, any algorithm mcp-sts may sign with (the key decides which), a `kid`
/// naming a key of its JWKS, `exp` required.
pub(crate) fn profile(now: UnixTime, leeway: u64) -> Profile<'static> {
    Profile::new(Types::Exactly(&[ACCESS_TOKEN_TYP]), MAX_TOKEN_BYTES, now, leeway).kid_required()
}

/// The claims set as it arrives, read through the token contract
/// ([`mcp_sts_contract::AccessClaims`]) once the signature has been checked.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct Claims(Map<String, Value>);

impl From<Map<String, Value>> for Claims {
    fn from(claims: Map<String, Value>) -> Self {
        Self(claims)
    }
}

impl Claims {
    /// Project verified claims into the identity; `audience` is the one that matched.
    #[cfg(test)]
    pub(crate) fn into_identity(self, audience: &str) -> Result<ExecutionIdentity, VerifyError> {
        identity_from(self.into_access_claims()?, audience)
    }

    /// Read verified claims through the token contract.
    pub(crate) fn into_access_claims(self) -> Result<AccessClaims, VerifyError> {
        AccessClaims::from_claims(self.0).map_err(|e| match e {
            ClaimsError::Missing(name) => VerifyError::MissingClaim(name.into()),
            other => VerifyError::Malformed(printable(&other.to_string())),
        })
    }
}

/// The identity a contract-checked token describes; `audience` is the one that matched.
pub(crate) fn identity_from(claims: AccessClaims, audience: &str) -> Result<ExecutionIdentity, VerifyError> {
    {
        let mut actors: Vec<Actor> = claims
            .act
            .iter()
            .flat_map(|chain| chain.iter())
            .map(|a| Actor {
                sub: a.sub.clone(),
                iss: a.iss.clone(),
                sub_profile: a.sub_profile,
            })
            .collect();
        let mode = claims.delegation_mode;
        let user_issuer = claims.user_issuer().map(str::to_owned);
        let (user, service) = match (mode, claims.user) {
            (DelegationMode::ServiceIdentity, Some(user)) => {
                if actors.is_empty()
                    && let Some(agent) = user.agent
                {
                    actors.push(Actor {
                        sub: agent,
                        iss: None,
                        sub_profile: None,
                    });
                }
                let tenant = user.tenant.or(claims.tenant);
                (UserContext { sub: user.sub, tenant }, Some(claims.sub.clone()))
            }
            (DelegationMode::ServiceIdentity, None) => return Err(VerifyError::MissingClaim("user".into())),
            (DelegationMode::OnBehalfOf | DelegationMode::RestrictedUser, _) => (
                UserContext {
                    sub: claims.sub.clone(),
                    tenant: claims.tenant,
                },
                None,
            ),
        };
        let scopes: BTreeSet<String> = scope_list(&claims.scope).into_iter().collect();
        let key_thumbprint = claims.cnf.as_ref().map(|cnf| cnf.jkt.clone());
        Ok(ExecutionIdentity {
            issuer: claims.iss,
            subject: claims.sub,
            user,
            user_issuer,
            service,
            actors,
            session_id: claims.sid,
            transaction_id: claims.txn,
            scopes,
            delegation_mode: mode,
            audience: audience.to_owned(),
            client_id: claims.client_id,
            expires_at: claims.exp,
            issued_at: claims.iat,
            token_id: claims.jti,
            key_thumbprint,
        })
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
