//! Validation of the access token an MCP client presents, as a resource server must
//! (MCP authorization; RFC 9068 §4; RFC 8725): a trusted issuer's signature with the
//! algorithm of the key, `iss` exact, `aud` naming this server's resource URI, time
//! claims with leeway, a usable `sub`. The agent and scopes are read from the claims.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::contract::identifier;
use crate::jose::compact::audiences;
use crate::jose::{JwksCache, verify_signature};
use crate::verify::{VerifyError, printable, signature_refusal};

/// Longest token accepted; IdP access tokens with group claims can reach several KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a validated access token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InboundToken {
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
pub(crate) struct InboundVerifier {
    resource: String,
    issuers: HashMap<String, JwksCache>,
    leeway: u64,
    agent_claims: Vec<String>,
}

fn malformed(why: &str) -> VerifyError {
    VerifyError::Malformed(why.to_owned())
}

fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(&format!("{what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| malformed(&format!("{what} is not a JSON object")))
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// An identifier the rest of the system can revoke and audit: the one rule of
/// [`crate::contract::identifier`].
fn identifier(value: &str, claim: &str) -> Result<String, VerifyError> {
    identifier::check(value)
        .map(|()| value.to_owned())
        .map_err(|e| VerifyError::Malformed(format!("claim {claim} {e}")))
}

/// `scope` (RFC 9068, space-separated) or `scp` (a list, or a string, as some IdPs send).
fn scopes(claims: &Map<String, Value>) -> BTreeSet<String> {
    let words = |s: &str| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut all = BTreeSet::new();
    if let Some(scope) = string_claim(claims, "scope") {
        all.extend(words(scope));
    }
    match claims.get("scp") {
        Some(Value::String(s)) => all.extend(words(s)),
        Some(Value::Array(list)) => all.extend(list.iter().filter_map(Value::as_str).flat_map(words)),
        _ => {}
    }
    all
}

impl InboundVerifier {
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

    /// Validate `token` as of `now`.
    pub(crate) async fn validate(&self, token: &str, now: UnixTime) -> Result<InboundToken, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(malformed("token too large"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not a JWS compact serialisation"));
        };
        let header = decode_part(header, "header")?;
        if header.contains_key("crit") {
            return Err(VerifyError::CriticalHeader);
        }
        let alg = match string_claim(&header, "alg") {
            Some("ES256") => Algorithm::ES256,
            Some("RS256") => Algorithm::RS256,
            other => return Err(VerifyError::AlgorithmNotAllowed(printable(other.unwrap_or("")))),
        };
        // RFC 9068 asks for `at+jwt`; many IdPs send `JWT` or nothing. A JWT typed for
        // anything else (an ID token's `id_token+jwt`, a logout token, a SET) is refused.
        let typ_ok = match string_claim(&header, "typ") {
            None => true,
            Some(t) => ["JWT", "at+jwt", "application/at+jwt"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok)),
        };
        if !typ_ok {
            return Err(VerifyError::WrongType);
        }
        let kid = string_claim(&header, "kid")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("header has no kid"))?;

        // Which issuer's keys to use is read before the signature is checked; the
        // signature then proves that issuer wrote it, and `iss` is checked again.
        let unverified = decode_part(payload, "payload")?;
        let issuer = string_claim(&unverified, "iss").ok_or_else(|| VerifyError::MissingClaim("iss".into()))?;
        let (issuer, jwks) = self.issuers.get_key_value(issuer).ok_or(VerifyError::WrongIssuer)?;
        let keys = jwks.keys_for(Some(kid), alg, now).await;
        keys.and_then(|keys| verify_signature(token, alg, &keys))
            .map_err(|e| signature_refusal(e, kid))?;
        let claims = unverified;
        for name in ["exp", "iss", "aud", "sub"] {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(VerifyError::MissingClaim(name.into()));
            }
        }
        if !audiences(&claims).contains(&self.resource.as_str()) {
            return Err(VerifyError::WrongAudience);
        }

        let time = |name: &str| claims.get(name).and_then(Value::as_u64);
        let exp = time("exp").ok_or_else(|| VerifyError::MissingClaim("exp".into()))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired);
        }
        let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(self.leeway));
        if future(time("nbf")) || future(time("iat")) {
            return Err(VerifyError::NotYetValid);
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
        Ok(InboundToken {
            issuer: issuer.clone(),
            user,
            agent,
            scopes: scopes(&claims),
            session,
            token_id: string_claim(&claims, "jti").map(str::to_owned),
            expires_at: exp,
            issued_at: time("iat"),
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |v: Value| v.as_object().cloned().unwrap();
        let got = scopes(&claims(json!({"scope": "a  b", "scp": ["c", "d e"]})));
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
        assert!(scopes(&claims(json!({"scp": 7}))).is_empty());
    }

    #[test]
    fn identifiers_follow_the_one_rule() {
        assert!(identifier("alice@example.com", "sub").is_ok());
        for bad in ["", "  ", "a\nb", &"x".repeat(1025)] {
            assert!(identifier(bad, "sub").is_err(), "{bad:?}");
        }
    }
}
