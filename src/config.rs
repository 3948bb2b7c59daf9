//! Configuration: typed, loaded and validated once at start-up.
//!
//! Every table refuses unknown keys, and [`Config::validate`] checks what types
//! cannot (an audience no client can reach, a bad TTL, an issuer that is not a URL
//! without a `jwks_uri`), so a mistake stops the service with a message naming the key.

mod check;
mod cimd;
mod workloads;

pub use check::{Problem, Severity};
pub(crate) use cimd::{CimdAllow, CimdConfig};
pub(crate) use workloads::{IssuerKind, Pattern, SERVICE_ACCOUNT, WorkloadRule, spiffe_issuer, valid_trust_domain};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen and who we are.
    pub server: ServerConfig,
    /// Signing keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Token lifetimes and chain limits.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// Where revocations live.
    #[serde(default)]
    pub revocation: RevocationConfig,
    /// The admin API credential.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Where audit events go.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Request rate limits per client and per subject.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The Shared Signals transmitter (docs/shared-signals.md).
    #[serde(default)]
    pub ssf: SsfConfig,
    /// Sender-constrained tokens (RFC 9449 DPoP).
    #[serde(default)]
    pub dpop: DpopConfig,
    /// Where traces go (OpenTelemetry over OTLP/HTTP); none are exported by default.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Upstream identity providers trusted for subject and actor tokens.
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Callers of `/token`, `/revoke` and `/introspect`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Downstream services tokens are minted for.
    #[serde(default)]
    pub audiences: Vec<AudienceConfig>,
    /// Authorization servers of MCP servers this service issues identity assertion
    /// grants (ID-JAGs) for, acting as the enterprise's token service.
    #[serde(default)]
    pub authorization_servers: Vec<AuthorizationServerConfig>,
    /// Which SPIFFE IDs and service accounts may act or authenticate, and as what.
    #[serde(default)]
    pub workloads: Vec<WorkloadRule>,
    /// URL clients: client ID metadata documents.
    #[serde(default)]
    pub cimd: CimdConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Socket address to bind, e.g. `127.0.0.1:8400`.
    pub listen: String,
    /// `iss` of minted tokens and base URL of the metadata document.
    pub issuer: String,
    /// Largest accepted request body in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest accepted subject, actor or assertion token in bytes.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// How many verified subject and actor token signatures to remember, so a token
    /// exchanged again costs a hash instead of a signature check (0: check every time).
    /// Each entry has a fixed size, whatever the token's, so this bounds the bytes too.
    #[serde(default = "default_verified_token_cache")]
    pub verified_token_cache: usize,
    /// Longest a client may take to send a request's head, from its first byte; past
    /// it the connection is closed.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Longest a client may take to send a request's body once its head is read; past
    /// it the request is refused (408) and the connection closed.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Longest a kept-alive connection may wait for its next request before it is closed.
    #[serde(default = "default_keep_alive_timeout_ms")]
    pub keep_alive_timeout_ms: u64,
    /// Most connections served at once; further clients wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// On SIGTERM, how long requests in flight may take; past it they are abandoned
    /// (audit lines already written are still flushed) and the process exits.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
}

