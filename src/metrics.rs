//! Prometheus metrics: exchange outcomes and latency, revocation store failures.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The audited event: `token_exchange` or `revoke`.
    pub endpoint: &'static str,
    /// `allow` or the RFC error code.
    pub outcome: &'static str,
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    exchange_seconds: Histogram,
    store_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
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
        Self {
            registry,
            decisions,
            exchange_seconds,
            store_failures,
        }
    }

    /// Count one decision.
    pub fn decision(&self, endpoint: &'static str, outcome: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { endpoint, outcome })
            .inc();
    }

    /// Record how long an exchange took.
    pub fn exchange_took(&self, elapsed: Duration) {
        self.exchange_seconds.observe(elapsed.as_secs_f64());
    }

    /// Count a store failure.
    pub fn store_failed(&self) {
        self.store_failures.inc();
    }

    /// The store failure counter, shared with the revocation gate.
    pub fn store_failures(&self) -> Counter {
        self.store_failures.clone()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
