//! The service's shared state: configuration turned into ready-to-use parts.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
use crate::client_auth::{AuthContext, Clients};
use crate::config::Config;
use crate::error::OAuthError;
use crate::exchanger::Exchanger;
use crate::grant::AuthorizationServers;
use crate::inbound::Issuers;
use crate::inbound::validate::Limits;
use crate::keys::{KeyRing, SharedKeyRing};
use crate::policy::Audiences;
use crate::rate_limit::RateLimits;
use crate::revocation::timed::TimedStore;
use crate::revocation::{EventQueue, Publisher, RevocationGate, RevocationStore, StoreError};
use mcp_sts_contract::clock::Clock;
use mcp_sts_contract::jose::{JwksConfig, VerifiedTokens};

/// Everything a request needs, shared by all handlers (cheap to clone behind `Arc`).
pub struct Sts {
    /// The validated configuration.
    pub config: Config,
    /// Trusted upstream issuers.
    pub issuers: Arc<Issuers>,
    /// Known clients.
    pub clients: Clients,
    /// Downstream audiences.
    pub audiences: Audiences,
    /// Authorization servers we issue identity assertion grants for.
    pub authorization_servers: AuthorizationServers,
    /// Signing and published keys.
    pub keys: SharedKeyRing,
    /// Revocations.
    pub store: Arc<dyn RevocationStore>,
    /// Shared Signals streams and queued SETs (the same backend as `store`).
    pub events: Arc<dyn EventQueue>,
    /// Wakes long polls on this replica when an event is queued.
    pub ssf_wake: Arc<tokio::sync::Notify>,
    /// The same store behind its deadline: how decisions reach it.
    pub revocations: RevocationGate,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Audit events.
    pub audit: AuditLog,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Per-client and per-subject exchange rate limits.
    pub rate_limits: RateLimits,
    /// Signatures of subject and actor tokens already verified.
    pub verified_tokens: VerifiedTokens,
    /// Whether the revocation store can be trusted, as it changes (Redis only).
    pub store_trust: Option<tokio::sync::watch::Receiver<crate::revocation::redis::Trust>>,
    token_endpoint: String,
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
    pub(crate) fn new(
        config: Config,
        keys: SharedKeyRing,
        backend: crate::revocation::backend::Backend,
        clock: Arc<dyn Clock>,
        audit: AuditLog,
        http: reqwest::Client,
    ) -> Self {
        let key_rules = JwksConfig::default();
        let issuers = Arc::new(Issuers::new(&config.issuers, &http, &key_rules).with_workloads(&config.workloads));
        let clients = Clients::new(&config.clients, &http, &key_rules)
            .with_workload_issuers(Arc::clone(&issuers))
            .with_url_clients(&config.cimd, &key_rules);
        let audiences = Audiences::new(&config.audiences);
        let authorization_servers = AuthorizationServers::new(&config.authorization_servers);
        let token_endpoint = config.token_endpoint();
        let metrics = crate::metrics::Metrics::new();
        let crate::revocation::backend::Backend { store, events, trust } = backend;
        let store: Arc<dyn RevocationStore> = Arc::new(TimedStore::new(store, metrics.store_latency()));
        let rate_limits = RateLimits::new(&config.limits, metrics.rate_limit_refusals());
        let timeout = Duration::from_millis(config.revocation.timeout_ms);
        let revocations = RevocationGate::new(store.clone(), timeout, metrics.store_failures()).with_write_timeout(
            crate::revocation::redis::RedisStore::write_deadline(
                timeout,
                crate::revocation::backend::ack_policy(&config.revocation),
            ),
        );
        let verified_tokens = VerifiedTokens::new(config.server.verified_token_cache);
        Self {
            verified_tokens,
            config,
            issuers,
            clients,
            audiences,
            authorization_servers,
            keys,
            store,
            events,
            ssf_wake: Arc::new(tokio::sync::Notify::new()),
            revocations,
            clock,
            audit,
            metrics,
            rate_limits,
            store_trust: trust,
            token_endpoint,
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
    pub(crate) fn auth_context(&self) -> AuthContext<'_> {
        AuthContext {
            issuer: self.issuer(),
            token_endpoint: &self.token_endpoint,
            leeway: self.config.tokens.leeway_seconds,
            max_token_bytes: self.config.server.max_token_bytes,
        }
    }

    /// Limits for inbound token validation.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_token_bytes: self.config.server.max_token_bytes,
            leeway: self.config.tokens.leeway_seconds,
        }
    }

    /// Run a store operation under the configured deadline; any failure is a 503.
    pub(crate) async fn store_call<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, OAuthError> {
        self.revocations.call(operation).await
    }

    /// The one door revocations are written through (with their SETs), and SETs
    /// queued: the narrow view of the service it needs.
    pub(crate) fn publisher(&self) -> Publisher<'_> {
        Publisher {
            issuer: self.issuer(),
            trusted_issuers: &self.config.issuers,
            keys: &self.keys,
            events: self.events.as_ref(),
            gate: &self.revocations,
            wake: &self.ssf_wake,
        }
    }

    /// The narrow view of the service an exchange needs, with this request's key ring.
    pub fn exchanger<'a>(&'a self, keys: &'a KeyRing) -> Exchanger<'a> {
        Exchanger {
            issuer: self.issuer(),
            clients: &self.clients,
            audiences: &self.audiences,
            authorization_servers: &self.authorization_servers,
            issuers: &self.issuers,
            keys,
            revocations: &self.revocations,
            tokens: &self.config.tokens,
            limits: self.limits(),
            verified: &self.verified_tokens,
            auth: self.auth_context(),
            rate_limits: &self.rate_limits,
            dpop: self.config.dpop,
        }
    }
}
