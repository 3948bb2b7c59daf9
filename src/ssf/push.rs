//! RFC 8935 push delivery: each queued SET is POSTed to the receiver's endpoint with
//! the authorization header it registered; a 202 acknowledges it, a 400 means the
//! receiver refused it for good (logged, dropped), anything else is retried with
//! exponential backoff. A SET leaves the queue only once answered, so a crash or a
//! receiver outage loses nothing. Replicas push independently, so a receiver may see
//! a SET twice and must deduplicate by `jti` (RFC 8935 §2 allows this).
//!
//! Streams are delivered independently: each has its own task, at most
//! [`PUSH_CONCURRENCY`] at once, and a push has a connect deadline and a total one,
//! a stream's round a deadline of its own. A receiver that is slow, or accepts and
//! never answers, holds up only its own stream (which then backs off), never another
//! receiver's revocation; a new revocation wakes delivery at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::push_target::PushTargets;
use crate::config::SsfConfig;
use crate::error::OAuthError;
use crate::metrics::Metrics;
use crate::revocation::{Delivery, EventQueue, QueuedEvent, RevocationGate, StoreError, StreamRecord, StreamStatus};
use crate::service::Sts;
use mcp_sts_contract::clock::Clock;
use mcp_sts_contract::fetch::{FetchLimits, fetch};

/// SETs pushed per stream per round.
const BATCH: usize = 100;
/// Streams delivered at once by one replica.
pub(crate) const PUSH_CONCURRENCY: usize = 32;
/// Deadline to connect to a receiver.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline of one push: connecting, sending the SET, reading the answer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one stream's round (up to [`BATCH`] pushes).
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read from a receiver (RFC 8935 answers are empty or a short error).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Longest wait between retries of a failing endpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The push deliverer of one replica: an HTTP client, each stream's backoff, and the
/// streams being delivered now.
pub struct Pusher {
    /// `None` when no client could be built: nothing is pushed (never an unguarded one).
    http: Option<reqwest::Client>,
    targets: PushTargets,
    base: Duration,
    backoff: HashMap<String, (u32, Instant)>,
    running: JoinSet<Result<usize, ()>>,
    /// The stream each running task delivers.
    in_flight: HashMap<tokio::task::Id, String>,
    permits: Arc<Semaphore>,
}

/// What happened to one pushed SET.
enum Outcome {
    Delivered,
    Refused,
    Retry,
}

/// What push delivery needs of the service, and nothing more: owned, so each
/// stream's task holds its own.
#[derive(Clone)]
pub struct Pushing {
    /// `[ssf]`: the round interval and where pushes may go.
    pub config: Arc<SsfConfig>,
    /// Streams and queued SETs: reached only under the store deadline.
    pub events: Arc<dyn EventQueue>,
    /// The revocation store's deadline, which the queue shares.
    pub revocations: RevocationGate,
    /// Wakes delivery when an event is queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Pushing {
    /// The view of `sts`.
    pub fn of(sts: &Sts) -> Self {
        Self {
            config: Arc::new(sts.config().ssf.clone()),
            events: Arc::clone(sts.events()),
            revocations: sts.revocations().clone(),
            wake: Arc::clone(sts.ssf_wake()),
            metrics: Arc::clone(sts.metrics()),
            clock: Arc::clone(sts.clock()),
        }
    }

    /// Run a stream or queue operation under the store deadline.
    async fn store_call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        self.revocations.call(operation).await
    }
}

/// What one stream's delivery needs, moved into its task.
struct StreamDelivery {
    pushing: Pushing,
    http: reqwest::Client,
    targets: PushTargets,
    stream: StreamRecord,
}

impl Pusher {
    /// A deliverer whose first retry waits `base`, pushing only where `targets` allows
    /// (checked on the URL and again on every address a name resolves to).
    pub fn new(base: Duration, targets: PushTargets) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(PUSH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(targets.resolver())
            .build()
            .inspect_err(|error| tracing::error!(%error, "cannot build the push HTTP client; push delivery is off"))
            .ok();
        Self {
            http,
            targets,
            base,
            backoff: HashMap::new(),
            running: JoinSet::new(),
            in_flight: HashMap::new(),
            permits: Arc::new(Semaphore::new(PUSH_CONCURRENCY)),
        }
    }

    /// One round over every enabled push stream, waiting until every delivery under
    /// way has ended; returns how many SETs were delivered.
    pub async fn deliver_once(&mut self, pushing: &Pushing) -> usize {
        self.start_round(pushing).await;
        let mut delivered = 0;
        while let Some(joined) = self.running.join_next_with_id().await {
            delivered += self.finished(joined);
        }
        delivered
    }

