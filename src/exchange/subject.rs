//! What a validated subject or actor token says, for either origin: an upstream
//! issuer's token, or one of our own tokens presented for a further hop.

use serde_json::{Map, Value};

use crate::client_auth::RegisteredClient;
use crate::config::IssuerConfig;
use crate::error::OAuthError;
use crate::inbound::jwt::{str_claim, string_at, token_scopes};
use crate::inbound::validate::{Origin, Role, ValidatedToken};
use crate::policy::{Audiences, Entitlement};
use mcp_sts_contract::identifier::check as check_identifier;
use mcp_sts_contract::revocation::Namespace;
use mcp_sts_contract::{AccessClaims, Actor, SubProfile};

/// The user behind a subject token.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// The user's `sub`.
    pub user: String,
    /// The user's issuer: the upstream issuer, or what a minted token records (`None`
    /// for a token minted before issuers were recorded).
    pub issuer: Option<String>,
    /// The user's tenant.
    pub tenant: Option<String>,
    /// The session id: carried, or derived when the token has none.
    pub sid: String,
    /// A trace id carried from a minted token.
    pub txn: Option<String>,
    /// What the user may be granted.
    pub entitlement: Entitlement,
    /// Actors already in the chain (nested, most recent first).
    pub prior_actors: Option<Actor>,
    /// The agent application that obtained an upstream token (the issuer's
    /// `agent_claim`), which joins the chain when no actor token is sent.
    pub agent: Option<Actor>,
    /// The claims of a minted subject token, whose whole lineage must be checked.
    pub minted: Option<AccessClaims>,
    /// `may_act` (RFC 8693 §4.4), when the token restricts who may act.
    may_act: Option<Value>,
}

impl Subject {
    /// Whose user and session this is, for the issuer rule of revocations.
    pub(crate) fn namespace(&self) -> Namespace<'_> {
        Namespace::of_user(self.issuer.as_deref())
    }

    /// Read the subject from a validated token presented by `client`.
    pub(crate) fn from_token(
        audiences: &Audiences,
        token: &ValidatedToken,
        client: &RegisteredClient,
        max_depth: usize,
    ) -> Result<Self, OAuthError> {
        check_id(&token.sub, Role::Subject, "sub")?;
        match &token.origin {
            Origin::Upstream(issuer) => upstream(&issuer.config, token, max_depth),
            Origin::Minted => {
                check_minted_audience(audiences, token, client, Role::Subject)?;
                let claims = minted_claims(token, Role::Subject)?;
                let tenant = claims
                    .tenant
                    .clone()
                    .or_else(|| claims.user.as_ref().and_then(|u| u.tenant.clone()));
                check_id(claims.user_sub(), Role::Subject, "user")?;
                Ok(Self {
                    user: claims.user_sub().to_owned(),
                    issuer: claims.user_issuer().map(str::to_owned),
                    tenant,
                    sid: claims.sid.clone(),
                    txn: Some(claims.txn.clone()),
                    entitlement: Entitlement::Minted {
                        scopes: claims.scopes(),
                    },
                    prior_actors: claims.chain().cloned(),
                    agent: None,
                    minted: Some(claims),
                    may_act: None,
                })
            }
        }
    }

    /// Whether `may_act` is present and names `sub` (a delegation of a bound token).
    pub(crate) fn may_act_names(&self, sub: &str) -> bool {
        self.may_act
            .as_ref()
            .and_then(|m| m.get("sub"))
            .and_then(Value::as_str)
            .is_some_and(|named| named == sub)
    }

    /// RFC 8693 §4.4: when `may_act` is present, the actor must be the one it names.
    pub(crate) fn check_may_act(&self, actor: &Actor, from_actor_token: bool) -> Result<(), OAuthError> {
        let Some(may_act) = &self.may_act else {
            return Ok(());
        };
        let refused = || {
            OAuthError::invalid_request(
                "subject_token.may_act",
                "the actor is not allowed to act for the subject (may_act)",
            )
        };
        let allowed_sub = may_act.get("sub").and_then(Value::as_str).ok_or_else(refused)?;
        if allowed_sub != actor.sub {
            return Err(refused());
        }
        if let Some(allowed_iss) = may_act.get("iss").and_then(Value::as_str)
            && (!from_actor_token || actor.iss.as_deref() != Some(allowed_iss))
        {
            return Err(refused());
        }
        Ok(())
    }
}

