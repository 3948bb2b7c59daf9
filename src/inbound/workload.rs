//! Workload identities: what a SPIFFE ID or a Kubernetes service account looks like,
//! the `[[workloads]]` patterns, and the rule a workload token answers to.

use crate::config::{IssuerKind, Pattern, WorkloadRule, valid_trust_domain};
use mcp_sts_contract::SubProfile;

use crate::config::SERVICE_ACCOUNT;

/// Longest a workload token may live ahead of now: platforms reuse these tokens
/// (SPIRE caches SVIDs, kubelet rotates projected tokens), so `exp` bounds replay.
pub(crate) const MAX_WORKLOAD_LIFETIME: u64 = 3_600;

/// The trust domain of a SPIFFE ID (`spiffe://<trust domain>/<path>`) that names a
/// workload: a valid trust domain (no port or userinfo), a non-empty path of
/// non-empty segments that are not `.` or `..`, no query or fragment.
pub(crate) fn spiffe_trust_domain(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    let (domain, path) = rest.split_once('/')?;
    if !valid_trust_domain(domain) || path.is_empty() {
        return None;
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    path.split('/').all(segment_ok).then_some(domain)
}

/// Whether `sub` is `system:serviceaccount:<namespace>:<name>` with a DNS-label
/// namespace and a DNS-subdomain name.
pub(crate) fn is_service_account(sub: &str) -> bool {
    let Some((namespace, name)) = sub.strip_prefix(SERVICE_ACCOUNT).and_then(|r| r.split_once(':')) else {
        return false;
    };
    let label = |s: &str, dots: bool| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.'))
    };
    label(namespace, false) && namespace.len() <= 63 && label(name, true)
}

/// Whether a verified token's `sub` names a workload of an issuer of `kind` whose
/// issuer id is `issuer_id`.
pub(crate) fn names_workload(kind: IssuerKind, issuer_id: &str, sub: &str) -> bool {
    match kind {
        IssuerKind::Spiffe => {
            spiffe_trust_domain(sub).is_some_and(|domain| issuer_id.strip_prefix("spiffe://") == Some(domain))
        }
        IssuerKind::Kubernetes => is_service_account(sub),
        IssuerKind::Oidc => false,
    }
}

/// The `[[workloads]]` rules, parsed once.
#[derive(Debug, Default)]
pub(crate) struct Workloads {
    rules: Vec<(Pattern, WorkloadRule)>,
}

impl Workloads {
    /// Parse the configured rules (validation refused bad patterns already).
    pub(crate) fn new(rules: &[WorkloadRule]) -> Self {
        let rules = rules
            .iter()
            .filter_map(|rule| Pattern::parse(&rule.pattern).ok().map(|p| (p, rule.clone())))
            .collect();
        Self { rules }
    }

    /// The rule for `sub` vouched for by `issuer_id`: among the matching rules (an
    /// `issuer` restriction must name it), the one with the longest literal prefix.
    pub(crate) fn rule(&self, issuer_id: &str, sub: &str) -> Option<&WorkloadRule> {
        self.rules
            .iter()
            .filter(|(pattern, rule)| {
                pattern.matches(sub) && rule.issuer.as_deref().is_none_or(|issuer| issuer == issuer_id)
            })
            .max_by_key(|(pattern, _)| pattern.literal_prefix())
            .map(|(_, rule)| rule)
    }
}

impl WorkloadRule {
    /// The actor profile of a workload this rule matched.
    pub(crate) fn profile(&self) -> SubProfile {
        self.sub_profile.unwrap_or(SubProfile::AiAgent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, issuer: Option<&str>, actor: bool) -> WorkloadRule {
        WorkloadRule {
            pattern: pattern.into(),
            issuer: issuer.map(String::from),
            actor,
            client: None,
            sub_profile: None,
        }
    }

    #[test]
    fn spiffe_ids_name_a_workload_of_one_trust_domain() {
        assert_eq!(
            spiffe_trust_domain("spiffe://example.org/agents/a"),
            Some("example.org")
        );
        for bad in [
            "spiffe://example.org",
            "spiffe://example.org/",
            "spiffe://example.org:443/a",
            "spiffe://user@example.org/a",
            "spiffe://example.org/a?x=1",
            "spiffe://example.org/a#f",
            "spiffe://example.org/a/../b",
            "spiffe://example.org/./a",
            "spiffe://example.org//a",
            "spiffe://Example.org/a",
            "https://example.org/a",
        ] {
            assert_eq!(spiffe_trust_domain(bad), None, "{bad}");
        }
        assert!(names_workload(
            IssuerKind::Spiffe,
            "spiffe://example.org",
            "spiffe://example.org/a"
        ));
        assert!(!names_workload(
            IssuerKind::Spiffe,
            "spiffe://example.org",
            "spiffe://evil.org/a"
        ));
    }

    #[test]
    fn service_accounts_have_a_namespace_and_a_name() {
        assert!(is_service_account("system:serviceaccount:agents:planner"));
        for bad in [
            "system:serviceaccount:agents",
            "system:serviceaccount::planner",
            "system:serviceaccount:Agents:planner",
            "system:serviceaccount:agents:planner:x",
            "alice",
        ] {
            assert!(!is_service_account(bad), "{bad}");
        }
    }

    #[test]
    fn a_star_is_one_segment_and_the_longest_literal_prefix_wins() {
        let p = Pattern::parse("spiffe://example.org/agents/*").unwrap();
        assert!(p.matches("spiffe://example.org/agents/planner"));
        assert!(!p.matches("spiffe://example.org/agents/planner/x"));
        assert!(!p.matches("spiffe://example.org/agents/"));
        assert!(!p.matches("spiffe://example.org/other/planner"));
        let sa = Pattern::parse("system:serviceaccount:agents:*").unwrap();
        assert!(sa.matches("system:serviceaccount:agents:planner"));
        assert!(!sa.matches("system:serviceaccount:other:planner"));
        for bad in [
            "spiffe://*/a",
            "spiffe://example.org/a*",
            "system:serviceaccount:*",
            "alice/*",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let rules = Workloads::new(&[
            rule("spiffe://example.org/*/planner", None, false),
            rule("spiffe://example.org/agents/*", None, true),
            rule("system:serviceaccount:agents:*", Some("https://cluster-a"), true),
        ]);
        let found = rules.rule("spiffe://example.org", "spiffe://example.org/agents/planner");
        assert!(found.is_some_and(|r| r.actor));
        assert!(
            rules
                .rule("https://cluster-b", "system:serviceaccount:agents:x")
                .is_none()
        );
        assert!(
            rules
                .rule("https://cluster-a", "system:serviceaccount:agents:x")
                .is_some()
        );
    }
}