    /// Start delivering every enabled push stream that has something due and is not
    /// already being delivered or backing off; returns at once.
    async fn start_round(&mut self, pushing: &Pushing) {
        let Some(http) = self.http.clone() else { return };
        let streams = match pushing.store_call(pushing.events.streams()).await {
            Ok(streams) => streams,
            Err(_) => return,
        };
        let now = Instant::now();
        self.backoff.retain(|id, _| streams.iter().any(|s| &s.stream_id == id));
        for stream in streams {
            if stream.status != StreamStatus::Enabled || !matches!(stream.delivery, Delivery::Push { .. }) {
                continue;
            }
            let waiting = self.backoff.get(&stream.stream_id).is_some_and(|(_, next)| *next > now);
            if waiting || self.in_flight.values().any(|id| id == &stream.stream_id) {
                continue;
            }
            let stream_id = stream.stream_id.clone();
            let permits = self.permits.clone();
            let delivery = StreamDelivery {
                pushing: pushing.clone(),
                http: http.clone(),
                targets: self.targets.clone(),
                stream,
            };
            let task = self.running.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return Err(());
                };
                tokio::time::timeout(ROUND_TIMEOUT, delivery.run())
                    .await
                    .unwrap_or(Err(()))
            });
            self.in_flight.insert(task.id(), stream_id);
        }
    }

    /// Record how a stream's delivery ended; the SETs it delivered.
    fn finished(&mut self, joined: Result<(tokio::task::Id, Result<usize, ()>), tokio::task::JoinError>) -> usize {
        let (task, outcome) = match joined {
            Ok((task, outcome)) => (task, outcome),
            Err(error) => (error.id(), Err(())),
        };
        let Some(stream_id) = self.in_flight.remove(&task) else {
            return 0;
        };
        match outcome {
            Ok(count) => {
                self.backoff.remove(&stream_id);
                count
            }
            Err(()) => {
                let failures = self.backoff.get(&stream_id).map_or(0, |(f, _)| *f).saturating_add(1);
                let wait = self
                    .base
                    .saturating_mul(2u32.saturating_pow(failures.min(16)))
                    .min(MAX_BACKOFF);
                tracing::warn!(%stream_id, failures, retry_in = ?wait, "push delivery failed; will retry");
                self.backoff.insert(stream_id, (failures, Instant::now() + wait));
                0
            }
        }
    }
}

impl StreamDelivery {
    /// Push what is queued, oldest first, until done or the first failure.
    async fn run(self) -> Result<usize, ()> {
        let Delivery::Push {
            endpoint_url,
            authorization_header,
        } = &self.stream.delivery
        else {
            return Ok(0);
        };
        let pushing = &self.pushing;
        let pending = pushing
            .store_call(pushing.events.pending(&self.stream.stream_id, BATCH))
            .await
            .map_err(|_| ())?;
        let backlog = pending.events.len() + usize::from(pending.more);
        let mut delivered = 0;
        for event in pending.events {
            match self.push(endpoint_url, authorization_header.as_deref(), &event).await {
                Outcome::Retry => return Err(()),
                Outcome::Refused => {
                    tracing::warn!(stream_id = %self.stream.stream_id, set = %event.jti, "receiver refused a pushed SET; dropped");
                }
                Outcome::Delivered => delivered += 1,
            }
            pushing
                .store_call(
                    pushing
                        .events
                        .acknowledge(&self.stream.stream_id, std::slice::from_ref(&event.jti)),
                )
                .await
                .map_err(|_| ())?;
        }
        pushing.metrics.stream_served(
            &self.stream.owner,
            "push",
            backlog.saturating_sub(delivered),
            pushing.clock.now(),
        );
        Ok(delivered)
    }

    #[tracing::instrument(name = "ssf_push", target = "mcp_sts::trace", skip_all, fields(otel.kind = "client", receiver = %self.stream.owner))]
    async fn push(&self, url: &str, authorization: Option<&str>, event: &QueuedEvent) -> Outcome {
        // Streams registered under an earlier, looser rule are held, not pushed.
        let allowed = url::Url::parse(url)
            .map_err(|_| "unparsable")
            .and_then(|u| self.targets.check(&u));
        if let Err(rule) = allowed {
            tracing::warn!(rule, "push endpoint not allowed by [ssf] push rules; holding its SETs");
            return Outcome::Retry;
        }
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(event.set.clone());
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let limits = FetchLimits {
            timeout: PUSH_TIMEOUT,
            max_bytes: MAX_ANSWER_BYTES,
        };
        match fetch(request, limits).await {
            Ok(answer) if answer.status == reqwest::StatusCode::ACCEPTED => Outcome::Delivered,
            Ok(answer) if answer.status == reqwest::StatusCode::BAD_REQUEST => Outcome::Refused,
            Ok(_) | Err(_) => Outcome::Retry,
        }
    }
}

/// Run the deliverer every `[ssf] push_interval_ms`, and at once when a revocation is
/// queued, until aborted. Deliveries run beside the loop: a slow stream is still
/// being delivered while the next rounds start the others.
pub fn spawn(pushing: Pushing) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(pushing.config.push_interval_ms);
        let mut pusher = Pusher::new(interval, PushTargets::from_config(&pushing.config));
        loop {
            // Listening before the round starts: a revocation queued meanwhile is not missed.
            let wake = pushing.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            pusher.start_round(&pushing).await;
            let next_round = tokio::time::sleep(interval);
            tokio::pin!(next_round);
            loop {
                tokio::select! {
                    () = &mut next_round => break,
                    () = &mut wake => break,
                    Some(joined) = pusher.running.join_next_with_id(), if !pusher.running.is_empty() => {
                        pusher.finished(joined);
                    }
                }
            }
        }
    })
}
