//! The store behind its deadline: every decision reaches the revocation store through
//! here, so a slow or broken store always becomes the same 503, never an allow.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use prometheus_client::metrics::counter::Counter;

use super::outage::{Change, OutageLog};
use super::{Revocation, RevocationKey, RevocationStore, StoreError};
use crate::error::OAuthError;
use mcp_sts_contract::clock::UnixTime;

/// A revocation store with a deadline on every call and a count of failures.
#[derive(Clone)]
pub struct RevocationGate {
    store: Arc<dyn RevocationStore>,
    outages: Arc<OutageLog>,
    timeout: Duration,
    write_timeout: Duration,
    failures: Counter,
}

impl std::fmt::Debug for RevocationGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationGate")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RevocationGate {
    /// Guard `store` with `timeout`, counting failures in `failures`.
    pub(crate) fn new(store: Arc<dyn RevocationStore>, timeout: Duration, failures: Counter) -> Self {
        Self {
            store,
            outages: Arc::default(),
            timeout,
            write_timeout: timeout,
            failures,
        }
    }

    /// Give writes that wait for replicas (see [`RevocationGate::write`]) this longer
    /// deadline; reads keep the short one.
    pub(crate) fn with_write_timeout(mut self, write_timeout: Duration) -> Self {
        self.write_timeout = write_timeout.max(self.timeout);
        self
    }

    /// Run a store operation under the deadline; any failure is a 503.
    pub(crate) async fn call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        self.bounded(self.timeout, operation).await
    }

    /// Run a write that carries a promise (a revocation, its events, a once-only
    /// marker): it may wait for replicas, so its deadline is the longer one.
    pub(crate) async fn write<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        self.bounded(self.write_timeout, operation).await
    }

    /// Mark a once-only id as used: `Ok(true)` the first time. A write that waits for
    /// replicas; see [`RevocationStore::use_once`].
    pub(crate) async fn use_once(&self, id: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, OAuthError> {
        self.write(self.store.use_once(id, expires_at, now)).await
    }

    async fn bounded<T>(
        &self,
        deadline: Duration,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        let span = tracing::info_span!(target: crate::spans::TARGET, "revocation_store", otel.kind = "client", error.type = tracing::field::Empty);
        let answer = tokio::time::timeout(deadline, operation).instrument(span.clone()).await;
        if let Ok(Err(error)) = &answer {
            span.record("error.type", store_error(error).code.as_str());
        } else if answer.is_err() {
            span.record("error.type", "timeout");
        }
        match answer {
            Ok(Ok(value)) => {
                if let Some(Change::Recovered { failed_calls }) = self.outages.answered() {
                    tracing::info!(failed_calls, "revocation store answers again");
                }
                Ok(value)
            }
            Ok(Err(error)) => {
                self.failures.inc();
                self.report_failure(error.to_string());
                Err(store_error(&error))
            }
            Err(_) => {
                self.failures.inc();
                self.report_failure(StoreError::Timeout.to_string());
                Err(store_unavailable())
            }
        }
    }

    /// Log a failure when it opens an outage or fails in a new way, with the cause
    /// the backend gives (asked off the request path); repeats are only counted.
    fn report_failure(&self, error: String) {
        let Some(Change::Failing { earlier_failures }) = self.outages.failed(&error) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            let cause = store.diagnose().await.unwrap_or_else(|| error.clone());
            tracing::warn!(
                %error,
                %cause,
                earlier_failures,
                "revocation store failing; refusing (fail closed) until it answers; \
                 further failures of this kind are counted, not logged"
            );
        });
    }

    /// Every entry in force at `now`.
    pub(crate) async fn list(&self, now: UnixTime) -> Result<Vec<Revocation>, OAuthError> {
        self.call(self.store.list(now)).await
    }

    /// Remove the entry at `key`: `Ok(false)` when there was none.
    pub(crate) async fn reinstate(&self, key: &RevocationKey) -> Result<bool, OAuthError> {
        self.call(self.store.reinstate(key)).await
    }

    /// Whether the store answers within the deadline.
    pub(crate) async fn ping(&self) -> Result<(), OAuthError> {
        self.call(self.store.ping()).await
    }

    /// The store itself, shared, for work that outlives a request (the start-up
    /// upgrade of kept offboardings).
    pub fn shared_store(&self) -> Arc<dyn RevocationStore> {
        Arc::clone(&self.store)
    }

    /// For each key, the entry in force at `now`, in one round trip.
    pub(crate) async fn check(
        &self,
        keys: &[RevocationKey],
        now: UnixTime,
    ) -> Result<Vec<Option<Revocation>>, OAuthError> {
        self.call(self.store.check(keys, now)).await
    }
}

/// The 503 a store failure becomes: unconfirmed writes and an untrusted store say so,
/// anything else is the plain "unavailable".
pub(crate) fn store_error(error: &StoreError) -> OAuthError {
    match error {
        StoreError::Unconfirmed(_) => store_unconfirmed(),
        StoreError::Untrusted(_) => OAuthError::unavailable(
            "revocation_store.untrusted",
            "the revocation store may have lost revocations and is refused until an operator adopts it; retry later",
        ),
        _ => store_unavailable(),
    }
}

/// The 503 of a write the master took but too few replicas confirmed in time.
pub(crate) fn store_unconfirmed() -> OAuthError {
    OAuthError::unavailable(
        "revocation_store.unconfirmed",
        "not confirmed by a replica; retry (retrying is safe)",
    )
}

/// The 503 every caller gets while the revocation store cannot answer.
pub(crate) fn store_unavailable() -> OAuthError {
    OAuthError::unavailable(
        "revocation_store.unavailable",
        "the revocation store is unavailable; retry later",
    )
}
