//! One token-exchange request (RFC 8693 §2.1) and the token it yields (§2.2.1).

use std::time::Duration;

use mcp_sts_contract::secret::Secret;

pub use mcp_sts_contract::urn::{ACCESS_TOKEN_TYPE, ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE};

/// What to exchange for what: the user's token, the acting agent, the target, the scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// The token the MCP server received from the user.
    pub subject_token: Secret,
    /// Its type URN (default [`ACCESS_TOKEN_TYPE`]).
    pub subject_token_type: String,
    /// The agent's identity token and its type URN, when an agent acts.
    pub actor: Option<(Secret, String)>,
    /// The downstream audience id (`audience` parameter).
    pub audience: Option<String>,
    /// The downstream resource URI (`resource` parameter, RFC 8707).
    pub resource: Option<String>,
    /// The scopes this call needs; empty asks for everything the policy allows.
    pub scopes: Vec<String>,
    /// A W3C `traceparent` to carry the caller's trace into the minted token's `txn`.
    pub traceparent: Option<String>,
    /// The type URN asked for (`requested_token_type`): none lets the STS choose (an
    /// access token); [`ID_JAG_TOKEN_TYPE`] asks for an identity assertion grant.
    pub requested_token_type: Option<String>,
}

impl ExchangeRequest {
    /// Exchange `subject_token` (an access token) with nothing else set yet.
    pub fn new(subject_token: impl Into<Secret>) -> Self {
        Self {
            subject_token: subject_token.into(),
            subject_token_type: ACCESS_TOKEN_TYPE.to_owned(),
            actor: None,
            audience: None,
            resource: None,
            scopes: Vec::new(),
            traceparent: None,
            requested_token_type: None,
        }
    }

    /// An agent application's request for an identity assertion grant (ID-JAG): the
    /// user's `id_token`, for `resource` at the authorization server `authorization_server`.
    pub fn id_jag(id_token: impl Into<Secret>, authorization_server: &str, resource: &str) -> Self {
        Self::new(id_token)
            .subject_token_type(ID_TOKEN_TYPE)
            .requested_token_type(ID_JAG_TOKEN_TYPE)
            .audience(authorization_server)
            .resource(resource)
    }

    /// Ask for a token of this type URN (`requested_token_type`).
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// Set the subject token's type URN.
    pub fn subject_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.subject_token_type = token_type.into();
        self
    }

    /// Name the acting agent by its token and that token's type URN.
    pub fn actor(mut self, token: impl Into<Secret>, token_type: impl Into<String>) -> Self {
        self.actor = Some((token.into(), token_type.into()));
        self
    }

    /// Target a downstream audience by id.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Target a downstream resource by URI.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Ask for these scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Carry a W3C `traceparent` header to the STS.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The scopes as the space-separated `scope` parameter.
    pub(crate) fn scope_param(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A token minted by the STS, ready to send downstream as `Bearer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedToken {
    /// The access token (redacted in `Debug`).
    pub access_token: Secret,
    /// `issued_token_type` of the response (empty for a redeemed grant: RFC 6749
    /// responses carry none).
    pub issued_token_type: String,
    /// `token_type` of the response, normally `Bearer` (or `N_A`).
    pub token_type: String,
    /// Lifetime the STS stated when it minted the token.
    pub expires_in: Option<Duration>,
    /// The scopes granted, when the STS said (RFC 8693 §2.2.1).
    pub scope: Option<String>,
}
