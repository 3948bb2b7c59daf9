//! The checks types cannot express, collected whole: the one source of `mcp-sts config
//! check` (which prints every problem) and of start-up (which refuses with every error
//! and logs every warning).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{
    Config, ConfigError, DelegationMode, MAX_GRANT_TTL, MinReplicasAcked, RevocationBackend, check_resource_uri,
};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The service refuses to start.
    Error,
    /// The service starts, but the setting does not do what it seems to.
    Warning,
}

/// One thing wrong (or doubtful) in a configuration, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The dotted key, e.g. `audiences[1].ttl_seconds`.
    pub key: String,
    /// What is wrong, and why when it is not obvious.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: `{}`: {}", self.key, self.message)
    }
}

/// Problems found so far.
#[derive(Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, key, message);
    }

    pub(super) fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, key, message);
    }

    fn push(&mut self, severity: Severity, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            severity,
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Every error, if any (warnings do not stop the service; `serve` logs them).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let errors: Vec<Problem> = self
            .problems()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    /// The warnings `serve` logs at start and `config check` prints.
    pub fn warnings(&self) -> Vec<Problem> {
        self.problems()
            .into_iter()
            .filter(|p| p.severity == Severity::Warning)
            .collect()
    }

    /// Every error and warning, in the order of the file's tables.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::default();
        self.check_server(&mut p);
        self.check_numbers(&mut p);
        self.check_revocation(&mut p);
        if let Some(hash) = &self.admin.token_sha256 {
            check_sha256_hex(&mut p, "admin.token_sha256", hash);
        }
        if self.issuers.is_empty() {
            p.error("issuers", "at least one trusted issuer is required");
        }
        self.check_issuers(&mut p);
        self.check_audiences(&mut p);
        self.check_clients(&mut p);
        self.check_authorization_servers(&mut p);
        self.check_workloads(&mut p);
        self.check_cimd(&mut p);
        p.0
    }

    fn check_server(&self, p: &mut Problems) {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.error("server.listen", "must be a socket address such as 127.0.0.1:8400");
        }
        match url::Url::parse(&self.server.issuer) {
            Err(e) => p.error("server.issuer", format!("must be an absolute URL: {e}")),
            Ok(issuer) => {
                if !matches!(issuer.scheme(), "http" | "https")
                    || issuer.query().is_some()
                    || issuer.fragment().is_some()
                {
                    p.error("server.issuer", "must be an http(s) URL without query or fragment");
                } else if crate::fetch::plain_http_off_loopback(&issuer) {
                    p.warning(
                        "server.issuer",
                        "is not https: tokens and client secrets would cross the network in clear",
                    );
                }
            }
        }
        if self.server.issuer.ends_with('/') {
            p.error("server.issuer", "must not end with a slash");
        }
        if self.server.max_body_bytes < 1024 {
            p.error("server.max_body_bytes", "must be at least 1024 to carry a token");
        }
        if self.server.max_token_bytes < 256 {
            p.error("server.max_token_bytes", "must be at least 256 to carry a token");
        }
        for (key, value, max) in [
            (
                "server.header_read_timeout_ms",
                self.server.header_read_timeout_ms,
                300_000,
            ),
            ("server.body_read_timeout_ms", self.server.body_read_timeout_ms, 300_000),
            (
                "server.keep_alive_timeout_ms",
                self.server.keep_alive_timeout_ms,
                3_600_000,
            ),
        ] {
            if !(100..=max).contains(&value) {
                p.error(key, format!("must be between 100 and {max} (milliseconds)"));
            }
        }
        if self.server.max_connections == 0 || self.server.max_connections > 1_000_000 {
            p.error("server.max_connections", "must be between 1 and 1000000");
        }
        if self.server.shutdown_timeout_ms > 600_000 {
            p.error("server.shutdown_timeout_ms", "must be at most 600000 (milliseconds)");
        }
    }

    fn check_numbers(&self, p: &mut Problems) {
        if self.tokens.default_ttl_seconds == 0 || self.tokens.default_ttl_seconds > 86_400 {
            p.error("tokens.default_ttl_seconds", "must be between 1 and 86400");
        }
        if self.keys.activate_after_seconds > 86_400 {
            p.error("keys.activate_after_seconds", "must be at most 86400");
        }
        if self.tokens.max_delegation_depth == 0 || self.tokens.max_delegation_depth > 32 {
            p.error("tokens.max_delegation_depth", "must be between 1 and 32");
        }
        if self.tokens.leeway_seconds > 300 {
            p.error("tokens.leeway_seconds", "must be at most 300");
        }
        if self.revocation.timeout_ms == 0 || self.revocation.timeout_ms > 10_000 {
            p.error("revocation.timeout_ms", "must be between 1 and 10000");
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            check_http_url(p, "telemetry.otlp_endpoint", endpoint);
        }
        if self.ssf.long_poll_seconds > 300 {
            p.error("ssf.long_poll_seconds", "must be at most 300");
        }
        if self.ssf.max_streams_per_client == 0 || self.ssf.max_streams_per_client > 100 {
            p.error("ssf.max_streams_per_client", "must be between 1 and 100");
        }
        if self.ssf.push_interval_ms < 10 || self.ssf.push_interval_ms > 600_000 {
            p.error("ssf.push_interval_ms", "must be between 10 and 600000");
        }
        if self
            .ssf
            .push_allowed_hosts
            .iter()
            .any(|h| h.is_empty() || h.contains(|c: char| c.is_whitespace() || "/@[]".contains(c)))
        {
            p.error(
                "ssf.push_allowed_hosts",
                "each entry is a bare host name or IP address (no scheme, port, path or brackets)",
            );
        }
        if self.ssf.push_allow_private_networks {
            p.warning(
                "ssf.push_allow_private_networks",
                "any registered client can make mcp-sts POST to internal addresses; list hosts in push_allowed_hosts instead",
            );
        }
        if self.revocation.retention_seconds < 3_600 {
            p.error(
                "revocation.retention_seconds",
                "must be at least 3600 so entries outlive the tokens they affect",
            );
        }
        for (key, value) in [
            ("limits.client_per_second", self.limits.client_per_second),
            ("limits.subject_per_second", self.limits.subject_per_second),
        ] {
            if value == Some(0) {
                p.error(key, "must be at least 1 (leave it out for no limit)");
            }
        }
        for (key, value) in [
            ("limits.client_burst", self.limits.client_burst),
            ("limits.subject_burst", self.limits.subject_burst),
        ] {
            if value == Some(0) {
                p.error(key, "must be at least 1");
            }
        }
    }

    fn check_revocation(&self, p: &mut Problems) {
        let r = &self.revocation;
        let shapes = [r.url.is_some(), !r.cluster.is_empty(), !r.sentinels.is_empty()];
        if shapes.iter().filter(|s| **s).count() > 1 {
            let key = if r.url.is_some() {
                "revocation.url"
            } else {
                "revocation.cluster"
            };
            p.error(key, "set only one of url, cluster and sentinels");
        }
        if !r.sentinels.is_empty() && r.master_name.as_deref().is_none_or(str::is_empty) {
            p.error(
                "revocation.master_name",
                "is required with sentinels: the name the sentinels know the master by",
            );
        }
        if r.master_name.is_some() && r.sentinels.is_empty() {
            p.error("revocation.master_name", "only applies with sentinels");
        }
        let urls = r.url.iter().map(|u| ("revocation.url", u)).chain(
            r.cluster
                .iter()
                .map(|u| ("revocation.cluster", u))
                .chain(r.sentinels.iter().map(|u| ("revocation.sentinels", u))),
        );
        for (key, url) in urls {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                p.error(key, "must be redis:// URLs");
            }
        }
        if !r.cluster.is_empty() && !self.clients.is_empty() {
            p.warning(
                "revocation.cluster",
                "Shared Signals needs one primary: once a receiver has a stream, a revocation and \
                 its events are written by one script over keys in several slots, which Redis \
                 Cluster refuses; use one Redis or Sentinel when receivers subscribe",
            );
        }
        if r.replication_timeout_ms == 0 || r.replication_timeout_ms > 60_000 {
            p.error(
                "revocation.replication_timeout_ms",
                "must be between 1 and 60000 (WAIT 0 would block forever)",
            );
        }
        if r.backend != RevocationBackend::Redis
            && (r.min_replicas_acked != MinReplicasAcked::Auto || r.fsync_acked || r.accept_unknown_eviction_policy)
        {
            p.warning(
                "revocation.min_replicas_acked",
                "min_replicas_acked, fsync_acked and accept_unknown_eviction_policy only apply with backend = \"redis\"",
            );
        }
        if r.backend == RevocationBackend::Redis && r.min_replicas_acked == MinReplicasAcked::Exactly(0) {
            p.warning(
                "revocation.min_replicas_acked",
                "0: writes are acknowledged once the master alone has them; a failover can lose \
                 acknowledged revocations unless the master's append-only file is the only copy you rely on",
            );
        }
        if !r.cluster.is_empty() && r.key_prefix.contains('{') && r.key_prefix.contains('}') {
            p.error(
                "revocation.key_prefix",
                "must not hold a {hash tag} with cluster: every key would land on one shard",
            );
        }
    }

    fn check_issuers(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let key = |field: &str| format!("issuers[{i}].{field}");
            if issuer.kind == super::IssuerKind::Spiffe {
                self.check_spiffe_issuer(p, i, issuer);
                if !seen.insert(issuer.issuer.as_str()) {
                    p.error(key("trust_domain"), "is listed twice");
                }
                continue;
            }
            if issuer.issuer.is_empty() {
                p.error(key("issuer"), "must not be empty");
            }
            if issuer.issuer == self.server.issuer {
                p.error(
                    key("issuer"),
                    "is this service's own issuer; its tokens are trusted already",
                );
            }
            if !seen.insert(issuer.issuer.as_str()) {
                p.error(key("issuer"), "is listed twice");
            }
            if issuer.audience.is_empty() {
                p.error(key("audience"), "must not be empty");
            }
            match &issuer.jwks_uri {
                Some(uri) => check_http_url(p, &key("jwks_uri"), uri),
                None => {
                    if http_url(&issuer.issuer).is_err() {
                        p.error(
                            key("jwks_uri"),
                            "is required when the issuer is not an http(s) URL (no discovery possible)",
                        );
                    }
                }
            }
            check_key_transport(p, i, issuer);
            if issuer.roles_claim.is_empty() && issuer.entitlement().uses_roles() {
                p.error(
                    key("entitlement"),
                    format!(
                        "{:?} needs a roles claim, but roles_claim is empty",
                        issuer.entitlement().as_str()
                    ),
                );
            }
            for (field, value) in [
                ("agent_claim", &issuer.agent_claim),
                ("roles_delimiter", &issuer.roles_delimiter),
            ] {
                if value.as_deref().is_some_and(str::is_empty) {
                    p.error(key(field), "must not be empty when set");
                }
            }
            if let Some(ssf) = &issuer.ssf {
                check_http_url(p, &key("ssf.configuration"), &ssf.configuration);
                let basic = ssf.client_id.is_some() && ssf.client_secret.is_some();
                let half = ssf.client_id.is_some() != ssf.client_secret.is_some();
                if half || (basic && ssf.bearer_token.is_some()) {
                    p.error(
                        key("ssf"),
                        "give client_id with client_secret, or bearer_token, not both",
                    );
                }
                if ssf.poll_interval_seconds == 0 || ssf.poll_interval_seconds > 3_600 {
                    p.error(key("ssf.poll_interval_seconds"), "must be between 1 and 3600");
                }
            }
            if issuer.algorithms.is_empty() {
                p.error(key("algorithms"), "must list at least one algorithm");
            }
            for alg in &issuer.algorithms {
                if crate::jose::algorithm::parse_allowed(alg).is_none() {
                    p.error(
                        key("algorithms"),
                        format!("{alg:?} is not an allowed asymmetric JWS algorithm"),
                    );
                }
            }
        }
    }

    fn check_audiences(&self, p: &mut Problems) {
        let mut ids = BTreeSet::new();
        let mut resources = BTreeSet::new();
        for (i, audience) in self.audiences.iter().enumerate() {
            let key = |field: &str| format!("audiences[{i}].{field}");
            if audience.id.is_empty() {
                p.error(key("id"), "must not be empty");
            }
            if !ids.insert(audience.id.as_str()) {
                p.error(key("id"), format!("{:?} is listed twice", audience.id));
            }
            if let Some(resource) = &audience.resource {
                if let Err(message) = check_resource_uri(resource) {
                    p.error(key("resource"), message);
                }
                if !resources.insert(resource.as_str()) {
                    p.error(key("resource"), "is used by two audiences");
                }
            }
            if let Some(ttl) = audience.ttl_seconds
                && (ttl == 0 || ttl > self.tokens.default_ttl_seconds)
            {
                p.error(
                    key("ttl_seconds"),
                    "must be at least 1 and at most tokens.default_ttl_seconds",
                );
            }
            check_scopes(
                p,
                &key("scopes"),
                &audience.scopes,
                &audience.role_scopes,
                &key("role_scopes"),
            );
            if audience.mode == DelegationMode::ServiceIdentity && !audience.role_scopes.is_empty() {
                p.warning(
                    key("role_scopes"),
                    "has no effect in service_identity mode: the calling client gets the audience's \
                     scopes and the user's roles are not consulted",
                );
            }
            if !self
                .clients
                .iter()
                .any(|c| c.audiences.iter().any(|a| a == &audience.id))
            {
                p.error(
                    key("id"),
                    format!("no client lists audience {:?}, so it can never be reached", audience.id),
                );
            }
        }
    }

    fn check_clients(&self, p: &mut Problems) {
        let mut ids = BTreeSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            let key = |field: &str| format!("clients[{i}].{field}");
            if let Err(e) = crate::contract::identifier::check(&client.client_id) {
                p.error(key("client_id"), e.to_string());
            }
            if !ids.insert(client.client_id.as_str()) {
                p.error(key("client_id"), format!("{:?} is listed twice", client.client_id));
            }
            let methods = [
                client.secret_sha256.is_some(),
                client.jwks.is_some(),
                client.jwks_uri.is_some(),
            ];
            if methods.iter().filter(|m| **m).count() != 1 {
                p.error(
                    format!("clients[{i}]"),
                    "needs exactly one of secret_sha256, jwks or jwks_uri",
                );
            }
            if let Some(hash) = &client.secret_sha256 {
                check_sha256_hex(p, &key("secret_sha256"), hash);
            }
            if let Some(uri) = &client.jwks_uri {
                check_http_url(p, &key("jwks_uri"), uri);
                if url::Url::parse(uri).is_ok_and(|u| crate::fetch::plain_http_off_loopback(&u)) {
                    p.warning(
                        key("jwks_uri"),
                        "is plain http from a host that is not loopback: anyone on the path can \
                         swap the client's keys and pass its authentication; use https",
                    );
                }
            }
            if let Some(jwks) = &client.jwks {
                let parsed: Result<jsonwebtoken::jwk::JwkSet, _> = serde_json::from_value(jwks.clone());
                if !matches!(parsed, Ok(set) if !set.keys.is_empty()) {
                    p.error(key("jwks"), "must be a JWK set with at least one key");
                }
            }
            for audience in &client.audiences {
                if !self.audiences.iter().any(|a| &a.id == audience) {
                    p.error(key("audiences"), format!("{audience:?} is not a configured audience"));
                }
            }
            self.check_client_dpop(p, i, client);
        }
    }

    /// A client whose tokens are never bound cannot be allowed an audience that takes
    /// only bound tokens: every one of its requests there would be refused.
    fn check_client_dpop(&self, p: &mut Problems, i: usize, client: &super::ClientConfig) {
        if client.dpop != super::DpopMode::Off {
            return;
        }
        for audience in &client.audiences {
            if self.audiences.iter().any(|a| &a.id == audience && a.require_dpop) {
                p.error(
                    format!("clients[{i}].dpop"),
                    format!("is \"off\" but audience {audience:?} has require_dpop = true"),
                );
            }
        }
    }
}

