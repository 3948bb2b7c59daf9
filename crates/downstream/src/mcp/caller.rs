//! The caller of a tool, as the validated access token and the request say: the user,
//! the agent application, this server's own client id at mcp-sts, the session, the
//! trace and the scopes. The raw token is held privately, only to be exchanged at
//! mcp-sts; nothing in this type's API, `Debug` or `Serialize` output reveals it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use serde::Serialize;

use super::bearer::BearerToken;
use super::error::TokenError;
use super::revocation::Revocations;
use crate::client::{ExchangeRequest, MintedToken, Secret, StsClient};
use crate::verify::dpop::{Scheme, bound_key};
use mcp_sts_contract::clock::UnixTime;

/// The identity of whoever calls a tool, derived from the validated access token.
///
/// Take it as a tool parameter (`caller: Caller`); the handler must implement
/// [`super::tools::Protected`], which only a handler served through [`super::McpAuth`] can, so a tool
/// asking for a caller on an unprotected server does not compile.
#[derive(Clone)]
pub struct Caller {
    inner: Arc<Inner>,
}

struct Inner {
    token: BearerToken,
    subject_token: Secret,
    traceparent: String,
    mcp_session: Option<String>,
    resource: String,
    sts: Option<Arc<StsClient>>,
    revocations: Option<Arc<Revocations>>,
}

impl Caller {
    /// Build the caller of one request; `subject_token` is kept only for exchanges.
    pub(crate) fn new(
        token: BearerToken,
        subject_token: &str,
        headers: &HeaderMap,
        resource: &str,
        sts: Option<Arc<StsClient>>,
        revocations: Option<Arc<Revocations>>,
    ) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let traceparent = header("traceparent")
            .filter(|t| valid_traceparent(t))
            .map_or_else(new_traceparent, str::to_owned);
        let mcp_session = header("mcp-session-id")
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_owned);
        Self {
            inner: Arc::new(Inner {
                token,
                subject_token: Secret::new(subject_token),
                traceparent,
                mcp_session,
                resource: resource.to_owned(),
                sts,
                revocations,
            }),
        }
    }

    /// The caller of the request `context` belongs to, for handlers that are not tools
    /// (resources, prompts). `None` when the request did not pass [`super::McpAuth`]'s
    /// layer.
    pub fn from_request_context(context: &RequestContext<RoleServer>) -> Option<Self> {
        context.extensions.get::<Parts>()?.extensions.get::<Caller>().cloned()
    }

    /// The user (`sub`): per-user filtering keys on this, never on tool arguments.
    pub fn user(&self) -> &str {
        &self.inner.token.user
    }

    /// The agent application that obtained the token (its `client_id`, or `azp`), when
    /// the token names one.
    pub fn agent(&self) -> Option<&str> {
        self.inner.token.agent.as_deref()
    }

    /// This MCP server's client id at mcp-sts: the actor downstream tokens name in
    /// front of the agent. `None` when the server exchanges no tokens.
    pub fn client(&self) -> Option<&str> {
        self.inner.sts.as_deref().map(StsClient::client_id)
    }

    /// The authorization server that issued the token.
    pub fn issuer(&self) -> &str {
        &self.inner.token.issuer
    }

    /// The user's sign-in session at the authorization server (`sid`), which mcp-sts
    /// can revoke, when the token carries one.
    pub fn session(&self) -> Option<&str> {
        self.inner.token.session.as_deref()
    }

    /// The MCP session (`Mcp-Session-Id`), when the transport has one.
    pub fn mcp_session(&self) -> Option<&str> {
        self.inner.mcp_session.as_deref()
    }

    /// The W3C `traceparent` of this request (the client's, or a new one); it is sent to
    /// mcp-sts, whose downstream tokens carry its trace id as `txn`.
    pub fn traceparent(&self) -> &str {
        &self.inner.traceparent
    }

    /// The trace id (32 hex digits) for log lines.
    pub fn trace_id(&self) -> &str {
        self.inner.traceparent.get(3..35).unwrap_or_default()
    }

    /// The scopes the token grants on this server.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.inner.token.scopes
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.token.scopes.contains(scope)
    }

    /// The token's id (`jti`), when it has one.
    pub fn token_id(&self) -> Option<&str> {
        self.inner.token.token_id.as_deref()
    }

    /// When the token expires (`exp`, seconds since the epoch).
    pub fn expires_at(&self) -> UnixTime {
        self.inner.token.expires_at
    }

    /// The thumbprint of the DPoP key the caller's token is bound to (`cnf.jkt`);
    /// `None` for a bearer token. A bound token got here only with a proof by that key.
    pub fn key_thumbprint(&self) -> Option<&str> {
        bound_key(&self.inner.token.claims).ok().flatten()
    }

    /// How the caller's token is presented: `DPoP` when bound, else `Bearer`.
    pub(crate) fn scheme(&self) -> Scheme {
        match self.key_thumbprint() {
            Some(_) => Scheme::Dpop,
            None => Scheme::Bearer,
        }
    }

    /// This server's resource URI (the token's audience).
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// An audit line: `alice@example.com via agent claude-desktop (orders-mcp)`.
    pub fn describe(&self) -> String {
        self.to_string()
    }

    /// A token for the downstream audience `audience` (its id at mcp-sts), with every
    /// scope policy allows this user there. Cached until shortly before it expires, or
    /// until the kit's revocation stream hears of a revocation reaching it.
    pub async fn token_for(&self, audience: &str) -> Result<MintedToken, TokenError> {
        self.exchange(
            audience,
            ExchangeRequest::new(self.inner.subject_token.clone()).audience(audience),
        )
        .await
    }

    /// The headers that present `token` (from [`Self::token_for`]) on a `method`
    /// request to `url`: with a proof when the exchange client holds a DPoP key and
    /// the token is bound to it.
    pub fn authorization(
        &self,
        token: &MintedToken,
        method: &str,
        url: &str,
    ) -> Result<Vec<(&'static str, String)>, TokenError> {
        let sts =
            self.inner.sts.as_deref().ok_or_else(|| {
                TokenError::NotConfigured("no exchange client; see McpAuthBuilder::exchange_with".into())
            })?;
        sts.authorization(token, method, url)
            .map_err(|e| TokenError::from_sts(url, e))
    }

    /// A token for `audience` with exactly `scopes` (mcp-sts refuses more than policy
    /// allows with `invalid_scope`).
    pub async fn token_for_scopes(&self, audience: &str, scopes: &[&str]) -> Result<MintedToken, TokenError> {
        let request = ExchangeRequest::new(self.inner.subject_token.clone())
            .audience(audience)
            .scopes(scopes.iter().copied());
        self.exchange(audience, request).await
    }

    /// A token for the downstream resource URI `resource` (RFC 8707); its `aud` is
    /// that URI.
    pub async fn token_for_resource(&self, resource: &str) -> Result<MintedToken, TokenError> {
        self.exchange(
            resource,
            ExchangeRequest::new(self.inner.subject_token.clone()).resource(resource),
        )
        .await
    }

    async fn exchange(&self, target: &str, request: ExchangeRequest) -> Result<MintedToken, TokenError> {
        let sts =
            self.inner.sts.as_deref().ok_or_else(|| {
                TokenError::NotConfigured("no exchange client; see McpAuthBuilder::exchange_with".into())
            })?;
        let request = request.traceparent(self.inner.traceparent.clone());
        // A cached token whose lineage a heard revocation reaches is never handed out.
        let revocations = self.inner.revocations.as_deref();
        let revoked = |claims: &mcp_sts_contract::AccessClaims| revocations.is_some_and(|r| r.revokes(claims));
        let token = sts
            .exchange_unless_revoked(&request, &revoked)
            .await
            .map_err(|e| TokenError::from_sts(target, e))?;
        tracing::debug!(
            user = self.user(),
            agent = self.agent().unwrap_or("-"),
            target,
            trace_id = self.trace_id(),
            "downstream token obtained"
        );
        Ok(token)
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.user())?;
        if let Some(agent) = self.agent() {
            write!(f, " via agent {agent}")?;
        }
        if let Some(client) = self.client() {
            write!(f, " ({client})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("user", &self.user())
            .field("agent", &self.agent())
            .field("client", &self.client())
            .field("issuer", &self.issuer())
            .field("scopes", self.scopes())
            .field("trace_id", &self.trace_id())
            .finish_non_exhaustive()
    }
}

