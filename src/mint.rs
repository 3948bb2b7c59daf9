//! Minting: signing the claims of the token contract (`contract::claims`,
//! `contract::id_jag`) with the current key.

use crate::contract::urn::{ACCESS_TOKEN_TYP, ID_JAG_TYP};
use crate::contract::{AccessClaims, IdJagClaims};
use crate::error::OAuthError;
use crate::keys::SigningKey;

/// Sign claims with the current key; a signing failure is a server error.
pub fn sign(key: &SigningKey, claims: &AccessClaims) -> Result<String, OAuthError> {
    key.sign_jwt(ACCESS_TOKEN_TYP, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %key.kid, "signing failed");
        OAuthError::server_error("mint.sign")
    })
}

/// Sign an identity assertion grant (`typ` `oauth-id-jag+jwt`) with the current key.
pub fn sign_id_jag(key: &SigningKey, claims: &IdJagClaims) -> Result<String, OAuthError> {
    key.sign_jwt(ID_JAG_TYP, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %key.kid, "signing failed");
        OAuthError::server_error("mint.sign")
    })
}

/// A fresh unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
