//! Workload issuers (SPIFFE trust domains, Kubernetes clusters) and the `[[workloads]]`
//! rules saying which workloads may act or authenticate: their types, defaults and checks.

use serde::Deserialize;

use super::check::Problems;
use super::{Config, IssuerConfig};
use crate::contract::SubProfile;

/// What kind of party a trusted issuer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// An OpenID provider (or any issuer with discovery or a JWKS URL): the default.
    #[default]
    Oidc,
    /// A SPIFFE trust domain: JWT-SVIDs checked against its bundle endpoint.
    Spiffe,
    /// A Kubernetes cluster's service-account issuer (discovery), for projected tokens.
    Kubernetes,
}

/// `[[workloads]]`: which SPIFFE IDs or service accounts may act, and as what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRule {
    /// `spiffe://example.org/agents/*` or `system:serviceaccount:agents:*`; `*` stands
    /// for exactly one path segment or name part.
    pub pattern: String,
    /// Restrict the rule to one configured issuer (a cluster's `issuer`, or
    /// `spiffe://<trust domain>`).
    pub issuer: Option<String>,
    /// A match may be the `actor_token` of an exchange.
    #[serde(default)]
    pub actor: bool,
    /// A match may authenticate to `/token` with the token itself, for these audiences.
    pub client: Option<WorkloadClient>,
    /// The actor profile of a match (default `ai_agent`).
    pub sub_profile: Option<SubProfile>,
}

/// `[[workloads]] client`: the policy of a workload authenticating as a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadClient {
    /// Audiences it may request.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// The issuer id of a trust domain: what its SVIDs' actors carry as `iss`.
pub fn spiffe_issuer(trust_domain: &str) -> String {
    format!("spiffe://{trust_domain}")
}

impl Config {
    /// Fill what workload issuers leave implicit: a trust domain's issuer id, and
    /// the audience a workload token must name (our issuer URL).
    pub(super) fn fill_workload_defaults(&mut self) {
        let ours = self.server.issuer.clone();
        for issuer in &mut self.issuers {
            if issuer.kind == IssuerKind::Spiffe
                && issuer.issuer.is_empty()
                && let Some(domain) = &issuer.trust_domain
            {
                issuer.issuer = spiffe_issuer(domain);
            }
            if issuer.kind != IssuerKind::Oidc && issuer.audience.is_empty() {
                issuer.audience = ours.clone();
            }
        }
    }

    /// A SPIFFE issuer's own keys; every issuer's workload keys where they do not apply.
    pub(super) fn check_spiffe_issuer(&self, p: &mut Problems, i: usize, issuer: &IssuerConfig) {
        let key = |field: &str| format!("issuers[{i}].{field}");
        match &issuer.trust_domain {
            None => p.error(key("trust_domain"), "is required for kind = \"spiffe\""),
            Some(domain) => {
                if !valid_trust_domain(domain) {
                    p.error(
                        key("trust_domain"),
                        "must be a trust domain name: lowercase letters, digits, dots, dashes and underscores",
                    );
                }
                if issuer.issuer != spiffe_issuer(domain) {
                    p.error(key("issuer"), "is set by trust_domain; leave it out");
                }
            }
        }
        match &issuer.bundle_endpoint {
            None => p.error(key("bundle_endpoint"), "is required for kind = \"spiffe\""),
            Some(endpoint) => match url::Url::parse(endpoint) {
                Ok(url) if url.scheme() == "https" => {}
                Ok(url) if url.scheme() == "http" && !crate::fetch::plain_http_off_loopback(&url) => {}
                _ => p.error(key("bundle_endpoint"), "must be an https URL (or http on loopback)"),
            },
        }
        if issuer.jwks_uri.is_some() {
            p.error(
                key("jwks_uri"),
                "does not apply to kind = \"spiffe\" (keys come from bundle_endpoint)",
            );
        }
    }

    /// `[[workloads]]`, and the issuer keys that apply to one kind only.
    pub(super) fn check_workloads(&self, p: &mut Problems) {
        for (i, rule) in self.workloads.iter().enumerate() {
            let key = |field: &str| format!("workloads[{i}].{field}");
            if let Err(why) = Pattern::parse(&rule.pattern) {
                p.error(key("pattern"), why);
            }
            if let Some(issuer) = &rule.issuer
                && !self
                    .issuers
                    .iter()
                    .any(|i| &i.issuer == issuer && i.kind != IssuerKind::Oidc)
            {
                p.error(key("issuer"), format!("{issuer:?} is not a configured workload issuer"));
            }
            if !rule.actor && rule.client.is_none() {
                p.warning(key("pattern"), "neither actor nor client: this rule allows nothing");
            }
            if rule.sub_profile == Some(SubProfile::User) {
                p.error(key("sub_profile"), "must be \"ai_agent\" or \"service\"");
            }
            for audience in rule.client.iter().flat_map(|c| &c.audiences) {
                if !self.audiences.iter().any(|a| &a.id == audience) {
                    p.error(
                        key("client.audiences"),
                        format!("{audience:?} is not a configured audience"),
                    );
                }
            }
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            if issuer.kind == IssuerKind::Oidc && issuer.trust_domain.is_some() {
                p.error(
                    format!("issuers[{i}].trust_domain"),
                    "applies to kind = \"spiffe\" only",
                );
            }
            if issuer.kind != IssuerKind::Oidc && issuer.accept_id_jag {
                p.error(
                    format!("issuers[{i}].accept_id_jag"),
                    "applies to identity providers only, not to workload issuers",
                );
            }
            if issuer.kind != IssuerKind::Spiffe && issuer.bundle_endpoint.is_some() {
                p.error(
                    format!("issuers[{i}].bundle_endpoint"),
                    "applies to kind = \"spiffe\" only",
                );
            }
            if issuer.actor_profile == Some(SubProfile::User) {
                p.error(
                    format!("issuers[{i}].actor_profile"),
                    "must be \"ai_agent\" or \"service\"",
                );
            }
        }
    }
}

