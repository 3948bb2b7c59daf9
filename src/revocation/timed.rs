//! A store wrapper that measures every operation, so `/metrics` shows how long the
//! revocation store takes per operation (and a slow Redis shows up before it times out).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{KeptOffboardings, Revocation, RevocationKey, RevocationStore, StoreError};
use crate::metrics::StoreLatency;
use mcp_sts_contract::clock::UnixTime;

/// Any [`RevocationStore`], timed.
pub(crate) struct TimedStore {
    inner: Arc<dyn RevocationStore>,
    latency: StoreLatency,
}

impl TimedStore {
    /// Wrap `inner`, recording into `latency`.
    pub(crate) fn new(inner: Arc<dyn RevocationStore>, latency: StoreLatency) -> Self {
        Self { inner, latency }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // Elapsed time only (monotonic), never the wall clock.
        let started = Instant::now();
        let outcome = call.await;
        self.latency.observe(operation, outcome.is_ok(), started.elapsed());
        outcome
    }
}

#[async_trait]
impl RevocationStore for TimedStore {
    async fn revoke(&self, entry: Revocation) -> Result<(), StoreError> {
        self.timed("revoke", self.inner.revoke(entry)).await
    }

    async fn reinstate(&self, key: &RevocationKey) -> Result<bool, StoreError> {
        self.timed("reinstate", self.inner.reinstate(key)).await
    }

    async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.timed("list", self.inner.list(now)).await
    }

    async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, StoreError> {
        self.timed("check", self.inner.check(keys, now)).await
    }

    async fn use_once(&self, id: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        self.timed("use_once", self.inner.use_once(id, expires_at, now)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn keep_offboardings(&self) -> Result<KeptOffboardings, StoreError> {
        self.timed("keep_offboardings", self.inner.keep_offboardings()).await
    }

    async fn diagnose(&self) -> Option<String> {
        self.inner.diagnose().await
    }
}
