//! The service's shared state: configuration turned into ready-to-use parts.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
use crate::client_auth::{AuthContext, Clients};
use crate::config::Config;
use crate::exchanger::Exchanger;
use crate::grant::AuthorizationServers;
use crate::inbound::Issuers;
use crate::inbound::validate::Limits;
use crate::keys::{KeyRing, SharedKeyRing};
use crate::policy::Audiences;
use crate::rate_limit::RateLimits;
use crate::revocation::timed::TimedStore;
use crate::revocation::{EventQueue, Publisher, RevocationGate, RevocationStore};
use mcp_sts_contract::clock::Clock;
use mcp_sts_contract::jose::{JwksConfig, VerifiedTokens};

/// Everything a request needs, shared by all handlers (cheap to clone behind `Arc`).
/// Its parts are private: each feature reaches what it needs through a narrow view
/// built here (`exchanger`, `publisher`, `issued`, `admin`; Shared Signals' by
/// `ssf::Transmitter::of`, `ssf::upstream::Upstream::of` and `ssf::push::Pushing::of`,
/// as `ssf` depends on the service and not the other way), and the revocation store
/// only through its deadline (`revocations`).
pub struct Sts {
    /// The validated configuration.
    config: Config,
    /// Trusted upstream issuers.
    issuers: Arc<Issuers>,
    /// Known clients.
    clients: Clients,
    /// Downstream audiences.
    audiences: Audiences,
    /// Authorization servers we issue identity assertion grants for.
    authorization_servers: AuthorizationServers,
    /// Signing and published keys.
    keys: SharedKeyRing,
    /// Shared Signals streams and queued SETs (the same backend as the revocations).
    events: Arc<dyn EventQueue>,
    /// Wakes long polls on this replica when an event is queued.
    ssf_wake: Arc<tokio::sync::Notify>,
    /// The revocation store behind its deadlines: the only way to it.
    revocations: RevocationGate,
    /// The clock every decision takes its `now` from.
    clock: Arc<dyn Clock>,
    /// Audit events.
    audit: AuditLog,
    /// Prometheus metrics.
    metrics: Arc<crate::metrics::Metrics>,
    /// Per-client and per-subject exchange rate limits.
    rate_limits: RateLimits,
    /// Signatures of subject and actor tokens already verified.
    verified_tokens: VerifiedTokens,
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
        let crate::revocation::backend::Backend { store, events, .. } = backend;
        let store: Arc<dyn RevocationStore> = Arc::new(TimedStore::new(store, metrics.store_latency()));
        let rate_limits = RateLimits::new(&config.limits, metrics.rate_limit_refusals());
        let timeout = Duration::from_millis(config.revocation.timeout_ms);
        let revocations = RevocationGate::new(store, timeout, metrics.store_failures()).with_write_timeout(
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
            events,
            ssf_wake: Arc::new(tokio::sync::Notify::new()),
            revocations,
            clock,
            audit,
            metrics: Arc::new(metrics),
            rate_limits,
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

    /// The clock every decision takes its `now` from (tests inject a manual one).
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Trusted upstream issuers.
    pub fn issuers(&self) -> &Arc<Issuers> {
        &self.issuers
    }

    /// Signing and published keys.
    pub fn keys(&self) -> &SharedKeyRing {
        &self.keys
    }

    /// Downstream audiences.
    pub(crate) fn audiences(&self) -> &Audiences {
        &self.audiences
    }

    /// Authorization servers we issue identity assertion grants for.
    pub(crate) fn authorization_servers(&self) -> &AuthorizationServers {
        &self.authorization_servers
    }

    /// Audit events.
    pub(crate) fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Prometheus metrics.
    pub(crate) fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Signatures of subject and actor tokens already verified.
    pub fn verified_tokens(&self) -> &VerifiedTokens {
        &self.verified_tokens
    }

    /// Known clients.
    pub(crate) fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Shared Signals streams and queued SETs: reached under the store deadline
    /// (`RevocationGate::call`).
    pub(crate) fn events(&self) -> &Arc<dyn EventQueue> {
        &self.events
    }

    /// Wakes long polls and push delivery on this replica when an event is queued.
    pub(crate) fn ssf_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.ssf_wake
    }

    /// The revocation store behind its deadline: the only way to it.
    pub fn revocations(&self) -> &RevocationGate {
        &self.revocations
    }

    /// At start: carry kept offboardings over from an older store layout (in the
    /// background if the store cannot answer yet).
    pub(crate) async fn keep_offboardings_at_start(&self) {
        crate::revocation::upgrade::keep_offboardings_at_start(self.revocations.shared_store()).await;
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

    /// The narrow view of the service the admin API needs.
    pub(crate) fn admin(&self) -> crate::admin::Admin<'_> {
        crate::admin::Admin {
            config: &self.config.admin,
            retention_seconds: self.config.revocation.retention_seconds,
            token_lifetime: self
                .config
                .max_token_ttl()
                .saturating_add(self.config.tokens.leeway_seconds),
            issuers: &self.issuers,
            revocations: &self.revocations,
            publisher: self.publisher(),
        }
    }

    /// The narrow view of the service the doors for our own tokens (`/introspect`,
    /// `/revoke`) need.
    pub(crate) fn issued(&self) -> crate::issued::Issued<'_> {
        crate::issued::Issued {
            issuer: self.issuer(),
            clients: &self.clients,
            auth: self.auth_context(),
            keys: &self.keys,
            audiences: &self.audiences,
            issuers: &self.issuers,
            revocations: &self.revocations,
            max_token_bytes: self.config.server.max_token_bytes,
            leeway: self.config.tokens.leeway_seconds,
            publisher: self.publisher(),
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
