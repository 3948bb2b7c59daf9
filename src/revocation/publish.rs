//! The one door revocations are written through: each becomes SETs, one per Shared
//! Signals stream that asked for its event type, signed with mcp-sts's current key and
//! written together with the revocation itself.
//!
//! Every door that revokes (admin API and CLI, `/revoke`, upstream events) goes
//! through [`Publisher::revoke`], so no revocation can skip its announcement; a lifted
//! one is announced by [`Publisher::reinstatement`], and a stream's verification event
//! is queued here too, signed the same way. The entry and its
//! SETs are one atomic write (`EventQueue::publish`): if the store fails, nothing was
//! changed and the caller answers 503.

use super::queue::VERIFICATION_JTI_PREFIX;
use super::{
    EventQueue, Publication, QueuedEvent, Revocation, RevocationGate, RevocationKind, StreamRecord, StreamStatus,
};
use crate::config::IssuerConfig;
use crate::error::OAuthError;
use crate::keys::SharedKeyRing;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::set::{Announcement, SET_TYP, SetClaims, verification_claims};

/// What the revocation door needs of the service, and nothing more.
#[derive(Clone, Copy)]
pub struct Publisher<'a> {
    /// Our issuer URL: the SETs' `iss`.
    pub issuer: &'a str,
    /// The trusted upstream issuers (a subject entry for every issuer names the only one).
    pub trusted_issuers: &'a [IssuerConfig],
    /// The keys the SETs are signed with.
    pub keys: &'a SharedKeyRing,
    /// Streams and queued SETs.
    pub events: &'a dyn EventQueue,
    /// The store behind its deadlines.
    pub gate: &'a RevocationGate,
    /// Wakes long polls and push delivery on this replica when an event is queued.
    pub wake: &'a tokio::sync::Notify,
}

/// Who started a revocation, as CAEP's `initiating_entity` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// An administrator (admin API, CLI).
    Admin,
    /// A client revoking a token it holds (`/revoke`).
    User,
    /// An event from an upstream identity provider.
    Policy,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Initiator::Admin => "admin",
            Initiator::User => "user",
            Initiator::Policy => "policy",
        }
    }
}

/// A revocation to record and announce.
#[derive(Debug, Clone)]
pub struct RevocationNotice {
    /// The entry (for a user or session, limited to its `issuer`, if any).
    pub entry: Revocation,
    /// Who started it.
    pub initiator: Initiator,
    /// A once-only id (an upstream SET's issuer and `jti`) and how long to remember it.
    pub once: Option<(String, UnixTime)>,
}

