//! The admin API's decisions: revoke, list and reinstate, under a Bearer credential
//! stored as a SHA-256 digest. HTTP adaptation lives in `http::admin`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::AuditEvent;
use crate::config::AdminConfig;
use crate::inbound::Issuers;
use crate::revocation::{Initiator, RevocationNotice};
use crate::revocation::{NEVER, Revocation, RevocationKey, RevocationKind};
use crate::revocation::{Publisher, RevocationGate};
use mcp_sts_contract::Identifier;
use mcp_sts_contract::clock::UnixTime;

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
    pub(crate) fn code(&self) -> &'static str {
        match self {
            AdminError::Disabled | AdminError::NotFound => "not_found",
            AdminError::Unauthorized => "invalid_token",
            AdminError::BadRequest(_) => "invalid_request",
            AdminError::Unavailable | AdminError::Unconfirmed | AdminError::Untrusted => "temporarily_unavailable",
        }
    }
}

/// What the admin API needs of the service, and nothing more.
#[derive(Clone, Copy)]
pub(crate) struct Admin<'a> {
    /// `[admin]`: the credential's hash.
    pub config: &'a AdminConfig,
    /// How long a revoked session is remembered (`revocation.retention_seconds`).
    pub retention_seconds: u64,
    /// How long any token mcp-sts mints can live, leeway included.
    pub token_lifetime: u64,
    /// The trusted upstream issuers an entry may be scoped to.
    pub issuers: &'a Issuers,
    /// The revocation store, behind its deadline.
    pub revocations: &'a RevocationGate,
    /// The one door revocations are written through.
    pub publisher: Publisher<'a>,
}