pub use mcp_sts_contract::jose::SigningAlgorithm;

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Directory of PKCS#8 PEM private keys, one per file.
    #[serde(default = "default_keys_dir")]
    pub dir: PathBuf,
    /// Algorithm of generated keys and of the key that signs.
    #[serde(default)]
    pub algorithm: SigningAlgorithm,
    /// How often (seconds) the directory is re-read to pick up a rotation.
    #[serde(default = "default_key_reload_seconds")]
    pub reload_seconds: u64,
    /// A rotated key is published at once but signs only this many seconds later, so
    /// verifiers that cache the JWKS learn it before they see it (0: sign at once).
    #[serde(default = "default_activate_after")]
    pub activate_after_seconds: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: default_keys_dir(),
            algorithm: SigningAlgorithm::default(),
            reload_seconds: default_key_reload_seconds(),
            activate_after_seconds: default_activate_after(),
        }
    }
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Lifetime of minted tokens unless an audience sets a shorter one.
    #[serde(default = "default_ttl")]
    pub default_ttl_seconds: u64,
    /// How many actors a delegation chain may hold.
    #[serde(default = "default_max_depth")]
    pub max_delegation_depth: usize,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` of inbound tokens.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            default_ttl_seconds: default_ttl(),
            max_delegation_depth: default_max_depth(),
            leeway_seconds: default_leeway(),
        }
    }
}

/// Which revocation backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RevocationBackend {
    /// A file on disk: a single node, and the default.
    #[default]
    Embedded,
    /// Redis, shared by every replica.
    Redis,
    /// In process only; lost on restart. For tests and throwaway runs.
    Memory,
}

/// `[revocation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// The backend.
    #[serde(default)]
    pub backend: RevocationBackend,
    /// Embedded store file.
    #[serde(default = "default_revocation_path")]
    pub path: PathBuf,
    /// Redis URL of one server (password and database number allowed). Unset with
    /// `cluster` or `sentinels`; [`RevocationConfig::redis_url`] gives the default.
    #[serde(default)]
    pub url: Option<String>,
    /// Redis Cluster: URLs of some of its nodes (the rest is discovered).
    #[serde(default)]
    pub cluster: Vec<String>,
    /// Redis Sentinel: URLs of the sentinels; the master is found through them.
    #[serde(default)]
    pub sentinels: Vec<String>,
    /// The master's name as the sentinels know it (required with `sentinels`).
    pub master_name: Option<String>,
    /// Prefix of every Redis key, so several deployments can share a Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Deadline of one store operation; past it the request fails closed (503).
    #[serde(default = "default_store_timeout_ms")]
    pub timeout_ms: u64,
    /// How long session revocations are kept, and the replay memory of upstream
    /// Shared Signals events (an event older than this is refused). Subject, agent
    /// and client revocations no longer expire by it: they hold until reinstated.
    #[serde(default = "default_retention")]
    pub retention_seconds: u64,
    /// Replicas that must confirm a write carrying a promise (Redis `WAIT`) before it
    /// is acknowledged.
    #[serde(default)]
    pub min_replicas_acked: MinReplicasAcked,
    /// How long such a write waits for its replicas; past it the caller gets 503.
    #[serde(default = "default_replication_timeout_ms")]
    pub replication_timeout_ms: u64,
    /// Also wait for the master's own fsync of its append-only file (`WAITAOF`).
    #[serde(default)]
    pub fsync_acked: bool,
    /// Start even when Redis hides `CONFIG`, so its eviction policy cannot be read.
    #[serde(default)]
    pub accept_unknown_eviction_policy: bool,
}

/// `revocation.min_replicas_acked`: `"auto"` or a number of replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinReplicasAcked {
    /// One under Sentinel and for every Cluster shard with replicas; none for one
    /// server or a shard without replicas (its append-only file is the promise).
    #[default]
    Auto,
    /// This many replicas for every write.
    Exactly(u32),
}

impl<'de> Deserialize<'de> for MinReplicasAcked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Count(n) => Ok(MinReplicasAcked::Exactly(n)),
            Raw::Word(word) if word == "auto" => Ok(MinReplicasAcked::Auto),
            Raw::Word(other) => Err(serde::de::Error::custom(format!(
                "expected \"auto\" or a number of replicas, found {other:?}"
            ))),
        }
    }
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            backend: RevocationBackend::default(),
            path: default_revocation_path(),
            url: None,
            cluster: Vec::new(),
            sentinels: Vec::new(),
            master_name: None,
            key_prefix: default_key_prefix(),
            timeout_ms: default_store_timeout_ms(),
            retention_seconds: default_retention(),
            min_replicas_acked: MinReplicasAcked::Auto,
            replication_timeout_ms: default_replication_timeout_ms(),
            fsync_acked: false,
            accept_unknown_eviction_policy: false,
        }
    }
}

impl RevocationConfig {
    /// The single-server URL: `url`, or the local default when it is not set.
    pub fn redis_url(&self) -> String {
        self.url.clone().unwrap_or_else(default_redis_url)
    }
}

