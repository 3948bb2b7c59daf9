//! Policy: which audience a request names, whether the caller may reach it, and
//! which scopes may be granted. Plain functions of configuration and input.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::client_auth::RegisteredClient;
use crate::config::{AudienceConfig, DelegationMode, check_resource_uri};
use crate::error::OAuthError;

/// Every configured audience, by id and by resource URI.
#[derive(Debug, Default)]
pub struct Audiences {
    by_id: HashMap<String, Arc<AudienceConfig>>,
    by_resource: HashMap<String, Arc<AudienceConfig>>,
}

/// The audience a request resolved to, and the `aud` value the token will carry.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The audience's policy.
    pub audience: Arc<AudienceConfig>,
    /// The `aud` claim: the id, or the resource URI when asked by `resource` (RFC 9068 §3).
    pub aud: String,
}

impl Audiences {
    /// Build from configuration (already validated).
    pub(crate) fn new(configs: &[AudienceConfig]) -> Self {
        let mut audiences = Self::default();
        for config in configs {
            let config = Arc::new(config.clone());
            if let Some(resource) = &config.resource {
                audiences.by_resource.insert(resource.clone(), config.clone());
            }
            audiences.by_id.insert(config.id.clone(), config);
        }
        audiences
    }

    /// The audience an `aud` value names (an id or a resource URI).
    pub(crate) fn by_aud(&self, aud: &str) -> Option<&Arc<AudienceConfig>> {
        self.by_id.get(aud).or_else(|| self.by_resource.get(aud))
    }

    /// Every scope any audience knows (for the metadata document).
    pub(crate) fn all_scopes(&self) -> BTreeSet<String> {
        self.by_id.values().flat_map(|a| a.scopes.iter().cloned()).collect()
    }

    /// Resolve `audience` and/or `resource` to one configured audience this client may reach.
    pub(crate) fn resolve(
        &self,
        audience: Option<&str>,
        resource: Option<&str>,
        client: &RegisteredClient,
    ) -> Result<Target, OAuthError> {
        let by_audience = audience
            .map(|id| {
                self.by_id.get(id).cloned().ok_or_else(|| {
                    OAuthError::invalid_target("target.unknown_audience", "the requested audience is unknown")
                })
            })
            .transpose()?;
        let by_resource = resource
            .map(|uri| {
                check_resource_uri(uri)
                    .map_err(|m| OAuthError::invalid_target("target.invalid_resource", format!("resource {m}")))?;
                self.by_resource.get(uri).cloned().ok_or_else(|| {
                    OAuthError::invalid_target("target.unknown_resource", "the requested resource is unknown")
                })
            })
            .transpose()?;
        let target = match (by_audience, by_resource, resource) {
            (Some(a), Some(r), _) if !Arc::ptr_eq(&a, &r) => {
                return Err(OAuthError::invalid_target(
                    "target.conflicting",
                    "audience and resource name different targets; one token serves one audience",
                ));
            }
            (_, Some(r), Some(uri)) => Target {
                aud: uri.to_owned(),
                audience: r,
            },
            (Some(a), None, _) => Target {
                aud: a.id.clone(),
                audience: a,
            },
            _ => {
                return Err(OAuthError::invalid_request(
                    "target.missing",
                    "an audience or resource parameter is required",
                ));
            }
        };
        if !client.may_reach(&target.audience.id) {
            return Err(OAuthError::invalid_target(
                "target.not_allowed",
                "this client may not request the audience",
            ));
        }
        Ok(target)
    }
}

/// Parse a `scope` parameter (RFC 6749 §3.3): space-separated scope tokens.
pub fn parse_scope(scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(scope) = scope else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|s| !s.is_empty()) {
        if !token
            .chars()
            .all(|c| matches!(c, '\u{21}' | '\u{23}'..='\u{5B}' | '\u{5D}'..='\u{7E}'))
        {
            return Err(OAuthError::invalid_scope(
                "scope.malformed",
                "scope contains characters not allowed by RFC 6749",
            ));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// Where the user's entitlement comes from.
#[derive(Debug, Clone)]
pub(crate) enum Entitlement {
    /// An upstream token: the audience's `role_scopes` for these roles, plus these scopes
    /// (each empty unless the issuer's `entitlement` setting selects it).
    Upstream {
        /// The user's roles.
        roles: Vec<String>,
        /// The subject token's own `scope` values.
        scopes: Vec<String>,
    },
    /// A token minted by this service (a further hop): exactly its scopes.
    Minted {
        /// The minted token's `scope`.
        scopes: Vec<String>,
    },
}

/// The scopes that may be granted for `audience` in its mode, in the audience's order.
pub(crate) fn grantable(audience: &AudienceConfig, entitlement: &Entitlement) -> Vec<String> {
    let allowed: BTreeSet<&str> = match (audience.mode, entitlement) {
        (DelegationMode::ServiceIdentity, Entitlement::Upstream { .. }) => {
            return audience.scopes.clone();
        }
        (_, Entitlement::Minted { scopes }) => scopes.iter().map(String::as_str).collect(),
        (_, Entitlement::Upstream { roles, scopes }) => roles
            .iter()
            .filter_map(|role| audience.role_scopes.get(role))
            .flatten()
            .chain(scopes.iter())
            .map(String::as_str)
            .collect(),
    };
    audience
        .scopes
        .iter()
        .filter(|s| allowed.contains(s.as_str()))
        .cloned()
        .collect()
}

/// RFC 6749 §3.3 as DESIGN decides it: nothing asked grants everything grantable;
/// asking for anything outside the grantable set is `invalid_scope` (no silent narrowing).
pub(crate) fn decide_scopes(
    requested: &[String],
    grantable: &[String],
    audience: &AudienceConfig,
) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        if grantable.is_empty() && !audience.scopes.is_empty() {
            return Err(OAuthError::invalid_scope(
                "scope.none_grantable",
                "no scope for this audience can be granted to this subject",
            ));
        }
        return Ok(grantable.to_vec());
    }
    let refused: Vec<&str> = requested
        .iter()
        .filter(|r| !grantable.contains(r))
        .map(String::as_str)
        .collect();
    if refused.is_empty() {
        return Ok(grantable.iter().filter(|g| requested.contains(g)).cloned().collect());
    }
    let (known, unknown): (Vec<&str>, Vec<&str>) =
        refused.iter().partition(|r| audience.scopes.iter().any(|s| s == *r));
    let mut reasons = Vec::new();
    if !known.is_empty() {
        reasons.push(format!("not entitled to {}", name_scopes(&known)));
    }
    if !unknown.is_empty() {
        reasons.push(format!("unknown to the audience {}", name_scopes(&unknown)));
    }
    let mut error = OAuthError::invalid_scope(
        "scope.exceeds_grantable",
        format!("requested scope refused: {}", reasons.join("; ")),
    );
    error.refused_scope = Some(name_scopes(&refused));
    Err(error)
}

