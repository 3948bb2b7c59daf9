//! Enterprise-managed authorization (MCP's extension, built on
//! draft-ietf-oauth-identity-assertion-authz-grant): identity assertion grants (ID-JAGs).
//!
//! mcp-sts plays both roles of the draft:
//! - `issue`: as the enterprise's token service it trades a user's ID token for an
//!   ID-JAG addressed to one MCP server's authorization server (RFC 8693 with
//!   `requested_token_type` `urn:ietf:params:oauth:token-type:id-jag`);
//! - `redeem`: as an MCP server's authorization server it trades an ID-JAG from a
//!   trusted issuer for an access token to that MCP server (RFC 7523 JWT bearer grant).
//!
//! `policy` says which authorization servers and resources grants may name; `assertions`
//! is the one place inbound JWTs of this flow are read.

pub mod assertions;
mod issue;
pub(crate) mod policy;
mod redeem;

pub(crate) use issue::issue;
pub(crate) use policy::{AuthorizationServers, GrantTarget};
pub(crate) use redeem::redeem;
