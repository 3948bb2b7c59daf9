//! Which addresses an outbound request chosen by a caller may reach. A push endpoint a
//! receiver registers and a metadata document a URL client names are both URLs from
//! outside; without a rule they could make mcp-sts call internal addresses (server-side
//! request forgery). An internal IP literal is refused before any request; a host name
//! is checked on every connection by [`GuardedResolver`], so a name that resolves, or
//! later rebinds, to an internal address is never connected to. A host the operator
//! vouched for (listed by name in configuration) may be internal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for an address no caller should make mcp-sts call.
pub fn is_internal(ip: IpAddr) -> bool {
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
            let first = v6.segments().first().copied().unwrap_or_default();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The address a URL names literally, if it names one.
pub fn literal_address(url: &url::Url) -> Option<IpAddr> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// A host name as configuration lists it: lower case, no trailing dot.
pub fn normalized_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whose internal addresses may be reached: a deployment's rule.
pub trait Vouch: Send + Sync + 'static {
    /// Whether `host` (as resolved, any case) may resolve to an internal address.
    fn vouches_for(&self, host: &str) -> bool;
}

/// A resolver that drops internal addresses of every host its rule does not vouch for.
#[derive(Debug)]
pub struct GuardedResolver<V>(pub V);

impl<V: Vouch> GuardedResolver<V> {
    /// The resolver, in the form `reqwest::ClientBuilder::dns_resolver` takes.
    pub fn shared(rule: V) -> Arc<dyn Resolve> {
        Arc::new(Self(rule))
    }
}

impl<V: Vouch> Resolve for GuardedResolver<V> {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let filter = !self.0.vouches_for(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| !(filter && is_internal(addr.ip())))
                .collect();
            if usable.is_empty() {
                tracing::warn!(
                    host = %crate::contract::identifier::printable(&host),
                    "host resolves only to internal addresses; not connecting"
                );
                return Err("the host resolves only to internal addresses".into());
            }
            let addrs: Addrs = Box::new(usable.into_iter());
            Ok(addrs)
        })
    }
}
