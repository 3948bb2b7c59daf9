//! The verifier as a Shared Signals receiver: through the one receiver
//! ([`crate::receiver`]) it subscribes to mcp-sts's revocation events (RFC 8936 poll);
//! here it keeps the revocations it heard, and refuses tokens locally
//! by the same lineage and issuer rules mcp-sts applies (`contract::revocation`), with
//! no call to mcp-sts per request. A user or session revocation that names an issuer
//! refuses that issuer's users only.
//!
//! Freshness is explicit: the stream remembers when it last heard from mcp-sts. Past
//! `max_staleness` a token cannot be vouched for; the verifier then fails closed (503)
//! or, when configured, asks introspection instead, and says which in its logs.
//!
//! A revocation heard here refuses tokens mcp-sts minted for what it names issued at
//! or before it (plus leeway). mcp-sts mints nothing for a revoked user, session,
//! agent or client, so that covers every token the revocation covers at mcp-sts.
//! Tokens mcp-sts did not mint (an identity provider's, at the MCP server kit) are
//! refused whenever issued ([`RevocationStream::check_foreign`]), until the stream
//! hears the revocation lifted: mcp-sts announces reinstatements too. Session and
//! token revocations are kept for `retain` (longer than any token lives); offboarding
//! (subject, agent, client) until reinstated, as at mcp-sts.
//!
//! Coverage is explicit too. A stream hears only what was revoked after it existed at
//! mcp-sts, and mcp-sts never resends an acknowledged event. So the stream vouches only
//! for tokens issued after `covered_since` (plus leeway): the moment its stream was
//! known to exist, kept across restarts in the state file (`state_path`), where every
//! heard revocation is written before it is acknowledged. Without a state file, or
//! when the stream at mcp-sts is not the one the file remembers, coverage starts again
//! at this process's first successful poll, and older tokens take the stale path
//! until they expire.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::error::VerifyError;
use super::stream_state::{self, HeardRevocation, StreamState};
use super::{KeyCacheRules, StsKeys};
use crate::receiver::{Adopt, EventSink, PollError, Receiver, ReceiverConfig, Rejection, SetRules, StreamChoice};
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::basic::basic_authorization;
use mcp_sts_contract::clock::{Clock, SystemClock, UnixTime};
use mcp_sts_contract::jose::JwksCache;
use mcp_sts_contract::revocation::{LineageKey, RevocationKind, covers, lineage};
use mcp_sts_contract::secret::Secret;
use mcp_sts_contract::set::{RevocationEvent, SetClaims, SetError, events_supported, read_revocation};

/// Largest SET accepted; mcp-sts's are well under 2 KiB.
const MAX_SET_BYTES: usize = 16 * 1024;

/// How a verifier subscribes to mcp-sts's revocation events.
#[derive(Clone)]
pub struct RevocationStreamConfig {
    /// The STS's issuer URL: the SETs' `iss`.
    pub issuer: String,
    /// The transmitter's metadata, normally `{issuer}/.well-known/ssf-configuration`.
    pub configuration_url: String,
    /// The STS's JWKS, which signs the SETs.
    pub jwks_uri: String,
    /// This service's client id at the STS: the SETs' `aud`.
    pub client_id: String,
    /// This service's client secret (HTTP Basic).
    pub client_secret: String,
    /// Names this instance's stream, so a restart resumes it (with every event queued
    /// meanwhile) and replicas of one service each keep their own. Default `default`.
    pub instance: String,
    /// Beyond this since the last successful poll, tokens are not vouched for.
    pub max_staleness: Duration,
    /// When stale, ask introspection (needs [`super::VerifierConfig::introspection`])
    /// instead of failing closed.
    pub introspection_fallback: bool,
    /// Pause between polls of [`RevocationStream::spawn`].
    pub poll_interval: Duration,
    /// How long a heard session or token revocation (and a reinstatement) is kept:
    /// longer than any token's life. Subject, agent and client revocations are kept
    /// until a reinstatement is heard, as mcp-sts keeps them.
    pub retain: Duration,
    /// Clock skew allowed between a token's `iat` and a revocation's time.
    pub leeway: Duration,
    /// Deadline of each call to the STS (connect, head and body, read under a byte cap).
    pub http_timeout: Duration,
    /// How long the fetched JWKS is trusted (default 5 min), as
    /// [`super::VerifierConfig::jwks_cache_ttl`]. A verifier given this stream, reading
    /// the same JWKS with the same TTL, refresh interval and timeout, shares its key
    /// cache.
    pub jwks_cache_ttl: Duration,
    /// Least time between JWKS refetches forced by an unknown `kid` (default 10 s).
    pub jwks_min_refresh_interval: Duration,
    /// Deadline of one whole poll (subscribing, every page, the acknowledgement), and
    /// of the wait for a poll already under way: a stalled transmitter costs at most this.
    pub poll_deadline: Duration,
    /// Where heard revocations are kept across restarts (written atomically before
    /// they are acknowledged, read at start). One file per `instance`. Without it,
    /// tokens issued before this process's first successful poll (plus leeway) are not
    /// vouched for: they take the stale path (introspection fallback, else 503) until
    /// they expire.
    pub state_path: Option<PathBuf>,
}

