//! The token's header and claims as they arrive, and their projection into an
//! [`ExecutionIdentity`] once the signature and standard claims have been checked.

use std::collections::BTreeSet;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{VerifyError, printable};
use super::identity::{Actor, DelegationMode, ExecutionIdentity, UserContext};
use crate::clock::UnixTime;
use crate::contract::claims::scope_list;
use crate::contract::{AccessClaims, ClaimsError};
use crate::jose::algorithm::parse_allowed;
use crate::jose::compact::{decode_object, segments};

/// The algorithms mcp-sts signs with: ES256 by default, RS256 (a MUST of RFC 9068 §2.1).
pub(crate) const ACCEPTED_ALGORITHMS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::RS256];

/// Longest token accepted; mcp-sts tokens are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The header fields the verifier acts on. Unknown fields, including `jku`, `x5u`
/// and `jwk`, are ignored on purpose: keys come only from the configured JWKS.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// What the header says, once it has passed the checks that need no key.
#[derive(Debug)]
pub(crate) struct CheckedHeader {
    /// The token's algorithm, already inside the allowlist.
    pub alg: Algorithm,
    /// The key id to look up in the JWKS.
    pub kid: String,
}

/// Read and check the header: size, shape, `crit`, algorithm allowlist, `typ`, `kid`.
pub(crate) fn check_header(token: &str) -> Result<CheckedHeader, VerifyError> {
    if token.is_empty() {
        return Err(VerifyError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed("token too large".into()));
    }
    let parts = segments(token).map_err(|_| VerifyError::Malformed("not a JWS compact serialisation".into()))?;
    let header = decode_object(parts.header)
        .map_err(|_| VerifyError::Malformed("header is not a base64url JSON object".into()))?;
    let raw: RawHeader = serde_json::from_value(serde_json::Value::Object(header))
        .map_err(|_| VerifyError::Malformed("header members have the wrong types".into()))?;

    if raw.crit.is_some() {
        return Err(VerifyError::CriticalHeader);
    }
    let alg = parse_allowed(&raw.alg)
        .filter(|alg| ACCEPTED_ALGORITHMS.contains(alg))
        .ok_or_else(|| VerifyError::AlgorithmNotAllowed(printable(&raw.alg)))?;
    let typ_ok = raw
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(VerifyError::WrongType);
    }
    let kid = raw
        .kid
        .filter(|k| !k.is_empty())
        .ok_or_else(|| VerifyError::Malformed("header has no kid".into()))?;
    Ok(CheckedHeader { alg, kid })
}

/// The claims set as it arrives, read through the token contract
/// ([`crate::contract::AccessClaims`]) once the signature has been checked.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct Claims(Map<String, Value>);

impl Claims {
    /// A numeric date claim (RFC 7519 NumericDate) as whole seconds, if present.
    fn time(&self, name: &str) -> Result<Option<u64>, VerifyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or_else(|| VerifyError::Malformed(format!("claim {name} is not a valid time"))),
            Some(_) => Err(VerifyError::Malformed(format!("claim {name} is not a valid time"))),
        }
    }
}

/// Time rules with leeway: `exp` required and not passed, `nbf`/`iat` not in the future.
pub(crate) fn check_times(claims: &Claims, now: UnixTime, leeway: u64) -> Result<(), VerifyError> {
    check_time_values(
        claims.time("exp")?,
        claims.time("nbf")?,
        claims.time("iat")?,
        now,
        leeway,
    )
}

/// [`check_times`] on values already read.
pub(crate) fn check_time_values(
    exp: Option<UnixTime>,
    nbf: Option<UnixTime>,
    iat: Option<UnixTime>,
    now: UnixTime,
    leeway: u64,
) -> Result<(), VerifyError> {
    let exp = exp.ok_or_else(|| VerifyError::MissingClaim("exp".into()))?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(leeway));
    if future(nbf) || future(iat) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
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
            })
            .collect();
        let mode = claims.delegation_mode;
        let user_issuer = claims.user_issuer().map(str::to_owned);
        let (user, service) = match (mode, claims.user) {
            (DelegationMode::ServiceIdentity, Some(user)) => {
                if actors.is_empty()
                    && let Some(agent) = user.agent
                {
                    actors.push(Actor { sub: agent, iss: None });
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
        })
    }
}

impl Claims {
    /// Whether `aud` names `audience` (equal, or contained in the array).
    pub(crate) fn has_audience(&self, audience: &str) -> bool {
        match self.0.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
