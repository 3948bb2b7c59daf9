//! The execution identity: who acts, for whom, through which agent, with what rights.
//!
//! Built only from a verified token, so a handler that holds one knows every field
//! was vouched for by the STS; the raw token is not kept.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use mcp_sts_contract::clock::UnixTime;

/// How the token relates the caller to the user; chosen by STS policy per audience.
pub use mcp_sts_contract::DelegationMode;

/// The kind of party an actor is (the OAuth actor profile's `sub_profile`).
pub use mcp_sts_contract::SubProfile;

/// The human the request is ultimately for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserContext {
    /// The user's subject identifier at the upstream identity provider.
    pub sub: String,
    /// The user's tenant, when the deployment has tenants.
    pub tenant: Option<String>,
}

/// One actor of the delegation chain (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The actor's subject: an agent or a calling service.
    pub sub: String,
    /// Who vouched for the actor (the actor token's issuer, `spiffe://<trust domain>`
    /// for a SPIFFE workload), when known.
    pub iss: Option<String>,
    /// What kind of party it is (`user`, `ai_agent`, `service`), set by mcp-sts from
    /// its configuration; `None` in tokens minted before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_profile: Option<SubProfile>,
}

/// The typed identity a downstream handler authorises and audits with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionIdentity {
    pub(crate) issuer: String,
    pub(crate) subject: String,
    pub(crate) user: UserContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_issuer: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) actors: Vec<Actor>,
    pub(crate) session_id: String,
    pub(crate) transaction_id: String,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) delegation_mode: DelegationMode,
    pub(crate) audience: String,
    pub(crate) client_id: String,
    pub(crate) expires_at: UnixTime,
    pub(crate) issued_at: Option<UnixTime>,
    pub(crate) token_id: String,
    /// The RFC 7638 thumbprint of the key the token is bound to (`cnf.jkt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_thumbprint: Option<String>,
}

impl ExecutionIdentity {
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`); `None` for a
    /// bearer token. A bound token was accepted only with a proof by that key.
    pub fn key_thumbprint(&self) -> Option<&str> {
        self.key_thumbprint.as_deref()
    }

    /// The user's subject: per-user filtering keys on this, never on tool arguments.
    pub fn user(&self) -> &str {
        &self.user.sub
    }

    /// The user with their tenant.
    pub fn user_context(&self) -> &UserContext {
        &self.user
    }

    /// The identity provider that vouched for the user (the token's `sub_id`, or
    /// `user.iss` in `service_identity`); `None` in tokens minted before it was recorded.
    /// A user is the pair of this and [`ExecutionIdentity::user`].
    pub fn user_issuer(&self) -> Option<&str> {
        self.user_issuer.as_deref()
    }

    /// The user's tenant, if the token carries one.
    pub fn tenant(&self) -> Option<&str> {
        self.user.tenant.as_deref()
    }

    /// The current agent (the outermost actor), the one that drives access decisions.
    pub fn agent(&self) -> Option<&str> {
        self.actors.first().map(|a| a.sub.as_str())
    }

    /// The current agent's profile: whether an AI agent, a service or a person acts.
    pub fn agent_profile(&self) -> Option<SubProfile> {
        self.actors.first().and_then(|a| a.sub_profile)
    }

    /// The whole actor chain, current actor first, earliest hop last.
    pub fn actors(&self) -> &[Actor] {
        &self.actors
    }

    /// In `service_identity` mode, the calling service (the token's `sub`).
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The token's `sub` as written: the user, or the service in `service_identity`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// How the caller relates to the user.
    pub fn delegation_mode(&self) -> DelegationMode {
        self.delegation_mode
    }

    /// Whether the token grants `scope`; the basis of per-operation authorisation.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Every granted scope.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// The session (`sid`), so audit lines can be tied to a revocable session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The trace / transaction id (`txn`), for correlating logs across hops.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// A W3C `traceparent` continuing the token's trace (its `txn`, which mcp-sts takes
    /// from the `traceparent` of the exchange) under a new span id: send it on the
    /// calls made for this request so they join the caller's trace. `None` when `txn`
    /// is not a trace id.
    pub fn traceparent(&self) -> Option<String> {
        crate::trace_context::child_of(&self.transaction_id)
    }

    /// The audience this token was accepted for (this service).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The client that called the STS (`client_id`): usually the MCP server.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// When the token stops being valid (`exp`, seconds since the epoch).
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// When the token was issued (`iat`), if stated.
    pub fn issued_at(&self) -> Option<UnixTime> {
        self.issued_at
    }

    /// The token id (`jti`), the handle for revoking this one token.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The STS that issued the token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// One audit-friendly line, e.g. `alice@example.com via agent claude-desktop (orders-mcp)`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl ExecutionIdentity {
    /// The agent application the calling client acts for, for audit lines and per-agent
    /// rules. When the outermost actor is the client itself and an earlier actor
    /// follows (the chain `{sub: <MCP server>, act: {sub: <agent>}}` mcp-sts builds when
    /// the user's token names the agent in `client_id`), that earlier actor; otherwise
    /// [`ExecutionIdentity::agent`].
    pub fn agent_application(&self) -> Option<&str> {
        match self.actors.as_slice() {
            [outer, inner, ..] if outer.sub == self.client_id => Some(inner.sub.as_str()),
            _ => self.agent(),
        }
    }
}

impl fmt::Display for ExecutionIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.delegation_mode {
            DelegationMode::ServiceIdentity => {
                write!(f, "service {} for {}", self.subject, self.user.sub)?;
                if let Some(agent) = self.agent() {
                    write!(f, " via agent {agent}")?;
                }
                Ok(())
            }
            DelegationMode::OnBehalfOf => match self.agent_application() {
                Some(agent) => write!(f, "{} via agent {agent} ({})", self.user.sub, self.client_id),
                None => write!(f, "{} via {}", self.user.sub, self.client_id),
            },
            DelegationMode::RestrictedUser => {
                write!(f, "{} (restricted, via {})", self.user.sub, self.client_id)
            }
        }
    }
}
