//! The one Shared Signals receiver (RFC 8936 poll delivery, OpenID SSF 1.0): find or
//! create a poll stream at a transmitter, poll it, verify every SET, hand each verified
//! SET to an [`EventSink`], and acknowledge it, or report it in `setErrs`.
//!
//! mcp-sts receives its upstream identity providers' events with it (`ssf::upstream`),
//! and a downstream service receives mcp-sts's revocations with it
//! ([`crate::verify::RevocationStream`]); what each does with an event is its sink's
//! business. It needs no server module, and every call to the transmitter is read
//! through the one capped [`mcp_sts_contract::fetch::fetch`].
//!
//! In order, each poll: the stream is found (or created) once and remembered until the
//! transmitter says it is gone (404); each page asks for up to [`MAX_EVENTS`] SETs and
//! carries the acknowledgements and `setErrs` of the page before; a SET whose keys are
//! unreachable stops the poll and stays queued at the transmitter; before anything is
//! acknowledged the sink is told ([`EventSink::acknowledging`]), so what it must keep
//! is kept first. The whole poll, waiting for one already under way included, has a
//! deadline. When it ends well, [`Receiver::last_heard`] moves: what staleness is
//! measured from.

mod set;
mod subscribe;

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub use set::{SetRefusal, SetRules};
pub use subscribe::{Adopt, StreamChoice};

use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::fetch::{FetchLimits, fetch};
use mcp_sts_contract::identifier::printable;
use mcp_sts_contract::jose::KeySource;
use mcp_sts_contract::secret::Secret;
use mcp_sts_contract::set::SetClaims;

/// Most SETs asked for per page.
pub const MAX_EVENTS: usize = 100;
/// Most pages read in one poll; the rest waits for the next.
pub const MAX_PAGES: usize = 100;
/// Largest answer read from the transmitter: streamed, and cut off past this.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Where a receiver subscribes and how it reads what it hears.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The transmitter's issuer: its metadata must name it, and every SET's `iss`.
    pub issuer: String,
    /// The transmitter's metadata (`/.well-known/ssf-configuration`).
    pub configuration_url: String,
    /// The `Authorization` header sent with every call, if any.
    pub authorization: Option<Secret>,
    /// Which stream is ours, and what a new one asks for.
    pub stream: StreamChoice,
    /// The rules every SET is read by.
    pub sets: SetRules,
    /// Deadline of each call to the transmitter (connect, head and body).
    pub http_timeout: Duration,
    /// Deadline of one whole poll (subscribing, every page, the acknowledgement), and
    /// of the wait for a poll already under way.
    pub poll_deadline: Duration,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("issuer", &self.issuer)
            .field("configuration_url", &self.configuration_url)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// What a sink does with a SET it was handed, when it does not take it.
#[derive(Debug)]
pub enum Rejection<E> {
    /// The SET breaks a rule of the sink's (the `setErrs` description): reported to
    /// the transmitter, never applied.
    Refused(&'static str),
    /// The sink cannot apply anything now (its store is down): the poll stops and the
    /// SET stays queued at the transmitter.
    Stop(E),
}

/// What a receiver does with what it hears.
pub trait EventSink: Sync {
    /// The keys SETs from this transmitter are signed with.
    type Keys: KeySource + Sync;
    /// Why the sink could not go on.
    type Error: Send;

    /// The transmitter's keys.
    fn keys(&self) -> &Self::Keys;

    /// Apply one SET that passed the receiver's rules: `Ok(true)` when it changed
    /// something, `Ok(false)` when there was nothing to do (a replay, an event type not
    /// acted on). Either way it is acknowledged.
    fn apply(&self, set: SetClaims, now: UnixTime)
    -> impl Future<Output = Result<bool, Rejection<Self::Error>>> + Send;

    /// The first answer from a stream just found or created: `stream_id` as the
    /// transmitter names it, and the latest moment it may have come into existence.
    fn confirmed(&self, _stream_id: Option<&str>, _exists_from: UnixTime) -> Result<(), Self::Error> {
        Ok(())
    }

