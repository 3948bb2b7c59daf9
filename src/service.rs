//! The service's shared state: configuration turned into ready-to-use parts.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
use crate::client_auth::{AuthContext, Clients};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::OAuthError;
use crate::inbound::validate::Limits;
use crate::inbound::{Issuers, JwksPolicy};
use crate::keys::SharedKeyRing;
use crate::policy::Audiences;
use crate::rate_limit::{RateLimited, RateLimits};
use crate::revocation::timed::TimedStore;
use crate::revocation::{RevocationStore, StoreError};

/// Everything a request needs, shared by all handlers (cheap to clone behind `Arc`).
pub struct Sts {
    /// The validated configuration.
    pub config: Config,
    /// Trusted upstream issuers.
    pub issuers: Issuers,
    /// Known clients.
    pub clients: Clients,
    /// Downstream audiences.
    pub audiences: Audiences,
    /// Signing and published keys.
    pub keys: SharedKeyRing,
    /// Revocations.
    pub store: Arc<dyn RevocationStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Audit events.
    pub audit: AuditLog,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Per-client and per-subject exchange rate limits.
    pub rate_limits: RateLimits,
    token_endpoint: String,
    store_timeout: Duration,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts")
            .field("issuer", &self.config.server.issuer)
            .finish_non_exhaustive()
    }
}

impl Sts {
    /// Assemble the service from its parts.
    pub fn new(
        config: Config,
        keys: SharedKeyRing,
        store: Arc<dyn RevocationStore>,
        clock: Arc<dyn Clock>,
        audit: AuditLog,
        http: reqwest::Client,
    ) -> Self {
        let policy = JwksPolicy::default();
        let issuers = Issuers::new(&config.issuers, &http, policy);
        let clients = Clients::new(&config.clients, &http, policy);
        let audiences = Audiences::new(&config.audiences);
        let token_endpoint = config.token_endpoint();
        let store_timeout = Duration::from_millis(config.revocation.timeout_ms);
        let metrics = crate::metrics::Metrics::new();
        let store: Arc<dyn RevocationStore> = Arc::new(TimedStore::new(store, metrics.store_latency()));
        let rate_limits = RateLimits::new(&config.limits);
        Self {
            config,
            issuers,
            clients,
            audiences,
            keys,
            store,
            clock,
            audit,
            metrics,
            rate_limits,
            token_endpoint,
            store_timeout,
        }
    }

    /// Our issuer URL.
    pub fn issuer(&self) -> &str {
        &self.config.server.issuer
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// What client authentication needs.
    pub fn auth_context(&self) -> AuthContext<'_> {
        AuthContext {
            issuer: self.issuer(),
            token_endpoint: &self.token_endpoint,
            leeway: self.config.tokens.leeway_seconds,
            max_token_bytes: self.config.server.max_token_bytes,
        }
    }

    /// Limits for inbound token validation.
    pub fn limits(&self) -> Limits {
        Limits {
            max_token_bytes: self.config.server.max_token_bytes,
            leeway: self.config.tokens.leeway_seconds,
        }
    }

    /// Count one exchange against the client's rate limit (429 when over it).
    pub fn check_client_rate(&self, client_id: &str) -> Result<(), OAuthError> {
        self.rate_limits.check_client(client_id).map_err(|r| self.refused(r))
    }

    /// Count one exchange against the subject's rate limit (429 when over it).
    pub fn check_subject_rate(&self, subject: &str) -> Result<(), OAuthError> {
        self.rate_limits.check_subject(subject).map_err(|r| self.refused(r))
    }

    fn refused(&self, refusal: RateLimited) -> OAuthError {
        self.metrics.rate_limited(refusal.scope.as_str());
        OAuthError::from(refusal)
    }

    /// Run a store operation under the configured deadline; any failure is a 503.
    pub async fn store_call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        match tokio::time::timeout(self.store_timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.metrics.store_failed();
                tracing::warn!(%error, "revocation store failed; refusing (fail closed)");
                Err(store_unavailable())
            }
            Err(_) => {
                self.metrics.store_failed();
                tracing::warn!("revocation store timed out; refusing (fail closed)");
                Err(store_unavailable())
            }
        }
    }
}

/// The 503 every caller gets while the revocation store cannot answer.
pub fn store_unavailable() -> OAuthError {
    OAuthError::unavailable(
        "revocation_store.unavailable",
        "the revocation store is unavailable; retry later",
    )
}