/// A fresh SET id.
fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Publisher<'_> {
    /// Sign SET claims with the current key.
    fn sign(&self, claims: &SetClaims, now: UnixTime) -> Result<String, OAuthError> {
        let ring = self.keys.current();
        let key = ring.signing_key(now);
        key.sign_jwt(SET_TYP, claims).map_err(|e| {
            tracing::error!(error = %e, kid = %key.kid, "signing a security event token failed");
            OAuthError::server_error("ssf.sign")
        })
    }

    /// The user's issuer a SET names: the entry's. A subject entry for every issuer names
    /// the only trusted issuer when there is one (which covers the same users), else
    /// nothing, and the SET then names mcp-sts itself: every issuer. A session entry for
    /// every issuer names none.
    fn announced_issuer<'e>(&'e self, entry: &'e Revocation) -> Option<&'e str> {
        match (entry.kind, entry.issuer.as_deref()) {
            (_, Some(issuer)) => Some(issuer),
            (RevocationKind::Subject, None) => match self.trusted_issuers {
                [only] => Some(only.issuer.as_str()),
                _ => None,
            },
            (_, None) => None,
        }
    }

    /// Streams that receive events now (enabled or paused).
    async fn live_streams(&self) -> Result<Vec<StreamRecord>, OAuthError> {
        let streams = self.gate.call(self.events.streams()).await?;
        Ok(streams
            .into_iter()
            .filter(|s| s.status != StreamStatus::Disabled)
            .collect())
    }

    /// Record a revocation and queue its SETs, atomically. `Ok(false)` when the notice's
    /// once-only id was already used (nothing written). Any store failure is a 503 and
    /// nothing was changed.
    pub(crate) async fn revoke(&self, notice: RevocationNotice, now: UnixTime) -> Result<bool, OAuthError> {
        let announcement = Announcement {
            issuer: self.issuer,
            user_issuer: self.announced_issuer(&notice.entry),
            kind: notice.entry.kind,
            value: &notice.entry.value,
            revoked_at: notice.entry.revoked_at,
            initiating_entity: notice.initiator.as_str(),
            reason: &notice.entry.reason,
            reinstated: false,
        };
        let events = self.signed_events(&announcement, now).await?;
        let queued = events.len();
        let publication = Publication {
            once: notice.once,
            revocation: Some(notice.entry.clone()),
            events,
        };
        let written = self.gate.write(self.events.publish(publication)).await?;
        if written {
            tracing::info!(
                kind = %notice.entry.kind,
                covers = notice.entry.key().covers().as_deref().unwrap_or("-"),
                streams = queued,
                "revocation recorded and its events queued"
            );
            self.wake.notify_waiters();
        }
        Ok(written)
    }

    /// One signed SET of `announcement` for every live stream that asked for its type.
    async fn signed_events(
        &self,
        announcement: &Announcement<'_>,
        now: UnixTime,
    ) -> Result<Vec<QueuedEvent>, OAuthError> {
        let event_type = announcement.event_type();
        let mut events = Vec::new();
        for stream in self.live_streams().await? {
            if !stream.wants(&event_type) {
                continue;
            }
            let jti = new_jti();
            let set = self.sign(&announcement.claims(&stream.owner, &jti, now), now)?;
            events.push(QueuedEvent {
                stream_id: stream.stream_id,
                jti,
                set,
            });
        }
        Ok(events)
    }

    /// Announce that the revocation of `entry` is lifted: one SET per stream that asked
    /// for reinstatements, queued before the entry is removed (so a receiver never keeps
    /// refusing what mcp-sts allows again for want of the news; a failure here leaves
    /// the entry in place and changes nothing a receiver would act on wrongly).
    pub(crate) async fn reinstatement(&self, entry: &Revocation, now: UnixTime) -> Result<(), OAuthError> {
        let announcement = Announcement {
            issuer: self.issuer,
            user_issuer: self.announced_issuer(entry),
            kind: entry.kind,
            value: &entry.value,
            revoked_at: now,
            initiating_entity: Initiator::Admin.as_str(),
            reason: "",
            reinstated: true,
        };
        let events = self.signed_events(&announcement, now).await?;
        if events.is_empty() {
            return Ok(());
        }
        let publication = Publication {
            events,
            ..Publication::default()
        };
        self.gate.write(self.events.publish(publication)).await?;
        self.wake.notify_waiters();
        Ok(())
    }

    /// Queue a verification event (SSF 1.0 §8.1.4) for `stream` unless `max_pending` of
    /// its verification events already wait; `Ok(false)` (nothing queued) when they do.
    pub(crate) async fn verification(
        &self,
        stream: &StreamRecord,
        state: Option<&str>,
        max_pending: usize,
        now: UnixTime,
    ) -> Result<bool, OAuthError> {
        let jti = format!("{VERIFICATION_JTI_PREFIX}{}", new_jti());
        let claims = verification_claims(self.issuer, &stream.owner, &jti, now, &stream.stream_id, state);
        let set = self.sign(&claims, now)?;
        let event = QueuedEvent {
            stream_id: stream.stream_id.clone(),
            jti,
            set,
        };
        let queued = self
            .gate
            .write(self.events.queue_verification(event, max_pending))
            .await?;
        if queued {
            self.wake.notify_waiters();
        }
        Ok(queued)
    }
}