    /// SETs are about to be acknowledged: the transmitter will never send them again,
    /// so whatever must outlive a restart is kept now.
    fn acknowledging(&self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Why a poll stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError<E> {
    /// The transmitter could not be reached or answered unexpectedly; tried again at
    /// the next poll.
    #[error("transmitter: {0}")]
    Transmitter(String),
    /// The transmitter's keys are unavailable; the SETs stay queued.
    #[error("the transmitter's keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// The sink could not go on.
    #[error("{0}")]
    Sink(E),
}

/// The stream polled.
#[derive(Debug, Clone)]
struct Subscription {
    endpoint: String,
    stream_id: Option<String>,
    /// Until the first answer, the latest moment the stream may have come into
    /// existence; `None` once the sink was told.
    exists_from: Option<UnixTime>,
}

/// A subscription to one transmitter; nothing is fetched until the first poll.
pub struct Receiver {
    config: ReceiverConfig,
    http: reqwest::Client,
    /// The stream polled; never held across a call to the transmitter.
    subscription: Mutex<Option<Subscription>>,
    /// One poll at a time; held at most for a poll's deadline.
    polling: tokio::sync::Mutex<()>,
    last_heard: Mutex<Option<UnixTime>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Lock `mutex` even if a holder panicked: what it guards stays consistent.
fn locked<T, R>(mutex: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match mutex.lock() {
        Ok(mut guard) => f(&mut guard),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// One answer from the transmitter.
struct Answer {
    status: u16,
    body: Value,
}

impl Receiver {
    /// A receiver calling the transmitter through `http`.
    pub fn new(config: ReceiverConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            subscription: Mutex::new(None),
            polling: tokio::sync::Mutex::new(()),
            last_heard: Mutex::new(None),
        }
    }

    /// Where and how this receiver subscribes.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// When a poll last ended well (by the `now` it was given), if ever.
    pub fn last_heard(&self) -> Option<UnixTime> {
        locked(&self.last_heard, |t| *t)
    }

    /// Poll until drained (or [`MAX_PAGES`] pages), handing each verified SET to `sink`
    /// and acknowledging it, within the poll deadline; returns how many SETs the sink
    /// applied.
    pub async fn poll<S: EventSink>(&self, sink: &S, now: UnixTime) -> Result<usize, PollError<S::Error>> {
        let polled = tokio::time::timeout(self.config.poll_deadline, async {
            let _turn = self.polling.lock().await;
            self.poll_pages(sink, now).await
        })
        .await;
        let applied = polled.unwrap_or_else(|_| {
            Err(PollError::Transmitter(
                "the poll did not finish within its deadline".into(),
            ))
        })?;
        locked(&self.last_heard, |t| *t = Some(now));
        Ok(applied)
    }

    /// The stream to poll: the one known, or one found or created now.
    async fn current_subscription<E>(&self, now: UnixTime) -> Result<Subscription, PollError<E>> {
        if let Some(known) = locked(&self.subscription, |s| s.clone()) {
            return Ok(known);
        }
        let started = Instant::now();
        let (endpoint, stream_id) = self.subscribe().await.map_err(PollError::Transmitter)?;
        // The stream exists by the end of `subscribe`: at the latest `now` plus the
        // time it took, rounded up (`now` is read when the poll starts).
        let found = Subscription {
            endpoint,
            stream_id,
            exists_from: Some(now.saturating_add(started.elapsed().as_secs()).saturating_add(1)),
        };
        locked(&self.subscription, |s| *s = Some(found.clone()));
        Ok(found)
    }

    fn forget_subscription(&self) {
        locked(&self.subscription, |s| *s = None);
    }

    /// One POST to the poll endpoint; a stream the transmitter no longer knows is
    /// forgotten, to be found or created again at the next poll.
    async fn post_poll<E>(&self, endpoint: &str, body: &Value) -> Result<Value, PollError<E>> {
        let answer = self
            .call(reqwest::Method::POST, endpoint, Some(body))
            .await
            .map_err(PollError::Transmitter)?;
        match answer.status {
            200 => Ok(answer.body),
            404 => {
                self.forget_subscription();
                Err(PollError::Transmitter(
                    "the stream no longer exists; it will be found or created again".into(),
                ))
            }
            status => Err(PollError::Transmitter(format!("poll answered HTTP {status}"))),
        }
    }

    async fn poll_pages<S: EventSink>(&self, sink: &S, now: UnixTime) -> Result<usize, PollError<S::Error>> {
        let subscription = self.current_subscription(now).await?;
        let mut applied = 0;
        let mut acks: Vec<String> = Vec::new();
        let mut errors = Map::new();
        for page in 1..=MAX_PAGES {
            let body = json!({ "ack": acks, "setErrs": errors, "maxEvents": MAX_EVENTS, "returnImmediately": true });
            let answer = self.post_poll(&subscription.endpoint, &body).await?;
            acks.clear();
            errors.clear();
            if answer.is_null() {
                return Err(PollError::Transmitter("the poll answer is not JSON".into()));
            }
            if let Some(exists_from) = subscription.exists_from {
                self.confirm(sink, &subscription, exists_from)?;
            }
            let sets = answer
                .get("sets")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (jti, set) in &sets {
                match self.receive(sink, set.as_str().unwrap_or_default(), now).await? {
                    Ok(changed) => {
                        applied += usize::from(changed);
                        acks.push(jti.clone());
                    }
                    Err(refusal) => {
                        tracing::warn!(transmitter = %self.config.issuer, set = %printable(jti), rule = refusal.rule, "refused a SET; not applied");
                        errors.insert(jti.clone(), json!({ "err": refusal.err, "description": refusal.rule }));
                    }
                }
            }
            let more = answer.get("moreAvailable").and_then(Value::as_bool).unwrap_or(false) && page < MAX_PAGES;
            if !more && acks.is_empty() && errors.is_empty() {
                break;
            }
            if !acks.is_empty() {
                sink.acknowledging().map_err(PollError::Sink)?;
            }
            if !more {
                let ack_only = json!({ "ack": acks, "setErrs": errors, "maxEvents": 0, "returnImmediately": true });
                self.post_poll(&subscription.endpoint, &ack_only).await?;
                break;
            }
        }
        Ok(applied)
    }

    /// Tell the sink the stream answered for the first time since it was found.
    fn confirm<S: EventSink>(
        &self,
        sink: &S,
        subscription: &Subscription,
        exists_from: UnixTime,
    ) -> Result<(), PollError<S::Error>> {
        if let Err(e) = sink.confirmed(subscription.stream_id.as_deref(), exists_from) {
            self.forget_subscription();
            return Err(PollError::Sink(e));
        }
        locked(&self.subscription, |s| {
            if let Some(s) = s.as_mut() {
                s.exists_from = None;
            }
        });
        Ok(())
    }

    /// One SET: the receiver's rules, then the sink's. The outer error stops the poll;
    /// the inner one is a refusal for `setErrs`.
    async fn receive<S: EventSink>(
        &self,
        sink: &S,
        set: &str,
        now: UnixTime,
    ) -> Result<Result<bool, SetRefusal>, PollError<S::Error>> {
        let claims = match set::read(set, &self.config.issuer, &self.config.sets, sink.keys(), now).await {
            Ok(claims) => claims,
            Err(set::Unread::KeysUnavailable(why)) => return Err(PollError::KeysUnavailable(why)),
            Err(set::Unread::Refused(refusal)) => return Ok(Err(refusal)),
        };
        match sink.apply(claims, now).await {
            Ok(changed) => Ok(Ok(changed)),
            Err(Rejection::Refused(rule)) => Ok(Err(SetRefusal::new(rule))),
            Err(Rejection::Stop(e)) => Err(PollError::Sink(e)),
        }
    }

    /// One call to the transmitter, read under the byte cap within `http_timeout`; a
    /// body that is not JSON reads as `null`.
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Result<Answer, String> {
        let mut request = self.http.request(method, url);
        if let Some(authorization) = &self.config.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let limits = FetchLimits {
            timeout: self.config.http_timeout,
            max_bytes: MAX_RESPONSE_BYTES,
        };
        let fetched = fetch(request, limits).await.map_err(|e| format!("{url}: {e}"))?;
        let body = serde_json::from_slice(&fetched.body).unwrap_or(Value::Null);
        Ok(Answer {
            status: fetched.status.as_u16(),
            body,
        })
    }
}
