//! Which authorization servers and protected resources a client may obtain
//! identity assertion grants for, and with which scopes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::client_auth::RegisteredClient;
use crate::config::{AudienceConfig, AuthorizationServerConfig, DelegationMode, check_resource_uri};
use crate::error::OAuthError;

/// Every configured authorization server, by issuer identifier.
#[derive(Debug, Default)]
pub struct AuthorizationServers {
    by_issuer: HashMap<String, Arc<AuthorizationServer>>,
}

/// One authorization server with the scope policy of each resource it fronts.
#[derive(Debug)]
pub(crate) struct AuthorizationServer {
    /// Its configuration.
    pub config: AuthorizationServerConfig,
    /// Scope policy per resource, in the shape `policy::grantable` reads.
    resources: HashMap<String, Arc<AudienceConfig>>,
}

/// What a grant request resolved to.
#[derive(Debug, Clone)]
pub(crate) struct GrantTarget {
    /// The authorization server: the grant's `aud`.
    pub server: Arc<AuthorizationServer>,
    /// The resource: the grant's `resource`.
    pub resource: String,
    /// The resource's scopes and role scopes, as an audience in `on_behalf_of` mode
    /// (a grant always names the user), so the one scope policy decides.
    pub policy: Arc<AudienceConfig>,
}

impl AuthorizationServers {
    /// Build from configuration (already validated).
    pub(crate) fn new(configs: &[AuthorizationServerConfig]) -> Self {
        let by_issuer = configs
            .iter()
            .map(|config| {
                let resources = config
                    .resources
                    .iter()
                    .map(|r| {
                        let policy = AudienceConfig {
                            id: r.resource.clone(),
                            resource: Some(r.resource.clone()),
                            mode: DelegationMode::OnBehalfOf,
                            scopes: r.scopes.clone(),
                            role_scopes: r.role_scopes.clone(),
                            ttl_seconds: None,
                            require_dpop: false,
                        };
                        (r.resource.clone(), Arc::new(policy))
                    })
                    .collect();
                let server = AuthorizationServer {
                    config: config.clone(),
                    resources,
                };
                (config.issuer.clone(), Arc::new(server))
            })
            .collect();
        Self { by_issuer }
    }

    /// The authorization server with this issuer identifier.
    pub(crate) fn get(&self, issuer: &str) -> Option<&Arc<AuthorizationServer>> {
        self.by_issuer.get(issuer)
    }

    /// Whether any authorization server is configured (we issue grants at all).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_issuer.is_empty()
    }

    /// Resolve `audience` (an authorization server) and `resource` (one it fronts)
    /// for `client`; anything unknown or not allowed is `invalid_target` (RFC 8693 §2.2.2).
    pub(crate) fn resolve(
        &self,
        audience: &str,
        resource: &str,
        client: &RegisteredClient,
    ) -> Result<GrantTarget, OAuthError> {
        let server = self.by_issuer.get(audience).ok_or_else(|| {
            OAuthError::invalid_target(
                "grant.unknown_audience",
                "the audience is not a known authorization server",
            )
        })?;
        if !client.config.authorization_servers.iter().any(|a| a == audience) {
            return Err(OAuthError::invalid_target(
                "grant.not_allowed",
                "this client may not obtain grants for the authorization server",
            ));
        }
        check_resource_uri(resource)
            .map_err(|m| OAuthError::invalid_target("target.invalid_resource", format!("resource {m}")))?;
        let policy = server.resources.get(resource).ok_or_else(|| {
            OAuthError::invalid_target(
                "grant.unknown_resource",
                "the resource is not served by the authorization server",
            )
        })?;
        Ok(GrantTarget {
            server: server.clone(),
            resource: resource.to_owned(),
            policy: policy.clone(),
        })
    }
}
