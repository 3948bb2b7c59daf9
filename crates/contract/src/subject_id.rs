//! Subject identifiers (RFC 9493): who or what a Security Event Token, or a token's
//! `sub_id`, is about.

use serde::{Deserialize, Serialize};

/// A subject identifier (RFC 9493, SSF 1.0 §3): who or what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum SubjectId {
    /// An identifier meaningful to the transmitter (a session id, an agent, a client).
    Opaque {
        /// The identifier.
        id: String,
    },
    /// A user as an issuer and a subject.
    IssSub {
        /// The user's issuer.
        iss: String,
        /// The user.
        sub: String,
    },
    /// One JWT by its issuer and `jti` (SSF 1.0 §3.2.x `jwt_id`).
    JwtId {
        /// The token's issuer.
        iss: String,
        /// The token's id.
        jti: String,
    },
    /// A user by e-mail address (understood, never acted on: users are keyed by `sub`).
    Email {
        /// The address.
        email: String,
    },
    /// Anything named by a URI (RFC 9493 §3.2.7); mcp-sts names an identity provider
    /// (a trusted issuer) this way, as the tenant facet of a session.
    Uri {
        /// The URI.
        uri: String,
    },
    /// Several facets of one subject (RFC 9493 §3.2 style, SSF `complex`).
    Complex {
        /// The user facet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<Box<SubjectId>>,
        /// The session facet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<Box<SubjectId>>,
        /// The tenant facet: for a session of one trusted issuer, that issuer as `uri`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<Box<SubjectId>>,
    },
}