impl Config {
    fn check_authorization_servers(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, server) in self.authorization_servers.iter().enumerate() {
            let key = |field: &str| format!("authorization_servers[{i}].{field}");
            check_http_url(p, &key("issuer"), &server.issuer);
            if !seen.insert(server.issuer.as_str()) {
                p.error(key("issuer"), "is listed twice");
            }
            if server.ttl_seconds.is_some_and(|ttl| ttl == 0 || ttl > MAX_GRANT_TTL) {
                p.error(key("ttl_seconds"), "must be between 1 and 600");
            }
            if server.resources.is_empty() {
                p.error(key("resources"), "must list at least one resource");
            }
            let mut resources = BTreeSet::new();
            for (j, resource) in server.resources.iter().enumerate() {
                let key = |field: &str| format!("authorization_servers[{i}].resources[{j}].{field}");
                if let Err(message) = check_resource_uri(&resource.resource) {
                    p.error(key("resource"), message);
                }
                if !resources.insert(resource.resource.as_str()) {
                    p.error(key("resource"), "is listed twice");
                }
                check_scopes(
                    p,
                    &key("scopes"),
                    &resource.scopes,
                    &resource.role_scopes,
                    &key("role_scopes"),
                );
                // Redeeming our own grants mints an access token for the resource.
                if server.issuer == self.server.issuer
                    && !self
                        .audiences
                        .iter()
                        .any(|a| a.resource.as_deref() == Some(resource.resource.as_str()))
                {
                    p.error(
                        key("resource"),
                        "this authorization server is this service, so the resource must be a configured audience's resource",
                    );
                }
            }
            if !self
                .clients
                .iter()
                .any(|c| c.authorization_servers.contains(&server.issuer))
            {
                p.error(
                    key("issuer"),
                    "no client lists this authorization server, so it can never be reached",
                );
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            for issuer in &client.authorization_servers {
                if !self.authorization_servers.iter().any(|s| &s.issuer == issuer) {
                    p.error(
                        format!("clients[{i}].authorization_servers"),
                        format!("{issuer:?} is not a configured authorization server"),
                    );
                }
            }
        }
    }
}