fn upstream(config: &IssuerConfig, token: &ValidatedToken, max_depth: usize) -> Result<Subject, OAuthError> {
    let claims = &token.claims;
    let prior_actors = upstream_actors(claims, &config.issuer, max_depth)?;
    let sid = match claims.get("sid") {
        None | Some(Value::Null) => derive_sid(&token.iss, token.jti.as_deref(), claims),
        Some(Value::String(sid)) if !sid.is_empty() => {
            check_id(sid, Role::Subject, "sid")?;
            sid.clone()
        }
        Some(_) => return Err(malformed(Role::Subject, "sid")),
    };
    let agent = match config.agent_claim.as_deref().and_then(|name| string_at(claims, name)) {
        Some(agent) => {
            check_id(&agent, Role::Subject, "agent")?;
            Some(Actor::new(agent, Some(config.issuer.clone())).with_profile(SubProfile::AiAgent))
        }
        None => None,
    };
    Ok(Subject {
        user: token.sub.clone(),
        issuer: Some(config.issuer.clone()),
        tenant: config.tenant_claim.as_deref().and_then(|c| string_at(claims, c)),
        sid,
        txn: None,
        entitlement: upstream_entitlement(config, claims),
        prior_actors,
        agent,
        minted: None,
        may_act: claims.get("may_act").cloned(),
    })
}

/// What the issuer's `entitlement` setting says entitles this user: roles, the
/// token's own scopes, or both.
fn upstream_entitlement(config: &IssuerConfig, claims: &Map<String, Value>) -> Entitlement {
    let source = config.entitlement();
    Entitlement::Upstream {
        roles: if source.uses_roles() {
            roles(claims, &config.roles_claim, config.roles_delimiter.as_deref())
        } else {
            Vec::new()
        },
        scopes: if source.uses_token_scopes() {
            token_scopes(claims)
        } else {
            Vec::new()
        },
    }
}

/// An upstream issuer's `act`: kept as the earliest prior actors, each marked with
/// that issuer, every `sub` held to the identifier rule; each keeps the profile the
/// issuer gave it (`ai_agent` when it gave none).
pub(crate) fn upstream_actors(
    claims: &Map<String, Value>,
    issuer: &str,
    max_depth: usize,
) -> Result<Option<Actor>, OAuthError> {
    let Some(act) = claims.get("act") else {
        return Ok(None);
    };
    let mut chain: Actor = serde_json::from_value(act.clone()).map_err(|_| malformed(Role::Subject, "act"))?;
    if chain.depth() > max_depth {
        return Err(too_deep());
    }
    let mut next = Some(&mut chain);
    while let Some(actor) = next {
        check_id(&actor.sub, Role::Subject, "act")?;
        actor.iss = Some(issuer.to_owned());
        actor.sub_profile = Some(actor.sub_profile.unwrap_or(SubProfile::AiAgent));
        next = actor.act.as_deref_mut();
    }
    Ok(Some(chain))
}

