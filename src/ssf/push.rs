//! RFC 8935 push delivery: each queued SET is POSTed to the receiver's endpoint with
//! the authorization header it registered; a 202 acknowledges it, a 400 means the
//! receiver refused it for good (logged, dropped), anything else is retried with
//! exponential backoff. A SET leaves the queue only once answered, so a crash or a
//! receiver outage loses nothing. Replicas push independently, so a receiver may see
//! a SET twice and must deduplicate by `jti` (RFC 8935 §2 allows this).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::push_target::PushTargets;
use crate::revocation::{Delivery, StreamRecord, StreamStatus};
use crate::service::Sts;

/// SETs pushed per stream per round.
const BATCH: usize = 100;
/// Timeout of one push.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between retries of a failing endpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The push deliverer of one replica: an HTTP client and each stream's backoff.
pub struct Pusher {
    /// `None` when no client could be built: nothing is pushed (never an unguarded one).
    http: Option<reqwest::Client>,
    targets: PushTargets,
    base: Duration,
    backoff: HashMap<String, (u32, Instant)>,
}

/// What happened to one pushed SET.
enum Outcome {
    Delivered,
    Refused,
    Retry,
}

impl Pusher {
    /// A deliverer whose first retry waits `base`, pushing only where `targets` allows
    /// (checked on the URL and again on every address a name resolves to).
    pub fn new(base: Duration, targets: PushTargets) -> Self {
        let http = reqwest::Client::builder()
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
        }
    }

    /// One round over every enabled push stream; returns how many SETs were delivered.
    pub async fn deliver_once(&mut self, sts: &Sts) -> usize {
        let streams = match sts.store_call(sts.events.streams()).await {
            Ok(streams) => streams,
            Err(_) => return 0,
        };
        let mut delivered = 0;
        let now = Instant::now();
        for stream in streams {
            if stream.status != StreamStatus::Enabled || !matches!(stream.delivery, Delivery::Push { .. }) {
                continue;
            }
            if self.backoff.get(&stream.stream_id).is_some_and(|(_, next)| *next > now) {
                continue;
            }
            match self.deliver_stream(sts, &stream).await {
                Ok(count) => {
                    delivered += count;
                    self.backoff.remove(&stream.stream_id);
                }
                Err(()) => {
                    let failures = self
                        .backoff
                        .get(&stream.stream_id)
                        .map_or(0, |(f, _)| *f)
                        .saturating_add(1);
                    let wait = self
                        .base
                        .saturating_mul(2u32.saturating_pow(failures.min(16)))
                        .min(MAX_BACKOFF);
                    tracing::warn!(stream_id = %stream.stream_id, failures, retry_in = ?wait, "push delivery failed; will retry");
                    self.backoff.insert(stream.stream_id.clone(), (failures, now + wait));
                }
            }
        }
        delivered
    }

    async fn deliver_stream(&self, sts: &Sts, stream: &StreamRecord) -> Result<usize, ()> {
        let Delivery::Push {
            endpoint_url,
            authorization_header,
        } = &stream.delivery
        else {
            return Ok(0);
        };
        let pending = sts
            .store_call(sts.events.pending(&stream.stream_id, BATCH))
            .await
            .map_err(|_| ())?;
        let mut delivered = 0;
        for event in pending.events {
            let outcome = self
                .push(endpoint_url, authorization_header.as_deref(), &event.set)
                .await;
            match outcome {
                Outcome::Retry => return Err(()),
                Outcome::Refused => {
                    tracing::warn!(stream_id = %stream.stream_id, set = %event.jti, "receiver refused a pushed SET; dropped");
                }
                Outcome::Delivered => delivered += 1,
            }
            sts.store_call(
                sts.events
                    .acknowledge(&stream.stream_id, std::slice::from_ref(&event.jti)),
            )
            .await
            .map_err(|_| ())?;
        }
        Ok(delivered)
    }

    async fn push(&self, url: &str, authorization: Option<&str>, set: &str) -> Outcome {
        // Streams registered under an earlier, looser rule are held, not pushed.
        let allowed = url::Url::parse(url)
            .map_err(|_| "unparsable")
            .and_then(|u| self.targets.check(&u));
        if let Err(rule) = allowed {
            tracing::warn!(rule, "push endpoint not allowed by [ssf] push rules; holding its SETs");
            return Outcome::Retry;
        }
        let Some(http) = &self.http else {
            return Outcome::Retry;
        };
        let mut request = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(set.to_owned());
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        match request.send().await {
            Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => Outcome::Delivered,
            Ok(response) if response.status() == reqwest::StatusCode::BAD_REQUEST => Outcome::Refused,
            Ok(_) | Err(_) => Outcome::Retry,
        }
    }
}

/// Run the deliverer every `[ssf] push_interval_ms` until aborted.
pub fn spawn(sts: Arc<Sts>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(sts.config.ssf.push_interval_ms);
        let mut pusher = Pusher::new(interval, PushTargets::from_config(&sts.config.ssf));
        loop {
            pusher.deliver_once(&sts).await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = sts.ssf_wake.notified() => {}
            }
        }
    })
}