/// `[limits]`: token requests allowed per second, per calling client and per user, so
/// one runaway agent cannot starve the others. Unset means no limit (the default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second for each client.
    pub client_per_second: Option<u32>,
    /// Requests a client may make at once above the sustained rate (default: the rate).
    pub client_burst: Option<u32>,
    /// Sustained exchanges per second for each subject (user).
    pub subject_per_second: Option<u32>,
    /// Exchanges a subject may make at once above the sustained rate (default: the rate).
    pub subject_burst: Option<u32>,
}

/// `[dpop]`: sender-constrained tokens (RFC 9449).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopConfig {
    /// Demand server nonces (`DPoP-Nonce`) in proofs at `/token`.
    #[serde(default)]
    pub nonce: bool,
}

/// Whether a client's tokens are bound to its key (`[[clients]] dpop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    /// A proof binds the token; without one the token is a bearer token.
    #[default]
    Optional,
    /// Every request must carry a proof.
    Required,
    /// A proof is ignored: bearer tokens only.
    Off,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Hex SHA-256 of the admin Bearer credential; absent means the admin API is off.
    pub token_sha256: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Append audit events to this file instead of stdout.
    pub file: Option<PathBuf>,
}

/// `[telemetry]`: OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when an
/// endpoint is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans are sent to
    /// `<otlp_endpoint>/v1/traces`. Unset: no spans leave the process.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute (default `mcp-sts`).
    pub service_name: Option<String>,
}

/// `[ssf]`: how the Shared Signals transmitter serves its receivers. The transmitter
/// is on whenever clients are configured: any client may create streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsfConfig {
    /// Longest a poll with `returnImmediately: false` waits for an event (RFC 8936 §2.4).
    #[serde(default = "default_long_poll_seconds")]
    pub long_poll_seconds: u64,
    /// Most streams one client may hold; creating one more answers 409.
    #[serde(default = "default_max_streams_per_client")]
    pub max_streams_per_client: usize,
    /// How often push streams are worked through (RFC 8935), in milliseconds.
    #[serde(default = "default_push_interval_ms")]
    pub push_interval_ms: u64,
    /// When set, push endpoints may only be on these hosts (exact names or IP
    /// literals), which may then be internal. Empty: any host with a public address.
    #[serde(default)]
    pub push_allowed_hosts: Vec<String>,
    /// Let push endpoints be loopback, private or link-local addresses (development
    /// only: a receiver could otherwise aim mcp-sts at internal services).
    #[serde(default)]
    pub push_allow_private_networks: bool,
}

impl Default for SsfConfig {
    fn default() -> Self {
        Self {
            long_poll_seconds: default_long_poll_seconds(),
            max_streams_per_client: default_max_streams_per_client(),
            push_interval_ms: default_push_interval_ms(),
            push_allowed_hosts: Vec::new(),
            push_allow_private_networks: false,
        }
    }
}

/// `[issuers.ssf]`: the upstream IdP's Shared Signals transmitter, which mcp-sts
/// subscribes to as a receiver (CAEP `session-revoked`, `credential-change`, RISC
/// `account-disabled` become session or subject revocations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSsfConfig {
    /// URL of the transmitter's `/.well-known/ssf-configuration`.
    pub configuration: String,
    /// Client id mcp-sts authenticates with (HTTP Basic, with `client_secret`).
    pub client_id: Option<String>,
    /// Client secret for HTTP Basic.
    pub client_secret: Option<mcp_sts_contract::secret::Secret>,
    /// A Bearer token instead of Basic credentials.
    pub bearer_token: Option<mcp_sts_contract::secret::Secret>,
    /// The `aud` the transmitter puts in our SETs; default: our issuer URL.
    pub audience: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_upstream_poll_seconds")]
    pub poll_interval_seconds: u64,
}

