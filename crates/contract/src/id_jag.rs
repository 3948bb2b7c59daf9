//! The claims of an Identity Assertion JWT Authorization Grant (ID-JAG,
//! draft-ietf-oauth-identity-assertion-authz-grant §3), as mcp-sts issues them and as
//! it reads them back from any trusted issuer at redemption.
//!
//! An ID-JAG is not an access token: it is a short-lived grant, typed
//! `oauth-id-jag+jwt`, addressed (`aud`) to one authorization server, naming the user
//! (`sub`), the client that will redeem it (`client_id`) and the protected resource
//! (`resource`, the MCP server).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::claims::{Actor, Audience, ClaimsError, require, scope_list};
use super::set::SubjectId;
use crate::clock::UnixTime;

/// The claims of an ID-JAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdJagClaims {
    /// The issuer of the grant (the enterprise's token service).
    pub iss: String,
    /// The user, as the authorization server knows them from single sign-on.
    pub sub: String,
    /// The issuer identifier of the authorization server the grant is for: exactly one.
    pub aud: Audience,
    /// The client that will redeem the grant at the authorization server.
    pub client_id: String,
    /// Unique id: a grant is redeemed at most once.
    pub jti: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// The protected resource (RFC 8707): one URI, or an array of URIs from other issuers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Audience>,
    /// Space-separated scopes the issuer's policy granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's tenant at a multi-tenant issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user's session at the issuer, so a session revocation reaches every token
    /// the grant leads to (an ID token claim, which the draft allows in a grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user authenticated (OpenID Connect Core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// Authentication context class reference (OpenID Connect Core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods (OpenID Connect Core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The user's e-mail address, which the draft recommends for subject resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// RFC 8693 §4.1 actor, when the issuer names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// RFC 9493 §4: the user as `iss_sub`, naming the issuer that vouched for them (in
    /// grants mcp-sts issues), so issuer-scoped revocations reach what the grant leads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectId>,
    /// The DPoP key the grant is bound to (draft §8.6.1): redeemed only with a proof
    /// by that key, and the access token is bound to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<super::Confirmation>,
}

/// Claims every ID-JAG carries as non-empty strings.
const REQUIRED_STRINGS: [&str; 4] = ["iss", "sub", "client_id", "jti"];

impl IdJagClaims {
    /// Read claims from an untrusted (but signature-checked) claims set, naming the
    /// first missing or malformed claim.
    pub fn from_claims(claims: Map<String, Value>) -> Result<Self, ClaimsError> {
        require(&claims, &REQUIRED_STRINGS, &["aud", "exp", "iat"])?;
        serde_json::from_value(Value::Object(claims))
            .map_err(|e| ClaimsError::Malformed(format!("claims are not of the expected shape: {e}")))
    }

    /// The user's issuer, as `sub_id` names it for this grant's `sub`.
    pub fn user_issuer(&self) -> Option<&str> {
        match &self.sub_id {
            Some(SubjectId::IssSub { iss, sub }) if *sub == self.sub => Some(iss),
            _ => None,
        }
    }

    /// The resources the grant names, in order.
    pub fn resources(&self) -> Vec<&str> {
        match &self.resource {
            None => Vec::new(),
            Some(Audience::One(one)) => vec![one.as_str()],
            Some(Audience::Many(all)) => all.iter().map(String::as_str).collect(),
        }
    }

    /// The granted scopes as a list.
    pub fn scopes(&self) -> Vec<String> {
        scope_list(self.scope.as_deref().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant() -> Value {
        json!({
            "iss": "https://idp.example", "sub": "alice", "aud": "https://as.example",
            "client_id": "agent", "jti": "j1", "exp": 200, "iat": 100,
            "resource": "https://mcp.example/mcp", "scope": "orders:read orders:write",
            "sid": "s1", "amr": ["mfa"]
        })
    }

    fn read(value: Value) -> Result<IdJagClaims, ClaimsError> {
        IdJagClaims::from_claims(value.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn a_grant_reads_back_unchanged() {
        let claims = read(grant()).unwrap();
        assert_eq!(claims.resources(), vec!["https://mcp.example/mcp"]);
        assert_eq!(claims.scopes(), vec!["orders:read", "orders:write"]);
        assert_eq!(serde_json::to_value(&claims).unwrap(), grant());
    }

    #[test]
    fn required_claims_are_named() {
        for name in ["iss", "sub", "client_id", "jti", "aud", "exp", "iat"] {
            let mut value = grant();
            value.as_object_mut().unwrap().remove(name);
            assert_eq!(read(value).unwrap_err(), ClaimsError::Missing(name), "{name}");
        }
        let mut value = grant();
        value["client_id"] = json!(7);
        assert!(matches!(read(value), Err(ClaimsError::Malformed(_))));
        let mut value = grant();
        value["resource"] = json!(["https://a.example", "https://b.example"]);
        assert_eq!(read(value).unwrap().resources().len(), 2);
    }
}