/// The subject prefix of a Kubernetes service-account token.
pub const SERVICE_ACCOUNT: &str = "system:serviceaccount:";

/// A `[[workloads]]` pattern: literal parts and `*`, each `*` exactly one path segment
/// (SPIFFE) or name part (service account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    separator: char,
    parts: Vec<String>,
    /// How many bytes precede the first `*`: the longest wins.
    literal_prefix: usize,
}

impl Pattern {
    /// Parse a pattern, explaining what is wrong with a bad one.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let separator = if pattern.starts_with("spiffe://") {
            '/'
        } else if pattern.starts_with(SERVICE_ACCOUNT) {
            ':'
        } else {
            return Err("must start with spiffe:// or system:serviceaccount:".into());
        };
        let parts: Vec<String> = pattern.split(separator).map(String::from).collect();
        let fixed = if separator == '/' { 3 } else { 2 };
        let expected = if separator == '/' {
            parts.len() > 3
        } else {
            parts.len() == 4
        };
        if !expected {
            return Err(if separator == '/' {
                "must name a path under the trust domain".into()
            } else {
                "must be system:serviceaccount:<namespace>:<name>".into()
            });
        }
        for (i, part) in parts.iter().enumerate() {
            if part.contains('*') && (part != "*" || i < fixed) {
                return Err("`*` must stand alone for one path segment or name part".into());
            }
            if i >= fixed && part.is_empty() {
                return Err("has an empty segment".into());
            }
        }
        let literal_prefix = pattern.find('*').unwrap_or(pattern.len());
        Ok(Self {
            separator,
            parts,
            literal_prefix,
        })
    }

    /// How many bytes precede the first `*`: among matching rules, the longest wins.
    pub fn literal_prefix(&self) -> usize {
        self.literal_prefix
    }

    /// Whether `sub` matches: every part equal, or `*` against one non-empty part.
    pub fn matches(&self, sub: &str) -> bool {
        let mut given = sub.split(self.separator);
        let all = self.parts.iter().all(|part| {
            given
                .next()
                .is_some_and(|g| if part == "*" { !g.is_empty() } else { g == part })
        });
        all && given.next().is_none()
    }
}

/// SPIFFE ID spec §2.1: lowercase letters, digits, `.`, `-` and `_`.
pub fn valid_trust_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 255
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small valid configuration the checks of workload and URL client tables extend.
    pub(in crate::config) const BASE: &str = r#"
[server]
listen = "127.0.0.1:0"
issuer = "https://sts.example.com"

[[issuers]]
issuer = "https://idp.example.com"
audience = "mcp-sts"

[[audiences]]
id = "orders-api"
mode = "on_behalf_of"
scopes = ["orders:read"]

[[clients]]
client_id = "orders-mcp"
secret_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
audiences = ["orders-api"]
"#;

    /// The keys of every problem `BASE` + `extra` has.
    pub(in crate::config) fn problems(extra: &str) -> Vec<String> {
        let config = Config::parse(&format!("{BASE}{extra}")).unwrap();
        config.problems().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn a_trust_domain_gets_its_issuer_id_and_our_audience() {
        let extra = "[[issuers]]\nkind = \"spiffe\"\ntrust_domain = \"example.org\"\nbundle_endpoint = \"https://spire.example.org/bundle\"\n";
        let config = Config::parse(&format!("{BASE}{extra}")).unwrap();
        let spiffe = &config.issuers[1];
        assert_eq!(spiffe.issuer, "spiffe://example.org");
        assert_eq!(spiffe.audience, "https://sts.example.com");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn mistakes_name_their_key() {
        let keys = problems(
            "[[issuers]]\nkind = \"spiffe\"\ntrust_domain = \"Example.org\"\nbundle_endpoint = \"http://spire.example.org/bundle\"\n\
             [[workloads]]\npattern = \"spiffe://example.org/a*\"\nactor = true\n\
             [[workloads]]\npattern = \"system:serviceaccount:agents:*\"\nissuer = \"https://nowhere\"\nclient = { audiences = [\"nope\"] }\nsub_profile = \"user\"\n",
        );
        for key in [
            "issuers[1].trust_domain",
            "issuers[1].bundle_endpoint",
            "workloads[0].pattern",
            "workloads[1].issuer",
            "workloads[1].client.audiences",
            "workloads[1].sub_profile",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
    }
}
