//! `POST /introspect` (RFC 7662 §2.1) and `POST /revoke` (RFC 7009 §2.1): a caller
//! asks about one token.

use super::RawRequest;
use super::credentials::ClientCredentials;
use crate::error::OAuthError;
use mcp_sts_contract::secret::Secret;

/// A request about one token.
#[derive(Debug)]
pub struct TokenQuery {
    /// The credentials, or why they are unusable.
    pub credentials: Result<ClientCredentials, OAuthError>,
    /// The `token` parameter, or why it is missing; read after authentication.
    pub token: Result<Secret, OAuthError>,
}

impl TokenQuery {
    /// Parse a request; `token_type_hint` is only a hint and is not needed.
    pub fn parse(raw: RawRequest<'_>) -> Result<Self, OAuthError> {
        let form = raw.form()?;
        Ok(Self {
            credentials: ClientCredentials::from_request(raw.authorization, &form),
            token: form.require("token").map(Secret::new),
        })
    }
}
