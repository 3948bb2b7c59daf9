//! The claims of a minted access token (docs/token.md), and the one way to read them
//! back from an untrusted claims set.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::subject_id::SubjectId;
use crate::clock::UnixTime;

/// Deepest actor chain a token may carry; anything deeper is malformed whatever the
/// deployment's `max_delegation_depth`.
pub const MAX_CHAIN_DEPTH: usize = 32;

/// How a token relates the caller to the user; chosen per audience by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationMode {
    /// The calling service acts as itself; the user rides along as context.
    ServiceIdentity,
    /// The user is the subject and an agent acts for them (RFC 8693 delegation).
    OnBehalfOf,
    /// The token impersonates the user for a legacy API; no actor is named.
    RestrictedUser,
}

impl DelegationMode {
    /// Parse the claim value; `None` for a value this version does not know.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "service_identity" => Some(DelegationMode::ServiceIdentity),
            "on_behalf_of" => Some(DelegationMode::OnBehalfOf),
            "restricted_user" => Some(DelegationMode::RestrictedUser),
            _ => None,
        }
    }

    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationMode::ServiceIdentity => "service_identity",
            DelegationMode::OnBehalfOf => "on_behalf_of",
            DelegationMode::RestrictedUser => "restricted_user",
        }
    }
}

impl std::fmt::Display for DelegationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of party an actor is (the OAuth actor profile's `sub_profile`), so a
/// downstream service can tell an AI agent from a plain service or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubProfile {
    /// A person acting as themselves.
    User,
    /// An AI agent.
    AiAgent,
    /// A service (an MCP server, an API calling further).
    Service,
}

impl SubProfile {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            SubProfile::User => "user",
            SubProfile::AiAgent => "ai_agent",
            SubProfile::Service => "service",
        }
    }
}

/// RFC 8693 §4.1 actor: identity claims only, earlier actors nested inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party: an agent, or the client when nothing else names one.
    pub sub: String,
    /// Who vouched for this actor: an actor token's or an upstream token's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// What kind of party the actor is; set by mcp-sts from configuration, never from
    /// the subject token (absent in tokens minted before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_profile: Option<SubProfile>,
    /// The actor before this one in a multi-hop chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
    /// The thumbprint of the DPoP key this actor's token was bound to, recorded when a
    /// bound token was delegated to another key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf_jkt: Option<String>,
}

impl Actor {
    /// A single actor with no earlier ones.
    pub fn new(sub: impl Into<String>, iss: Option<String>) -> Self {
        Self {
            sub: sub.into(),
            iss,
            sub_profile: None,
            act: None,
            cnf_jkt: None,
        }
    }

    /// The same actor, of `profile`.
    pub fn with_profile(mut self, profile: SubProfile) -> Self {
        self.sub_profile = Some(profile);
        self
    }

    /// This actor in front of `prior` (the chain so far, most recent first).
    pub fn followed_by(mut self, prior: Option<Actor>) -> Self {
        self.act = prior.map(Box::new);
        self
    }

    /// How many actors the chain holds (this one included).
    pub fn depth(&self) -> usize {
        self.iter().count()
    }

    /// Every actor, current first.
    pub fn iter(&self) -> impl Iterator<Item = &Actor> {
        std::iter::successors(Some(self), |a| a.act.as_deref())
    }

    /// Every actor's `sub`, current first.
    pub fn chain(&self) -> Vec<String> {
        self.iter().map(|a| a.sub.clone()).collect()
    }
}

/// In `service_identity` tokens, the user the service acts for, as context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserContext {
    /// The user's `sub`.
    pub sub: String,
    /// The user's tenant, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The agent acting for the user, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The user's issuer (the trusted issuer that vouched for `sub`), so an
    /// issuer-scoped revocation reaches this token; absent in tokens minted before
    /// issuers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// RFC 7800 `cnf`: the key a token is bound to. mcp-sts binds only to DPoP keys
