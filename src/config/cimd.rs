//! `[cimd]`: URL clients (client ID metadata documents). Which hosts may be URL
//! clients and for which audiences, and how long a fetched document is trusted.

use serde::Deserialize;

use super::Config;
use super::check::Problems;

/// `[cimd]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CimdConfig {
    /// Least seconds a fetched document is kept, whatever its `Cache-Control` says
    /// (also the time when it says nothing or forbids caching).
    #[serde(default = "default_min_cache_seconds")]
    pub min_cache_seconds: u64,
    /// Most seconds a fetched document is kept, whatever its `Cache-Control` says:
    /// how long a changed document can take to count.
    #[serde(default = "default_max_cache_seconds")]
    pub max_cache_seconds: u64,
    /// Which hosts may be URL clients, and for which audiences; none: no URL clients.
    #[serde(default)]
    pub allow: Vec<CimdAllow>,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            min_cache_seconds: default_min_cache_seconds(),
            max_cache_seconds: default_max_cache_seconds(),
            allow: Vec::new(),
        }
    }
}

fn default_min_cache_seconds() -> u64 {
    60
}

fn default_max_cache_seconds() -> u64 {
    3600
}

/// `[[cimd.allow]]`: one host (or `*.` domain) whose URL clients may reach these audiences.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CimdAllow {
    /// `agents.example.com` (vouched for: it may be internal) or `*.agents.example.com`
    /// (any name under it, never an internal address).
    pub host: String,
    /// Audiences its URL clients may request.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// Why a host pattern is unusable, if it is.
pub fn host_pattern_problem(pattern: &str) -> Option<&'static str> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    if name.is_empty() {
        return Some("must name a host, or a domain after `*.` such as *.agents.example.com");
    }
    if name.contains('*') {
        return Some("`*.` is allowed only as a prefix");
    }
    if pattern != pattern.to_ascii_lowercase() {
        return Some("must be lower case");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']');
    if !name.chars().all(allowed) || name.starts_with('.') || name.ends_with('.') {
        return Some("must be a host name or IP address, with no scheme, port or path");
    }
    if pattern.starts_with("*.") && name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("a wildcard cannot cover IP addresses");
    }
    None
}

impl Config {
    /// `[cimd]`'s checks: bounds in order, usable host patterns, known audiences.
    pub(super) fn check_cimd(&self, p: &mut Problems) {
        let cimd = &self.cimd;
        if cimd.max_cache_seconds == 0 {
            p.error("cimd.max_cache_seconds", "must be at least 1");
        }
        if cimd.min_cache_seconds > cimd.max_cache_seconds {
            p.error("cimd.min_cache_seconds", "must not be more than max_cache_seconds");
        }
        let mut hosts = std::collections::BTreeSet::new();
        for (i, rule) in cimd.allow.iter().enumerate() {
            let key = |field: &str| format!("cimd.allow[{i}].{field}");
            if let Some(why) = host_pattern_problem(&rule.host) {
                p.error(key("host"), why);
            }
            if !hosts.insert(rule.host.as_str()) {
                p.error(key("host"), format!("{:?} is listed twice", rule.host));
            }
            if rule.audiences.is_empty() {
                p.warning(key("audiences"), "is empty: URL clients of this host can reach nothing");
            }
            for audience in &rule.audiences {
                if !self.audiences.iter().any(|a| &a.id == audience) {
                    p.error(key("audiences"), format!("{audience:?} is not a configured audience"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::workloads::tests::{BASE, problems};
    use super::*;

    #[test]
    fn defaults_allow_no_url_client_and_bound_caching_from_a_minute_to_an_hour() {
        let config = Config::parse(BASE).unwrap();
        assert!(config.cimd.allow.is_empty());
        assert_eq!(
            (config.cimd.min_cache_seconds, config.cimd.max_cache_seconds),
            (60, 3600)
        );
        let allowed = Config::parse(&format!(
            "{BASE}[[cimd.allow]]\nhost = \"*.agents.example.com\"\naudiences = [\"orders-api\"]\n"
        ))
        .unwrap();
        assert!(allowed.problems().is_empty(), "{:?}", allowed.problems());
    }

    #[test]
    fn each_mistake_names_its_key() {
        assert_eq!(
            problems("[cimd]\nmin_cache_seconds = 600\nmax_cache_seconds = 60\n"),
            ["cimd.min_cache_seconds"]
        );
        assert_eq!(
            problems("[cimd]\nmax_cache_seconds = 0\nmin_cache_seconds = 0\n"),
            ["cimd.max_cache_seconds"]
        );
        assert_eq!(
            problems("[[cimd.allow]]\nhost = \"a.*.example.com\"\naudiences = [\"orders-api\"]\n"),
            ["cimd.allow[0].host"]
        );
        assert_eq!(
            problems("[[cimd.allow]]\nhost = \"agents.example.com\"\naudiences = [\"nowhere\"]\n"),
            ["cimd.allow[0].audiences"]
        );
        assert_eq!(
            problems("[[cimd.allow]]\nhost = \"agents.example.com\"\n"),
            ["cimd.allow[0].audiences"],
            "a rule reaching nothing is a warning"
        );
        let unknown = Config::parse(&format!("{BASE}[cimd]\ncache_seconds = 5\n")).unwrap_err();
        assert!(unknown.to_string().contains("cache_seconds"), "{unknown}");
    }

    #[test]
    fn host_patterns_are_names_or_one_leading_wildcard() {
        for good in [
            "agents.example.com",
            "*.agents.example.com",
            "127.0.0.1",
            "localhost",
            "[::1]",
        ] {
            assert_eq!(host_pattern_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "*.",
            "a.*.example.com",
            "Agents.example.com",
            "https://agents.example.com",
            "agents.example.com/x",
            "*.10.0.0.1",
            ".example.com",
        ] {
            assert!(host_pattern_problem(bad).is_some(), "{bad}");
        }
    }
}
