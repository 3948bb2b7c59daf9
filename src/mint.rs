//! Minting: signing the claims of the token contract (`contract::claims`) with the
//! current key.

use crate::contract::AccessClaims;
use crate::contract::urn::ACCESS_TOKEN_TYP;
use crate::error::OAuthError;
use crate::keys::SigningKey;

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
