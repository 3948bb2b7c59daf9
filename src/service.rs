//! The service's shared state: configuration turned into ready-to-use parts.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
use crate::client_auth::{AuthContext, Clients};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::OAuthError;
use crate::inbound::Issuers;
use crate::inbound::validate::Limits;
use crate::jose::JwksConfig;
use crate::keys::SharedKeyRing;
use crate::policy::Audiences;
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
        let key_rules = JwksConfig::default();
        let issuers = Issuers::new(&config.issuers, &http, &key_rules);
        let clients = Clients::new(&config.clients, &http, &key_rules);
        let audiences = Audiences::new(&config.audiences);
        let token_endpoint = config.token_endpoint();
        let store_timeout = Duration::from_millis(config.revocation.timeout_ms);
        Self {
            config,
            issuers,
            clients,
            audiences,
            keys,
            store,
            clock,
            audit,
            metrics: crate::metrics::Metrics::new(),
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
