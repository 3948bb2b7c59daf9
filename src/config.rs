//! Configuration: typed, loaded and validated once at start-up.
//!
//! Every table refuses unknown keys, and [`Config::validate`] checks what types
//! cannot (an audience no client can reach, a bad TTL, an issuer that is not a URL
//! without a `jwks_uri`), so a mistake stops the service with a message naming the key.

use std::collections::{BTreeMap, BTreeSet};
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
}

/// Signing algorithm of the keys this service generates and uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256: the default.
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 9068 §2.1 requires support).
    RS256,
}

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
    #[serde(default)]
    pub activate_after_seconds: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: default_keys_dir(),
            algorithm: SigningAlgorithm::default(),
            reload_seconds: default_key_reload_seconds(),
            activate_after_seconds: 0,
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
    /// Redis URL (password and database number allowed).
    #[serde(default = "default_redis_url")]
    pub url: String,
    /// Prefix of every Redis key, so several deployments can share a Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Deadline of one store operation; past it the request fails closed (503).
    #[serde(default = "default_store_timeout_ms")]
    pub timeout_ms: u64,
    /// How long subject, session, agent and client revocations are kept.
    #[serde(default = "default_retention")]
    pub retention_seconds: u64,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            backend: RevocationBackend::default(),
            path: default_revocation_path(),
            url: default_redis_url(),
            key_prefix: default_key_prefix(),
            timeout_ms: default_store_timeout_ms(),
            retention_seconds: default_retention(),
        }
    }
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

/// One trusted upstream issuer (`[[issuers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exact `iss` value: a URL, or a name such as a Teleport cluster.
    pub issuer: String,
    /// The value that must appear in the token's `aud`.
    pub audience: String,
    /// Explicit JWKS URL; without it, OIDC discovery under `issuer`.
    pub jwks_uri: Option<String>,
    /// Claim holding the user's roles (dots descend into objects, e.g. `realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
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
    /// Redeem identity assertion grants (ID-JAGs) this issuer addresses to us with the
    /// RFC 7523 JWT bearer grant. Off unless set: trusting an issuer's ID tokens is
    /// not trusting it to grant access.
    #[serde(default)]
    pub accept_id_jag: bool,
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
}

/// Delegation mode of an audience, chosen by policy, never by the caller.
pub use crate::contract::DelegationMode;

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
}

