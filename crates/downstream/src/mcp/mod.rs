//! The MCP server kit (feature `mcp-server`): protect an rmcp streamable-HTTP server the
//! way the MCP authorization specification asks of a resource server, and give every
//! tool the caller's identity instead of the caller's token.
//!
//! - [`McpAuth`] validates each request's access token: signed by a trusted
//!   authorization server, `aud` naming this server's canonical resource URI, unexpired.
//!   Anything else gets `401` with `WWW-Authenticate: Bearer resource_metadata="..."`,
//!   and the RFC 9728 protected resource metadata is served at
//!   `/.well-known/oauth-protected-resource` (and its path-suffixed form).
//! - The layer removes the `Authorization` header before rmcp sees the request, so no
//!   tool can read or forward the raw token (no token passthrough). Tools take a
//!   [`Caller`] instead: user, agent (the token's `client_id`/`azp`), this server's client
//!   id, session, trace and scopes, and [`Caller::token_for`] to get a narrow token for a
//!   downstream service from mcp-sts.
//! - With [`McpAuthBuilder::revocations`], the kit subscribes to mcp-sts's Shared
//!   Signals stream and refuses tokens of revoked users, sessions and agents itself,
//!   dropping cached downstream tokens of a revoked lineage.
//! - [`ScopedTools`] hides tools the caller lacks the scope for from `tools/list`
//!   (`cacheScope: private`); a `tools/call` of such a tool gets `403` with
//!   `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."` naming the
//!   scopes that tool needs, so the client can re-authorize with them (step-up). A tool
//!   declares its scope with [`requires_scope`].
//!
//! ```text
//! let auth = McpAuth::builder("https://orders-mcp.example.com/mcp")
//!     .trust(TrustedIssuer::discover("https://idp.example.com"))
//!     .exchange_with(StsClient::new(sts_config)?)
//!     .build()
//!     .await?;
//! let app: axum::Router = auth.serve(|gate| OrdersMcp::new(gate));
//! ```

#![warn(missing_docs)]

mod bearer;
mod caller;
mod discovery;
mod error;
mod layer;
mod metadata;
mod operation;
mod revocation;
mod tools;

use crate::verify::dpop::{DEFAULT_REPLAY_CAPACITY, ProofChecker};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use caller::Caller;
pub use error::{McpAuthError, TokenError};
pub use layer::{McpAuthLayer, McpAuthService};
pub use tools::{Protected, REQUIRED_SCOPES_META, ScopedTools, ToolGate, requires_scope, requires_scopes};

use crate::client::StsClient;
use crate::verify::{RevocationStream, RevocationStreamConfig};
use bearer::BearerVerifier;
use mcp_sts_contract::clock::{Clock, SystemClock};
use metadata::ResourceMetadata;
use revocation::Revocations;
use tools::ToolScopes;

/// An authorization server whose access tokens this MCP server accepts.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    issuer: String,
    jwks_uri: Option<String>,
}

impl TrustedIssuer {
    /// Trust `issuer` and find its keys through its metadata (OpenID Connect discovery,
    /// else RFC 8414) when the kit is built.
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_uri: None,
        }
    }

    /// Trust `issuer` with its keys at `jwks_uri`; nothing is fetched at build time.
    pub fn with_jwks_uri(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_uri: Some(jwks_uri.into()),
        }
    }

    /// The issuer identifier (`iss` of its tokens).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// Builds an [`McpAuth`]; every mistake is reported by [`McpAuthBuilder::build`].
pub struct McpAuthBuilder {
    resource: String,
    issuers: Vec<TrustedIssuer>,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
    agent_claims: Vec<String>,
    resource_name: Option<String>,
    sts: Option<Arc<StsClient>>,
    revocations: Option<RevocationStreamConfig>,
    clock: Arc<dyn Clock>,
    leeway: Duration,
    http_timeout: Duration,
    jwks_cache_ttl: Duration,
    jwks_min_refresh_interval: Duration,
    dpop_nonce_secret: Option<mcp_sts_contract::secret::Secret>,
}