impl RevocationStreamConfig {
    /// A subscription with defaults: 1 s polls, 30 s staleness, fail closed when stale.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let base = issuer.trim_end_matches('/').to_owned();
        Self {
            configuration_url: format!("{base}/.well-known/ssf-configuration"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            issuer,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            instance: "default".into(),
            max_staleness: Duration::from_secs(30),
            introspection_fallback: false,
            poll_interval: Duration::from_secs(1),
            retain: Duration::from_secs(2 * 86_400),
            leeway: Duration::from_secs(30),
            http_timeout: Duration::from_secs(5),
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
            poll_deadline: Duration::from_secs(30),
            state_path: None,
        }
    }
}

impl std::fmt::Debug for RevocationStreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationStreamConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("instance", &self.instance)
            .field("max_staleness", &self.max_staleness)
            .field("introspection_fallback", &self.introspection_fallback)
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

/// Which tokens a heard revocation refuses.
#[derive(Debug, Clone, Copy)]
enum Reach {
    /// Those issued at or before it, plus leeway (and tokens without `iat`).
    IssuedAtOrBefore(Option<UnixTime>),
    /// Every token, whenever issued.
    Always,
}

/// What the stream says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamVerdict {
    /// Nothing heard revokes it, and the stream is fresh.
    Clear,
    /// Nothing heard revokes it, but the stream is stale: ask introspection.
    AskIntrospection,
}

/// When each scope of one (kind, value) was revoked: `None` for every issuer, or the
/// one issuer a user or session revocation was limited to.
type Scopes = HashMap<Option<String>, UnixTime>;

/// One heard revocation's identity: kind, value and the issuer it is limited to.
type Scoped = (RevocationKind, String, Option<String>);

/// Revocations heard so far, reinstatements heard (to put events of one poll in order),
/// and since when they cover tokens.
#[derive(Debug, Default)]
struct Heard {
    revoked: HashMap<(RevocationKind, String), Scopes>,
    /// When each revocation was lifted: a revocation made before that is not in force.
    lifted: HashMap<Scoped, UnixTime>,
    /// The stream at mcp-sts these revocations came from.
    stream_id: Option<String>,
    /// Tokens issued after this (plus leeway) are covered; `None`: none yet.
    covered_since: Option<UnixTime>,
}

impl Heard {
    fn from_state(state: StreamState) -> Self {
        let mut revoked: HashMap<(RevocationKind, String), Scopes> = HashMap::new();
        for r in state.revoked {
            revoked
                .entry((r.kind, r.value))
                .or_default()
                .insert(r.issuer, r.revoked_at);
        }
        let lifted = state
            .lifted
            .into_iter()
            .map(|r| ((r.kind, r.value, r.issuer), r.revoked_at))
            .collect();
        Self {
            revoked,
            lifted,
            stream_id: state.stream_id,
            covered_since: state.covered_since,
        }
    }

    /// Apply one event. Events of one poll come in no particular order, so each is
    /// decided by its time: a reinstatement lifts a revocation made strictly before it,
    /// and a revocation made strictly before a heard reinstatement is not applied. A tie
    /// keeps the revocation (fail closed).
    fn record(&mut self, event: RevocationEvent) {
        let at = event.revoked_at;
        let scoped = (event.kind, event.value, event.issuer);
        if event.reinstated {
            let lifted = self.lifted.entry(scoped.clone()).or_insert(at);
            *lifted = (*lifted).max(at);
            let (kind, value, issuer) = scoped;
            if let Some(scopes) = self.revoked.get_mut(&(kind, value.clone())) {
                if scopes.get(&issuer).is_some_and(|revoked| *revoked < at) {
                    scopes.remove(&issuer);
                }
                if scopes.is_empty() {
                    self.revoked.remove(&(kind, value));
                }
            }
            return;
        }
        if self.lifted.get(&scoped).is_some_and(|lifted| at < *lifted) {
            return;
        }
        let (kind, value, issuer) = scoped;
        let revoked = self
            .revoked
            .entry((kind, value))
            .or_default()
            .entry(issuer)
            .or_insert(at);
        *revoked = (*revoked).max(at);
    }

