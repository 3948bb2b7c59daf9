//! mcp-sts as a Shared Signals receiver of its upstream IdPs.
//!
//! For each `[[issuers]]` entry with an `[issuers.ssf]` table, the one receiver
//! ([`mcp_sts_downstream::receiver`]) finds (or creates) our poll stream at the IdP's transmitter,
//! polls it, and verifies every SET against that issuer's keys: `typ` `secevent+jwt`,
//! an allowed algorithm, the signature, `iss` exactly the issuer, `aud` naming us,
//! `iat` not in the future. What an event does here is this module's: CAEP
//! `session-revoked` becomes a session revocation (or a subject revocation when it
//! names the user), CAEP `credential-change` and RISC `account-disabled` a subject
//! revocation, each limited to this issuer's users and sessions (never an agent or a
//! client, and never another issuer's user of the same name); each goes through
//! `publish`, so our own receivers hear of it. Each SET `jti` is applied exactly once:
//! the once-only marker is written with the revocation and remembered for
//! `retention_seconds`, and an event whose `iat` is older than that is refused.
//! A bad SET is refused (reported in `setErrs`), logged, and never applied.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditEvent, AuditLog};
use crate::inbound::{Issuers, TrustedIssuer};
use crate::metrics::Metrics;
use crate::revocation::{Initiator, NEVER, Publisher, Revocation, RevocationKind, RevocationNotice};
use crate::service::Sts;
use mcp_sts_contract::basic::basic_authorization;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::identifier;
use mcp_sts_contract::secret::Secret;
use mcp_sts_contract::set::{ACCOUNT_DISABLED, CREDENTIAL_CHANGE, SESSION_REVOKED, SetClaims, SubjectId};
use mcp_sts_downstream::receiver::{
    Adopt, EventSink, PollError, Receiver, ReceiverConfig, Rejection, SetRules, StreamChoice,
};

use super::printable;

/// Deadline of each call to the transmitter (connect, head and body).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline to connect to the transmitter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one whole poll (subscribing, every page, the acknowledgement).
const POLL_DEADLINE: Duration = Duration::from_secs(60);

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

/// What a verified SET asks us to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Revoke(RevocationKind, String, String),
    Ignore(String),
}

/// The receiver for one upstream issuer.
pub struct UpstreamReceiver {
    issuer: Arc<TrustedIssuer>,
    receiver: Receiver,
    poll_interval: Duration,
}

impl std::fmt::Debug for UpstreamReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamReceiver")
            .field("issuer", &self.issuer.config.issuer)
            .finish_non_exhaustive()
    }
}

/// What receiving an upstream IdP's events needs of the service, and nothing more.
#[derive(Clone, Copy)]
pub struct Upstream<'a> {
    /// Our issuer URL: the SETs' default audience.
    pub issuer: &'a str,
    /// The trusted upstream issuers.
    pub issuers: &'a Issuers,
    /// The size cap of a SET.
    pub max_token_bytes: usize,
    /// Clock-skew leeway.
    pub leeway: u64,
    /// How long an applied event's `jti` is remembered, and so the age (by `iat`)
    /// past which an event is refused: `revocation.retention_seconds`.
    pub replay_memory: u64,
    /// The one door revocations are written through.
    pub publisher: Publisher<'a>,
    /// Audit events.
    pub audit: &'a AuditLog,
    /// Prometheus metrics.
    pub metrics: &'a Metrics,
}

impl<'a> Upstream<'a> {
    /// The view of `sts`.
    pub fn of(sts: &'a Sts) -> Self {
        let config = sts.config();
        Self {
            issuer: sts.issuer(),
            issuers: sts.issuers(),
            max_token_bytes: config.server.max_token_bytes,
            leeway: config.tokens.leeway_seconds,
            replay_memory: config.revocation.retention_seconds,
            publisher: sts.publisher(),
            audit: sts.audit(),
            metrics: sts.metrics(),
        }
    }
}

/// What an upstream SET does here: applied to the store through `publish`.
struct Apply<'a> {
    issuer: &'a TrustedIssuer,
    upstream: Upstream<'a>,
}

impl UpstreamReceiver {
    /// The receiver for `issuer`, when its config names a transmitter.
    pub fn for_issuer(upstream: Upstream<'_>, issuer: &str) -> Option<Self> {
        let trusted = upstream.issuers.get(issuer)?.clone();
        let config = trusted.config.ssf.clone()?;
        let http = mcp_sts_contract::fetch::http_client(CONNECT_TIMEOUT).ok()?;
        let authorization = match (&config.client_id, &config.client_secret, &config.bearer_token) {
            (Some(id), Some(secret), _) => Some(Secret::new(basic_authorization(id, secret.expose()))),
            (_, _, Some(token)) => Some(Secret::new(format!("Bearer {}", token.expose()))),
            _ => None,
        };
        let receiver = ReceiverConfig {
            issuer: issuer.to_owned(),
            configuration_url: config.configuration.clone(),
            authorization,
            stream: StreamChoice {
                description: "mcp-sts".into(),
                events_requested: vec![
                    SESSION_REVOKED.to_owned(),
                    CREDENTIAL_CHANGE.to_owned(),
                    ACCOUNT_DISABLED.to_owned(),
                ],
                adopt: Adopt::AnyPollStream,
            },
            // RFC 8417: typed `secevent+jwt`, dated by `iat`. Older than the replay
            // memory, its jti may have been forgotten, so applying it could apply it
            // twice (re-revoking a reinstated user).
            sets: SetRules {
                audience: config.audience.clone().unwrap_or_else(|| upstream.issuer.to_owned()),
                max_bytes: upstream.max_token_bytes,
                leeway: upstream.leeway,
                kid_required: false,
                max_age: Some(upstream.replay_memory),
            },
            http_timeout: HTTP_TIMEOUT,
            poll_deadline: POLL_DEADLINE,
        };
        Some(Self {
            issuer: trusted,
            receiver: Receiver::new(receiver, http),
            poll_interval: Duration::from_secs(config.poll_interval_seconds),
        })
    }