/// (RFC 9449 §6.1, `jkt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint (SHA-256) of the holder's DPoP key.
    pub jkt: String,
}

/// `aud`: one audience for every token we mint; an array is read for tokens made
/// elsewhere (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience (what mcp-sts mints).
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }

    /// The audience when there is exactly one.
    pub fn single(&self) -> Option<&str> {
        match self {
            Audience::One(a) => Some(a),
            Audience::Many(all) => match all.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

/// The claims of a minted access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// This service's issuer.
    pub iss: String,
    /// The user, or the calling service in `service_identity`.
    pub sub: String,
    /// Exactly one audience.
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// Unique id.
    pub jti: String,
    /// The authenticated caller of `/token`.
    pub client_id: String,
    /// Space-separated granted scopes.
    #[serde(default)]
    pub scope: String,
    /// How user and agent are represented.
    pub delegation_mode: DelegationMode,
    /// The actor chain (`on_behalf_of` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The chain that led to a token carrying no `act` (`service_identity`,
    /// `restricted_user`), so a further hop keeps counting and checking it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_chain: Option<Actor>,
    /// The session.
    pub sid: String,
    /// The trace / transaction id.
    pub txn: String,
    /// The user's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user as context (`service_identity` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserContext>,
    /// RFC 9493 §4: the user as `iss_sub`, naming the user's issuer (`on_behalf_of`,
    /// `restricted_user`; `service_identity` records it as `user.iss`). Absent in
    /// tokens minted before issuers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectId>,
    /// The DPoP key the token is bound to: presented only with a proof by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// Why a claims set is not an mcp-sts access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// A required claim is absent or empty.
    #[error("the {0} claim is missing")]
    Missing(&'static str),
    /// A claim has the wrong type or an unknown value.
    #[error("{0}")]
    Malformed(String),
}

/// The one rule for required claims of a claims set read back: each of `strings` a
/// non-empty string, each of `present` there and not null; the first claim that is not
/// is named (`Missing`, or `Malformed` for a string claim of another type).
pub(super) fn require(
    claims: &Map<String, Value>,
    strings: &[&'static str],
    present: &[&'static str],
) -> Result<(), ClaimsError> {
    for &name in strings {
        match claims.get(name) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) | None | Some(Value::Null) => return Err(ClaimsError::Missing(name)),
            Some(_) => return Err(ClaimsError::Malformed(format!("claim {name} has the wrong type"))),
        }
    }
    match present
        .iter()
        .find(|name| claims.get(**name).is_none_or(Value::is_null))
    {
        Some(name) => Err(ClaimsError::Missing(name)),
        None => Ok(()),
    }
}

/// Claims every minted token carries as non-empty strings.
const REQUIRED_STRINGS: [&str; 7] = ["iss", "sub", "jti", "client_id", "delegation_mode", "sid", "txn"];

impl AccessClaims {
    /// Read claims from an untrusted (but signature-checked) claims set, naming the
    /// first missing claim rather than failing as a whole.
    pub fn from_claims(claims: Map<String, Value>) -> Result<Self, ClaimsError> {
        require(&claims, &REQUIRED_STRINGS, &["aud", "exp"])?;
        let mode = claims
            .get("delegation_mode")
            .and_then(Value::as_str)
            .and_then(DelegationMode::parse)
            .ok_or_else(|| ClaimsError::Malformed("unknown delegation_mode".into()))?;
        if mode == DelegationMode::ServiceIdentity && claims.get("user").is_none_or(Value::is_null) {
            return Err(ClaimsError::Missing("user"));
        }
        let parsed: AccessClaims = serde_json::from_value(Value::Object(claims))
            .map_err(|e| ClaimsError::Malformed(format!("claims are not of the expected shape: {e}")))?;
        match &parsed.sub_id {
            None => {}
            Some(SubjectId::IssSub { sub, .. }) if *sub == parsed.sub => {}
            Some(_) => {
                return Err(ClaimsError::Malformed(
                    "sub_id must be iss_sub naming the token's sub".into(),
                ));
            }
        }
        for chain in [&parsed.act, &parsed.delegation_chain].into_iter().flatten() {
            if chain.depth() > MAX_CHAIN_DEPTH {
                return Err(ClaimsError::Malformed("actor chain too deep".into()));
            }
        }
        Ok(parsed)
    }

    /// The user this token is about, whatever the mode.
    pub fn user_sub(&self) -> &str {
        match &self.user {
            Some(user) if self.delegation_mode == DelegationMode::ServiceIdentity => &user.sub,
            _ => &self.sub,
        }
    }

    /// The user's issuer as the token records it: `sub_id` (`iss_sub`), or `user.iss`
    /// in `service_identity`; `None` for a token minted before issuers were recorded.
    pub fn user_issuer(&self) -> Option<&str> {
        match self.delegation_mode {
            DelegationMode::ServiceIdentity => self.user.as_ref().and_then(|u| u.iss.as_deref()),
            DelegationMode::OnBehalfOf | DelegationMode::RestrictedUser => match &self.sub_id {
                Some(SubjectId::IssSub { iss, sub }) if *sub == self.sub => Some(iss),
                _ => None,
            },
        }
    }

    /// The delegation chain this token records: `act`, or `delegation_chain` for
    /// tokens that carry no `act`.
    pub fn chain(&self) -> Option<&Actor> {
        self.act.as_ref().or(self.delegation_chain.as_ref())
    }

    /// Every agent named in the token: its chain, and `user.agent` in `service_identity`.
    pub fn agents(&self) -> Vec<&str> {
        let mut agents: Vec<&str> = self
            .chain()
            .map(|c| c.iter().map(|a| a.sub.as_str()).collect())
            .unwrap_or_default();
        if let Some(agent) = self.user.as_ref().and_then(|u| u.agent.as_deref())
            && !agents.contains(&agent)
        {
            agents.push(agent);
        }
        agents
    }

    /// `DPoP` for a token bound to a key, else `Bearer` (RFC 9449 §5): how it must be
    /// presented, as the token response and introspection say.
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }

    /// Granted scopes as a list.
    pub fn scopes(&self) -> Vec<String> {
        scope_list(&self.scope)
    }
}

/// A `scope` claim (RFC 6749 §3.3: space-delimited) as a list, empty entries dropped.
pub fn scope_list(scope: &str) -> Vec<String> {
    scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect()
}

/// The scopes a token's claims grant, read the same way by mcp-sts (a subject
/// token's own scopes) and by the MCP kit (the caller's scopes): `scope` (RFC 9068,
/// RFC 8693 §4.2) and `scp` (a claim many IdPs use), each either a space-delimited
/// string, split on spaces, or a list whose every item is one scope as written (a
/// scope never holds a space, RFC 6749 §3.3, so an item that does grants nothing
/// configured). Empty entries are dropped; `scope` comes first.
pub fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(scope_list(s)),
            Some(Value::Array(items)) => out.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obo() -> Value {
        json!({
            "iss": "https://sts", "sub": "alice", "aud": "orders-api", "exp": 200, "iat": 100,
            "nbf": 100, "jti": "j1", "client_id": "orders-mcp", "scope": "orders:read",
            "delegation_mode": "on_behalf_of", "sid": "s1", "txn": "t1",
            "act": {"sub": "hop", "act": {"sub": "agent", "iss": "https://idp"}}
        })
    }

    fn read(value: Value) -> Result<AccessClaims, ClaimsError> {
        AccessClaims::from_claims(value.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn chains_nest_and_count() {
        let outer = Actor::new("hop-2", Some("https://idp".into())).followed_by(Some(Actor::new("hop-1", None)));
        assert_eq!(outer.depth(), 2);
        assert_eq!(outer.chain(), vec!["hop-2", "hop-1"]);
        assert_eq!(
            serde_json::to_value(&outer).unwrap(),
            json!({"sub": "hop-2", "iss": "https://idp", "act": {"sub": "hop-1"}})
        );
    }

    #[test]
    fn a_minted_token_reads_back_unchanged() {
        let claims = read(obo()).unwrap();
        assert_eq!(claims.chain().map(Actor::depth), Some(2));
        assert_eq!(claims.agents(), vec!["hop", "agent"]);
        let again = serde_json::to_value(&claims).unwrap();
        assert_eq!(again, obo());
    }

    #[test]
    fn missing_and_malformed_claims_are_named() {
        for name in [
            "iss",
            "sub",
            "jti",
            "client_id",
            "delegation_mode",
            "sid",
            "txn",
            "aud",
            "exp",
        ] {
            let mut value = obo();
            value.as_object_mut().unwrap().remove(name);
            assert_eq!(read(value).unwrap_err(), ClaimsError::Missing(name), "{name}");
        }
        let mut value = obo();
        value["delegation_mode"] = json!("god_mode");
        assert!(matches!(read(value), Err(ClaimsError::Malformed(_))));
        let mut value = obo();
        value["exp"] = json!("soon");
        assert!(matches!(read(value), Err(ClaimsError::Malformed(_))));
        let mut value = obo();
        value["delegation_mode"] = json!("service_identity");
        assert_eq!(read(value).unwrap_err(), ClaimsError::Missing("user"));
    }

    #[test]
    fn absurdly_deep_chains_are_malformed() {
        let mut act = json!({"sub": "hop-0"});
        for i in 1..40 {
            act = json!({"sub": format!("hop-{i}"), "act": act});
        }
        let mut value = obo();
        value["act"] = act;
        assert!(matches!(read(value), Err(ClaimsError::Malformed(_))));
    }

    #[test]
    fn service_identity_names_the_user_and_agent_from_context() {
        let mut value = obo();
        value["delegation_mode"] = json!("service_identity");
        value["sub"] = json!("orders-mcp");
        value.as_object_mut().unwrap().remove("act");
        value["delegation_chain"] = json!({"sub": "orders-mcp"});
        value["user"] = json!({"sub": "alice", "agent": "cursor"});
        let claims = read(value).unwrap();
        assert_eq!(claims.user_sub(), "alice");
        assert_eq!(claims.agents(), vec!["orders-mcp", "cursor"]);
    }

    #[test]
    fn the_users_issuer_is_read_from_sub_id_or_the_user_context() {
        let mut value = obo();
        assert_eq!(read(value.clone()).unwrap().user_issuer(), None, "not recorded");
        value["sub_id"] = json!({"format": "iss_sub", "iss": "https://idp", "sub": "alice"});
        let claims = read(value.clone()).unwrap();
        assert_eq!(claims.user_issuer(), Some("https://idp"));
        assert_eq!(serde_json::to_value(&claims).unwrap(), value, "reads back unchanged");

        for bad in [
            json!({"format": "iss_sub", "iss": "https://idp", "sub": "mallory"}),
            json!({"format": "opaque", "id": "alice"}),
        ] {
            let mut value = obo();
            value["sub_id"] = bad;
            assert!(matches!(read(value), Err(ClaimsError::Malformed(_))));
        }

        let mut value = obo();
        value["delegation_mode"] = json!("service_identity");
        value["sub"] = json!("orders-mcp");
        value["user"] = json!({"sub": "alice", "iss": "https://idp"});
        assert_eq!(read(value).unwrap().user_issuer(), Some("https://idp"));
    }

    #[test]
    fn token_scopes_split_strings_and_keep_list_items() {
        let claims = json!({"scope": "a  b", "scp": ["c", "d e", ""]});
        assert_eq!(token_scopes(claims.as_object().unwrap()), ["a", "b", "c", "d e"]);
        let claims = json!({"scp": "x y", "scope": ["z"]});
        assert_eq!(token_scopes(claims.as_object().unwrap()), ["z", "x", "y"]);
        assert!(token_scopes(json!({"scp": 7}).as_object().unwrap()).is_empty());
    }
}