impl std::fmt::Debug for McpAuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuthBuilder")
            .field("resource", &self.resource)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl McpAuthBuilder {
    /// Trust access tokens from this authorization server (at least one is required).
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The scopes this server understands, published as `scopes_supported` so clients
    /// know what to ask the authorization server for. `offline_access` is never
    /// published: it is the client's business with the authorization server, not a
    /// scope of this resource (SEP-2207).
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_supported = resource_scopes(scopes);
        self
    }

    /// Scopes every request needs; a token without them gets `403 insufficient_scope`
    /// (`offline_access` is ignored here, as in `scopes_supported`).
    pub fn require_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.required_scopes = resource_scopes(scopes);
        self
    }

    /// The claims naming the agent application, tried in order (default `client_id`,
    /// then `azp`).
    pub fn agent_claims<I: IntoIterator<Item = S>, S: Into<String>>(mut self, claims: I) -> Self {
        self.agent_claims = claims.into_iter().map(Into::into).collect();
        self
    }

    /// A human-readable name, published as `resource_name`.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Exchange callers' tokens at mcp-sts with `client` for [`Caller::token_for`].
    pub fn exchange_with(mut self, client: StsClient) -> Self {
        self.sts = Some(Arc::new(client));
        self
    }

    /// Subscribe to mcp-sts's Shared Signals stream with this server's client
    /// credentials there (`RevocationStreamConfig::new(sts_issuer, client_id, secret)`;
    /// give it a `state_path` so a restart keeps what it heard and what it covers).
    /// The kit then refuses MCP tokens whose user (of its issuer), session or agent was
    /// revoked, from the poll after the revocation on, and drops cached `token_for`
    /// tokens of a revoked lineage. Tokens the stream cannot vouch for (stale, or
    /// issued before it covers) are refused with 503 until they expire.
    pub fn revocations(mut self, config: RevocationStreamConfig) -> Self {
        self.revocations = Some(config);
        self
    }

    /// Demand server nonces (RFC 9449 §9) in the DPoP proofs of bound tokens, made
    /// with `secret` (shared by the replicas of this server).
    pub fn dpop_nonces(mut self, secret: impl Into<mcp_sts_contract::secret::Secret>) -> Self {
        self.dpop_nonce_secret = Some(secret.into());
        self
    }

    /// Read time from `clock` (tests pass a manual clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allowed clock skew on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Least time between JWKS refetches forced by an unknown `kid` (default 10 s).
    pub fn jwks_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_min_refresh_interval = interval;
        self
    }

    /// Check everything, discover the issuers' keys, and build the kit. Fails on a
    /// resource that is not an absolute http(s) URI without a fragment, on no trusted
    /// issuer, and on an issuer whose metadata cannot be read or names another issuer.
    pub async fn build(self) -> Result<McpAuth, McpAuthError> {
        let metadata = ResourceMetadata::new(
            &self.resource,
            self.issuers.iter().map(|i| i.issuer.clone()).collect(),
            self.scopes_supported,
            self.resource_name,
        )?;
        if self.issuers.is_empty() {
            return Err(McpAuthError::NoIssuer);
        }
        if self.agent_claims.iter().any(|c| c.trim().is_empty()) {
            return Err(McpAuthError::Config("agent claim names must not be empty".into()));
        }
        let http = mcp_sts_contract::fetch::http_client(self.http_timeout)
            .map_err(|e| McpAuthError::Config(format!("HTTP client: {e}")))?;
        let mut keys = Vec::with_capacity(self.issuers.len());
        for trusted in &self.issuers {
            discovery::check_issuer(&trusted.issuer)?;
            let jwks_uri = match &trusted.jwks_uri {
                Some(uri) => uri.clone(),
                None => discovery::jwks_uri(&http, &trusted.issuer, self.http_timeout).await?,
            };
            let rules = crate::verify::KeyCacheRules {
                jwks_uri,
                ttl: self.jwks_cache_ttl,
                min_refresh: self.jwks_min_refresh_interval,
                timeout: self.http_timeout,
            };
            let cache = crate::verify::downstream_jwks(&rules, http.clone());
            keys.push((trusted.issuer.clone(), cache));
        }
        let verifier = BearerVerifier::new(
            metadata.resource().to_owned(),
            keys,
            self.leeway.as_secs(),
            self.agent_claims,
        );
        let revocations = self
            .revocations
            .map(|config| Revocations::start(config, Arc::clone(&self.clock), self.sts.clone()))
            .transpose()
            .map_err(|e| McpAuthError::Config(format!("revocation stream: {e}")))?
            .map(Arc::new);
        Ok(McpAuth {
            shared: Arc::new(Shared {
                metadata,
                verifier,
                required_scopes: self.required_scopes,
                tool_scopes: Arc::default(),
                sts: self.sts,
                revocations,
                clock: self.clock,
                proofs: match &self.dpop_nonce_secret {
                    Some(secret) => ProofChecker::new(DEFAULT_REPLAY_CAPACITY).with_nonces(secret.expose().as_bytes()),
                    None => ProofChecker::new(DEFAULT_REPLAY_CAPACITY),
                },
            }),
        })
    }
}