    /// Poll until drained, applying and acknowledging, within the poll deadline;
    /// returns how many SETs became revocations. The background task calls this every
    /// poll interval; tests on demand.
    pub async fn poll_once(&self, upstream: Upstream<'_>, now: UnixTime) -> Result<usize, UpstreamError> {
        let sink = Apply {
            issuer: &self.issuer,
            upstream,
        };
        self.receiver.poll(&sink, now).await.map_err(|e| match e {
            PollError::Transmitter(why) => UpstreamError::Transmitter(why),
            PollError::KeysUnavailable(_) => UpstreamError::Unavailable("the issuer's keys are unavailable".into()),
            PollError::Sink(e) => e,
        })
    }
}

impl EventSink for Apply<'_> {
    type Keys = TrustedIssuer;
    type Error = UpstreamError;

    fn keys(&self) -> &TrustedIssuer {
        self.issuer
    }

    async fn apply(&self, claims: SetClaims, now: UnixTime) -> Result<bool, Rejection<UpstreamError>> {
        match self.action(&claims).map_err(Rejection::Refused)? {
            Action::Revoke(kind, value, event) => self
                .revoke(&claims, kind, value, &event, now)
                .await
                .map_err(Rejection::Stop),
            Action::Ignore(event) => {
                tracing::info!(issuer = %self.issuer.config.issuer, event = %printable(&event), "upstream event type not acted on");
                Ok(false)
            }
        }
    }
}

impl Apply<'_> {
    /// What a verified SET means here.
    fn action(&self, claims: &SetClaims) -> Result<Action, &'static str> {
        let issuer = &self.issuer.config.issuer;
        let (event, _) = claims.single_event().ok_or("events")?;
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
        let (kind, value) = found.ok_or("subject")?;
        if identifier::check(&value).is_err() {
            return Err("subject");
        }
        Ok(Action::Revoke(kind, value, event.to_owned()))
    }

    /// Record the revocation, once per SET `jti`; `Ok(false)` for a replay. The entry
    /// names this issuer: it reaches this issuer's user or session only. A user stays
    /// revoked until reinstated; a session for `retention_seconds`.
    async fn revoke(
        &self,
        claims: &SetClaims,
        kind: RevocationKind,
        value: String,
        event: &str,
        now: UnixTime,
    ) -> Result<bool, UpstreamError> {
        let upstream = self.upstream;
        let issuer = &self.issuer.config.issuer;
        let retention = upstream.replay_memory;
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
        // Remembered past the age limit the receiver holds events to, leeway included, so
        // no event can outlive the memory of having been applied.
        let remember_until = now
            .saturating_add(upstream.replay_memory)
            .saturating_add(upstream.leeway);
        let notice = RevocationNotice {
            entry,
            initiator: Initiator::Policy,
            once: Some((format!("ssf:{issuer}:{}", claims.jti), remember_until)),
        };
        let target = format!("{kind}:{}", notice.entry.value);
        let written = upstream
            .publisher
            .revoke(notice, now)
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
            upstream.audit.emit(&audit);
            upstream.metrics.decision("upstream_revoke", "allow");
        } else {
            tracing::info!(%issuer, set = %printable(&claims.jti), "upstream SET already applied; ignored");
        }
        Ok(written)
    }
}

/// Start one receiver per issuer that names a transmitter, polling at its interval.
pub(crate) fn spawn_all(sts: Arc<Sts>) -> Vec<tokio::task::JoinHandle<()>> {
    let issuers: Vec<String> = sts
        .config()
        .issuers
        .iter()
        .filter(|i| i.ssf.is_some())
        .map(|i| i.issuer.clone())
        .collect();
    issuers
        .into_iter()
        .filter_map(|issuer| {
            let receiver = UpstreamReceiver::for_issuer(Upstream::of(&sts), &issuer)?;
            let sts = sts.clone();
            Some(tokio::spawn(async move {
                let interval = receiver.poll_interval;
                loop {
                    if let Err(error) = receiver.poll_once(Upstream::of(&sts), sts.clock().now()).await {
                        tracing::warn!(%issuer, %error, "upstream Shared Signals poll failed");
                    }
                    tokio::time::sleep(interval).await;
                }
            }))
        })
        .collect()
}
