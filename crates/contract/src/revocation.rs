//! What can be revoked, and the one lineage rule: which revocations end a token.
//!
//! mcp-sts checks a presented token against its store with these keys, and the
//! downstream verifier and the MCP server kit check the same keys against the
//! revocations they heard on their Shared Signals stream, so no door can disagree
//! about what a revocation covers. Users and sessions belong to an issuer: a
//! revocation that names one reaches only that issuer's users ([`covers`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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
            .ok_or_else(|| "unknown revocation kind (subject, session, agent, client or token)".to_owned())
    }
}

/// Whose name a lineage key is: it decides which issuer-scoped entries reach the key.
/// A user or session revocation may name the user's issuer; agents, clients and
/// tokens are mcp-sts's own names and their entries never name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace<'a> {
    /// A name of mcp-sts's own (agent, client, token id), or an actor that is a
    /// registered client: only entries for every issuer reach it.
    Own,
    /// A user or session of this trusted issuer: entries for every issuer and for
    /// this one reach it.
    Issuer(&'a str),
    /// A user or session whose issuer the token does not record (minted before
    /// issuers were recorded): entries of any issuer reach it.
    Unrecorded,
}

impl<'a> Namespace<'a> {
    /// A user or session vouched for by `issuer`, if the token records it.
    pub fn of_user(issuer: Option<&'a str>) -> Self {
        issuer.map_or(Namespace::Unrecorded, Namespace::Issuer)
    }

    /// An actor as a user: vouched for by its `iss`, or (no `iss`) a registered client.
    pub fn of_actor(iss: Option<&'a str>) -> Self {
        iss.map_or(Namespace::Own, Namespace::Issuer)
    }
}

/// The one issuer rule: whether an entry that names `entry_issuer` (`None`: every
/// issuer) reaches an identifier of `namespace`.
pub fn covers(entry_issuer: Option<&str>, namespace: Namespace<'_>) -> bool {
    match (entry_issuer, namespace) {
        (None, _) | (Some(_), Namespace::Unrecorded) => true,
        (Some(entry), Namespace::Issuer(issuer)) => entry == issuer,
        (Some(_), Namespace::Own) => false,
    }
}

/// One thing a token answers for: revoking `value` as `kind` (in a way that reaches
/// `namespace`) ends the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineageKey<'a> {
    /// What kind of revocation reaches it.
    pub kind: RevocationKind,
    /// The identifier.
    pub value: &'a str,
    /// Whose identifier it is.
    pub namespace: Namespace<'a>,
}

impl<'a> LineageKey<'a> {
    /// A user (as subject) of `namespace`.
    pub fn user(sub: &'a str, namespace: Namespace<'a>) -> Self {
        Self {
            kind: RevocationKind::Subject,
            value: sub,
            namespace,
        }
    }

    /// A session of `namespace`.
    pub fn session(sid: &'a str, namespace: Namespace<'a>) -> Self {
        Self {
            kind: RevocationKind::Session,
            value: sid,
            namespace,
        }
    }

    /// An actor: revoked as an agent, or offboarded as a user of its issuer (`iss`;
    /// none: a registered client, reached only by entries for every issuer).
    pub fn actor(sub: &'a str, iss: Option<&'a str>) -> [Self; 2] {
        [
            Self {
                kind: RevocationKind::Agent,
                value: sub,
                namespace: Namespace::Own,
            },
            Self::user(sub, Namespace::of_actor(iss)),
        ]
    }

    /// A calling client or the client a token was issued to.
    pub fn client(client_id: &'a str) -> Self {
        Self {
            kind: RevocationKind::Client,
            value: client_id,
            namespace: Namespace::Own,
        }
    }

    /// One token (or grant) minted by mcp-sts.
    pub fn token(jti: &'a str) -> Self {
        Self {
            kind: RevocationKind::Token,
            value: jti,
            namespace: Namespace::Own,
        }
    }

    /// Whether an entry revoking `value` as `kind` for `entry_issuer` reaches this key.
    pub fn reached_by(&self, kind: RevocationKind, entry_issuer: Option<&str>, value: &str) -> bool {
        self.kind == kind && self.value == value && covers(entry_issuer, self.namespace)
    }
}