/// The caller's identity as JSON (for a `whoami` tool, or a log line); no token.
impl Serialize for Caller {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            user: &'a str,
            agent: Option<&'a str>,
            client: Option<&'a str>,
            issuer: &'a str,
            session: Option<&'a str>,
            mcp_session: Option<&'a str>,
            trace_id: &'a str,
            scopes: &'a BTreeSet<String>,
            expires_at: UnixTime,
        }
        View {
            user: self.user(),
            agent: self.agent(),
            client: self.client(),
            issuer: self.issuer(),
            session: self.session(),
            mcp_session: self.mcp_session(),
            trace_id: self.trace_id(),
            scopes: self.scopes(),
            expires_at: self.expires_at(),
        }
        .serialize(serializer)
    }
}

/// `00-<32 hex trace id, not all zero>-<16 hex parent id, not all zero>-<2 hex flags>`.
fn valid_traceparent(value: &str) -> bool {
    let fields: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(fields.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && nonzero(trace) && hex(parent, 16) && nonzero(parent) && hex(flags, 2))
}

/// A fresh sampled `traceparent` with random ids.
fn new_traceparent() -> String {
    let mut bytes = [0u8; 24];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // Without randomness there is no unique id; mcp-sts then makes its own `txn`.
        bytes = [1u8; 24];
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "00-{}-{}-01",
        hex.get(..32).unwrap_or_default(),
        hex.get(32..).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_checked_and_generated_in_w3c_form() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(!valid_traceparent(bad), "{bad}");
        }
        let fresh = new_traceparent();
        assert!(valid_traceparent(&fresh), "{fresh}");
        assert_ne!(fresh, new_traceparent());
    }
}
