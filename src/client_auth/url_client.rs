//! URL clients (client ID metadata documents): a `client_id` that is an `https` URL
//! names its own registration. Its document is fetched through the one capped fetch,
//! with no redirects and through the outbound guard, and must name that exact URL as
//! its `client_id`; the client authenticates with `private_key_jwt` against the keys
//! the document gives (`jwks`, or `jwks_uri` fetched the same guarded way).
//! `[[cimd.allow]]` decides which hosts may be URL clients and for which audiences: a
//! host listed by name is vouched for by the operator and may be internal (and, on a
//! loopback address, plain http); a host matched by a `*.` pattern never resolves to an
//! internal address.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::RegisteredClient;
use super::document_cache::{CacheBounds, DocumentCache};
use crate::clock::UnixTime;
use crate::config::{CimdAllow, CimdConfig, ClientConfig, DpopMode};
use crate::contract::{Actor, SubProfile};
use crate::fetch::{FetchLimits, fetch};
use crate::jose::{JwksCache, JwksConfig, JwksSource};
use crate::outbound_guard::{GuardedResolver, Vouch, is_internal, literal_address, normalized_host};

/// How long and how much one document fetch may read.
const DOCUMENT_LIMITS: FetchLimits = FetchLimits {
    timeout: Duration::from_secs(5),
    max_bytes: 64 * 1024,
};

/// Why a URL client is refused; every one is `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentRefusal {
    /// Not an `https` URL with a path, or with userinfo, a fragment or dot segments.
    #[error("client_id is not a usable client ID metadata document URL")]
    BadClientId,
    /// No `[[cimd.allow]]` entry covers the host.
    #[error("this host may not be a URL client")]
    HostNotAllowed,
    /// The document could not be fetched (unreachable, internal address, not 200, too large).
    #[error("the client's metadata document could not be fetched")]
    Unavailable,
    /// The document is no usable registration of this URL.
    #[error("the client's metadata document is invalid")]
    Invalid,
}

/// The hosts `[[cimd.allow]]` lists: which may be URL clients, for which audiences.
#[derive(Debug, Clone, Default)]
struct HostRules {
    rules: Vec<CimdAllow>,
}

impl HostRules {
    /// The rule for `host`: one naming it exactly, else the longest `*.` domain over it.
    fn rule(&self, host: &str) -> Option<&CimdAllow> {
        let host = normalized_host(host);
        if let Some(exact) = self.rules.iter().find(|r| r.host == host) {
            return Some(exact);
        }
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return None;
        }
        self.rules
            .iter()
            .filter(|r| {
                r.host
                    .strip_prefix('*')
                    .is_some_and(|domain| host.ends_with(domain) && host.len() > domain.len())
            })
            .max_by_key(|r| r.host.len())
    }
}

impl Vouch for HostRules {
    fn vouches_for(&self, host: &str) -> bool {
        let host = normalized_host(host);
        self.rules.iter().any(|r| r.host == host)
    }
}

/// Whether `id` claims to be a URL client (rather than a configured or workload id).
pub(super) fn looks_like_url(id: &str) -> bool {
    id.split_once("://")
        .is_some_and(|(scheme, _)| !scheme.eq_ignore_ascii_case("spiffe"))
}

/// Whether a raw URL's path has a `.` or `..` segment (also percent-encoded), which
/// parsing would silently remove.
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let path = after_scheme.split(['?', '#']).next().unwrap_or_default();
    path.split('/').skip(1).any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// Resolves URL clients and keeps them as their documents allow.
pub(super) struct UrlClients {
    rules: HostRules,
    http: reqwest::Client,
    keys: JwksConfig,
    cache: DocumentCache,
}