/// The scope a client asks the authorization server for to get refresh tokens; never a
/// scope of a resource, so never published nor challenged for (SEP-2207).
const OFFLINE_ACCESS: &str = "offline_access";

/// `scopes` without `offline_access`.
fn resource_scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Vec<String> {
    scopes
        .into_iter()
        .map(Into::into)
        .filter(|scope| scope != OFFLINE_ACCESS)
        .collect()
}

/// What the layer and every [`Caller`] share.
pub(crate) struct Shared {
    pub(crate) metadata: ResourceMetadata,
    pub(crate) verifier: BearerVerifier,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) tool_scopes: Arc<ToolScopes>,
    pub(crate) sts: Option<Arc<StsClient>>,
    pub(crate) revocations: Option<Arc<Revocations>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// DPoP proofs seen, for tokens bound to a key (RFC 9449 §7).
    pub(crate) proofs: ProofChecker,
}

/// The kit for one MCP server: its resource, the issuers it trusts, its exchange client.
/// Cheap to clone.
#[derive(Clone)]
pub struct McpAuth {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for McpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuth")
            .field("resource", &self.resource())
            .finish_non_exhaustive()
    }
}

impl McpAuth {
    /// Start building the kit for the MCP server whose canonical URI is `resource`
    /// (the URL clients connect to, e.g. `https://orders-mcp.example.com/mcp`): the
    /// audience its tokens must name.
    pub fn builder(resource: impl Into<String>) -> McpAuthBuilder {
        McpAuthBuilder {
            resource: resource.into(),
            issuers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            agent_claims: vec!["client_id".into(), "azp".into()],
            resource_name: None,
            sts: None,
            revocations: None,
            clock: Arc::new(SystemClock),
            leeway: Duration::from_secs(30),
            dpop_nonce_secret: None,
            http_timeout: Duration::from_secs(5),
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
        }
    }

    /// The canonical resource URI (the `aud` tokens must carry).
    pub fn resource(&self) -> &str {
        self.shared.metadata.resource()
    }

    /// The subscription to mcp-sts's revocation stream, when
    /// [`McpAuthBuilder::revocations`] configured one (to watch what it heard).
    pub fn revocation_stream(&self) -> Option<&Arc<RevocationStream>> {
        self.shared.revocations.as_deref().map(Revocations::stream)
    }

    /// The URL of the protected resource metadata document, as sent in challenges.
    pub fn metadata_url(&self) -> &str {
        self.shared.metadata.url()
    }

    /// The tower layer alone, for a service assembled by hand; put it directly around
    /// the `StreamableHttpService`, and serve [`McpAuth::metadata_router`] next to it.
    pub fn layer(&self) -> McpAuthLayer {
        McpAuthLayer::new(Arc::clone(&self.shared))
    }

    /// The RFC 9728 routes: `/.well-known/oauth-protected-resource` and, for a resource
    /// with a path, `/.well-known/oauth-protected-resource/<path>`.
    pub fn metadata_router(&self) -> Router {
        self.shared.metadata.router()
    }

    /// Everything in one router: the metadata routes, and the MCP endpoint at the
    /// resource's path behind the layer. `factory` builds the handler for each session
    /// and receives the [`ToolGate`] its [`ScopedTools`] are made with.
    pub fn serve<S, F>(&self, factory: F) -> Router
    where
        S: ServerHandler,
        F: Fn(ToolGate) -> S + Send + Sync + 'static,
    {
        let config = StreamableHttpServerConfig::default().with_allowed_hosts(self.shared.metadata.allowed_hosts());
        self.serve_with(config, Arc::new(LocalSessionManager::default()), factory)
    }

    /// [`McpAuth::serve`] with rmcp's transport configuration and session manager.
    pub fn serve_with<S, M, F>(&self, config: StreamableHttpServerConfig, sessions: Arc<M>, factory: F) -> Router
    where
        S: ServerHandler,
        M: SessionManager,
        F: Fn(ToolGate) -> S + Send + Sync + 'static,
    {
        let scopes = Arc::clone(&self.shared.tool_scopes);
        let service = StreamableHttpService::new(
            move || Ok(factory(ToolGate::new(Arc::clone(&scopes)))),
            sessions,
            config,
        );
        let protected = tower::Layer::layer(&self.layer(), service);
        let router = self.metadata_router();
        match self.shared.metadata.path() {
            "" | "/" => router.fallback_service(protected),
            path => router.nest_service(path, protected),
        }
    }
}
