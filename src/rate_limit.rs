//! Rate limits per calling client and per subject (user), so one runaway agent or
//! one hijacked account cannot take the whole service's capacity.
//!
//! Each limit is a GCRA token bucket per key (the `governor` crate): a sustained rate
//! per second and a burst. Keys that have been idle long enough to be indistinguishable
//! from new ones are forgotten now and then, so memory follows the active keys only.
//! A refusal says how long to wait; the HTTP layer sends it as 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::LimitsConfig;
use crate::error::OAuthError;
use crate::metrics::LimitLabels;

/// Forget idle keys once per this many checks.
const PRUNE_EVERY: u64 = 4096;

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitScope {
    /// The authenticated client of `/token`.
    Client,
    /// The user named by the subject token.
    Subject,
}

impl LimitScope {
    /// The metric label and rule suffix.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LimitScope::Client => "client",
            LimitScope::Subject => "subject",
        }
    }
}

/// A refused request: which limit, and how long until one more would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} rate limit reached; retry in {retry_after:?}", scope.as_str())]
pub(crate) struct RateLimited {
    /// The limit that refused.
    pub scope: LimitScope,
    /// The earliest a retry can succeed.
    pub retry_after: Duration,
}

impl From<RateLimited> for OAuthError {
    fn from(refusal: RateLimited) -> Self {
        let rule = match refusal.scope {
            LimitScope::Client => "rate_limit.client",
            LimitScope::Subject => "rate_limit.subject",
        };
        // Whole seconds, rounded up, and at least one: `Retry-After` has no fractions.
        let seconds = refusal.retry_after.as_secs() + u64::from(refusal.retry_after.subsec_nanos() > 0);
        OAuthError::rate_limited(rule, seconds.max(1))
    }
}

type Keyed<C> = RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The configured limits; a limit left unset never refuses.
pub struct RateLimits<C: Clock = DefaultClock> {
    client: Option<Keyed<C>>,
    subject: Option<Keyed<C>>,
    clock: C,
    checks: AtomicU64,
    refused: Family<LimitLabels, Counter>,
}

impl<C: Clock> std::fmt::Debug for RateLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("client", &self.client.is_some())
            .field("subject", &self.subject.is_some())
            .finish()
    }
}

impl RateLimits<DefaultClock> {
    /// Limits from `[limits]`, on the monotonic clock, counting refusals in `refused`.
    pub(crate) fn new(config: &LimitsConfig, refused: Family<LimitLabels, Counter>) -> Self {
        Self {
            refused,
            ..Self::with_clock(config, DefaultClock::default())
        }
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Limits on a given clock (tests advance a fake one).
    pub(crate) fn with_clock(config: &LimitsConfig, clock: C) -> Self {
        let limiter = |rate: Option<u32>, burst: Option<u32>| {
            let rate = NonZeroU32::new(rate?)?;
            let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate);
            Some(RateLimiter::dashmap_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            ))
        };
        Self {
            client: limiter(config.client_per_second, config.client_burst),
            subject: limiter(config.subject_per_second, config.subject_burst),
            clock,
            checks: AtomicU64::new(0),
            refused: Family::default(),
        }
    }

    /// Count one exchange by `client_id`; refused when its bucket is empty.
    pub(crate) fn check_client(&self, client_id: &str) -> Result<(), RateLimited> {
        self.check(self.client.as_ref(), LimitScope::Client, client_id)
    }

    /// Count one exchange for `subject`; refused when its bucket is empty.
    pub(crate) fn check_subject(&self, subject: &str) -> Result<(), RateLimited> {
        self.check(self.subject.as_ref(), LimitScope::Subject, subject)
    }

    fn check(&self, limiter: Option<&Keyed<C>>, scope: LimitScope, key: &str) -> Result<(), RateLimited> {
        let Some(limiter) = limiter else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            self.refused.get_or_create(&LimitLabels { limit: scope.as_str() }).inc();
            RateLimited {
                scope,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limits(client: Option<u32>, burst: Option<u32>, subject: Option<u32>) -> RateLimits<FakeRelativeClock> {
        let config = LimitsConfig {
            client_per_second: client,
            client_burst: burst,
            subject_per_second: subject,
            subject_burst: None,
        };
        RateLimits::with_clock(&config, FakeRelativeClock::default())
    }

    #[test]
    fn unset_limits_never_refuse() {
        let limits = limits(None, None, None);
        for _ in 0..10_000 {
            limits.check_client("c").unwrap();
            limits.check_subject("alice").unwrap();
        }
    }

    #[test]
    fn a_burst_then_the_sustained_rate_per_key() {
        let limits = limits(Some(2), Some(4), None);
        for _ in 0..4 {
            limits.check_client("a").unwrap();
        }
        let refused = limits.check_client("a").unwrap_err();
        assert_eq!(refused.scope, LimitScope::Client);
        assert_eq!(refused.retry_after, Duration::from_millis(500), "one cell at 2/s");
        limits.check_client("b").expect("another client has its own bucket");
        limits.clock.advance(Duration::from_millis(500));
        limits.check_client("a").unwrap();
        assert!(limits.check_client("a").is_err());
    }

    #[test]
    fn subjects_are_limited_apart_from_clients() {
        let limits = limits(None, None, Some(1));
        limits.check_subject("alice").unwrap();
        let refused = limits.check_subject("alice").unwrap_err();
        assert_eq!(refused.scope, LimitScope::Subject);
        limits.check_subject("bob").unwrap();
        limits.check_client("alice").unwrap();
    }

    #[test]
    fn a_refusal_becomes_429_with_whole_seconds() {
        let error = OAuthError::from(RateLimited {
            scope: LimitScope::Subject,
            retry_after: Duration::from_millis(1200),
        });
        assert_eq!(error.code.status(), 429);
        assert_eq!(error.rule, "rate_limit.subject");
        assert_eq!(error.retry_after, Some(2));
    }
}