/// One trusted upstream issuer (`[[issuers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// What kind of issuer: `oidc` (default), `spiffe` or `kubernetes`.
    #[serde(default)]
    pub kind: IssuerKind,
    /// Exact `iss` value: a URL, or a name such as a Teleport cluster. For
    /// `kind = "spiffe"`, set from `trust_domain` (`spiffe://<trust domain>`).
    #[serde(default)]
    pub issuer: String,
    /// The value that must appear in the token's `aud` (workload issuers: our issuer
    /// URL unless set).
    #[serde(default)]
    pub audience: String,
    /// `kind = "spiffe"`: the trust domain whose SPIFFE IDs this issuer vouches for.
    pub trust_domain: Option<String>,
    /// `kind = "spiffe"`: the trust domain's SPIFFE bundle endpoint.
    pub bundle_endpoint: Option<String>,
    /// The actor profile of this issuer's actor tokens (default `ai_agent`).
    pub actor_profile: Option<mcp_sts_contract::SubProfile>,
    /// Explicit JWKS URL; without it, OIDC discovery under `issuer`.
    pub jwks_uri: Option<String>,
    /// Claim holding the user's roles (dots descend into objects, e.g. `realm_access.roles`);
    /// an empty string says this issuer's tokens carry no roles.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// What entitles a user in the user modes; see [`IssuerConfig::entitlement`].
    #[serde(rename = "entitlement")]
    pub entitlement_setting: Option<EntitlementSource>,
    /// Claim holding the user's tenant, if any.
    pub tenant_claim: Option<String>,
    /// Signature algorithms accepted from this issuer.
    #[serde(default = "default_inbound_algorithms")]
    pub algorithms: Vec<String>,
    /// The claim naming the agent application that obtained the user's token (RFC 9068
    /// `client_id`, or `azp`). With no actor token, the agent joins the chain from it.
    pub agent_claim: Option<String>,
    /// When the roles claim is a string, the delimiter between roles; without it a
    /// string is one role (group names contain spaces).
    pub roles_delimiter: Option<String>,
    /// The issuer's Shared Signals transmitter, if mcp-sts should subscribe to it.
    pub ssf: Option<UpstreamSsfConfig>,
    /// Redeem identity assertion grants (ID-JAGs) this issuer addresses to us with the
    /// RFC 7523 JWT bearer grant. Off unless set: trusting an issuer's ID tokens is
    /// not trusting it to grant access.
    #[serde(default)]
    pub accept_id_jag: bool,
    /// Fetch this issuer's discovery document and JWKS over plain http from a host
    /// that is not loopback. Off unless set: keys fetched in clear text let anyone on
    /// the path forge any user's token.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Client ids this issuer's DPoP-bound tokens may be delegated to (bound to the
    /// caller's key) when the token's own `may_act` does not name the caller.
    #[serde(default)]
    pub dpop_delegates: Vec<String>,
}

/// Where a user's entitlement comes from, for tokens of one upstream issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementSource {
    /// The audience's `role_scopes` for each of the user's roles.
    Roles,
    /// The subject token's own `scope` values.
    TokenScopes,
    /// The union of both: the token's scopes widen what the roles grant.
    Both,
}

impl EntitlementSource {
    /// The configuration value, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Roles => "roles",
            Self::TokenScopes => "token_scopes",
            Self::Both => "both",
        }
    }

    /// Whether the user's roles entitle.
    pub(crate) fn uses_roles(self) -> bool {
        matches!(self, Self::Roles | Self::Both)
    }

    /// Whether the subject token's `scope` entitles.
    pub(crate) fn uses_token_scopes(self) -> bool {
        matches!(self, Self::TokenScopes | Self::Both)
    }
}

impl IssuerConfig {
    /// The entitlement that applies: the explicit setting, else roles when the issuer
    /// has a roles claim (what `role_scopes` promises), else the token's own scopes.
    pub fn entitlement(&self) -> EntitlementSource {
        match self.entitlement_setting {
            Some(source) => source,
            None if self.roles_claim.is_empty() => EntitlementSource::TokenScopes,
            None => EntitlementSource::Roles,
        }
    }
}

/// One caller (`[[clients]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client's identifier.
    pub client_id: String,
    /// Hex SHA-256 of the client secret (`client_secret_basic` / `client_secret_post`).
    pub secret_sha256: Option<String>,
    /// Inline public keys for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// URL of the client's public keys for `private_key_jwt`.
    pub jwks_uri: Option<String>,
    /// Audiences this client may request tokens for (by exchange, or by redeeming an
    /// identity assertion grant for the audience's resource).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Issuer identifiers of the authorization servers this client (an agent
    /// application) may obtain identity assertion grants for.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Whether this client's tokens are bound to its DPoP key.
    #[serde(default)]
    pub dpop: DpopMode,
}