/// The roles claim: an array is a list of roles; a string is one role unless the
/// issuer names a delimiter.
fn roles(claims: &Map<String, Value>, path: &str, delimiter: Option<&str>) -> Vec<String> {
    let mut parts = path.split('.');
    let mut current = parts.next().and_then(|first| claims.get(first));
    for part in parts {
        current = current.and_then(|v| v.get(part));
    }
    match (current, delimiter) {
        (Some(Value::Array(items)), _) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
        (Some(Value::String(s)), Some(delimiter)) => s
            .split(delimiter)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        (Some(Value::String(s)), None) if !s.trim().is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The claims of a token we minted, presented back to us.
pub(crate) fn minted_claims(token: &ValidatedToken, role: Role) -> Result<AccessClaims, OAuthError> {
    AccessClaims::from_claims(token.claims.clone()).map_err(|_| malformed(role, "claims"))
}

/// A minted token may be exchanged further only by the client that was its audience.
pub(crate) fn check_minted_audience(
    audiences: &Audiences,
    token: &ValidatedToken,
    client: &RegisteredClient,
    role: Role,
) -> Result<(), OAuthError> {
    let aud = str_claim(&token.claims, "aud").unwrap_or_default();
    let audience_id = audiences.by_aud(aud).map_or(aud, |a| a.id.as_str());
    if !aud.is_empty() && audience_id == client.id() {
        return Ok(());
    }
    let rule = match role {
        Role::Subject => "subject_token.wrong_presenter",
        Role::Actor => "actor_token.wrong_presenter",
    };
    Err(OAuthError::invalid_request(
        rule,
        format!("{} was minted for another audience than this client", role.param()),
    ))
}

/// A minted token used as `actor_token` names an actor acting as itself: a token that
/// carries a delegation chain of its own (anyone but its own subject) is refused, so
/// a chain can never be dropped by presenting it as the actor.
pub(crate) fn check_minted_actor(claims: &AccessClaims) -> Result<(), OAuthError> {
    if claims.agents().iter().any(|agent| *agent != claims.sub) {
        return Err(OAuthError::invalid_request(
            "actor_token.delegated",
            "actor_token carries a delegation chain; an actor token must name an actor acting as itself",
        ));
    }
    Ok(())
}

/// The identifier rule for a value read from a presented token.
pub(crate) fn check_id(value: &str, role: Role, what: &'static str) -> Result<(), OAuthError> {
    check_identifier(value).map_err(|e| {
        OAuthError::invalid_request(
            match role {
                Role::Subject => "subject_token.identifier",
                Role::Actor => "actor_token.identifier",
            },
            format!("{} {what} {e}", role.param()),
        )
    })
}

fn malformed(role: Role, claim: &str) -> OAuthError {
    OAuthError::invalid_request(
        match role {
            Role::Subject => "subject_token.claims",
            Role::Actor => "actor_token.claims",
        },
        format!("{} {claim} claim is malformed", role.param()),
    )
}

/// The chain is longer than `max_delegation_depth`.
pub(crate) fn too_deep() -> OAuthError {
    OAuthError::invalid_request("delegation.too_deep", "the delegation chain is longer than allowed")
}

/// A stable session id for tokens without `sid`: the contract's one derivation, which
/// the MCP server kit applies too.
pub(crate) fn derive_sid(iss: &str, jti: Option<&str>, claims: &Map<String, Value>) -> String {
    mcp_sts_contract::revocation::derived_session_id(iss, jti, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn derived_sids_come_from_claims_never_from_bytes() {
        let a = map(json!({"sub": "alice", "iat": 100, "azp": "cursor"}));
        assert_eq!(derive_sid("i", None, &a), derive_sid("i", None, &a.clone()));
        assert_ne!(derive_sid("i", None, &a), derive_sid("j", None, &a));
        let later = map(json!({"sub": "alice", "iat": 101, "azp": "cursor"}));
        assert_ne!(derive_sid("i", None, &a), derive_sid("i", None, &later));
        assert_eq!(derive_sid("i", Some("1"), &a), derive_sid("i", Some("1"), &later));
        assert!(derive_sid("i", None, &a).starts_with("derived-"));
    }

    #[test]
    fn a_string_roles_claim_is_one_role_unless_a_delimiter_is_named() {
        let claims = map(json!({"groups": "Finance Admin", "csv": "dev, ops", "list": ["a b", "c"]}));
        assert_eq!(roles(&claims, "groups", None), vec!["Finance Admin"]);
        assert_eq!(roles(&claims, "csv", Some(",")), vec!["dev", "ops"]);
        assert_eq!(roles(&claims, "list", None), vec!["a b", "c"]);
        assert!(roles(&claims, "missing", None).is_empty());
    }

    #[test]
    fn upstream_actors_are_marked_with_their_issuer_and_bounded() {
        let claims = map(json!({"act": {"sub": "svc-a", "iss": "elsewhere", "act": {"sub": "svc-b"}}}));
        let chain = upstream_actors(&claims, "https://idp", 4).unwrap().unwrap();
        assert!(chain.iter().all(|a| a.iss.as_deref() == Some("https://idp")));
        assert_eq!(chain.chain(), vec!["svc-a", "svc-b"]);
        assert!(upstream_actors(&claims, "https://idp", 1).is_err());
        let bad = map(json!({"act": {"sub": "line\nbreak"}}));
        assert!(upstream_actors(&bad, "https://idp", 4).is_err());
    }
}
