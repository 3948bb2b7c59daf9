//! Validation of the access token an MCP client presents, as a resource server must
//! (MCP authorization; RFC 9068 §4; RFC 8725): a trusted issuer's signature with the
//! algorithm of the key, `iss` exact, `aud` naming this server's resource URI, time
//! claims with leeway, a usable `sub`. The agent and scopes are read from the claims.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::verify::VerifyError;
use mcp_sts_contract::claims::token_scopes;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::identifier;
use mcp_sts_contract::jose::compact::audiences;
use mcp_sts_contract::jose::{
    JwksCache, KeySource, NO_MEMORY, Profile, Refusal, Types, Unverified, VerificationKey, read,
};

/// Longest token accepted; IdP access tokens with group claims can reach several KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a validated access token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerToken {
    pub(crate) issuer: String,
    pub(crate) user: String,
    pub(crate) agent: Option<String>,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) session: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) expires_at: UnixTime,
    pub(crate) issued_at: Option<UnixTime>,
    /// The validated claims, from which the revocation check reads the token's lineage.
    pub(crate) claims: Map<String, Value>,
}

/// Validates access tokens for one resource from a fixed set of issuers.
pub(crate) struct BearerVerifier {
    resource: String,
    issuers: HashMap<String, JwksCache>,
    leeway: u64,
    agent_claims: Vec<String>,
}

/// The trusted issuers' keys, chosen by the token's (not yet trusted) `iss`; the
/// signature then proves that issuer wrote it.
struct IssuerKeys<'a>(&'a HashMap<String, JwksCache>);

impl KeySource for IssuerKeys<'_> {
    type Signer = String;

    async fn keys(&self, jws: &Unverified<'_>, now: UnixTime) -> Result<(String, Vec<Arc<VerificationKey>>), Refusal> {
        let (issuer, jwks) = self.0.get_key_value(jws.issuer()?).ok_or(Refusal::UntrustedIssuer)?;
        Ok((issuer.clone(), jws.keys_from(jwks, now).await?))
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// An identifier the rest of the system can revoke and audit: the one rule of
/// [`mcp_sts_contract::identifier`].
fn identifier(value: &str, claim: &str) -> Result<String, VerifyError> {
    identifier::check(value)
        .map(|()| value.to_owned())
        .map_err(|e| VerifyError::Malformed(format!("claim {claim} {e}")))
}

impl BearerVerifier {
    /// A verifier for `resource`, trusting each issuer with its key cache.
    pub(crate) fn new(
        resource: String,
        issuers: Vec<(String, JwksCache)>,
        leeway: u64,
        agent_claims: Vec<String>,
    ) -> Self {
        Self {
            resource,
            issuers: issuers.into_iter().collect(),
            leeway,
            agent_claims,
        }
    }

    /// Validate `token` as of `now`. RFC 9068 asks for `at+jwt`; many IdPs send `JWT`
    /// or nothing. A JWT typed for anything else (an ID token's `id_token+jwt`, a
    /// logout token, a SET) is refused.
    pub(crate) async fn validate(&self, token: &str, now: UnixTime) -> Result<BearerToken, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        let profile =
            Profile::new(Types::OrUntyped(&["jwt", "at+jwt"]), MAX_TOKEN_BYTES, now, self.leeway).kid_required();
        let jws = read(token, &profile, &IssuerKeys(&self.issuers), NO_MEMORY).await?;
        let times = jws.times;
        let exp = times.exp.ok_or_else(|| VerifyError::MissingClaim("exp".into()))?;
        let issuer = jws.signer.clone();
        let claims = jws.into_claims()?;
        for name in ["aud", "sub"] {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(VerifyError::MissingClaim(name.into()));
            }
        }
        if !audiences(&claims).contains(&self.resource.as_str()) {
            return Err(VerifyError::WrongAudience);
        }
        let user = identifier(
            string_claim(&claims, "sub").ok_or_else(|| VerifyError::MissingClaim("sub".into()))?,
            "sub",
        )?;
        let agent = self
            .agent_claims
            .iter()
            .find_map(|name| string_claim(&claims, name).map(|value| identifier(value, name)))
            .transpose()?;
        let session = string_claim(&claims, "sid").map(|s| identifier(s, "sid")).transpose()?;
        Ok(BearerToken {
            issuer,
            user,
            agent,
            scopes: token_scopes(&claims).into_iter().collect(),
            session,
            token_id: string_claim(&claims, "jti").map(str::to_owned),
            expires_at: exp,
            issued_at: times.iat,
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_one_rule() {
        assert!(identifier("alice@example.com", "sub").is_ok());
        for bad in ["", "  ", "a\nb", &"x".repeat(1025)] {
            assert!(identifier(bad, "sub").is_err(), "{bad:?}");
        }
    }
}