/// Delegation mode of an audience, chosen by policy, never by the caller.
pub use mcp_sts_contract::DelegationMode;

/// One downstream audience (`[[audiences]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceConfig {
    /// Matched by the `audience` parameter; the token's `aud`.
    pub id: String,
    /// Optional absolute URI matched by the `resource` parameter (RFC 8707).
    pub resource: Option<String>,
    /// How tokens for this audience represent the user and the agent.
    pub mode: DelegationMode,
    /// Every scope the audience knows.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes each role entitles a user to.
    #[serde(default)]
    pub role_scopes: BTreeMap<String, Vec<String>>,
    /// Lifetime of tokens for this audience (restricted_user defaults to 60 s).
    pub ttl_seconds: Option<u64>,
    /// Never mint a bearer token for this audience: every request needs a DPoP proof.
    #[serde(default)]
    pub require_dpop: bool,
}

impl AudienceConfig {
    /// The lifetime cap this audience puts on its tokens.
    pub(crate) fn ttl_cap(&self) -> Option<u64> {
        match (self.ttl_seconds, self.mode) {
            (Some(ttl), _) => Some(ttl),
            (None, DelegationMode::RestrictedUser) => Some(RESTRICTED_USER_DEFAULT_TTL),
            (None, _) => None,
        }
    }
}

/// One authorization server (`[[authorization_servers]]`) that accepts the identity
/// assertion grants we issue: an MCP server's authorization server, possibly ourselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationServerConfig {
    /// Its RFC 8414 issuer identifier: the `audience` asked for and the grant's `aud`.
    pub issuer: String,
    /// The protected resources (MCP servers) it fronts.
    pub resources: Vec<ProtectedResourceConfig>,
    /// Lifetime of the grants we issue for it (default 300 seconds, at most 600).
    pub ttl_seconds: Option<u64>,
}

impl AuthorizationServerConfig {
    /// The lifetime of grants for this authorization server.
    pub(crate) fn grant_ttl(&self) -> u64 {
        self.ttl_seconds.unwrap_or(DEFAULT_GRANT_TTL)
    }
}

/// One protected resource behind an authorization server (`[[authorization_servers.resources]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedResourceConfig {
    /// The resource identifier (RFC 8707, RFC 9728): the MCP server's URL.
    pub resource: String,
    /// Every scope a grant for it may carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes each role entitles a user to.
    #[serde(default)]
    pub role_scopes: BTreeMap<String, Vec<String>>,
}

/// Default lifetime of identity assertion grants: long enough to redeem, no longer.
pub(crate) const DEFAULT_GRANT_TTL: u64 = 300;

/// Longest lifetime of identity assertion grants we issue.
pub(crate) const MAX_GRANT_TTL: u64 = 600;

/// Default lifetime of `restricted_user` tokens.
pub const RESTRICTED_USER_DEFAULT_TTL: u64 = 60;

/// A configuration mistake, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source} (give the file with --config)")]
    Read {
        /// The path tried.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// Values that parse but cannot work: every error found, each naming its key
    /// (never only the first, so one start-up attempt shows all there is to fix).
    #[error("invalid config: {}", list_errors(.0))]
    Invalid(Vec<Problem>),
}

/// One error as `` `key`: message ``; several as a count and one indented line each.
fn list_errors(problems: &[Problem]) -> String {
    match problems {
        [one] => format!("`{}`: {}", one.key, one.message),
        all => {
            let lines: Vec<String> = all.iter().map(|p| format!("\n  `{}`: {}", p.key, p.message)).collect();
            format!("{} errors:{}", all.len(), lines.concat())
        }
    }
}

