//! A workload authenticating with its own platform credential, no secret: a JWT-SVID
//! (`jwt-spiffe`) or a Kubernetes service-account token (RFC 7523 `jwt-bearer` whose
//! `iss` is the cluster and `sub` the account). The token is read by `jose::read` with
//! the workload issuers' keys (a trust domain's bundle, a cluster's discovered keys);
//! a `[[workloads]]` rule with `client` makes the SPIFFE ID or account a client for
//! that rule's audiences. No single-use `jti`: platforms reuse these tokens, so replay
//! is bounded by `exp`, at most an hour ahead.

use std::sync::Arc;

use super::{AuthContext, RegisteredClient, failed, refused_assertion};
use crate::config::{ClientConfig, IssuerKind};
use crate::error::OAuthError;
use crate::inbound::workload::{MAX_WORKLOAD_LIFETIME, names_workload};
use crate::inbound::{Issuers, Trust};
use mcp_sts_contract::Actor;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::compact::{audiences, str_claim};
use mcp_sts_contract::jose::{NO_MEMORY, Profile, Types, read};

/// Which credential the caller declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Declared {
    /// `jwt-spiffe`: a JWT-SVID.
    Svid,
    /// `jwt-bearer` from no configured client: a service-account token.
    ServiceAccount,
}

/// Authenticate a workload by its token, or say why not (`invalid_client`; 503 when
/// its issuer's keys are unreachable).
pub(super) async fn authenticate(
    issuers: &Issuers,
    token: &str,
    declared: Declared,
    claimed_id: Option<&str>,
    ctx: AuthContext<'_>,
    now: UnixTime,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    let profile = Profile::new(Types::Any, ctx.max_token_bytes, now, ctx.leeway).max_lifetime(MAX_WORKLOAD_LIFETIME);
    let jws = read(token, &profile, &Trust::workloads(issuers), NO_MEMORY)
        .await
        .map_err(refused_assertion)?;
    let crate::inbound::validate::Origin::Upstream(issuer) = &jws.signer else {
        return Err(failed("client.assertion_invalid", "client assertion is invalid"));
    };
    let config = &issuer.config;
    let expected_kind = match declared {
        Declared::Svid => IssuerKind::Spiffe,
        Declared::ServiceAccount => IssuerKind::Kubernetes,
    };
    if config.kind != expected_kind {
        return Err(failed(
            "client.assertion_type",
            "client_assertion_type does not fit this workload credential",
        ));
    }
    let claims = jws.claims().map_err(refused_assertion)?;
    let sub = str_claim(claims, "sub").unwrap_or_default();
    if !names_workload(config.kind, &config.issuer, sub) || claimed_id.is_some_and(|id| id != sub) {
        return Err(failed(
            "client.assertion_subject",
            "client assertion sub must be a workload of its issuer and the client_id",
        ));
    }
    let aud = audiences(claims);
    if !aud
        .iter()
        .any(|a| *a == config.audience || *a == ctx.issuer || *a == ctx.token_endpoint)
    {
        return Err(failed(
            "client.assertion_audience",
            "client assertion audience must name this service",
        ));
    }
    let (rule, profile) = issuers
        .workloads()
        .rule(&config.issuer, sub)
        .and_then(|rule| rule.client.as_ref().map(|client| (client, rule.profile())))
        .ok_or_else(|| {
            tracing::info!(issuer = ?config.issuer, "refused: no workload rule makes this workload a client");
            failed("client.workload", "no workload rule lets this workload authenticate")
        })?;
    Ok(Arc::new(RegisteredClient {
        config: ClientConfig {
            client_id: sub.to_owned(),
            secret_sha256: None,
            jwks: None,
            jwks_uri: None,
            audiences: rule.audiences.clone(),
            authorization_servers: Vec::new(),
            dpop: crate::config::DpopMode::default(),
        },
        secret_sha256: None,
        jwks: None,
        acting: Actor::new(sub, Some(config.issuer.clone())).with_profile(profile),
    }))
}
