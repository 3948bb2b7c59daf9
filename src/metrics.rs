//! Prometheus metrics: every request's count and latency by route, exchange outcomes
//! and latency, revocation store latency per operation and failures, signing keys in
//! use and the signing key's age, rate-limit refusals, upstream issuers' keys, and
//! Shared Signals receivers' backlog and last delivery.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabels {
    /// The audited event: `token_exchange` or `revoke`.
    pub endpoint: &'static str,
    /// `allow` or the RFC error code.
    pub outcome: &'static str,
}

/// Labels of one revocation store call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StoreLabels {
    /// `check`, `revoke`, `reinstate`, `list`, `use_once` or `ping`.
    pub operation: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of a rate-limit refusal.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    /// `client` or `subject`.
    pub limit: &'static str,
}

/// Labels of a connection the server closed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConnectionLabels {
    /// `idle`: no request came within the header or keep-alive deadline.
    pub reason: &'static str,
}

/// Labels of one upstream issuer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IssuerLabels {
    /// The issuer's `iss`.
    pub issuer: String,
}

/// Labels of one HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The route (a path template, never the path a client sent).
    pub route: &'static str,
    /// `GET`, `POST`, ... (`other` for the rest).
    pub method: &'static str,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status: &'static str,
}

/// Labels of one Shared Signals receiver.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReceiverLabels {
    /// The client that owns the stream.
    pub receiver: String,
    /// `poll` or `push`.
    pub delivery: &'static str,
}

/// Store latency by operation: cheap to clone, handed to the store wrapper.
#[derive(Debug, Clone)]
pub(crate) struct StoreLatency(Family<StoreLabels, Histogram>);

impl StoreLatency {
    /// Record one call.
    pub(crate) fn observe(&self, operation: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.0
            .get_or_create(&StoreLabels { operation, outcome })
            .observe(elapsed.as_secs_f64());
    }
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    exchange_seconds: Histogram,
    store_failures: Counter,
    store_latency: StoreLatency,
    keys_published: Gauge,
    rate_limited: Family<LimitLabels, Counter>,
    verified: VerifiedMetrics,
    connections_closed: Family<ConnectionLabels, Counter>,
    requests: Family<RequestLabels, Histogram>,
    stream_backlog: Family<ReceiverLabels, Gauge>,
    stream_last_delivery: Family<ReceiverLabels, Gauge>,
    signing_key_age: Gauge,
    ready: Gauge,
    store_up: Gauge,
    issuer_key_fetches: Family<IssuerLabels, Counter>,
    issuer_key_fetch_failures: Family<IssuerLabels, Counter>,
    issuer_keys_available: Family<IssuerLabels, Gauge>,
    /// Two scrapes at once must not both add the same delta.
    copying_issuers: std::sync::Mutex<()>,
}

