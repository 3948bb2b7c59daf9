//! mcp-sts as a Shared Signals receiver of its upstream IdPs.
//!
//! For each `[[issuers]]` entry with an `[issuers.ssf]` table, mcp-sts finds (or
//! creates) its poll stream at the IdP's transmitter, polls it, and verifies every
//! SET against that issuer's keys: `typ` `secevent+jwt`, an allowed algorithm, the
//! signature, `iss` exactly the issuer, `aud` naming us, `iat` not in the future.
//! CAEP `session-revoked` becomes a session revocation (or a subject revocation when
//! it names the user), CAEP `credential-change` and RISC `account-disabled` a subject
//! revocation, each limited to this issuer's users and sessions (never an agent or a
//! client, and never another issuer's user of the same name); each goes through
//! `publish`, so our own receivers hear of it. Each SET `jti` is applied exactly once:
//! the once-only marker is written with the revocation and remembered for
//! `retention_seconds`, and an event whose `iat` is older than that is refused.
//! A bad SET is refused (reported in `setErrs`), logged, and never applied.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::audit::AuditEvent;
use crate::clock::UnixTime;
use crate::config::UpstreamSsfConfig;
use crate::contract::basic::basic_authorization;
use crate::contract::identifier;
use crate::contract::set::{
    ACCOUNT_DISABLED, CREDENTIAL_CHANGE, POLL_DELIVERY, SESSION_REVOKED, SET_TYP, SetClaims, SubjectId,
};
use crate::fetch::{FetchLimits, fetch};
use crate::inbound::TrustedIssuer;
use crate::inbound::jwt::{audiences, str_claim};
use crate::jose::{NO_MEMORY, Profile, Refusal, Types, read};
use crate::revocation::{NEVER, Revocation, RevocationKind};
use crate::service::Sts;

use super::printable;
use super::publish::{Initiator, RevocationNotice};

/// Most SETs asked for per poll.
const MAX_EVENTS: usize = 100;
/// Largest answer read from the transmitter: streamed, and cut off past this.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Deadline of each call to the transmitter (connect, head and body).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline to connect to the transmitter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one whole poll (subscribing, every page, the acknowledgement).
const POLL_DEADLINE: Duration = Duration::from_secs(60);
/// Most pages read in one poll; the rest waits for the next.
const MAX_PAGES: usize = 100;

/// Why a poll of the upstream transmitter stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The transmitter could not be reached or answered unexpectedly; retried later.
    #[error("upstream transmitter: {0}")]
    Transmitter(String),
    /// Our store or the issuer's keys are unavailable; the SETs stay queued upstream.
    #[error("cannot apply events now: {0}")]
    Unavailable(String),
}

/// Why one SET was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refused {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("keys unavailable")]
    KeysUnavailable,
}

/// What a verified SET asks us to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Revoke(RevocationKind, String, String),
    Ignore(String),
}

/// The receiver for one upstream issuer.
pub struct UpstreamReceiver {
    issuer: Arc<TrustedIssuer>,
    config: UpstreamSsfConfig,
    http: reqwest::Client,
    endpoint: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for UpstreamReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamReceiver")
            .field("issuer", &self.issuer.config.issuer)
            .finish_non_exhaustive()
    }
}

impl UpstreamReceiver {
    /// The receiver for `issuer`, when its config names a transmitter.
    pub fn for_issuer(sts: &Sts, issuer: &str) -> Option<Self> {
        let trusted = sts.issuers.get(issuer)?.clone();
        let config = trusted.config.ssf.clone()?;
        let http = crate::fetch::http_client(CONNECT_TIMEOUT).ok()?;
        Some(Self {
            issuer: trusted,
            config,
            http,
            endpoint: tokio::sync::Mutex::new(None),
        })
    }

    fn authorization(&self) -> Option<String> {
        match (
            &self.config.client_id,
            &self.config.client_secret,
            &self.config.bearer_token,
        ) {
            (Some(id), Some(secret), _) => Some(basic_authorization(id, secret.expose())),
            (_, _, Some(token)) => Some(format!("Bearer {}", token.expose())),
            _ => None,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), UpstreamError> {
        let mut request = self.http.request(method, url);
        if let Some(authorization) = self.authorization() {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let limits = FetchLimits {
            timeout: HTTP_TIMEOUT,
            max_bytes: MAX_RESPONSE_BYTES,
        };
        let fetched = fetch(request, limits)
            .await
            .map_err(|e| UpstreamError::Transmitter(format!("{url}: {e}")))?;
        let value = if fetched.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&fetched.body).unwrap_or(Value::Null)
        };
        Ok((fetched.status.as_u16(), value))
    }

