//! The upstream issuers trusted for subject and actor tokens.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use crate::config::IssuerConfig;
use crate::jose::algorithm::parse_allowed;
use crate::jose::{JwksCache, JwksConfig, JwksSource, JwksStats};

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
}

impl Issuers {
    /// Build from configuration; keys are fetched lazily on first use. `keys` gives the
    /// cache rules; each issuer narrows its algorithms to the ones it is configured with.
    pub fn new(configs: &[IssuerConfig], http: &reqwest::Client, keys: &JwksConfig) -> Self {
        let by_iss = configs
            .iter()
            .map(|config| {
                let source = match &config.jwks_uri {
                    Some(uri) => JwksSource::Uri(uri.clone()),
                    None => JwksSource::Discovery(config.issuer.clone()),
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
        Self { by_iss }
    }

    /// Every trusted `iss`, for log lines that explain a mismatch.
    pub fn names(&self) -> Vec<&str> {
        self.by_iss.keys().map(String::as_str).collect()
    }

    /// The issuer whose `iss` is exactly `iss`.
    pub fn get(&self, iss: &str) -> Option<&Arc<TrustedIssuer>> {
        self.by_iss.get(iss)
    }

    /// Key fetch outcomes per issuer, for metrics.
    pub fn jwks_stats(&self) -> impl Iterator<Item = (&str, JwksStats)> {
        self.by_iss
            .iter()
            .map(|(iss, issuer)| (iss.as_str(), issuer.jwks.stats()))
    }
}