    /// Forget what no token can need any more: session and token revocations and
    /// reinstatements after `retain`; offboarding (subject, agent, client) stays until
    /// a reinstatement is heard, as it does at mcp-sts.
    fn prune(&mut self, retain: u64, now: UnixTime) {
        let live = |at: &UnixTime| at.saturating_add(retain) > now;
        self.revoked.retain(|(kind, _), scopes| {
            if matches!(kind, RevocationKind::Session | RevocationKind::Token) {
                scopes.retain(|_, at| live(at));
            }
            !scopes.is_empty()
        });
        self.lifted.retain(|_, at| live(at));
    }

    fn to_state(&self) -> StreamState {
        let mut revoked: Vec<HeardRevocation> = self
            .revoked
            .iter()
            .flat_map(|((kind, value), scopes)| {
                scopes.iter().map(|(issuer, at)| HeardRevocation {
                    kind: *kind,
                    value: value.clone(),
                    issuer: issuer.clone(),
                    revoked_at: *at,
                })
            })
            .collect();
        revoked.sort_by(|a, b| (a.kind, &a.value, &a.issuer).cmp(&(b.kind, &b.value, &b.issuer)));
        let mut lifted: Vec<HeardRevocation> = self
            .lifted
            .iter()
            .map(|((kind, value, issuer), at)| HeardRevocation {
                kind: *kind,
                value: value.clone(),
                issuer: issuer.clone(),
                revoked_at: *at,
            })
            .collect();
        lifted.sort_by(|a, b| (a.kind, &a.value, &a.issuer).cmp(&(b.kind, &b.value, &b.issuer)));
        StreamState {
            version: 0,
            stream_id: self.stream_id.clone(),
            covered_since: self.covered_since,
            revoked,
            lifted,
        }
    }
}

/// A subscription to mcp-sts's revocation events; share one per service (`Arc`) and
/// hand it to [`super::VerifierConfig::revocation_stream`].
pub struct RevocationStream {
    config: RevocationStreamConfig,
    receiver: Receiver,
    keys: Arc<StsKeys>,
    heard: RwLock<Heard>,
    applied: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for RevocationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationStream")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(why: impl Into<String>) -> VerifyError {
    VerifyError::RevocationStreamUnavailable(why.into())
}

impl RevocationStream {
    /// A subscription; nothing is fetched until the first poll. With a `state_path`,
    /// the revocations heard before a restart are loaded here; a state file that
    /// exists but cannot be read is an error (starting without it would forget them).
    pub fn new(config: RevocationStreamConfig) -> Result<Self, VerifyError> {
        if config.issuer.is_empty() || config.client_id.is_empty() {
            return Err(VerifyError::Config(
                "revocation stream needs issuer and client_id".into(),
            ));
        }
        let http = mcp_sts_contract::fetch::http_client(config.http_timeout)
            .map_err(|e| VerifyError::Config(format!("HTTP client: {e}")))?;
        let receiver = ReceiverConfig {
            issuer: config.issuer.clone(),
            configuration_url: config.configuration_url.clone(),
            authorization: Some(Secret::new(basic_authorization(
                &config.client_id,
                &config.client_secret,
            ))),
            stream: StreamChoice {
                description: format!("mcp-sts verifier {}", config.instance),
                events_requested: events_supported(&config.issuer),
                adopt: Adopt::Described,
            },
            // mcp-sts names its key.
            sets: SetRules {
                audience: config.client_id.clone(),
                max_bytes: MAX_SET_BYTES,
                leeway: config.leeway.as_secs(),
                kid_required: true,
                max_age: None,
            },
            http_timeout: config.http_timeout,
            poll_deadline: config.poll_deadline,
        };
        let rules = KeyCacheRules {
            jwks_uri: config.jwks_uri.clone(),
            ttl: config.jwks_cache_ttl,
            min_refresh: config.jwks_min_refresh_interval,
            timeout: config.http_timeout,
        };
        let keys = Arc::new(StsKeys::new(rules, http.clone()));
        let heard = match &config.state_path {
            Some(path) => stream_state::load(path)
                .map_err(|e| VerifyError::Config(e.to_string()))?
                .map(Heard::from_state)
                .unwrap_or_default(),
            None => Heard::default(),
        };
        Ok(Self {
            config,
            receiver: Receiver::new(receiver, http),
            keys,
            heard: RwLock::new(heard),
            applied: tokio::sync::watch::channel(0).0,
        })
    }

