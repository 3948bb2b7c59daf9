//! Where push delivery (RFC 8935) may send SETs. A push endpoint is chosen by a
//! registered client, so without a rule it could make mcp-sts POST to internal
//! addresses (server-side request forgery). By default no push goes to a loopback,
//! private, link-local, shared, unique-local, multicast or unspecified address: an IP
//! literal is refused when the stream is created, and a host name is checked on every
//! connection by the resolver (so a name that resolves, or later rebinds, to an internal
//! address is never connected to). `[ssf] push_allowed_hosts` limits push to the hosts
//! listed (which may then be internal: the operator vouched for them);
//! `push_allow_private_networks = true` lifts the address rule (development).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::SsfConfig;

/// The push endpoint rule of one deployment.
#[derive(Debug, Clone, Default)]
pub struct PushTargets {
    /// Lower-case host names (or IP literals) allowed; empty: any public host.
    allowed_hosts: Vec<String>,
    /// Whether internal addresses may be pushed to at all.
    allow_private: bool,
}

/// True for an address no registered client should make mcp-sts call.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // 100.64.0.0/10, shared address space (carrier-grade NAT).
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking.
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

impl PushTargets {
    /// The rule `[ssf]` configures.
    pub fn from_config(config: &SsfConfig) -> Self {
        Self {
            allowed_hosts: config
                .push_allowed_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            allow_private: config.push_allow_private_networks,
        }
    }

    fn listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.contains(&host)
    }

    /// Whether a push endpoint URL may be registered (and pushed to); the reason when
    /// not, naming no part of the URL.
    pub(crate) fn check(&self, url: &url::Url) -> Result<(), &'static str> {
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
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if !self.allow_private && literal.is_some_and(is_internal) {
            return Err("delivery.endpoint_url must not be an internal address");
        }
        Ok(())
    }

    /// The resolver push connections use: it drops internal addresses unless the rule
    /// allows them or the host is listed.
    pub(crate) fn resolver(&self) -> Arc<dyn Resolve> {
        Arc::new(self.clone())
    }
}

impl Resolve for PushTargets {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let filter = !(self.allow_private || self.listed(&host));
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| !(filter && is_internal(addr.ip())))
                .collect();
            if usable.is_empty() {
                tracing::warn!(host = %super::printable(&host), "push endpoint resolves only to internal addresses; not connecting");
                return Err("the push endpoint resolves only to internal addresses".into());
            }
            let addrs: Addrs = Box::new(usable.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
#[path = "push_target_tests.rs"]
mod tests;
