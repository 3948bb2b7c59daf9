//! The demo's people and agent, as the development IdP knows them.

use crate::dev_idp::{AgentGrant, DevIdp, DevIdpError};

/// The audience the IdP puts in tokens meant for mcp-sts.
pub const STS_AUDIENCE: &str = "mcp-sts";

/// How long the demo's IdP tokens live (seconds).
const TOKEN_TTL: u64 = 3600;

/// A user of the demo, with the roles the IdP asserts for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// Short name used in the narration.
    pub name: &'static str,
    /// The `sub` claim.
    pub sub: &'static str,
    /// The `roles` claim.
    pub roles: &'static [&'static str],
}

/// A developer: reads her own orders.
pub const ALICE: DemoUser = DemoUser {
    name: "alice",
    sub: "alice@example.com",
    roles: &["developer"],
};

/// An order administrator: reads every order and may update them.
pub const BOB: DemoUser = DemoUser {
    name: "bob",
    sub: "bob@example.com",
    roles: &["order-admin"],
};

/// A customer: reads her own orders, may change nothing; offboarded mid-session.
pub const CAROL: DemoUser = DemoUser {
    name: "carol",
    sub: "carol@example.com",
    roles: &["customer"],
};

/// The agent application (an MCP client registered at the IdP) that calls the MCP
/// server on the users' behalf.
pub const AGENT: &str = "claude-desktop";

impl DemoUser {
    /// The access token the IdP issued to the agent for this user and the MCP server at
    /// `resource`, with `scope`, valid for an hour from `now`: `client_id` names the
    /// agent, and `aud` names both the MCP server and mcp-sts (the IdP adds mcp-sts as
    /// an audience, as Keycloak's audience mappers or Auth0's APIs can), so the MCP
    /// server can both accept the token and exchange it.
    pub fn token_for(&self, idp: &DevIdp, resource: &str, scope: &str, now: u64) -> Result<String, DevIdpError> {
        let grant = AgentGrant {
            user: self.sub,
            roles: self.roles,
            agent: AGENT,
            agent_claim: "client_id",
            audiences: &[resource, STS_AUDIENCE],
            scope,
        };
        idp.agent_token(&grant, now, TOKEN_TTL)
    }

    /// The same token as [`DemoUser::token_for`] (no scope), bound to the agent's DPoP
    /// key `jkt` (`cnf.jkt`, RFC 9449 §6), as the IdP issues it when the agent proves
    /// possession of that key at its token endpoint: only with a proof by that key does
    /// the MCP server accept it.
    pub fn bound_token_for(&self, idp: &DevIdp, resource: &str, now: u64, jkt: &str) -> Result<String, DevIdpError> {
        let extra = serde_json::json!({
            "aud": [resource, STS_AUDIENCE],
            "client_id": AGENT,
            "cnf": {"jkt": jkt},
        });
        idp.user_token(self.sub, resource, self.roles, now, TOKEN_TTL, &extra)
    }

    /// The ID token the IdP issued to the agent application when the user signed in
    /// (single sign-on), valid for an hour from `now`: `aud` is the agent's client id,
    /// as OpenID Connect says, with the user's session, e-mail and roles.
    pub fn id_token(&self, idp: &DevIdp, session: &str, now: u64) -> Result<String, DevIdpError> {
        let extra = serde_json::json!({
            "sid": session,
            "email": self.sub,
            "auth_time": now,
            "amr": ["pwd", "otp"],
        });
        idp.user_token(self.sub, AGENT, self.roles, now, TOKEN_TTL, &extra)
    }
}
