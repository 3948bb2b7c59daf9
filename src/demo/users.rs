//! The demo's people and agent, as the development IdP knows them.

use crate::dev_idp::{DevIdp, DevIdpError};

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

/// The agent that calls the MCP server on the users' behalf.
pub const AGENT: &str = "claude-desktop";

impl DemoUser {
    /// A user token from the IdP, valid for an hour from `now`.
    pub fn token(&self, idp: &DevIdp, now: u64) -> Result<String, DevIdpError> {
        idp.user_token(
            self.sub,
            STS_AUDIENCE,
            self.roles,
            now,
            TOKEN_TTL,
            &serde_json::json!({}),
        )
    }
}

/// The agent's own identity token, sent to the MCP server and used as the actor token.
pub fn agent_token(idp: &DevIdp, now: u64) -> Result<String, DevIdpError> {
    idp.user_token(AGENT, STS_AUDIENCE, &[], now, TOKEN_TTL, &serde_json::json!({}))
}