/// Scope tokens are valid, and every role's scopes are among them.
fn check_scopes(
    p: &mut Problems,
    key: &str,
    scopes: &[String],
    role_scopes: &BTreeMap<String, Vec<String>>,
    roles_key: &str,
) {
    for scope in scopes {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
            p.error(key, format!("{scope:?} is not a valid scope token"));
        }
    }
    for (role, granted) in role_scopes {
        for scope in granted {
            if !scopes.contains(scope) {
                p.error(
                    format!("{roles_key}.{role}"),
                    format!("scope {scope:?} is not in the scopes"),
                );
            }
        }
    }
}

fn http_url(value: &str) -> Result<(), String> {
    let parsed = url::Url::parse(value).map_err(|e| format!("must be an http(s) URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http(s) URL".into());
    }
    Ok(())
}

/// An issuer's keys (its discovery document, then its JWKS) must not travel in clear
/// text across a network unless the operator says so for that issuer: whoever can
/// change them can sign any user's token.
fn check_key_transport(p: &mut Problems, i: usize, issuer: &super::IssuerConfig) {
    let (field, url, what) = match &issuer.jwks_uri {
        Some(uri) => ("jwks_uri", uri.as_str(), "its JWKS is"),
        None => ("issuer", issuer.issuer.as_str(), "its discovery document and JWKS are"),
    };
    if !url::Url::parse(url).is_ok_and(|u| crate::fetch::plain_http_off_loopback(&u)) {
        return;
    }
    let key = format!("issuers[{i}].{field}");
    if issuer.allow_plain_http {
        p.warning(
            key,
            format!(
                "{what} fetched over plain http from a host that is not loopback (allowed by \
                 allow_plain_http): anyone on the path can forge this issuer's tokens"
            ),
        );
    } else {
        p.error(
            key,
            format!(
                "{what} fetched over plain http from a host that is not loopback: anyone on the \
                 path could forge this issuer's tokens; use https, or set allow_plain_http = true \
                 for this issuer to accept the risk"
            ),
        );
    }
}

fn check_http_url(p: &mut Problems, key: &str, value: &str) {
    if let Err(message) = http_url(value) {
        p.error(key, message);
    }
}

fn check_sha256_hex(p: &mut Problems, key: &str, value: &str) {
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        p.error(key, "must be 64 hex characters (the SHA-256 of the secret)");
    }
}