impl Config {
    /// Read, parse and validate a file. Relative paths in it (`keys.dir`,
    /// `revocation.path`, `audit.file`) are taken from the file's folder, so every
    /// command finds the same keys whatever directory it runs in.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::parse_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Read and parse a file without validating it (`config check` reports every
    /// problem itself); relative paths resolved as in [`Config::load`].
    pub fn parse_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(config)
    }

    /// Parse and validate TOML text. Relative paths are taken from the working directory.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config = Self::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parse TOML text: syntax, unknown keys and types only.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.fill_workload_defaults();
        Ok(config)
    }

    /// Make relative paths relative to `base` (the configuration file's folder).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.keys.dir);
        resolve(&mut self.revocation.path);
        if let Some(file) = self.audit.file.as_mut() {
            resolve(file);
        }
    }

    /// The longest lifetime any minted token can have: keys and revocations must outlive it.
    pub(crate) fn max_token_ttl(&self) -> u64 {
        self.audiences
            .iter()
            .filter_map(AudienceConfig::ttl_cap)
            .chain(
                self.authorization_servers
                    .iter()
                    .map(AuthorizationServerConfig::grant_ttl),
            )
            .chain(std::iter::once(self.tokens.default_ttl_seconds))
            .max()
            .unwrap_or(self.tokens.default_ttl_seconds)
    }

    /// The token endpoint URL, as advertised and as accepted in client assertions.
    pub(crate) fn token_endpoint(&self) -> String {
        format!("{}/token", self.server.issuer)
    }
}

/// RFC 8707 §2: a resource is an absolute URI without a fragment.
pub fn check_resource_uri(value: &str) -> Result<(), String> {
    let parsed = url::Url::parse(value).map_err(|_| "must be an absolute URI".to_owned())?;
    if parsed.fragment().is_some() || value.contains('#') {
        return Err("must not contain a fragment".into());
    }
    Ok(())
}

fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}

