//! The admin API's decisions: revoke, list and reinstate, under a Bearer credential
//! stored as a SHA-256 digest. HTTP adaptation lives in `http::admin`.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::AuditEvent;
use crate::clock::UnixTime;
use crate::contract::Identifier;
use crate::revocation::{Revocation, RevocationKey, RevocationKind};
use crate::service::Sts;
use crate::ssf::publish::{Initiator, RevocationNotice};

/// Longest reason or operator name accepted.
const MAX_TEXT_LEN: usize = 1024;

/// Why an admin request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No admin credential is configured: the API does not exist (404).
    #[error("the admin API is not enabled")]
    Disabled,
    /// Missing or wrong credential (401 with a Bearer challenge).
    #[error("admin authentication failed")]
    Unauthorized,
    /// The request body or path is not acceptable (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such revocation (404).
    #[error("no such revocation")]
    NotFound,
    /// The revocation store cannot be reached; nothing was changed (503).
    #[error("the revocation store is unavailable; nothing was changed")]
    Unavailable,
    /// The master recorded the revocation but too few replicas confirmed it in time:
    /// it is in force, but a failover could lose it. Retrying is safe (503).
    #[error("not confirmed by a replica; retry (the revocation is in force on the master, retrying is safe)")]
    Unconfirmed,
    /// The store lost its data or may evict it, and is refused until an operator acts (503).
    #[error("the revocation store may have lost revocations and is refused until an operator adopts it")]
    Untrusted,
}

impl AdminError {
    /// The admin answer for a store failure.
    fn from_store(error: &crate::error::OAuthError) -> Self {
        match error.rule {
            "revocation_store.unconfirmed" => AdminError::Unconfirmed,
            "revocation_store.untrusted" => AdminError::Untrusted,
            _ => AdminError::Unavailable,
        }
    }
}

impl AdminError {
    /// The `error` code of the answer (RFC 6750 §3.1 names for credential failures).
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Disabled | AdminError::NotFound => "not_found",
            AdminError::Unauthorized => "invalid_token",
            AdminError::BadRequest(_) => "invalid_request",
            AdminError::Unavailable | AdminError::Unconfirmed | AdminError::Untrusted => "temporarily_unavailable",
        }
    }
}

/// Check the admin Bearer credential in constant time.
pub fn authorize(sts: &Sts, authorization: Option<&str>) -> Result<(), AdminError> {
    let Some(expected) = sts
        .config
        .admin
        .token_sha256
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
    else {
        return Err(AdminError::Disabled);
    };
    let presented = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(AdminError::Unauthorized)?;
    let digest = Sha256::digest(presented.as_bytes());
    if bool::from(digest.as_slice().ct_eq(&expected)) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// `POST /admin/revocations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// subject, session, agent, client or token.
    pub kind: String,
    /// The id it names.
    pub value: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who is doing it (an operator name); defaults to `admin`.
    #[serde(default)]
    pub revoked_by: Option<String>,
    /// For a subject: the user's issuer, named in the Shared Signals event
    /// (`iss_sub`); optional, useful when several issuers are trusted.
    #[serde(default)]
    pub issuer: Option<String>,
}

/// Parse and check a kind and value from a request.
pub fn parse_key(kind: &str, value: &str) -> Result<RevocationKey, AdminError> {
    let kind: RevocationKind = kind.parse().map_err(AdminError::BadRequest)?;
    // The same rule the exchange holds presented identifiers to: what it accepts can
    // be revoked here, and nothing else.
    let value = Identifier::parse(value).map_err(|e| AdminError::BadRequest(format!("value {e}")))?;
    Ok(RevocationKey::new(kind, value.into_string()))
}

/// The user's issuer a subject revocation announces: the one named (it must be
/// trusted), else the only trusted issuer. A revocation is never refused for want of
/// it: with several issuers trusted and none named, the event names mcp-sts as the
/// issuer (the revocation covers that `sub` from every issuer).
fn user_issuer(sts: &Sts, kind: RevocationKind, named: Option<String>) -> Result<Option<String>, AdminError> {
    match (kind, named) {
        (RevocationKind::Subject, Some(issuer)) => {
            if sts.issuers.get(&issuer).is_none() {
                return Err(AdminError::BadRequest("issuer is not a trusted issuer".into()));
            }
            Ok(Some(issuer))
        }
        (_, Some(_)) => Err(AdminError::BadRequest(
            "issuer applies only to subject revocations".into(),
        )),
        (_, None) => Ok(None),
    }
}

/// Record a revocation and queue its Shared Signals events, as one write;
/// acknowledged only once both are in the store (if not, nothing was changed).
pub async fn revoke(
    sts: &Sts,
    request: RevokeRequest,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<Revocation, AdminError> {
    let key = parse_key(&request.kind, &request.value)?;
    let issuer = user_issuer(sts, key.kind, request.issuer)?;
    let revoked_by = request
        .revoked_by
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "admin".into());
    if request.reason.len() > MAX_TEXT_LEN || revoked_by.len() > MAX_TEXT_LEN {
        return Err(AdminError::BadRequest(
            "reason and revoked_by must be at most 1024 characters".into(),
        ));
    }
    let entry = Revocation {
        kind: key.kind,
        value: key.value,
        reason: request.reason,
        revoked_by,
        revoked_at: now,
        expires_at: now.saturating_add(sts.config.revocation.retention_seconds),
    };
    audit.target = Some(format!("{}:{}", entry.kind, entry.value));
    audit.detail = Some(format!("by {}: {}", entry.revoked_by, entry.reason));
    let notice = RevocationNotice {
        entry: entry.clone(),
        user_issuer: issuer.as_deref(),
        initiator: Initiator::Admin,
        once: None,
    };
    crate::ssf::publish::revoke(sts, notice, now)
        .await
        .map_err(|e| AdminError::from_store(&e))?;
    Ok(entry)
}

/// Every revocation in force.
pub async fn list(sts: &Sts, now: UnixTime) -> Result<Vec<Revocation>, AdminError> {
    sts.store_call(sts.store.list(now))
        .await
        .map_err(|e| AdminError::from_store(&e))
}

/// Remove a revocation.
pub async fn reinstate(sts: &Sts, key: &RevocationKey, audit: &mut AuditEvent) -> Result<(), AdminError> {
    audit.target = Some(format!("{}:{}", key.kind, key.value));
    match sts.store_call(sts.store.reinstate(key)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AdminError::NotFound),
        Err(_) => Err(AdminError::Unavailable),
    }
}