    /// The key cache of the STS's JWKS, which a verifier reading the same JWKS shares.
    pub(crate) fn keys(&self) -> &Arc<StsKeys> {
        &self.keys
    }

    fn read_heard<T>(&self, f: impl FnOnce(&Heard) -> T) -> T {
        match self.heard.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write_heard<T>(&self, f: impl FnOnce(&mut Heard) -> T) -> T {
        match self.heard.write() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// When the stream last answered, if ever.
    pub fn last_heard(&self) -> Option<UnixTime> {
        self.receiver.last_heard()
    }

    /// Tokens issued after this (plus `leeway`) are covered by what the stream hears;
    /// `None` until the first successful poll.
    pub fn covered_since(&self) -> Option<UnixTime> {
        self.read_heard(|h| h.covered_since)
    }

    /// mcp-sts's issuer URL, the one the stream's events come from.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// When the latest revocation of `value` as `kind` (for any issuer) was made, if
    /// the stream heard of one.
    pub fn heard(&self, kind: RevocationKind, value: &str) -> Option<UnixTime> {
        self.read_heard(|h| {
            h.revoked
                .get(&(kind, value.to_owned()))
                .and_then(|scopes| scopes.values().max().copied())
        })
    }

    /// When the revocation of `value` as `kind` limited to `issuer` (`None`: for every
    /// issuer) was made, if the stream heard of it.
    pub fn heard_for(&self, kind: RevocationKind, issuer: Option<&str>, value: &str) -> Option<UnixTime> {
        self.read_heard(|h| {
            h.revoked
                .get(&(kind, value.to_owned()))
                .and_then(|scopes| scopes.get(&issuer.map(str::to_owned)).copied())
        })
    }

    /// The first of `keys` a heard revocation reaches (by the contract's issuer rule)
    /// for a token `reach` describes.
    fn hit(&self, heard: &Heard, keys: &[LineageKey<'_>], reach: Reach) -> Option<RevocationKind> {
        let leeway = self.config.leeway.as_secs();
        let reached = |at: UnixTime| match reach {
            Reach::IssuedAtOrBefore(iat) => iat.is_none_or(|iat| iat <= at.saturating_add(leeway)),
            Reach::Always => true,
        };
        keys.iter()
            .find(|key| {
                heard
                    .revoked
                    .get(&(key.kind, key.value.to_owned()))
                    .is_some_and(|scopes| {
                        scopes
                            .iter()
                            .any(|(issuer, at)| covers(issuer.as_deref(), key.namespace) && reached(*at))
                    })
            })
            .map(|key| key.kind)
    }

    /// Whether a heard revocation ends a token mcp-sts minted with this lineage, issued
    /// at `iat` (whatever the stream's freshness): what a cache of tokens drops.
    pub fn revokes(&self, keys: &[LineageKey<'_>], iat: Option<UnixTime>) -> bool {
        self.read_heard(|heard| self.hit(heard, keys, Reach::IssuedAtOrBefore(iat)).is_some())
    }

    /// Counts revocations applied so far; changes each time one is heard, so a caller
    /// can await news instead of polling.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Write what was heard to the state file, if there is one.
    fn save(&self) -> Result<(), VerifyError> {
        let Some(path) = &self.config.state_path else {
            return Ok(());
        };
        let state = self.read_heard(Heard::to_state);
        stream_state::store(path, &state).map_err(|e| {
            tracing::error!(error = %e, "cannot save the revocation stream's state; not acknowledging");
            unavailable(e.to_string())
        })
    }

    /// Refuse `claims` if a heard revocation covers them; otherwise say whether the
    /// stream is fresh enough to vouch for them at `now`.
    pub fn check(&self, claims: &AccessClaims, now: UnixTime) -> Result<StreamVerdict, VerifyError> {
        self.check_lineage(&lineage(claims), claims.iat, now)
    }

    /// [`RevocationStream::check`] for a token mcp-sts minted, given its lineage (the
    /// contract's `lineage`) and when it was issued: a heard revocation refuses tokens
    /// issued at or before it (mcp-sts mints nothing for what is revoked).
    pub fn check_lineage(
        &self,
        keys: &[LineageKey<'_>],
        iat: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<StreamVerdict, VerifyError> {
        self.verdict(keys, iat, Reach::IssuedAtOrBefore(iat), now)
    }

    /// [`RevocationStream::check`] for a token mcp-sts did not mint (an identity
    /// provider's, at the MCP server kit), given its lineage (`upstream_lineage`) and
    /// when it was issued: its issuer goes on minting for a user mcp-sts revoked, so a
    /// heard revocation refuses such tokens whenever they were issued, until a
    /// reinstatement is heard.
    pub fn check_foreign(
        &self,
        keys: &[LineageKey<'_>],
        iat: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<StreamVerdict, VerifyError> {
        self.verdict(keys, iat, Reach::Always, now)
    }

    fn verdict(
        &self,
        keys: &[LineageKey<'_>],
        iat: Option<UnixTime>,
        reach: Reach,
        now: UnixTime,
    ) -> Result<StreamVerdict, VerifyError> {
        let leeway = self.config.leeway.as_secs();
        let (hit, covered_since) = self.read_heard(|heard| (self.hit(heard, keys, reach), heard.covered_since));
        let last_heard = self.receiver.last_heard();
        if let Some(kind) = hit {
            tracing::debug!(%kind, "token refused: revoked (heard on the revocation stream)");
            return Err(VerifyError::Revoked);
        }
        let age = last_heard.map(|t| now.saturating_sub(t));
        let fresh = age.is_some_and(|age| age <= self.config.max_staleness.as_secs());
        // A token issued before the stream existed (or before a restart without a state
        // file) may have been revoked in a way this stream never heard.
        let covered = covered_since.is_some_and(|since| iat.is_some_and(|iat| iat > since.saturating_add(leeway)));
        if fresh && covered {
            return Ok(StreamVerdict::Clear);
        }
        let since = match age {
            _ if fresh => "the token predates what the stream covers".to_owned(),
            Some(a) => format!("last heard {a} s ago"),
            None => "never heard from".to_owned(),
        };
        if self.config.introspection_fallback {
            tracing::warn!(%since, "revocation stream is stale; falling back to introspection");
            Ok(StreamVerdict::AskIntrospection)
        } else {
            tracing::warn!(%since, "revocation stream is stale; failing closed");
            Err(VerifyError::RevocationStreamStale(since))
        }
    }

    /// Poll until the stream is drained and everything applied is acknowledged, within
    /// `poll_deadline` (waiting for a poll under way included). Returns how many
    /// revocations were applied. Tests call this on demand; [`RevocationStream::spawn`]
    /// calls it every `poll_interval`.
    pub async fn poll_once(&self, now: UnixTime) -> Result<usize, VerifyError> {
        let applied = self.receiver.poll(self, now).await.map_err(|e| match e {
            PollError::Transmitter(why) => unavailable(why),
            PollError::KeysUnavailable(why) => VerifyError::JwksUnavailable(why),
            PollError::Sink(e) => e,
        })?;
        let retain = self.config.retain.as_secs();
        self.write_heard(|heard| heard.prune(retain, now));
        Ok(applied)
    }

    /// The first successful poll of a subscription: when the stream is the one the
    /// state remembers, coverage goes on; otherwise events may have been missed, and
    /// coverage starts at `exists_from`. Saved before anything is acknowledged.
    fn settle_coverage(&self, stream_id: &str, exists_from: UnixTime) -> Result<(), VerifyError> {
        let changed = self.write_heard(|heard| {
            let continued = heard.stream_id.as_deref() == Some(stream_id) && heard.covered_since.is_some();
            if continued {
                return false;
            }
            heard.stream_id = Some(stream_id.to_owned());
            heard.covered_since = Some(exists_from);
            true
        });
        if changed {
            tracing::info!(
                covered_since = exists_from,
                "revocation stream covers tokens issued from now on; older ones take the stale path"
            );
            self.save()?;
        }
        Ok(())
    }

    /// Poll every `poll_interval` (system clock) until the task is aborted.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_with(Arc::new(SystemClock), |_| {})
    }

    /// Poll every `poll_interval`, reading time from `clock`, until the task is
    /// aborted; `after` runs after each successful poll with how many revocations it
    /// applied (the MCP server kit drops cached tokens there).
    pub fn spawn_with(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        after: impl Fn(usize) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.poll_once(clock.now()).await {
                    Ok(applied) => after(applied),
                    Err(error) => tracing::warn!(%error, "revocation stream poll failed"),
                }
                tokio::time::sleep(self.config.poll_interval).await;
            }
        })
    }
}

/// What a revocation SET does here: remembered, kept in the state file before it is
/// acknowledged, and counted for whoever awaits news.
impl EventSink for RevocationStream {
    type Keys = JwksCache;
    type Error = VerifyError;

    fn keys(&self) -> &JwksCache {
        &self.keys.cache
    }

    /// `Ok(false)` for a verification event, which announces nothing.
    async fn apply(&self, set: SetClaims, now: UnixTime) -> Result<bool, Rejection<VerifyError>> {
        let event = read_revocation(&self.config.issuer, &set).map_err(|e| {
            Rejection::Refused(match e {
                SetError::EventCount | SetError::UnsupportedEvent => "events",
                SetError::UnsupportedSubject => "subject",
            })
        })?;
        let Some(event) = event else {
            return Ok(false);
        };
        if event.revoked_at > now.saturating_add(self.config.leeway.as_secs()) {
            return Err(Rejection::Refused("event_timestamp"));
        }
        tracing::info!(
            kind = %event.kind,
            issuer = event.issuer.as_deref().unwrap_or("every issuer"),
            reinstated = event.reinstated,
            "revocation heard on the stream"
        );
        self.write_heard(|heard| heard.record(event));
        Ok(true)
    }

    fn confirmed(&self, stream_id: Option<&str>, exists_from: UnixTime) -> Result<(), VerifyError> {
        let stream_id = stream_id.ok_or_else(|| unavailable("the stream has no id"))?;
        self.settle_coverage(stream_id, exists_from)
    }

    /// Durable before acknowledged: mcp-sts never sends them again.
    fn acknowledging(&self) -> Result<(), VerifyError> {
        self.save()?;
        self.applied.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reinstated: bool, at: UnixTime) -> RevocationEvent {
        RevocationEvent {
            kind: RevocationKind::Subject,
            value: "alice".into(),
            issuer: Some("https://idp".into()),
            revoked_at: at,
            reinstated,
        }
    }

    fn revoked(heard: &Heard) -> Option<UnixTime> {
        heard
            .revoked
            .get(&(RevocationKind::Subject, "alice".to_owned()))
            .and_then(|scopes| scopes.get(&Some("https://idp".to_owned())).copied())
    }

    #[test]
    fn events_of_one_poll_end_in_the_same_state_whatever_their_order() {
        // revoked at 10, lifted at 20, revoked again at 30: revoked, in every order.
        let orders = [
            [10, 20, 30],
            [10, 30, 20],
            [20, 10, 30],
            [20, 30, 10],
            [30, 10, 20],
            [30, 20, 10],
        ];
        for order in orders {
            let mut heard = Heard::default();
            for at in order {
                heard.record(event(at == 20, at));
            }
            assert_eq!(revoked(&heard), Some(30), "{order:?}");
        }
        // revoked at 10, lifted at 20: lifted, in either order.
        for order in [[10, 20], [20, 10]] {
            let mut heard = Heard::default();
            for at in order {
                heard.record(event(at == 20, at));
            }
            assert_eq!(revoked(&heard), None, "{order:?}");
        }
        // A tie keeps the revocation.
        let mut heard = Heard::default();
        heard.record(event(false, 10));
        heard.record(event(true, 10));
        assert_eq!(revoked(&heard), Some(10));
    }

    #[test]
    fn offboarding_is_kept_until_reinstated_and_sessions_for_retain() {
        let mut heard = Heard::default();
        heard.record(event(false, 10));
        heard.record(RevocationEvent {
            kind: RevocationKind::Session,
            ..event(false, 10)
        });
        heard.prune(100, 1_000_000);
        assert_eq!(revoked(&heard), Some(10));
        assert!(
            !heard
                .revoked
                .contains_key(&(RevocationKind::Session, "alice".to_owned()))
        );
        let state = heard.to_state();
        assert_eq!(Heard::from_state(state).revoked, heard.revoked);
    }
}
