//! What can be revoked, and the one lineage rule: which revocations end a token.
//!
//! mcp-sts checks a presented token against its store with these keys, and the
//! downstream verifier checks the same keys against the revocations it heard on its
//! Shared Signals stream, so the two can never disagree about what a revocation covers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AccessClaims;

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// A user (`sub`), as subject or as actor: offboarding.
    Subject,
    /// A session (`sid`).
    Session,
    /// An agent: an actor's `sub` anywhere in a delegation chain.
    Agent,
    /// A calling client (`client_id`): it can no longer authenticate.
    Client,
    /// One token minted by mcp-sts (`jti`), as RFC 7009 revokes it.
    Token,
}

impl RevocationKind {
    /// Every kind, in a stable order.
    pub const ALL: [RevocationKind; 5] = [
        RevocationKind::Subject,
        RevocationKind::Session,
        RevocationKind::Agent,
        RevocationKind::Client,
        RevocationKind::Token,
    ];

    /// The lowercase name used in URLs, JSON and storage keys.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Subject => "subject",
            RevocationKind::Session => "session",
            RevocationKind::Agent => "agent",
            RevocationKind::Client => "client",
            RevocationKind::Token => "token",
        }
    }
}

impl fmt::Display for RevocationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RevocationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown revocation kind {s:?} (subject, session, agent, client or token)"))
    }
}

/// The lineage rule: every (kind, value) whose revocation ends a minted token. Its
/// id, the client it was issued to, its user, its session, and every agent it names
/// (each both as an agent and as a user, since offboarding a user ends them as actor
/// too). Duplicates may appear; callers collect into a set.
pub fn lineage(claims: &AccessClaims) -> Vec<(RevocationKind, &str)> {
    let mut keys = vec![
        (RevocationKind::Token, claims.jti.as_str()),
        (RevocationKind::Client, claims.client_id.as_str()),
        (RevocationKind::Subject, claims.user_sub()),
        (RevocationKind::Session, claims.sid.as_str()),
    ];
    for agent in claims.agents() {
        keys.push((RevocationKind::Agent, agent));
        keys.push((RevocationKind::Subject, agent));
    }
    keys
}