impl AudienceConfig {
    /// The lifetime cap this audience puts on its tokens.
    pub fn ttl_cap(&self) -> Option<u64> {
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
    pub fn grant_ttl(&self) -> u64 {
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
pub const DEFAULT_GRANT_TTL: u64 = 300;

/// Longest lifetime of identity assertion grants we issue.
pub const MAX_GRANT_TTL: u64 = 600;

/// Default lifetime of `restricted_user` tokens.
pub const RESTRICTED_USER_DEFAULT_TTL: u64 = 60;

/// A configuration mistake, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path tried.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value that parses but cannot work.
    #[error("invalid config: `{key}`: {message}")]
    Invalid {
        /// The dotted key, e.g. `audiences[1].ttl_seconds`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Read, parse and validate a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parse and validate TOML text. Relative paths are taken from the working directory.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The checks types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        if self.tokens.default_ttl_seconds == 0 || self.tokens.default_ttl_seconds > 86_400 {
            return Err(invalid("tokens.default_ttl_seconds", "must be between 1 and 86400"));
        }
        if self.keys.activate_after_seconds > 86_400 {
            return Err(invalid("keys.activate_after_seconds", "must be at most 86400"));
        }
        if self.tokens.max_delegation_depth == 0 || self.tokens.max_delegation_depth > 32 {
            return Err(invalid("tokens.max_delegation_depth", "must be between 1 and 32"));
        }
        if self.tokens.leeway_seconds > 300 {
            return Err(invalid("tokens.leeway_seconds", "must be at most 300"));
        }
        if self.revocation.timeout_ms == 0 || self.revocation.timeout_ms > 10_000 {
            return Err(invalid("revocation.timeout_ms", "must be between 1 and 10000"));
        }
        if self.revocation.retention_seconds < 3_600 {
            return Err(invalid(
                "revocation.retention_seconds",
                "must be at least 3600 so entries outlive the tokens they affect",
            ));
        }
        if let Some(hash) = &self.admin.token_sha256 {
            check_sha256_hex("admin.token_sha256", hash)?;
        }
        if self.issuers.is_empty() {
            return Err(invalid("issuers", "at least one trusted issuer is required"));
        }
        self.validate_issuers()?;
        self.validate_audiences()?;
        self.validate_clients()?;
        self.validate_authorization_servers()?;
        Ok(())
    }

    fn validate_authorization_servers(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for (i, server) in self.authorization_servers.iter().enumerate() {
            let key = |field: &str| format!("authorization_servers[{i}].{field}");
            check_http_url(&key("issuer"), &server.issuer)?;
            if !seen.insert(server.issuer.as_str()) {
                return Err(invalid(key("issuer"), "is listed twice"));
            }
            if server.ttl_seconds.is_some_and(|ttl| ttl == 0 || ttl > MAX_GRANT_TTL) {
                return Err(invalid(key("ttl_seconds"), "must be between 1 and 600"));
            }
            if server.resources.is_empty() {
                return Err(invalid(key("resources"), "must list at least one resource"));
            }
            let mut resources = BTreeSet::new();
            for (j, resource) in server.resources.iter().enumerate() {
                let key = |field: &str| format!("authorization_servers[{i}].resources[{j}].{field}");
                check_resource_uri(&resource.resource).map_err(|m| invalid(key("resource"), m))?;
                if !resources.insert(resource.resource.as_str()) {
                    return Err(invalid(key("resource"), "is listed twice"));
                }
                check_scopes(
                    &key("scopes"),
                    &resource.scopes,
                    &resource.role_scopes,
                    &key("role_scopes"),
                )?;
                // Redeeming our own grants mints an access token for the resource.
                if server.issuer == self.server.issuer
                    && !self
                        .audiences
                        .iter()
                        .any(|a| a.resource.as_deref() == Some(resource.resource.as_str()))
                {
                    return Err(invalid(
                        key("resource"),
                        "this authorization server is this service, so the resource must be a configured audience's resource",
                    ));
                }
            }
            if !self
                .clients
                .iter()
                .any(|c| c.authorization_servers.contains(&server.issuer))
            {
                return Err(invalid(
                    key("issuer"),
                    "no client lists this authorization server, so it can never be reached",
                ));
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            for issuer in &client.authorization_servers {
                if !self.authorization_servers.iter().any(|s| &s.issuer == issuer) {
                    return Err(invalid(
                        format!("clients[{i}].authorization_servers"),
                        format!("{issuer:?} is not a configured authorization server"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                "must be a socket address such as 127.0.0.1:8400",
            ));
        }
        let issuer = url::Url::parse(&self.server.issuer)
            .map_err(|e| invalid("server.issuer", format!("must be an absolute URL: {e}")))?;
        if !matches!(issuer.scheme(), "http" | "https") || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid(
                "server.issuer",
                "must be an http(s) URL without query or fragment",
            ));
        }
        if self.server.issuer.ends_with('/') {
            return Err(invalid("server.issuer", "must not end with a slash"));
        }
        if self.server.max_body_bytes < 1024 || self.server.max_token_bytes < 256 {
            return Err(invalid(
                "server.max_body_bytes",
                "limits are too small to carry a token",
            ));
        }
        Ok(())
    }

    fn validate_issuers(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let key = |field: &str| format!("issuers[{i}].{field}");
            if issuer.issuer.is_empty() {
                return Err(invalid(key("issuer"), "must not be empty"));
            }
            if issuer.issuer == self.server.issuer {
                return Err(invalid(
                    key("issuer"),
                    "is this service's own issuer; its tokens are trusted already",
                ));
            }
            if !seen.insert(issuer.issuer.as_str()) {
                return Err(invalid(key("issuer"), "is listed twice"));
            }
            if issuer.audience.is_empty() {
                return Err(invalid(key("audience"), "must not be empty"));
            }
            match &issuer.jwks_uri {
                Some(uri) => check_http_url(&key("jwks_uri"), uri)?,
                None => check_http_url(&key("issuer"), &issuer.issuer).map_err(|_| {
                    invalid(
                        key("jwks_uri"),
                        "is required when the issuer is not an http(s) URL (no discovery possible)",
                    )
                })?,
            }
            for (field, value) in [
                ("agent_claim", &issuer.agent_claim),
                ("roles_delimiter", &issuer.roles_delimiter),
            ] {
                if value.as_deref().is_some_and(str::is_empty) {
                    return Err(invalid(key(field), "must not be empty when set"));
                }
            }
            if issuer.algorithms.is_empty() {
                return Err(invalid(key("algorithms"), "must list at least one algorithm"));
            }
            for alg in &issuer.algorithms {
                if crate::inbound::algorithm::parse_allowed(alg).is_none() {
                    return Err(invalid(
                        key("algorithms"),
                        format!("{alg:?} is not an allowed asymmetric JWS algorithm"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_audiences(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        let mut resources = BTreeSet::new();
        for (i, audience) in self.audiences.iter().enumerate() {
            let key = |field: &str| format!("audiences[{i}].{field}");
            if audience.id.is_empty() {
                return Err(invalid(key("id"), "must not be empty"));
            }
            if !ids.insert(audience.id.as_str()) {
                return Err(invalid(key("id"), format!("{:?} is listed twice", audience.id)));
            }
            if let Some(resource) = &audience.resource {
                check_resource_uri(resource).map_err(|m| invalid(key("resource"), m))?;
                if !resources.insert(resource.as_str()) {
                    return Err(invalid(key("resource"), "is used by two audiences"));
                }
            }
            if let Some(ttl) = audience.ttl_seconds
                && (ttl == 0 || ttl > self.tokens.default_ttl_seconds)
            {
                return Err(invalid(
                    key("ttl_seconds"),
                    "must be at least 1 and at most tokens.default_ttl_seconds",
                ));
            }
            check_scopes(
                &key("scopes"),
                &audience.scopes,
                &audience.role_scopes,
                &key("role_scopes"),
            )?;
            if !self
                .clients
                .iter()
                .any(|c| c.audiences.iter().any(|a| a == &audience.id))
            {
                return Err(invalid(
                    key("id"),
                    format!("no client lists audience {:?}, so it can never be reached", audience.id),
                ));
            }
        }
        Ok(())
    }

    fn validate_clients(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            let key = |field: &str| format!("clients[{i}].{field}");
            if let Err(e) = crate::contract::identifier::check(&client.client_id) {
                return Err(invalid(key("client_id"), e.to_string()));
            }
            if !ids.insert(client.client_id.as_str()) {
                return Err(invalid(
                    key("client_id"),
                    format!("{:?} is listed twice", client.client_id),
                ));
            }
            let methods = [
                client.secret_sha256.is_some(),
                client.jwks.is_some(),
                client.jwks_uri.is_some(),
            ];
            if methods.iter().filter(|m| **m).count() != 1 {
                return Err(invalid(
                    format!("clients[{i}]"),
                    "needs exactly one of secret_sha256, jwks or jwks_uri",
                ));
            }
            if let Some(hash) = &client.secret_sha256 {
                check_sha256_hex(&key("secret_sha256"), hash)?;
            }
            if let Some(uri) = &client.jwks_uri {
                check_http_url(&key("jwks_uri"), uri)?;
            }
            if let Some(jwks) = &client.jwks {
                let parsed: Result<jsonwebtoken::jwk::JwkSet, _> = serde_json::from_value(jwks.clone());
                match parsed {
                    Ok(set) if !set.keys.is_empty() => {}
                    _ => {
                        return Err(invalid(key("jwks"), "must be a JWK set with at least one key"));
                    }
                }
            }
            for audience in &client.audiences {
                if !self.audiences.iter().any(|a| &a.id == audience) {
                    return Err(invalid(
                        key("audiences"),
                        format!("{audience:?} is not a configured audience"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The longest lifetime any minted token can have: keys and revocations must outlive it.
    pub fn max_token_ttl(&self) -> u64 {
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
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.server.issuer)
    }
}

/// Scope tokens are valid, and every role's scopes are among them.
fn check_scopes(
    key: &str,
    scopes: &[String],
    role_scopes: &BTreeMap<String, Vec<String>>,
    roles_key: &str,
) -> Result<(), ConfigError> {
    for scope in scopes {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
            return Err(invalid(key, format!("{scope:?} is not a valid scope token")));
        }
    }
    for (role, granted) in role_scopes {
        for scope in granted {
            if !scopes.contains(scope) {
                return Err(invalid(
                    format!("{roles_key}.{role}"),
                    format!("scope {scope:?} is not in the scopes"),
                ));
            }
        }
    }
    Ok(())
}

/// RFC 8707 §2: a resource is an absolute URI without a fragment.
pub fn check_resource_uri(value: &str) -> Result<(), String> {
    let parsed = url::Url::parse(value).map_err(|_| "must be an absolute URI".to_owned())?;
    if parsed.fragment().is_some() || value.contains('#') {
        return Err("must not contain a fragment".into());
    }
    Ok(())
}

fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(value).map_err(|e| invalid(key, format!("must be an http(s) URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(key, "must be an http(s) URL"));
    }
    Ok(())
}

fn check_sha256_hex(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(key, "must be 64 hex characters (the SHA-256 of the secret)"));
    }
    Ok(())
}

fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}
fn default_keys_dir() -> PathBuf {
    PathBuf::from("keys")
}
fn default_key_reload_seconds() -> u64 {
    10
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
fn default_retention() -> u64 {
    30 * 86_400
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_inbound_algorithms() -> Vec<String> {
    [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ]
    .into_iter()
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

    fn key_of(toml: &str) -> String {
        match Config::from_toml(toml) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => format!("{other:?}"),
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
