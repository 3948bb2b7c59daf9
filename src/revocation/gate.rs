//! The store behind its deadline: every decision reaches the revocation store through
//! here, so a slow or broken store always becomes the same 503, never an allow.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use super::{Revocation, RevocationKey, RevocationStore, StoreError};
use crate::clock::UnixTime;
use crate::error::OAuthError;

/// A revocation store with a deadline on every call and a count of failures.
#[derive(Clone)]
pub struct RevocationGate {
    store: Arc<dyn RevocationStore>,
    timeout: Duration,
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
    pub fn new(store: Arc<dyn RevocationStore>, timeout: Duration, failures: Counter) -> Self {
        Self {
            store,
            timeout,
            failures,
        }
    }

    /// The store itself, for callers that map its errors their own way.
    pub fn store(&self) -> &dyn RevocationStore {
        self.store.as_ref()
    }

    /// Run a store operation under the deadline; any failure is a 503.
    pub async fn call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.failures.inc();
                tracing::warn!(%error, "revocation store failed; refusing (fail closed)");
                Err(store_unavailable())
            }
            Err(_) => {
                self.failures.inc();
                tracing::warn!("revocation store timed out; refusing (fail closed)");
                Err(store_unavailable())
            }
        }
    }

    /// For each key, the entry in force at `now`, in one round trip.
    pub async fn check(&self, keys: &[RevocationKey], now: UnixTime) -> Result<Vec<Option<Revocation>>, OAuthError> {
        self.call(self.store.check(keys, now)).await
    }
}

/// The 503 every caller gets while the revocation store cannot answer.
pub fn store_unavailable() -> OAuthError {
    OAuthError::unavailable(
        "revocation_store.unavailable",
        "the revocation store is unavailable; retry later",
    )
}
