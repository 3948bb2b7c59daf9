//! Where push delivery (RFC 8935) may send SETs. A push endpoint is chosen by a
//! registered client, so without a rule it could make mcp-sts POST to internal
//! addresses (server-side request forgery). By default no push goes to a loopback,
//! private, link-local, shared, unique-local, multicast or unspecified address: an IP
//! literal is refused when the stream is created, and a host name is checked on every
//! connection by the resolver (so a name that resolves, or later rebinds, to an internal
//! address is never connected to). `[ssf] push_allowed_hosts` limits push to the hosts
//! listed (which may then be internal: the operator vouched for them);
//! `push_allow_private_networks = true` lifts the address rule (development).

use std::sync::Arc;

use reqwest::dns::Resolve;

use crate::config::SsfConfig;
pub use crate::outbound_guard::is_internal;
use crate::outbound_guard::{GuardedResolver, Vouch, literal_address, normalized_host};

/// The push endpoint rule of one deployment.
#[derive(Debug, Clone, Default)]
pub struct PushTargets {
    /// Lower-case host names (or IP literals) allowed; empty: any public host.
    allowed_hosts: Vec<String>,
    /// Whether internal addresses may be pushed to at all.
    allow_private: bool,
}

impl PushTargets {
    /// The rule `[ssf]` configures.
    pub fn from_config(config: &SsfConfig) -> Self {
        Self {
            allowed_hosts: config.push_allowed_hosts.iter().map(|h| normalized_host(h)).collect(),
            allow_private: config.push_allow_private_networks,
        }
    }

    fn listed(&self, host: &str) -> bool {
        self.allowed_hosts.contains(&normalized_host(host))
    }

    /// Whether a push endpoint URL may be registered (and pushed to); the reason when
    /// not, naming no part of the URL.
    pub fn check(&self, url: &url::Url) -> Result<(), &'static str> {
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("delivery.endpoint_url has no host"),
        };
        if !self.allowed_hosts.is_empty() {
            return if self.listed(&host) {
                Ok(())
            } else {
                Err("delivery.endpoint_url is not on this transmitter's list of push hosts")
            };
        }
        if !self.allow_private && literal_address(url).is_some_and(is_internal) {
            return Err("delivery.endpoint_url must not be an internal address");
        }
        Ok(())
    }

    /// The resolver push connections use: it drops internal addresses unless the rule
    /// allows them or the host is listed.
    pub fn resolver(&self) -> Arc<dyn Resolve> {
        GuardedResolver::shared(self.clone())
    }
}

impl Vouch for PushTargets {
    fn vouches_for(&self, host: &str) -> bool {
        self.allow_private || self.listed(host)
    }
}

#[cfg(test)]
#[path = "push_target_tests.rs"]
mod tests;
