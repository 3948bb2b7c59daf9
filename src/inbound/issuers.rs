//! The upstream issuers trusted for subject and actor tokens.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::workload::{Workloads, spiffe_trust_domain};
use crate::config::{IssuerConfig, IssuerKind, WorkloadRule, spiffe_issuer};
use mcp_sts_contract::jose::algorithm::parse_allowed;
use mcp_sts_contract::jose::{JwksCache, JwksConfig, JwksSource, JwksStats};

/// One trusted issuer with its key cache.
#[derive(Debug)]
pub struct TrustedIssuer {
    /// Its configuration.
    pub config: IssuerConfig,
    /// Algorithms accepted from it.
    pub algorithms: Vec<Algorithm>,
    /// Its keys.
    pub jwks: JwksCache,
}

/// Every trusted issuer, found by exact `iss`.
#[derive(Debug, Default)]
pub struct Issuers {
    by_iss: HashMap<String, Arc<TrustedIssuer>>,
    workloads: Workloads,
}

impl Issuers {
    /// Build from configuration; keys are fetched lazily on first use. `keys` gives the
    /// cache rules; each issuer narrows its algorithms to the ones it is configured with.
    pub fn new(configs: &[IssuerConfig], http: &reqwest::Client, keys: &JwksConfig) -> Self {
        let by_iss = configs
            .iter()
            .map(|config| {
                let source = match (&config.jwks_uri, config.kind, &config.bundle_endpoint) {
                    (_, IssuerKind::Spiffe, Some(bundle)) => JwksSource::SpiffeBundle(bundle.clone()),
                    (Some(uri), _, _) => JwksSource::Uri(uri.clone()),
                    (None, _, _) => JwksSource::Discovery(config.issuer.clone()),
                };
                let algorithms: Vec<Algorithm> = config.algorithms.iter().filter_map(|a| parse_allowed(a)).collect();
                let jwks_config = JwksConfig {
                    algorithms: algorithms.clone(),
                    allow_plain_http: config.allow_plain_http,
                    ..keys.clone()
                };
                let issuer = TrustedIssuer {
                    config: config.clone(),
                    algorithms,
                    jwks: JwksCache::new(source, jwks_config, http.clone()),
                };
                (config.issuer.clone(), Arc::new(issuer))
            })
            .collect();
        Self {
            by_iss,
            workloads: Workloads::default(),
        }
    }

    /// The same issuers, with the `[[workloads]]` rules their workload tokens answer to.
    pub(crate) fn with_workloads(mut self, rules: &[WorkloadRule]) -> Self {
        self.workloads = Workloads::new(rules);
        self
    }

    /// The `[[workloads]]` rules.
    pub(crate) fn workloads(&self) -> &Workloads {
        &self.workloads
    }

    /// The issuer of a token claiming `iss` and `sub`: the issuer named `iss`, else,
    /// for a JWT-SVID (whose `iss` is optional and not what trust hangs on), the trust
    /// domain of its SPIFFE ID.
    pub(crate) fn for_token(&self, iss: Option<&str>, sub: Option<&str>) -> Option<&Arc<TrustedIssuer>> {
        if let Some(issuer) = iss.and_then(|iss| self.by_iss.get(iss))
            && issuer.config.kind != IssuerKind::Spiffe
        {
            return Some(issuer);
        }
        let domain = spiffe_trust_domain(sub?)?;
        self.by_iss
            .get(&spiffe_issuer(domain))
            .filter(|issuer| issuer.config.kind == IssuerKind::Spiffe)
    }

    /// Every trusted `iss`, for log lines that explain a mismatch.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.by_iss.keys().map(String::as_str).collect()
    }

    /// The issuer whose `iss` is exactly `iss`.
    pub(crate) fn get(&self, iss: &str) -> Option<&Arc<TrustedIssuer>> {
        self.by_iss.get(iss)
    }

    /// Key fetch outcomes per issuer, for metrics.
    pub(crate) fn jwks_stats(&self) -> impl Iterator<Item = (&str, JwksStats)> {
        self.by_iss
            .iter()
            .map(|(iss, issuer)| (iss.as_str(), issuer.jwks.stats()))
    }
}
