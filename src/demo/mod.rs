//! `mcp-sts demo`: the whole flow in one process on free loopback ports, with nothing
//! else installed. A development IdP issues the agent (an MCP client, `claude-desktop`)
//! access tokens for alice, bob and carol that name it in `client_id`; mcp-sts runs from
//! an in-memory configuration (keys and an embedded revocation store in a temporary
//! directory); an MCP server built with the kit ([`crate::mcp`]) exchanges the user's
//! token for narrow tokens to three downstream APIs (one per delegation mode). The
//! orders API subscribes to mcp-sts's Shared Signals stream ([`signals`]), so an
//! offboarding reaches it as a signed event and it refuses the token locally.
//! mcp-sts is also the MCP server's authorization server for enterprise-managed
//! authorization ([`enterprise`]): the agent trades alice's ID token for an identity
//! assertion grant and redeems it for an access token to the MCP server.
//!
//! [`Demo::start`] brings everything up, [`story::play`] runs the scripted calls and
//! returns a [`DemoOutcome`] that tests assert on.

#![warn(missing_docs)]

pub mod agent;
pub mod enterprise;
pub mod examples;
pub mod mcp_server;
pub mod orders_api;
pub mod outcome;
pub mod scene;
pub mod services;
pub mod signals;
pub mod story;
pub mod trail;
pub mod users;
pub mod workload;

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::client::{DpopKey, Secret, StsClient, StsClientConfig, StsError};
use crate::client_auth::hash_secret;
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::dev_idp::{DevIdp, DevIdpError};
use crate::mcp::McpAuthError;
use crate::service::Sts;
use crate::verify::{Verifier, VerifierConfig, VerifyError};
pub use outcome::{CallOutcome, DemoOutcome, Denial, StreamDelivery, ToolCall};
pub use trail::{AuditTrail, TrailEntry};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Binding a port or creating the temporary directory failed.
    #[error("demo I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The development IdP failed.
    #[error(transparent)]
    Idp(#[from] DevIdpError),
    /// The generated configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// mcp-sts could not be built.
    #[error("mcp-sts: {0}")]
    Sts(String),
    /// A verifier could not be built.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The exchange client could not be built.
    #[error(transparent)]
    Client(#[from] StsError),
    /// The MCP server kit refused its configuration.
    #[error(transparent)]
    Kit(#[from] McpAuthError),
    /// The MCP session failed at the protocol level.
    #[error("MCP: {0}")]
    Mcp(String),
    /// Offboarding through the admin API failed.
    #[error("admin API: {0}")]
    Admin(String),
    /// A revocation did not reach a subscribed service through Shared Signals.
    #[error("Shared Signals: {0}")]
    Stream(String),
    /// The demo's SPIFFE trust domain could not sign.
    #[error("workload identity: {0}")]
    Workload(String),
}

/// Base URLs of everything the demo runs.
#[derive(Debug, Clone)]
pub struct DemoUrls {
    /// The development IdP (issuer of user and agent tokens).
    pub idp: String,
    /// mcp-sts (its issuer URL).
    pub sts: String,
    /// The MCP endpoint.
    pub mcp: String,
    /// The orders API (`on_behalf_of`).
    pub orders: String,
    /// The inventory API (`service_identity`).
    pub inventory: String,
    /// The legacy profile API (`restricted_user`).
    pub legacy: String,
}

/// Everything the demo started; dropping it stops the servers and removes the temp dir.
pub struct Demo {
    /// Where each part listens.
    pub urls: DemoUrls,
    /// The development IdP.
    pub idp: DevIdp,
    /// mcp-sts's shared state.
    pub sts: Arc<Sts>,
    /// The downstream services' audit trail.
    pub trail: AuditTrail,
    /// The orders API's subscription to mcp-sts's revocation stream.
    pub orders_signals: signals::Signals,
    /// The MCP server kit's subscription to mcp-sts's revocation stream.
    pub mcp_signals: signals::Signals,
    /// The client secret of `orders-mcp` (for the example commands).
    pub orders_mcp_secret: Secret,
    /// The MCP server's DPoP key: the tokens it obtains are bound to it.
    pub mcp_server_key: DpopKey,
    /// The client secret of `notes-api`, with which the example downstream API
    /// subscribes to mcp-sts's revocation stream.
    pub notes_api_secret: Secret,
    /// The client secret of the agent application at mcp-sts, with which it obtains and
    /// redeems identity assertion grants.
    pub agent_secret: Secret,
    /// The private key (PKCS#8 PEM) `notes-mcp`, the example MCP server, authenticates
    /// with (`private_key_jwt`).
    pub notes_mcp_key: Secret,
    /// The SPIFFE trust domain the workload agent's SVIDs come from.
    pub trust_domain: workload::DemoTrustDomain,
    admin_token: Secret,
    sts_audit: Arc<Mutex<Vec<Value>>>,
    dir: tempfile::TempDir,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn bind() -> Result<(TcpListener, String), DemoError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn random_secret() -> Secret {
    Secret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// The secrets generated for one run: client secrets and the admin credential.
struct Secrets {
    orders_mcp: Secret,
    orders_api: Secret,
    notes_api: Secret,
    agent: Secret,
    admin: Secret,
}

/// The demo's mcp-sts configuration. The IdP's `agent_claim` makes the agent named in a
/// user token's `client_id` part of the chain; `notes-mcp` and `notes-api` are there for
/// the examples (`examples/mcp_server.rs`, `examples/downstream_api.rs`). The agent
/// `claude-desktop` is a client too, for enterprise-managed authorization: it may obtain
/// grants from mcp-sts for the MCP server at `mcp` (mcp-sts is that server's
/// authorization server) and redeem them there; the MCP server is the audience
/// `orders-mcp`, so it can exchange the redeemed tokens further as that client.
fn sts_config(
    issuer: &str,
    mcp: &str,
    idp: &DevIdp,
    dir: &std::path::Path,
    secrets: &Secrets,
    notes_mcp_jwks: &str,
) -> String {
    let keys = dir.join("keys");
    let store = dir.join("revocations.db");
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{issuer}"

[keys]
dir = {keys:?}

[tokens]
default_ttl_seconds = 300

[revocation]
backend = "embedded"
path = {store:?}
# A laptop's disk can take longer than the production default to sync a write.
timeout_ms = 2000

[admin]
token_sha256 = "{admin}"

[[issuers]]
issuer = "{idp}"
audience = "{sts_audience}"
roles_claim = "roles"
agent_claim = "client_id"

[[clients]]
client_id = "orders-mcp"
secret_sha256 = "{orders_mcp}"
audiences = ["orders-api", "inventory-api", "legacy-api"]

[[clients]]
client_id = "orders-api"
secret_sha256 = "{orders_api}"
audiences = []

[[clients]]
client_id = "{agent}"
secret_sha256 = "{agent_secret}"
audiences = ["{orders_mcp_id}"]
authorization_servers = ["{issuer}"]

[[clients]]
client_id = "{notes_mcp}"
jwks = {notes_mcp_jwks}
audiences = ["{notes_api}"]

[[clients]]
client_id = "{notes_api}"
secret_sha256 = "{notes_api_secret}"
audiences = []

[[audiences]]
id = "orders-api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write", "orders:admin"]
[audiences.role_scopes]
developer = ["orders:read"]
customer = ["orders:read"]
order-admin = ["orders:read", "orders:write", "orders:admin"]

[[audiences]]
id = "{orders_mcp_id}"
resource = "{mcp}"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write"]

[[authorization_servers]]
issuer = "{issuer}"
[[authorization_servers.resources]]
resource = "{mcp}"
scopes = ["orders:read", "orders:write"]
[authorization_servers.resources.role_scopes]
developer = ["orders:read"]
customer = ["orders:read"]
order-admin = ["orders:read", "orders:write"]

[[audiences]]
id = "inventory-api"
mode = "service_identity"
scopes = ["inventory:read"]

[[audiences]]
id = "legacy-api"
mode = "restricted_user"
scopes = ["legacy:read"]
[audiences.role_scopes]
developer = ["legacy:read"]
order-admin = ["legacy:read"]

[[audiences]]
id = "{notes_api}"
resource = "{notes_api_resource}"
mode = "on_behalf_of"
scopes = ["notes:read", "notes:write"]
[audiences.role_scopes]
developer = ["notes:read", "notes:write"]
order-admin = ["notes:read", "notes:write"]
customer = ["notes:read"]
"#,
        idp = idp.issuer(),
        sts_audience = users::STS_AUDIENCE,
        admin = hash_secret(secrets.admin.expose()),
        orders_mcp = hash_secret(secrets.orders_mcp.expose()),
        orders_api = hash_secret(secrets.orders_api.expose()),
        notes_api_secret = hash_secret(secrets.notes_api.expose()),
        agent = users::AGENT,
        agent_secret = hash_secret(secrets.agent.expose()),
        orders_mcp_id = mcp_server::CLIENT_ID,
        notes_mcp = examples::NOTES_MCP_CLIENT_ID,
        notes_api = examples::NOTES_API_AUDIENCE,
        notes_api_resource = examples::NOTES_API_RESOURCE,
    )
}

impl Demo {
    /// Start the IdP, mcp-sts, the three downstream APIs and the MCP server.
    pub async fn start() -> Result<Self, DemoError> {
        let dir = tempfile::Builder::new().prefix("mcp-sts-demo-").tempdir()?;
        let (shutdown, stop) = watch::channel(false);
        let idp = DevIdp::start_local().await?;
        let secrets = Secrets {
            orders_mcp: random_secret(),
            orders_api: random_secret(),
            notes_api: random_secret(),
            agent: random_secret(),
            admin: random_secret(),
        };

        let notes_mcp = examples::ClientKey::generate()?;
        let (sts_listener, sts_url) = bind().await?;
        // The MCP server's address is part of mcp-sts's configuration (its resource).
        let (mcp_listener, mcp_base) = bind().await?;
        let mcp = format!("{mcp_base}/mcp");
        let trust_domain = workload::DemoTrustDomain::start(stop.clone()).await?;
        let config = Config::from_toml(&format!(
            "{}{}",
            sts_config(&sts_url, &mcp, &idp, dir.path(), &secrets, &notes_mcp.jwks_toml()?),
            trust_domain.toml()
        ))?;
        let (audit_log, sts_audit) = AuditLog::with_tap();
        let sts = crate::server::build(config, Arc::new(SystemClock), audit_log)
            .await
            .map_err(|e| DemoError::Sts(format!("{e:#}")))?;
        let mut sts_stop = stop.clone();
        let served = Arc::clone(&sts);
        tokio::spawn(async move {
            let until = async move {
                let _ = sts_stop.wait_for(|stop| *stop).await;
            };
            if let Err(error) = crate::http::serve(sts_listener, served, until).await {
                tracing::error!(%error, "demo mcp-sts stopped");
            }
        });

        let trail = AuditTrail::default();
        // The orders API hears revocations on mcp-sts's Shared Signals stream and decides
        // locally: no introspection call per request.
        let orders_signals = signals::Signals::subscribe(
            orders_api::AUDIENCE,
            &sts_url,
            orders_api::AUDIENCE,
            secrets.orders_api.expose(),
        )
        .await?;
        // Each API knows its public URL, so it can check DPoP proofs made for it.
        let (listener, orders) = bind().await?;
        let mut orders_config = VerifierConfig::new(&sts_url, orders_api::AUDIENCE).public_url(&orders);
        orders_config.revocation_stream = Some(Arc::clone(&orders_signals.stream));
        let orders_verifier = Arc::new(Verifier::new(orders_config)?);
        let app = orders_api::router(orders_verifier, trail.clone());
        trail::spawn_server(listener, app, stop.clone(), "orders-api");

        let (listener, inventory) = bind().await?;
        let verifier = Arc::new(Verifier::new(
            VerifierConfig::new(&sts_url, services::INVENTORY_AUDIENCE).public_url(&inventory),
        )?);
        trail::spawn_server(
            listener,
            services::inventory_router(verifier, trail.clone()),
            stop.clone(),
            "inventory-api",
        );

        let (listener, legacy) = bind().await?;
        let verifier = Arc::new(Verifier::new(
            VerifierConfig::new(&sts_url, services::LEGACY_AUDIENCE).public_url(&legacy),
        )?);
        trail::spawn_server(
            listener,
            services::legacy_router(verifier, trail.clone()),
            stop.clone(),
            "legacy-api",
        );

        let downstreams = mcp_server::Downstreams {
            orders: orders.clone(),
            inventory: inventory.clone(),
            legacy: legacy.clone(),
        };
        // The MCP server proves possession of a key of its own (RFC 9449): the tokens
        // mcp-sts mints for it are bound to it, so a copied one is useless.
        let mcp_server_key = DpopKey::generate()?;
        let sts_client = StsClient::new(
            StsClientConfig::new(
                format!("{sts_url}/token"),
                mcp_server::CLIENT_ID,
                secrets.orders_mcp.clone(),
            )
            .with_dpop(mcp_server_key.clone()),
        )?;
        let backend = Arc::new(mcp_server::Backend::new(downstreams));
        // The MCP server hears revocations too, and refuses an offboarded user itself.
        let stream = signals::config(&sts_url, mcp_server::CLIENT_ID, secrets.orders_mcp.expose(), "demo");
        let auth = mcp_server::auth(&mcp, &[idp.issuer(), &sts_url], sts_client, stream).await?;
        let stream = auth
            .revocation_stream()
            .cloned()
            .ok_or_else(|| DemoError::Stream("the MCP server did not subscribe".into()))?;
        let mcp_signals = signals::Signals::of_kit(mcp_server::CLIENT_ID, stream).await?;
        trail::spawn_server(
            mcp_listener,
            mcp_server::router(&auth, backend, stop.clone()),
            stop,
            "orders-mcp",
        );

        Ok(Self {
            urls: DemoUrls {
                idp: idp.issuer().to_owned(),
                sts: sts_url,
                mcp,
                orders,
                inventory,
                legacy,
            },
            idp,
            sts,
            trail,
            orders_signals,
            mcp_signals,
            orders_mcp_secret: secrets.orders_mcp,
            mcp_server_key,
            notes_api_secret: secrets.notes_api,
            agent_secret: secrets.agent,
            notes_mcp_key: notes_mcp.pem,
            trust_domain,
            admin_token: secrets.admin,
            sts_audit,
            dir,
            shutdown,
        })
    }

    /// The temporary directory holding keys, the revocation store and example tokens.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The current time, as mcp-sts sees it.
    pub fn now(&self) -> u64 {
        self.sts.clock.now()
    }

    /// mcp-sts's audit events so far.
    pub fn sts_audit(&self) -> Vec<Value> {
        self.sts_audit.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The agent application's client at mcp-sts (`client_secret_basic`).
    pub fn agent_client(&self) -> Result<StsClient, DemoError> {
        let mut config = StsClientConfig::new(
            format!("{}/token", self.urls.sts),
            users::AGENT,
            self.agent_secret.clone(),
        );
        // Grants and their redemptions are one-off; the story wants every answer fresh.
        config.cache_capacity = 0;
        Ok(StsClient::new(config)?)
    }

    /// The MCP server's own client at mcp-sts (`orders-mcp`), for the story's requests
    /// made without the MCP server; nothing cached.
    pub fn mcp_server_client(&self) -> Result<StsClient, DemoError> {
        let mut config = StsClientConfig::new(
            format!("{}/token", self.urls.sts),
            mcp_server::CLIENT_ID,
            self.orders_mcp_secret.clone(),
        );
        config.cache_capacity = 0;
        Ok(StsClient::new(config)?)
    }

    /// The MCP server's exchange client as the MCP server runs it: holding its DPoP key,
    /// so what it obtains is bound to that key.
    pub fn mcp_server_bound_client(&self) -> Result<StsClient, DemoError> {
        let mut config = StsClientConfig::new(
            format!("{}/token", self.urls.sts),
            mcp_server::CLIENT_ID,
            self.orders_mcp_secret.clone(),
        )
        .with_dpop(self.mcp_server_key.clone());
        config.cache_capacity = 0;
        Ok(StsClient::new(config)?)
    }

    /// Revoke `subject` (offboarding) through the admin API, `POST /admin/revocations`
    /// with the admin Bearer credential. Returns once the orders API and the MCP server
    /// have heard it on their Shared Signals streams (with how long each took), so every
    /// later step of the story sees it in force.
    pub async fn offboard(&self, subject: &str) -> Result<Vec<(&'static str, std::time::Duration)>, DemoError> {
        let started = std::time::Instant::now();
        self.revoke_subject(subject).await?;
        let mut heard = Vec::new();
        for signals in [&self.orders_signals, &self.mcp_signals] {
            let after = signals
                .heard(crate::contract::revocation::RevocationKind::Subject, subject, started)
                .await?;
            heard.push((signals.service, after));
        }
        Ok(heard)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<(), DemoError> {
        self.revoke(
            crate::contract::revocation::RevocationKind::Subject,
            subject,
            "offboarding",
        )
        .await
    }

    /// Revoke `value` as `kind` through the admin API.
    async fn revoke(
        &self,
        kind: crate::contract::revocation::RevocationKind,
        value: &str,
        reason: &str,
    ) -> Result<(), DemoError> {
        let body = serde_json::json!({
            "kind": kind.to_string(),
            "value": value,
            "reason": reason,
            "revoked_by": "demo",
        });
        let response = reqwest::Client::new()
            .post(format!("{}/admin/revocations", self.urls.sts))
            .bearer_auth(self.admin_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| DemoError::Admin(e.without_url().to_string()))?;
        match response.status().as_u16() {
            200 | 201 => Ok(()),
            other => Err(DemoError::Admin(format!(
                "POST /admin/revocations answered HTTP {other}"
            ))),
        }
    }
}
