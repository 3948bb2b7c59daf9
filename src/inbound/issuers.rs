//! The upstream issuers trusted for subject and actor tokens.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::algorithm::parse_allowed;
use super::jwks::{JwksCache, JwksLocation, JwksPolicy};
use crate::config::IssuerConfig;

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
    /// Build from configuration; keys are fetched lazily on first use.
    pub fn new(configs: &[IssuerConfig], http: &reqwest::Client, policy: JwksPolicy) -> Self {
        let by_iss = configs
            .iter()
            .map(|config| {
                let location = match &config.jwks_uri {
                    Some(uri) => JwksLocation::Uri(uri.clone()),
                    None => JwksLocation::Discovery(config.issuer.clone()),
                };
                let algorithms = config.algorithms.iter().filter_map(|a| parse_allowed(a)).collect();
                let issuer = TrustedIssuer {
                    config: config.clone(),
                    algorithms,
                    jwks: JwksCache::new(location, http.clone(), policy),
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
}