fn default_verified_token_cache() -> usize {
    100_000
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
fn default_keep_alive_timeout_ms() -> u64 {
    60_000
}
fn default_max_connections() -> usize {
    1_024
}
fn default_shutdown_timeout_ms() -> u64 {
    10_000
}
fn default_keys_dir() -> PathBuf {
    PathBuf::from("keys")
}
fn default_key_reload_seconds() -> u64 {
    10
}
/// Ten minutes: longer than the JWKS cache or refetch interval of common verifiers
/// (jose: 30 s cooldown, 10 min cache; Microsoft.IdentityModel: 5 min refresh
/// interval; ours: 10 s) plus our 60 s JWKS max-age and 10 s key reload.
fn default_activate_after() -> u64 {
    600
}
fn default_ttl() -> u64 {
    300
}
fn default_max_depth() -> usize {
    4
}
fn default_leeway() -> u64 {
    30
}
fn default_revocation_path() -> PathBuf {
    PathBuf::from("var/revocations.db")
}
fn default_redis_url() -> String {
    "redis://127.0.0.1:6379/0".into()
}
fn default_key_prefix() -> String {
    "mcp-sts:".into()
}
fn default_store_timeout_ms() -> u64 {
    100
}
fn default_replication_timeout_ms() -> u64 {
    1_000
}
fn default_retention() -> u64 {
    30 * 86_400
}
fn default_long_poll_seconds() -> u64 {
    20
}
fn default_max_streams_per_client() -> usize {
    4
}
fn default_push_interval_ms() -> u64 {
    1_000
}
fn default_upstream_poll_seconds() -> u64 {
    5
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_inbound_algorithms() -> Vec<String> {
    mcp_sts_contract::jose::algorithm::asymmetric_names()
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8400"
issuer = "https://sts.example"

[[issuers]]
issuer = "https://idp.example"
audience = "mcp-sts"

[[clients]]
client_id = "assistant"
secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
audiences = ["orders-mcp"]
authorization_servers = ["https://sts.example"]

[[audiences]]
id = "orders-mcp"
resource = "https://orders.example/mcp"
mode = "on_behalf_of"
scopes = ["orders:read"]
"#;

    const OWN_SERVER: &str = r#"
[[authorization_servers]]
issuer = "https://sts.example"
[[authorization_servers.resources]]
resource = "https://orders.example/mcp"
scopes = ["orders:read"]
[authorization_servers.resources.role_scopes]
developer = ["orders:read"]
"#;

    #[test]
    fn acknowledgement_keys_parse_and_are_checked() {
        let redis = |extra: &str| format!("{BASE}{OWN_SERVER}\n[revocation]\nbackend = \"redis\"\n{extra}\n");
        let config = Config::from_toml(&redis("")).unwrap();
        assert_eq!(config.revocation.min_replicas_acked, MinReplicasAcked::Auto);
        assert_eq!(config.revocation.replication_timeout_ms, 1_000);
        assert!(!config.revocation.fsync_acked && !config.revocation.accept_unknown_eviction_policy);
        let config = Config::from_toml(&redis(
            "min_replicas_acked = 2\nreplication_timeout_ms = 250\nfsync_acked = true\naccept_unknown_eviction_policy = true",
        ))
        .unwrap();
        assert_eq!(config.revocation.min_replicas_acked, MinReplicasAcked::Exactly(2));
        assert_eq!(config.revocation.replication_timeout_ms, 250);
        assert!(config.revocation.fsync_acked && config.revocation.accept_unknown_eviction_policy);
        let auto = Config::from_toml(&redis("min_replicas_acked = \"auto\"")).unwrap();
        assert_eq!(auto.revocation.min_replicas_acked, MinReplicasAcked::Auto);
        assert!(Config::from_toml(&redis("min_replicas_acked = \"two\"")).is_err());
        assert!(Config::from_toml(&redis("min_replicas_acked = -1")).is_err());
        assert_eq!(
            key_of(&redis("replication_timeout_ms = 0")),
            "revocation.replication_timeout_ms"
        );
        // Zero replicas is allowed, with a warning naming the key.
        let zero = Config::from_toml(&redis("min_replicas_acked = 0")).unwrap();
        assert!(
            zero.problems()
                .iter()
                .any(|p| p.key == "revocation.min_replicas_acked" && p.severity == Severity::Warning)
        );
    }

    #[test]
    fn dpop_keys_parse_and_an_off_client_may_not_reach_a_bound_only_audience() {
        let config = Config::from_toml(&format!("{BASE}{OWN_SERVER}")).unwrap();
        assert!(!config.dpop.nonce);
        assert_eq!(config.clients.first().map(|c| c.dpop), Some(DpopMode::Optional));
        assert!(config.audiences.iter().all(|a| !a.require_dpop));
        let with = |client: &str, audience: &str| {
            BASE.replace(
                "authorization_servers = [\"https://sts.example\"]\n",
                &format!("authorization_servers = [\"https://sts.example\"]\n{client}\n"),
            )
            .replace(
                "scopes = [\"orders:read\"]\n",
                &format!("scopes = [\"orders:read\"]\n{audience}\n"),
            ) + OWN_SERVER
                + "\n[dpop]\nnonce = true\n"
        };
        let bound = Config::from_toml(&with("dpop = \"required\"", "require_dpop = true")).unwrap();
        assert!(bound.dpop.nonce);
        assert_eq!(bound.clients.first().map(|c| c.dpop), Some(DpopMode::Required));
        assert!(bound.audiences.iter().all(|a| a.require_dpop));
        assert_eq!(
            key_of(&with("dpop = \"off\"", "require_dpop = true")),
            "clients[0].dpop"
        );
        assert!(Config::from_toml(&with("dpop = \"off\"", "")).is_ok());
        assert!(Config::from_toml(&with("dpop = \"sometimes\"", "")).is_err());
    }

    fn key_of(toml: &str) -> String {
        match Config::from_toml(toml) {
            Err(ConfigError::Invalid(problems)) => problems.first().map(|p| p.key.clone()).unwrap_or_default(),
            other => format!("{other:?}"),
        }
    }

    fn problems_of(toml: &str) -> Vec<(Severity, String)> {
        Config::parse(toml)
            .unwrap()
            .problems()
            .into_iter()
            .map(|p| (p.severity, p.key))
            .collect()
    }

    #[test]
    fn start_up_names_every_error_not_only_the_first() {
        let broken = BASE
            .replace("listen = \"127.0.0.1:8400\"", "listen = \"nowhere\"")
            .replace("scopes = [\"orders:read\"]", "scopes = [\"bad scope\"]")
            + "[tokens]\ndefault_ttl_seconds = 0\n";
        let Err(ConfigError::Invalid(problems)) = Config::from_toml(&broken) else {
            panic!("accepted");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.listen"), "{keys:?}");
        assert!(keys.contains(&"tokens.default_ttl_seconds"), "{keys:?}");
        assert!(keys.contains(&"audiences[0].scopes"), "{keys:?}");
        let text = ConfigError::Invalid(problems).to_string();
        assert!(text.contains("errors:") && text.contains("`server.listen`"), "{text}");
    }

    #[test]
    fn keys_over_plain_http_off_loopback_need_the_issuers_consent() {
        let base = format!("{BASE}{OWN_SERVER}");
        let discovery = base.replace("issuer = \"https://idp.example\"", "issuer = \"http://idp.example\"");
        assert!(problems_of(&discovery).contains(&(Severity::Error, "issuers[0].issuer".into())));
        let allowed = discovery.replace(
            "audience = \"mcp-sts\"",
            "audience = \"mcp-sts\"\nallow_plain_http = true",
        );
        assert_eq!(
            problems_of(&allowed),
            vec![(Severity::Warning, "issuers[0].issuer".into())],
            "allowed, and still said"
        );
        let jwks = base.replace(
            "audience = \"mcp-sts\"",
            "audience = \"mcp-sts\"\njwks_uri = \"http://keys.example/jwks\"",
        );
        assert!(problems_of(&jwks).contains(&(Severity::Error, "issuers[0].jwks_uri".into())));
        for loopback in ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"] {
            let local = base.replace("https://idp.example", loopback);
            assert!(problems_of(&local).is_empty(), "{loopback}");
        }
        let issuer = base.replace("https://sts.example", "http://sts.example");
        assert!(problems_of(&issuer).contains(&(Severity::Warning, "server.issuer".into())));
    }

    #[test]
    fn server_edges_have_safe_defaults_and_bounds() {
        let config = Config::from_toml(&format!("{BASE}{OWN_SERVER}")).unwrap();
        let server = &config.server;
        assert_eq!(
            (
                server.header_read_timeout_ms,
                server.body_read_timeout_ms,
                server.keep_alive_timeout_ms,
                server.max_connections,
                server.shutdown_timeout_ms
            ),
            (10_000, 10_000, 60_000, 1_024, 10_000)
        );
        for (line, key) in [
            ("header_read_timeout_ms = 0", "server.header_read_timeout_ms"),
            ("body_read_timeout_ms = 999999999", "server.body_read_timeout_ms"),
            ("keep_alive_timeout_ms = 50", "server.keep_alive_timeout_ms"),
            ("max_connections = 0", "server.max_connections"),
            ("shutdown_timeout_ms = 700000", "server.shutdown_timeout_ms"),
        ] {
            let toml = BASE.replacen("[server]\n", &format!("[server]\n{line}\n"), 1);
            assert_eq!(key_of(&toml), key, "{line}");
        }
    }

    #[test]
    fn authorization_servers_are_validated_naming_the_key() {
        let ok = format!("{BASE}{OWN_SERVER}");
        let config = Config::from_toml(&ok).unwrap();
        assert_eq!(config.authorization_servers[0].grant_ttl(), DEFAULT_GRANT_TTL);
        let cases = [
            (BASE.to_owned(), "clients[0].authorization_servers"),
            (
                format!(
                    "{BASE}{}",
                    OWN_SERVER.replace(
                        "https://orders.example/mcp\"\nscopes",
                        "https://elsewhere.example/mcp\"\nscopes"
                    )
                ),
                "authorization_servers[0].resources[0].resource",
            ),
            (
                format!(
                    "{BASE}{}",
                    OWN_SERVER.replace(
                        "issuer = \"https://sts.example\"\n[[",
                        "issuer = \"https://sts.example\"\nttl_seconds = 0\n[["
                    )
                ),
                "authorization_servers[0].ttl_seconds",
            ),
            (
                format!(
                    "{BASE}{}",
                    OWN_SERVER.replace("developer = [\"orders:read\"]", "developer = [\"orders:write\"]")
                ),
                "authorization_servers[0].resources[0].role_scopes.developer",
            ),
            (
                format!(
                    "{BASE}{OWN_SERVER}{}",
                    OWN_SERVER.replace("https://sts.example", "https://as.example")
                ),
                "authorization_servers[1].issuer",
            ),
        ];
        for (toml, key) in cases {
            assert_eq!(key_of(&toml), key);
        }
    }
}