/// Most refused scopes named in one answer; scope tokens are already RFC 6749 §3.3
/// characters, which `error_description` allows too.
const MAX_NAMED_SCOPES: usize = 16;

/// The refused scopes, space-separated, the list bounded.
fn name_scopes(refused: &[&str]) -> String {
    let mut named = refused
        .iter()
        .take(MAX_NAMED_SCOPES)
        .map(|s| s.chars().take(MAX_SCOPE_CHARS).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    if refused.len() > MAX_NAMED_SCOPES {
        named.push_str(&format!(" and {} more", refused.len() - MAX_NAMED_SCOPES));
    }
    named
}

/// Longest scope name repeated back.
const MAX_SCOPE_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn orders(mode: DelegationMode) -> AudienceConfig {
        AudienceConfig {
            id: "orders-api".into(),
            resource: Some("https://orders.example.com/api".into()),
            mode,
            scopes: vec!["orders:read".into(), "orders:write".into(), "orders:admin".into()],
            role_scopes: [
                ("developer".to_owned(), vec!["orders:read".to_owned()]),
                (
                    "order-admin".to_owned(),
                    vec![
                        "orders:read".to_owned(),
                        "orders:write".to_owned(),
                        "orders:admin".to_owned(),
                    ],
                ),
            ]
            .into_iter()
            .collect(),
            ttl_seconds: None,
            require_dpop: false,
        }
    }

    fn upstream(roles: &[&str], scopes: &[&str]) -> Entitlement {
        Entitlement::Upstream {
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn on_behalf_of_grants_roles_plus_token_scopes_within_the_audience() {
        let a = orders(DelegationMode::OnBehalfOf);
        assert_eq!(grantable(&a, &upstream(&["developer"], &[])), vec!["orders:read"]);
        assert_eq!(
            grantable(&a, &upstream(&["developer"], &["orders:write", "mail:send"])),
            vec!["orders:read", "orders:write"]
        );
        assert!(grantable(&a, &upstream(&["unknown"], &[])).is_empty());
    }

    #[test]
    fn service_identity_grants_the_audience_scopes() {
        let a = orders(DelegationMode::ServiceIdentity);
        assert_eq!(grantable(&a, &upstream(&[], &[])).len(), 3);
    }

    #[test]
    fn minted_tokens_can_only_narrow() {
        let a = orders(DelegationMode::OnBehalfOf);
        let minted = Entitlement::Minted {
            scopes: vec!["orders:read".into()],
        };
        assert_eq!(grantable(&a, &minted), vec!["orders:read"]);
        let err = decide_scopes(&["orders:write".into()], &grantable(&a, &minted), &a).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn scope_decisions() {
        let a = orders(DelegationMode::OnBehalfOf);
        let g = vec!["orders:read".to_owned(), "orders:write".to_owned()];
        assert_eq!(decide_scopes(&[], &g, &a).unwrap(), g);
        assert_eq!(
            decide_scopes(&["orders:write".into()], &g, &a).unwrap(),
            vec!["orders:write"]
        );
        assert_eq!(
            decide_scopes(&["orders:admin".into()], &g, &a).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(decide_scopes(&[], &[], &a).unwrap_err().code, ErrorCode::InvalidScope);
    }

    #[test]
    fn scope_parsing() {
        assert_eq!(parse_scope(Some("a  b a")).unwrap(), vec!["a", "b"]);
        assert_eq!(parse_scope(Some("a \"b\"")).unwrap_err().code, ErrorCode::InvalidScope);
        assert!(parse_scope(None).unwrap().is_empty());
    }
}