/// The verified-token memory's figures, copied in at each scrape.
#[derive(Debug, Default)]
struct VerifiedMetrics {
    hits: Counter,
    misses: Counter,
    entries: Gauge,
    /// Two scrapes at once must not both add the same delta.
    copying: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_sts");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("decisions", "Decisions by endpoint and outcome", decisions.clone());
        let exchange_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "exchange_duration_seconds",
            "Time to decide one token exchange",
            exchange_seconds.clone(),
        );
        let store_failures = Counter::default();
        registry.register(
            "revocation_store_failures",
            "Store calls that failed or timed out (answered 503)",
            store_failures.clone(),
        );
        // 50 µs to ~1.6 s: an embedded read is tens of µs, a Redis round trip about a ms.
        let store_latency = Family::<StoreLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 16))
        });
        registry.register(
            "revocation_store_duration_seconds",
            "Time of each revocation store call, by operation and outcome",
            store_latency.clone(),
        );
        let keys_published = Gauge::default();
        registry.register(
            "signing_keys_published",
            "Keys in the JWKS now: the signing key, pre-published and still-valid retired ones",
            keys_published.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Exchanges refused with 429 by the per-client or per-subject limit",
            rate_limited.clone(),
        );
        let verified = VerifiedMetrics::default();
        registry.register(
            "verified_tokens_hits",
            "Subject and actor tokens whose signature was recognised, not checked again",
            verified.hits.clone(),
        );
        registry.register(
            "verified_tokens_misses",
            "Subject and actor token signatures checked (first sight, expired, evicted or key gone)",
            verified.misses.clone(),
        );
        registry.register(
            "verified_tokens_entries",
            "Verified tokens remembered now (bounded by server.verified_token_cache)",
            verified.entries.clone(),
        );
        let connections_closed = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed at a deadline, by reason (refused heads are decisions)",
            connections_closed.clone(),
        );
        let issuer_key_fetches = Family::<IssuerLabels, Counter>::default();
        registry.register(
            "issuer_key_fetches",
            "Fetches of an upstream issuer's keys (discovery and JWKS count as one)",
            issuer_key_fetches.clone(),
        );
        let issuer_key_fetch_failures = Family::<IssuerLabels, Counter>::default();
        registry.register(
            "issuer_key_fetch_failures",
            "Fetches of an upstream issuer's keys that yielded no usable key",
            issuer_key_fetch_failures.clone(),
        );
        let issuer_keys_available = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "issuer_keys_available",
            "1 while an upstream issuer's keys are held, 0 when fetched without success (its tokens get 503)",
            issuer_keys_available.clone(),
        );
        // 0.5 ms to ~260 s: a JWKS answer takes microseconds, a Shared Signals long
        // poll up to `ssf.long_poll_seconds`.
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 20))
        });
        registry.register(
            "http_request_duration_seconds",
            "Every HTTP request by route, method and status class: count and time to answer",
            requests.clone(),
        );
        let stream_backlog = Family::<ReceiverLabels, Gauge>::default();
        registry.register(
            "ssf_stream_backlog",
            "SETs waiting for a receiver at its last poll or push round (at least; one answer's worth is read)",
            stream_backlog.clone(),
        );
        let stream_last_delivery = Family::<ReceiverLabels, Gauge>::default();
        registry.register(
            "ssf_stream_last_delivery_timestamp_seconds",
            "When a receiver last polled, or was last pushed to, successfully (Unix time)",
            stream_last_delivery.clone(),
        );
        let signing_key_age = Gauge::default();
        registry.register(
            "signing_key_age_seconds",
            "Age of the key signing tokens now (rotate before your policy's limit)",
            signing_key_age.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when /readyz would answer 200 (signing key, revocation store, every issuer's keys), checked at each scrape",
            ready.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "revocation_store_up",
            "1 when the revocation store answered a ping at this scrape",
            store_up.clone(),
        );
        Self {
            ready,
            store_up,
            requests,
            stream_backlog,
            stream_last_delivery,
            signing_key_age,
            issuer_key_fetches,
            issuer_key_fetch_failures,
            issuer_keys_available,
            copying_issuers: std::sync::Mutex::new(()),
            connections_closed,
            verified,
            registry,
            decisions,
            exchange_seconds,
            store_failures,
            store_latency: StoreLatency(store_latency),
            keys_published,
            rate_limited,
        }
    }

    /// Count a connection closed at a deadline.
    pub(crate) fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ConnectionLabels { reason })
            .inc();
    }

    /// Count one decision.
    pub(crate) fn decision(&self, endpoint: &'static str, outcome: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { endpoint, outcome })
            .inc();
    }

    /// Record how long an exchange took.
    pub(crate) fn exchange_took(&self, elapsed: Duration) {
        self.exchange_seconds.observe(elapsed.as_secs_f64());
    }

    /// The store failure counter, shared with the revocation gate.
    pub(crate) fn store_failures(&self) -> Counter {
        self.store_failures.clone()
    }

    /// The handle the store wrapper records latency with.
    pub(crate) fn store_latency(&self) -> StoreLatency {
        self.store_latency.clone()
    }

    /// Set how many keys the JWKS holds now.
    pub(crate) fn keys_published(&self, count: usize) {
        self.keys_published.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Copy in the verified-token memory's figures.
    pub(crate) fn verified_tokens(&self, stats: mcp_sts_contract::jose::VerifiedStats) {
        let _one_at_a_time = self.verified.copying.lock();
        let m = &self.verified;
        m.hits.inc_by(stats.hits.saturating_sub(m.hits.get()));
        m.misses.inc_by(stats.misses.saturating_sub(m.misses.get()));
        m.entries.set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
    }

    /// Record one HTTP request.
    pub(crate) fn request(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        let status = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels { route, method, status })
            .observe(elapsed.as_secs_f64());
    }

    /// Record what a receiver's stream held when it was last served at `now`.
    pub(crate) fn stream_served(&self, receiver: &str, delivery: &'static str, backlog: usize, now: u64) {
        let labels = ReceiverLabels {
            receiver: receiver.to_owned(),
            delivery,
        };
        self.stream_backlog
            .get_or_create(&labels)
            .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        self.stream_last_delivery
            .get_or_create(&labels)
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// Record what readiness found at this scrape.
    pub(crate) fn readiness(&self, ready: bool, store_up: bool) {
        self.ready.set(i64::from(ready));
        self.store_up.set(i64::from(store_up));
    }

    /// Set the signing key's age.
    pub(crate) fn signing_key_age(&self, seconds: u64) {
        self.signing_key_age.set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// Copy in one issuer's key fetch figures; `available` is `None` before any fetch.
    pub(crate) fn issuer_keys(&self, issuer: &str, stats: mcp_sts_contract::jose::JwksStats, available: Option<bool>) {
        let _one_at_a_time = self.copying_issuers.lock();
        let labels = IssuerLabels {
            issuer: issuer.to_owned(),
        };
        let fetches = self.issuer_key_fetches.get_or_create(&labels);
        fetches.inc_by(stats.fetches.saturating_sub(fetches.get()));
        let failures = self.issuer_key_fetch_failures.get_or_create(&labels);
        failures.inc_by(stats.failures.saturating_sub(failures.get()));
        if let Some(available) = available {
            self.issuer_keys_available
                .get_or_create(&labels)
                .set(i64::from(available));
        }
    }

    /// The refusal counters, shared with the rate limiter.
    pub(crate) fn rate_limit_refusals(&self) -> Family<LimitLabels, Counter> {
        self.rate_limited.clone()
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