/// The lineage rule: everything whose revocation ends a minted token. Its id, the
/// client it was issued to, its user and session (of the user's issuer, as the token
/// records it), and every agent it names (each both as an agent and as a user of its
/// issuer, since offboarding a user ends them as actor too). Duplicates may appear;
/// callers collect into a set.
pub fn lineage(claims: &AccessClaims) -> Vec<LineageKey<'_>> {
    let user = Namespace::of_user(claims.user_issuer());
    let mut keys = vec![
        LineageKey::token(&claims.jti),
        LineageKey::client(&claims.client_id),
        LineageKey::user(claims.user_sub(), user),
        LineageKey::session(&claims.sid, user),
    ];
    let chain = claims.chain();
    for actor in chain.iter().flat_map(|c| c.iter()) {
        keys.extend(LineageKey::actor(&actor.sub, actor.iss.as_deref()));
    }
    // `user.agent` names an agent the recorded chain already holds; one that it does
    // not is read as a registered client's name.
    if let Some(agent) = claims.user.as_ref().and_then(|u| u.agent.as_deref())
        && !chain.is_some_and(|c| c.iter().any(|a| a.sub == agent))
    {
        keys.extend(LineageKey::actor(agent, None));
    }
    keys
}

/// The lineage of a token from a trusted issuer (not minted by mcp-sts): its user and
/// session at `issuer`, and every actor it names.
pub fn upstream_lineage<'a>(
    issuer: &'a str,
    sub: &'a str,
    sid: &'a str,
    actors: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<LineageKey<'a>> {
    let namespace = Namespace::Issuer(issuer);
    let mut keys = vec![LineageKey::user(sub, namespace), LineageKey::session(sid, namespace)];
    for (actor, iss) in actors {
        keys.extend(LineageKey::actor(actor, iss));
    }
    keys
}

/// The session of a token without `sid`, from what its issuer said, never from the
/// token's bytes (an ECDSA signature has a twin that verifies too): issuer and `jti`,
/// or, without `jti`, issuer, `sub`, `iat` and the client claim (`client_id`/`azp`).
/// mcp-sts and the MCP server kit derive it alike, so both refuse a revoked one.
pub fn derived_session_id(iss: &str, jti: Option<&str>, claims: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    let mut field = |value: &str| {
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    };
    field(iss);
    match jti {
        Some(jti) => {
            field("jti");
            field(jti);
        }
        None => {
            let text = |name: &str| claims.get(name).and_then(Value::as_str);
            field("sub-iat-client");
            field(text("sub").unwrap_or_default());
            field(&claims.get("iat").map(Value::to_string).unwrap_or_default());
            field(text("client_id").or_else(|| text("azp")).unwrap_or_default());
        }
    }
    let digest = hasher.finalize();
    format!(
        "derived-{}",
        URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reaches_its_own_issuers_names_and_an_entry_for_every_issuer_reaches_all() {
        let a = Namespace::Issuer("https://idp-a");
        let cases = [
            (None, a, true),
            (None, Namespace::Own, true),
            (None, Namespace::Unrecorded, true),
            (Some("https://idp-a"), a, true),
            (Some("https://idp-b"), a, false),
            (Some("https://idp-a"), Namespace::Own, false),
            (Some("https://idp-a"), Namespace::Unrecorded, true),
        ];
        for (entry, namespace, reached) in cases {
            assert_eq!(covers(entry, namespace), reached, "{entry:?} -> {namespace:?}");
        }
    }

    #[test]
    fn an_identity_providers_token_answers_for_its_user_session_and_actors() {
        let keys = upstream_lineage("https://idp", "alice", "s1", [("cursor", Some("https://idp"))]);
        let a = Some("https://idp");
        assert!(keys.iter().any(|k| k.reached_by(RevocationKind::Subject, a, "alice")));
        assert!(keys.iter().any(|k| k.reached_by(RevocationKind::Session, a, "s1")));
        assert!(keys.iter().any(|k| k.reached_by(RevocationKind::Agent, None, "cursor")));
        assert!(keys.iter().any(|k| k.reached_by(RevocationKind::Subject, a, "cursor")));
        assert!(
            !keys
                .iter()
                .any(|k| k.reached_by(RevocationKind::Subject, Some("https://other"), "alice"))
        );
        assert!(!keys.iter().any(|k| k.reached_by(RevocationKind::Agent, a, "cursor")));
    }
}