impl std::fmt::Debug for UrlClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlClients")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl UrlClients {
    /// From `[cimd]`; `None` when no host may be a URL client (or no HTTP client can be built).
    pub(super) fn new(config: &CimdConfig, keys: &JwksConfig) -> Option<Self> {
        if config.allow.is_empty() {
            return None;
        }
        let rules = HostRules {
            rules: config
                .allow
                .iter()
                .map(|r| CimdAllow {
                    host: normalized_host(&r.host),
                    audiences: r.audiences.clone(),
                })
                .collect(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(DOCUMENT_LIMITS.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(rules.clone()))
            .build()
            .inspect_err(
                |error| tracing::error!(%error, "cannot build the URL client HTTP client; URL clients are off"),
            )
            .ok()?;
        Some(Self {
            rules,
            http,
            keys: keys.clone(),
            cache: DocumentCache::new(CacheBounds {
                min_seconds: config.min_cache_seconds,
                max_seconds: config.max_cache_seconds,
            }),
        })
    }

    /// The URL client `id` names, from cache or its document.
    pub(super) async fn resolve(&self, id: &str, now: UnixTime) -> Result<Arc<RegisteredClient>, DocumentRefusal> {
        let url = self.well_formed(id, true)?;
        let rule = url
            .host_str()
            .and_then(|h| self.rules.rule(h))
            .ok_or(DocumentRefusal::HostNotAllowed)?;
        self.reachable(&url)?;
        if let Some(client) = self.cache.get(id, now) {
            return Ok(client);
        }
        let fetched = fetch(
            self.http.get(url).header(reqwest::header::ACCEPT, "application/json"),
            DOCUMENT_LIMITS,
        )
        .await
        .map_err(|error| {
            tracing::info!(%error, "URL client's metadata document not fetched");
            DocumentRefusal::Unavailable
        })?;
        if fetched.status != reqwest::StatusCode::OK {
            tracing::info!(
                status = fetched.status.as_u16(),
                "URL client's metadata document not served"
            );
            return Err(DocumentRefusal::Unavailable);
        }
        let document: Value = serde_json::from_slice(&fetched.body).map_err(|_| DocumentRefusal::Invalid)?;
        let client = Arc::new(self.registration(id, &document, rule)?);
        self.cache
            .put(id, Arc::clone(&client), fetched.cache_control.as_deref(), now);
        Ok(client)
    }

    /// `raw` as a URL this service may fetch from: `https` (or `http` to a loopback
    /// host listed by name), no userinfo, fragment or dot segments, and a path when it
    /// is a client id.
    fn well_formed(&self, raw: &str, client_id: bool) -> Result<url::Url, DocumentRefusal> {
        let bad = DocumentRefusal::BadClientId;
        crate::contract::identifier::check(raw).map_err(|_| bad)?;
        let url = url::Url::parse(raw).map_err(|_| bad)?;
        let vouched = url.host_str().is_some_and(|h| self.rules.vouches_for(h));
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => vouched && !crate::fetch::plain_http_off_loopback(&url),
            _ => false,
        };
        let well_formed = scheme_ok
            && url.host().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none()
            && !raw.contains('#')
            && !has_dot_segment(raw)
            && (!client_id || url.path() != "/");
        if well_formed { Ok(url) } else { Err(bad) }
    }

    /// Refuse an internal literal address no `[[cimd.allow]]` entry lists by name (a
    /// name is checked on every connection by the guarded resolver).
    fn reachable(&self, url: &url::Url) -> Result<(), DocumentRefusal> {
        let vouched = url.host_str().is_some_and(|h| self.rules.vouches_for(h));
        if !vouched && literal_address(url).is_some_and(is_internal) {
            tracing::info!("URL client refused: an internal address not listed in [[cimd.allow]]");
            return Err(DocumentRefusal::Unavailable);
        }
        Ok(())
    }

    /// The client a document registers, or why it registers none.
    fn registration(&self, id: &str, document: &Value, rule: &CimdAllow) -> Result<RegisteredClient, DocumentRefusal> {
        let invalid = DocumentRefusal::Invalid;
        if document.get("client_id").and_then(Value::as_str) != Some(id) {
            tracing::info!("URL client refused: its document names another client_id");
            return Err(invalid);
        }
        // No shared secret can belong to a public document; the one method is private_key_jwt.
        let method = document.get("token_endpoint_auth_method");
        if document.get("client_secret").is_some() || method.is_some_and(|m| m.as_str() != Some("private_key_jwt")) {
            return Err(invalid);
        }
        let source = match (document.get("jwks"), document.get("jwks_uri")) {
            (Some(jwks), None) if jwks.get("keys").is_some_and(Value::is_array) => JwksSource::Inline(jwks.clone()),
            (None, Some(Value::String(uri))) => {
                let keys_at = self.well_formed(uri, false).map_err(|_| invalid)?;
                self.reachable(&keys_at)?;
                JwksSource::Uri(uri.clone())
            }
            _ => return Err(invalid),
        };
        Ok(RegisteredClient {
            config: ClientConfig {
                client_id: id.to_owned(),
                secret_sha256: None,
                jwks: None,
                jwks_uri: None,
                audiences: rule.audiences.clone(),
                authorization_servers: Vec::new(),
                dpop: DpopMode::default(),
            },
            secret_sha256: None,
            jwks: Some(JwksCache::new(source, self.keys.clone(), self.http.clone())),
            acting: Actor::new(id, None).with_profile(SubProfile::AiAgent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(hosts: &[&str]) -> HostRules {
        HostRules {
            rules: hosts
                .iter()
                .map(|h| CimdAllow {
                    host: (*h).to_owned(),
                    audiences: vec![(*h).to_owned()],
                })
                .collect(),
        }
    }

    #[test]
    fn an_exact_host_wins_then_the_longest_wildcard() {
        let r = rules(&["*.example.com", "*.agents.example.com", "agents.example.com"]);
        let host = |h: &str| r.rule(h).map(|rule| rule.host.as_str());
        assert_eq!(host("agents.example.com"), Some("agents.example.com"));
        assert_eq!(host("a.agents.example.com"), Some("*.agents.example.com"));
        assert_eq!(host("A.Example.com."), Some("*.example.com"));
        assert_eq!(host("example.com"), None);
        assert_eq!(host("evilexample.com"), None);
        assert_eq!(host("127.0.0.1"), None);
        assert!(r.vouches_for("agents.example.com") && !r.vouches_for("a.agents.example.com"));
    }

    #[test]
    fn dot_segments_are_found_before_parsing_removes_them() {
        for raw in [
            "https://a.example.com/./x",
            "https://a.example.com/x/../y",
            "https://a.example.com/x/%2E%2e/y",
            "https://a.example.com/x/..",
        ] {
            assert!(has_dot_segment(raw), "{raw}");
        }
        assert!(!has_dot_segment("https://a.example.com/x/.well-known/y?q=../"));
    }

    #[test]
    fn url_ids_are_told_from_workload_and_plain_ids() {
        assert!(looks_like_url("https://a.example.com/c"));
        assert!(looks_like_url("http://a.example.com/c"));
        assert!(!looks_like_url("spiffe://example.org/agent"));
        assert!(!looks_like_url("orders-agent"));
    }
}
