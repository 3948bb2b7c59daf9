//! The token's header and claims as they arrive, and their projection into an
//! [`ExecutionIdentity`] once the signature and standard claims have been checked.

use std::collections::BTreeSet;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::error::{VerifyError, printable};
use super::identity::{Actor, DelegationMode, ExecutionIdentity, UserContext};
use crate::clock::UnixTime;
use crate::jose::algorithm::parse_allowed;
use crate::jose::compact::{decode_object, segments};

/// The algorithms mcp-sts signs with: ES256 by default, RS256 (a MUST of RFC 9068 §2.1).
pub(crate) const ACCEPTED_ALGORITHMS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::RS256];

/// Longest token accepted; mcp-sts tokens are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Deepest `act` nesting followed; a longer chain is refused as malformed.
const MAX_ACT_DEPTH: usize = 16;

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

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// RFC 8693 §4.1 `act`; nested for earlier actors.
#[derive(Debug, Deserialize)]
pub(crate) struct ActClaim {
    sub: String,
    iss: Option<String>,
    act: Option<Box<ActClaim>>,
}

/// The `user` claim of `service_identity` tokens.
#[derive(Debug, Deserialize)]
pub(crate) struct UserClaim {
    sub: String,
    tenant: Option<String>,
    agent: Option<String>,
}

/// Claims of an mcp-sts token (docs/token.md). Standard claims are optional here so
/// that their absence is reported as a missing claim, not a parse failure.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    delegation_mode: Option<String>,
    sid: Option<String>,
    txn: Option<String>,
    tenant: Option<String>,
    act: Option<ActClaim>,
    user: Option<UserClaim>,
}

/// Time rules with leeway: `exp` required and not passed, `nbf`/`iat` not in the future.
pub(crate) fn check_times(claims: &Claims, now: UnixTime, leeway: u64) -> Result<(), VerifyError> {
    let exp = claims.exp.ok_or_else(|| VerifyError::MissingClaim("exp".into()))?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(leeway));
    if future(claims.nbf) || future(claims.iat) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

fn required(value: Option<String>, name: &str) -> Result<String, VerifyError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| VerifyError::MissingClaim(name.into()))
}

/// Flatten nested `act` into a list, current actor first.
fn actor_chain(act: Option<ActClaim>) -> Result<Vec<Actor>, VerifyError> {
    let mut chain = Vec::new();
    let mut next = act;
    while let Some(a) = next {
        if chain.len() >= MAX_ACT_DEPTH {
            return Err(VerifyError::Malformed("actor chain too deep".into()));
        }
        chain.push(Actor { sub: a.sub, iss: a.iss });
        next = a.act.map(|b| *b);
    }
    Ok(chain)
}

impl Claims {
    /// Project verified claims into the identity; `audience` is the one that matched.
    pub(crate) fn into_identity(self, audience: &str) -> Result<ExecutionIdentity, VerifyError> {
        let mode_raw = required(self.delegation_mode, "delegation_mode")?;
        let mode = DelegationMode::parse(&mode_raw)
            .ok_or_else(|| VerifyError::Malformed(format!("unknown delegation_mode {}", printable(&mode_raw))))?;
        let subject = required(self.sub, "sub")?;
        let mut actors = actor_chain(self.act)?;
        let (user, service) = match mode {
            DelegationMode::ServiceIdentity => {
                let user = self.user.ok_or_else(|| VerifyError::MissingClaim("user".into()))?;
                if actors.is_empty()
                    && let Some(agent) = user.agent
                {
                    actors.push(Actor { sub: agent, iss: None });
                }
                let tenant = user.tenant.or(self.tenant);
                (UserContext { sub: user.sub, tenant }, Some(subject.clone()))
            }
            DelegationMode::OnBehalfOf | DelegationMode::RestrictedUser => (
                UserContext {
                    sub: subject.clone(),
                    tenant: self.tenant,
                },
                None,
            ),
        };
        let scopes: BTreeSet<String> = self
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ExecutionIdentity {
            issuer: required(self.iss, "iss")?,
            subject,
            user,
            service,
            actors,
            session_id: required(self.sid, "sid")?,
            transaction_id: required(self.txn, "txn")?,
            scopes,
            delegation_mode: mode,
            audience: audience.to_owned(),
            client_id: required(self.client_id, "client_id")?,
            expires_at: self.exp.ok_or_else(|| VerifyError::MissingClaim("exp".into()))?,
            issued_at: self.iat,
            token_id: required(self.jti, "jti")?,
        })
    }

    /// Whether `aud` names `audience` (equal, or contained in the array).
    pub(crate) fn has_audience(&self, audience: &str) -> bool {
        match &self.aud {
            Some(Audience::One(a)) => a == audience,
            Some(Audience::Many(all)) => all.iter().any(|a| a == audience),
            None => false,
        }
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