    /// Find our poll stream at the transmitter, or create it.
    async fn subscribe(&self) -> Result<String, UpstreamError> {
        let failed = |why: &str| UpstreamError::Transmitter(why.to_owned());
        let (status, metadata) = self
            .call(reqwest::Method::GET, &self.config.configuration, None)
            .await?;
        if status != 200 || metadata.get("issuer").and_then(Value::as_str) != Some(self.issuer.config.issuer.as_str()) {
            return Err(failed("the transmitter's metadata is missing or names another issuer"));
        }
        let streams_url = metadata
            .get("configuration_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("the transmitter's metadata has no configuration_endpoint"))?
            .to_owned();
        let (status, existing) = self.call(reqwest::Method::GET, &streams_url, None).await?;
        let listed: Vec<Value> = match existing {
            Value::Array(all) if status == 200 => all,
            single @ Value::Object(_) if status == 200 => vec![single],
            _ => Vec::new(),
        };
        let poll_endpoint = |s: &Value| {
            (s.pointer("/delivery/method").and_then(Value::as_str) == Some(POLL_DELIVERY))
                .then(|| {
                    s.pointer("/delivery/endpoint_url")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .flatten()
        };
        if let Some(endpoint) = listed.iter().find_map(poll_endpoint) {
            return Ok(endpoint);
        }
        let body = json!({
            "delivery": { "method": POLL_DELIVERY },
            "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED],
            "description": "mcp-sts",
        });
        let (status, created) = self.call(reqwest::Method::POST, &streams_url, Some(&body)).await?;
        if status != 201 && status != 200 {
            return Err(UpstreamError::Transmitter(format!(
                "stream creation answered HTTP {status}"
            )));
        }
        poll_endpoint(&created).ok_or_else(|| failed("the created stream has no poll endpoint"))
    }

    /// Poll until drained (or [`MAX_PAGES`] pages), applying and acknowledging, within
    /// [`POLL_DEADLINE`]; returns how many SETs became revocations. The background task
    /// calls this every poll interval; tests on demand.
    pub async fn poll_once(&self, sts: &Sts, now: UnixTime) -> Result<usize, UpstreamError> {
        match tokio::time::timeout(POLL_DEADLINE, self.poll_pages(sts, now)).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Transmitter(
                "the poll did not finish within its deadline".into(),
            )),
        }
    }

    async fn poll_pages(&self, sts: &Sts, now: UnixTime) -> Result<usize, UpstreamError> {
        let mut guard = self.endpoint.lock().await;
        let endpoint = match guard.as_ref() {
            Some(endpoint) => endpoint.clone(),
            None => {
                let endpoint = self.subscribe().await?;
                *guard = Some(endpoint.clone());
                endpoint
            }
        };
        let mut applied = 0;
        let mut acks: Vec<String> = Vec::new();
        let mut errors = Map::new();
        for page in 1..=MAX_PAGES {
            let body = json!({ "ack": acks, "setErrs": errors, "maxEvents": MAX_EVENTS, "returnImmediately": true });
            let (status, answer) = self.call(reqwest::Method::POST, &endpoint, Some(&body)).await?;
            if status == 404 {
                *guard = None;
            }
            if status != 200 {
                return Err(UpstreamError::Transmitter(format!("poll answered HTTP {status}")));
            }
            acks.clear();
            errors.clear();
            let sets = answer
                .get("sets")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (jti, set) in &sets {
                let set = set.as_str().unwrap_or_default();
                match self.verify(sts, set, now).await {
                    Ok((claims, Action::Revoke(kind, value, event))) => {
                        if self.apply(sts, &claims, kind, value, &event, now).await? {
                            applied += 1;
                        }
                        acks.push(jti.clone());
                    }
                    Ok((_, Action::Ignore(event))) => {
                        tracing::info!(issuer = %self.issuer.config.issuer, event = %printable(&event), "upstream event type not acted on");
                        acks.push(jti.clone());
                    }
                    Err(Refused::KeysUnavailable) => {
                        return Err(UpstreamError::Unavailable("the issuer's keys are unavailable".into()));
                    }
                    Err(Refused::Invalid(rule)) => {
                        tracing::warn!(issuer = %self.issuer.config.issuer, set = %printable(jti), rule, "refused an upstream SET; not applied");
                        let err = if rule == "signature" {
                            "invalid_key"
                        } else {
                            "invalid_request"
                        };
                        errors.insert(jti.clone(), json!({ "err": err, "description": rule }));
                    }
                }
            }
            let more = answer.get("moreAvailable").and_then(Value::as_bool).unwrap_or(false) && page < MAX_PAGES;
            if !more && acks.is_empty() && errors.is_empty() {
                return Ok(applied);
            }
            if !more {
                let ack_only = json!({ "ack": acks, "setErrs": errors, "maxEvents": 0, "returnImmediately": true });
                let (status, _) = self.call(reqwest::Method::POST, &endpoint, Some(&ack_only)).await?;
                if status != 200 {
                    return Err(UpstreamError::Transmitter(format!(
                        "acknowledgement answered HTTP {status}"
                    )));
                }
                return Ok(applied);
            }
        }
        Ok(applied)
    }

    /// Every rule a SET must pass before anything is applied.
    async fn verify(&self, sts: &Sts, set: &str, now: UnixTime) -> Result<(SetClaims, Action), Refused> {
        let issuer = &self.issuer.config.issuer;
        // RFC 8417: typed `secevent+jwt`, dated by `iat` (a revocation applied however late
        // fails closed, so `exp`/`nbf` are not judged); signed with the issuer's keys.
        // Older than the replay memory, its jti may have been forgotten, so applying it
        // could apply it twice (re-revoking a reinstated user).
        let profile = Profile::new(
            Types::Exactly(&[SET_TYP]),
            sts.config.server.max_token_bytes,
            now,
            sts.config.tokens.leeway_seconds,
        )
        .validity_ignored()
        .iat_required()
        .max_age(replay_memory(sts));
        let jws = read(set, &profile, self.issuer.as_ref(), NO_MEMORY)
            .await
            .map_err(refused_set)?;
        let claims = jws.into_claims().map_err(refused_set)?;
        if str_claim(&claims, "iss") != Some(issuer.as_str()) {
            return Err(Refused::Invalid("iss"));
        }
        let expected = self.config.audience.as_deref().unwrap_or(sts.issuer());
        if !audiences(&claims).contains(&expected) {
            return Err(Refused::Invalid("aud"));
        }
        let claims: SetClaims =
            serde_json::from_value(Value::Object(claims)).map_err(|_| Refused::Invalid("claims"))?;
        if claims.jti.is_empty() || identifier::check(&claims.jti).is_err() {
            return Err(Refused::Invalid("jti"));
        }
        let action = self.action(&claims)?;
        Ok((claims, action))
    }

    /// What a verified SET means here.
    fn action(&self, claims: &SetClaims) -> Result<Action, Refused> {
        let issuer = &self.issuer.config.issuer;
        let (event, _) = claims.single_event().ok_or(Refused::Invalid("events"))?;
        let subject = claims.subject();
        let user = |subject: &SubjectId| match subject {
            SubjectId::IssSub { iss, sub } if iss == issuer => Some(sub.clone()),
            _ => None,
        };
        let found = match (event, &subject) {
            (SESSION_REVOKED, Some(SubjectId::Opaque { id })) => Some((RevocationKind::Session, id.clone())),
            (SESSION_REVOKED, Some(SubjectId::Complex { session: Some(s), .. })) => match s.as_ref() {
                SubjectId::Opaque { id } => Some((RevocationKind::Session, id.clone())),
                _ => None,
            },
            (
                SESSION_REVOKED | CREDENTIAL_CHANGE | ACCOUNT_DISABLED,
                Some(SubjectId::Complex { user: Some(u), .. }),
            ) => user(u).map(|sub| (RevocationKind::Subject, sub)),
            (SESSION_REVOKED | CREDENTIAL_CHANGE | ACCOUNT_DISABLED, Some(s)) => {
                user(s).map(|sub| (RevocationKind::Subject, sub))
            }
            (SESSION_REVOKED | CREDENTIAL_CHANGE | ACCOUNT_DISABLED, None) => None,
            (other, _) => return Ok(Action::Ignore(other.to_owned())),
        };
        let (kind, value) = found.ok_or(Refused::Invalid("subject"))?;
        if identifier::check(&value).is_err() {
            return Err(Refused::Invalid("subject"));
        }
        Ok(Action::Revoke(kind, value, event.to_owned()))
    }

    /// Record the revocation, once per SET `jti`; `Ok(false)` for a replay. The entry
    /// names this issuer: it reaches this issuer's user or session only. A user stays
    /// revoked until reinstated; a session for `retention_seconds`.
    async fn apply(
        &self,
        sts: &Sts,
        claims: &SetClaims,
        kind: RevocationKind,
        value: String,
        event: &str,
        now: UnixTime,
    ) -> Result<bool, UpstreamError> {
        let issuer = &self.issuer.config.issuer;
        let retention = sts.config.revocation.retention_seconds;
        let event_name = event.rsplit('/').next().unwrap_or(event);
        let expires_at = match kind {
            RevocationKind::Session => now.saturating_add(retention),
            RevocationKind::Subject | RevocationKind::Agent | RevocationKind::Client | RevocationKind::Token => NEVER,
        };
        let entry = Revocation {
            kind,
            value,
            issuer: Some(issuer.clone()),
            reason: format!("upstream {event_name} event"),
            revoked_by: format!("ssf:{issuer}"),
            revoked_at: now,
            expires_at,
            expiry_requested: false,
        };
        // Remembered past the age limit `verify` holds events to, leeway included, so
        // no event can outlive the memory of having been applied.
        let remember_until = now
            .saturating_add(replay_memory(sts))
            .saturating_add(sts.config.tokens.leeway_seconds);
        let notice = RevocationNotice {
            entry,
            initiator: Initiator::Policy,
            once: Some((format!("ssf:{issuer}:{}", claims.jti), remember_until)),
        };
        let target = format!("{kind}:{}", notice.entry.value);
        let written = super::publish::revoke(sts, notice, now)
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if written {
            tracing::info!(%issuer, %kind, event = %event_name, "upstream event applied as a revocation");
            // A revocation from upstream is a decision like an admin's: audited.
            let mut audit = AuditEvent::new("upstream_revoke", now);
            audit.decision = "allow";
            audit.target = Some(target);
            audit.client_id = Some(format!("ssf:{issuer}"));
            audit.detail = Some(format!("{event_name} event {} from {issuer}", printable(&claims.jti)));
            sts.audit.emit(&audit);
            sts.metrics.decision("upstream_revoke", "allow");
        } else {
            tracing::info!(%issuer, set = %printable(&claims.jti), "upstream SET already applied; ignored");
        }
        Ok(written)
    }
}

/// The rule an upstream SET broke, as reported in `setErrs` and logs.
fn refused_set(refusal: Refusal) -> Refused {
    Refused::Invalid(match refusal {
        Refusal::KeysUnavailable(_) => return Refused::KeysUnavailable,
        Refusal::TooLarge => "size",
        Refusal::Encrypted | Refusal::Malformed => "shape",
        Refusal::CriticalHeader => "crit",
        Refusal::Type => "typ",
        Refusal::Algorithm(_) | Refusal::AlgorithmMismatch => "alg",
        Refusal::MissingKid | Refusal::UnknownKey(_) | Refusal::BadSignature | Refusal::UntrustedIssuer => "signature",
        Refusal::EmbeddedKey(_) => "signature",
        Refusal::MissingClaim("iat") | Refusal::BadClaim("iat") | Refusal::IssuedInFuture => "iat",
        Refusal::TooOld => "iat_too_old",
        Refusal::Expired | Refusal::LivesTooLong => "exp",
        Refusal::NotYetValid => "nbf",
        Refusal::MissingClaim(_) | Refusal::BadClaim(_) => "claims",
    })
}

/// How long an applied event's `jti` is remembered, and so the age (by `iat`) past
/// which an event is refused: `revocation.retention_seconds`.
fn replay_memory(sts: &Sts) -> u64 {
    sts.config.revocation.retention_seconds
}

/// Start one receiver per issuer that names a transmitter, polling at its interval.
pub fn spawn_all(sts: Arc<Sts>) -> Vec<tokio::task::JoinHandle<()>> {
    let issuers: Vec<String> = sts
        .config
        .issuers
        .iter()
        .filter(|i| i.ssf.is_some())
        .map(|i| i.issuer.clone())
        .collect();
    issuers
        .into_iter()
        .filter_map(|issuer| {
            let receiver = UpstreamReceiver::for_issuer(&sts, &issuer)?;
            let sts = sts.clone();
            Some(tokio::spawn(async move {
                let interval = Duration::from_secs(receiver.config.poll_interval_seconds);
                loop {
                    if let Err(error) = receiver.poll_once(&sts, sts.clock.now()).await {
                        tracing::warn!(%issuer, %error, "upstream Shared Signals poll failed");
                    }
                    tokio::time::sleep(interval).await;
                }
            }))
        })
        .collect()
}