/// Check the admin Bearer credential in constant time.
pub(crate) fn authorize(admin: Admin<'_>, authorization: Option<&str>) -> Result<(), AdminError> {
    let Some(expected) = admin.config.token_sha256.as_deref().and_then(|h| hex::decode(h).ok()) else {
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
pub(crate) struct RevokeRequest {
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
    /// For a subject or session: the trusted issuer whose user or session it is. The
    /// revocation then covers that issuer's users only; without it, every issuer's.
    #[serde(default)]
    pub issuer: Option<String>,
    /// An explicit lifetime in seconds. Without it, subject, agent and client
    /// revocations hold until reinstated, a session's `retention_seconds`, a token's
    /// as long as a token can live.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A revocation as the admin API answers it: the entry, and whom a user or session
/// entry covers ("every issuer", or "issuer <url>").
#[derive(Debug, Serialize)]
pub(crate) struct AdminRevocation {
    /// The stored entry.
    #[serde(flatten)]
    pub entry: Revocation,
    /// Whom a subject or session revocation covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covers: Option<String>,
}

impl From<Revocation> for AdminRevocation {
    fn from(entry: Revocation) -> Self {
        let covers = entry.key().covers();
        Self { entry, covers }
    }
}

/// Parse and check a kind and value from a request.
pub fn parse_key(kind: &str, value: &str) -> Result<RevocationKey, AdminError> {
    let kind: RevocationKind = kind.parse().map_err(AdminError::BadRequest)?;
    // The same rule the exchange holds presented identifiers to: what it accepts can
    // be revoked here, and nothing else.
    let value = Identifier::parse(value).map_err(|e| AdminError::BadRequest(format!("value {e}")))?;
    Ok(RevocationKey::new(kind, value.into_string()))
}

/// Limit `key` to `issuer`: only users and sessions belong to an issuer (agents,
/// clients and tokens are mcp-sts's own names).
pub(crate) fn scope_key(mut key: RevocationKey, issuer: Option<String>) -> Result<RevocationKey, AdminError> {
    match (key.kind, issuer) {
        (_, None) => Ok(key),
        (RevocationKind::Subject | RevocationKind::Session, Some(issuer)) => {
            if issuer.is_empty() || issuer.len() > MAX_TEXT_LEN {
                return Err(AdminError::BadRequest("issuer must be a trusted issuer".into()));
            }
            key.issuer = Some(issuer);
            Ok(key)
        }
        (RevocationKind::Agent | RevocationKind::Client | RevocationKind::Token, Some(_)) => Err(
            AdminError::BadRequest("issuer applies only to subject and session revocations".into()),
        ),
    }
}

/// When an entry revoked at `now` may be forgotten: what was asked for, else by kind
/// (offboarding holds until reinstated; a session for `retention_seconds`; a token
/// as long as any token mcp-sts mints can live, plus leeway).
fn expiry(admin: Admin<'_>, kind: RevocationKind, asked: Option<u64>, now: UnixTime) -> Result<UnixTime, AdminError> {
    if let Some(seconds) = asked {
        let at = now.saturating_add(seconds);
        if seconds == 0 || at >= NEVER {
            return Err(AdminError::BadRequest(
                "expires_in must be at least 1 second and end before the year 9999".into(),
            ));
        }
        return Ok(at);
    }
    Ok(match kind {
        RevocationKind::Subject | RevocationKind::Agent | RevocationKind::Client => NEVER,
        RevocationKind::Session => now.saturating_add(admin.retention_seconds),
        RevocationKind::Token => now.saturating_add(admin.token_lifetime),
    })
}

/// Record a revocation and queue its Shared Signals events, as one write;
/// acknowledged only once both are in the store (if not, nothing was changed).
pub(crate) async fn revoke(
    admin: Admin<'_>,
    request: RevokeRequest,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<AdminRevocation, AdminError> {
    let key = scope_key(parse_key(&request.kind, &request.value)?, request.issuer)?;
    if let Some(issuer) = &key.issuer
        && admin.issuers.get(issuer).is_none()
    {
        return Err(AdminError::BadRequest("issuer must be a trusted issuer".into()));
    }
    let revoked_by = request
        .revoked_by
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "admin".into());
    if request.reason.len() > MAX_TEXT_LEN || revoked_by.len() > MAX_TEXT_LEN {
        return Err(AdminError::BadRequest(
            "reason and revoked_by must be at most 1024 characters".into(),
        ));
    }
    let expires_at = expiry(admin, key.kind, request.expires_in, now)?;
    let entry = Revocation {
        kind: key.kind,
        value: key.value,
        issuer: key.issuer,
        reason: request.reason,
        revoked_by,
        revoked_at: now,
        expires_at,
        expiry_requested: request.expires_in.is_some(),
    };
    let answer = AdminRevocation::from(entry.clone());
    audit.target = Some(format!("{}:{}", entry.kind, entry.value));
    audit.detail = Some(describe(&answer));
    let notice = RevocationNotice {
        entry,
        initiator: Initiator::Admin,
        once: None,
    };
    admin
        .publisher
        .revoke(notice, now)
        .await
        .map_err(|e| AdminError::from_store(&e))?;
    Ok(answer)
}

/// The audit detail of a revocation: who, why, whom it covers, until when.
fn describe(answer: &AdminRevocation) -> String {
    let entry = &answer.entry;
    let mut detail = format!("by {}: {}", entry.revoked_by, entry.reason);
    if let Some(covers) = &answer.covers {
        detail.push_str("; covers ");
        detail.push_str(covers);
    }
    if entry.expires_at >= NEVER {
        detail.push_str("; until reinstated");
    } else {
        detail.push_str(&format!("; expires at {}", entry.expires_at));
    }
    detail
}

/// Every revocation in force.
pub(crate) async fn list(admin: Admin<'_>, now: UnixTime) -> Result<Vec<AdminRevocation>, AdminError> {
    admin
        .revocations
        .list(now)
        .await
        .map(|entries| entries.into_iter().map(AdminRevocation::from).collect())
        .map_err(|e| AdminError::from_store(&e))
}

/// Remove a revocation (for a user or session: the one for `key.issuer`, or, without
/// one, the one for every issuer). Subscribed receivers are told first (a
/// reinstatement SET), then the entry is removed; if either fails the answer is 503 and
/// retrying is safe.
pub(crate) async fn reinstate(
    admin: Admin<'_>,
    key: &RevocationKey,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<(), AdminError> {
    audit.target = Some(format!("{}:{}", key.kind, key.value));
    audit.detail = key.covers().map(|covers| format!("covers {covers}"));
    let found = admin
        .revocations
        .check(std::slice::from_ref(key), now)
        .await
        .map_err(|_| AdminError::Unavailable)?;
    let Some(entry) = found.into_iter().flatten().next() else {
        return Err(AdminError::NotFound);
    };
    admin
        .publisher
        .reinstatement(&entry, now)
        .await
        .map_err(|e| AdminError::from_store(&e))?;
    match admin.revocations.reinstate(key).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AdminError::NotFound),
        Err(_) => Err(AdminError::Unavailable),
    }
}
