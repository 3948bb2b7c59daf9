//! The token exchange decision (RFC 8693 §2): from a form body and `now` to a token
//! or a refusal. No HTTP types here; the HTTP layer only adapts.

pub mod form;
mod subject;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::audit::AuditEvent;
use crate::client_auth::{RegisteredClient, authenticate};
use crate::clock::UnixTime;
use crate::config::DelegationMode;
use crate::error::{ErrorCode, OAuthError};
use crate::inbound::validate::{DeclaredType, Origin, Role, ValidatedToken, validate};
use crate::mint::{AccessClaims, Actor, UserContext, new_jti, sign};
use crate::policy::{decide_scopes, grantable, parse_scope};
use crate::revocation::{RevocationKey, RevocationKind};
use crate::service::Sts;

pub use form::Form;
use subject::Subject;

/// The token exchange grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The issued token type of our access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The generic JWT token type, which a caller may request instead.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// What the HTTP layer hands the exchange.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeInput<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The W3C `traceparent` header, if any.
    pub traceparent: Option<&'a str>,
    /// The form body.
    pub form: &'a Form,
}

/// RFC 8693 §2.2.1 successful response.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The minted token.
    pub access_token: String,
    /// What kind of token it is.
    pub issued_token_type: &'static str,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// Granted scopes.
    pub scope: String,
}

/// Perform one exchange. `audit` is filled in as facts become known, for both
/// outcomes; the caller emits it.
pub async fn exchange(
    sts: &Sts,
    input: ExchangeInput<'_>,
    now: UnixTime,
    audit: &mut AuditEvent,
) -> Result<TokenResponse, OAuthError> {
    let form = input.form;
    form.refuse_repeats()?;
    match form.get("grant_type") {
        None => {
            return Err(OAuthError::invalid_request(
                "request.missing_parameter",
                "parameter grant_type is required",
            ));
        }
        Some(TOKEN_EXCHANGE_GRANT) => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "grant.unsupported",
                "only the token exchange grant is supported",
            ));
        }
    }
    audit.client_id = form.get("client_id").map(String::from);
    let client = authenticate(
        &sts.clients,
        input.authorization,
        form,
        sts.auth_context(),
        sts.store.as_ref(),
        now,
    )
    .await?;
    audit.client_id = Some(client.id().to_owned());
    sts.check_client_rate(client.id())?;
    if client.config.audiences.is_empty() {
        return Err(OAuthError::unauthorized_client(
            "client.no_exchange",
            "this client may not use token exchange",
        ));
    }

    let request = ParsedRequest::from_form(form)?;
    let target = sts.audiences.resolve(request.audience, request.resource, &client)?;
    audit.audience = Some(target.aud.clone());
    audit.mode = Some(target.audience.mode.as_str());

    let ring = sts.keys.current();
    let own = (sts.issuer(), ring.as_ref());
    let subject_token = validate(
        request.subject_token,
        request.subject_type,
        &sts.issuers,
        own,
        sts.limits(),
        now,
    )
    .await
    .map_err(|e| e.into_oauth(Role::Subject))?;
    let subject = Subject::from_token(sts, &subject_token, &client, request.subject_token)?;
    audit.sub = Some(subject.user.clone());
    audit.sid = Some(subject.sid.clone());
    sts.check_subject_rate(&subject.user)?;

    let actor_token = match request.actor {
        Some((token, declared)) => {
            let validated = validate(token, declared, &sts.issuers, own, sts.limits(), now)
                .await
                .map_err(|e| e.into_oauth(Role::Actor))?;
            if matches!(validated.origin, Origin::Minted) {
                subject::check_minted_audience(sts, &validated, &client, Role::Actor)?;
            }
            Some(validated)
        }
        None => None,
    };
    let current_actor = match &actor_token {
        Some(actor) => Actor {
            sub: actor.sub.clone(),
            iss: Some(actor.iss.clone()),
            act: None,
        },
        None => Actor {
            sub: client.id().to_owned(),
            iss: None,
            act: None,
        },
    };
    subject.check_may_act(&current_actor, actor_token.is_some())?;
    let chain = Actor {
        act: subject.prior_actors.clone().map(Box::new),
        ..current_actor
    };
    audit.actor_chain = chain.chain();
    if chain.depth() > sts.config.tokens.max_delegation_depth {
        return Err(OAuthError::invalid_request(
            "delegation.too_deep",
            "the delegation chain is longer than allowed",
        ));
    }

    check_revocations(
        sts,
        &subject,
        &chain,
        &client,
        &subject_token,
        actor_token.as_ref(),
        now,
    )
    .await?;

    let audience = &target.audience;
    let granted = decide_scopes(&request.scopes, &grantable(audience, &subject.entitlement), audience)?;
    let scope = granted.join(" ");
    audit.scope = Some(scope.clone());

    let remaining = subject_token
        .exp
        .min(actor_token.as_ref().map_or(u64::MAX, |a| a.exp))
        .saturating_sub(now);
    let ttl = [
        Some(sts.config.tokens.default_ttl_seconds),
        audience.ttl_cap(),
        Some(remaining),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    if ttl == 0 {
        return Err(OAuthError::invalid_request(
            "subject_token.expired",
            "subject_token has expired",
        ));
    }
    let txn = trace_id(input.traceparent)
        .or_else(|| subject.txn.clone())
        .unwrap_or_else(new_jti);
    audit.txn = Some(txn.clone());
    let (sub, act, user) = match audience.mode {
        DelegationMode::ServiceIdentity => (
            client.id().to_owned(),
            None,
            Some(UserContext {
                sub: subject.user.clone(),
                tenant: subject.tenant.clone(),
                agent: actor_token.as_ref().map(|a| a.sub.clone()),
            }),
        ),
        DelegationMode::OnBehalfOf => (subject.user.clone(), Some(chain), None),
        DelegationMode::RestrictedUser => (subject.user.clone(), None, None),
    };
    let claims = AccessClaims {
        iss: sts.issuer().to_owned(),
        sub,
        aud: target.aud.clone(),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: new_jti(),
        client_id: client.id().to_owned(),
        scope: scope.clone(),
        delegation_mode: audience.mode,
        act,
        sid: subject.sid.clone(),
        txn,
        tenant: subject.tenant.clone(),
        user,
    };
    audit.jti = Some(claims.jti.clone());
    let access_token = sign(ring.signing_key(now), &claims)?;
    Ok(TokenResponse {
        access_token,
        issued_token_type: request.issued_type,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

struct ParsedRequest<'a> {
    subject_token: &'a str,
    subject_type: DeclaredType,
    actor: Option<(&'a str, DeclaredType)>,
    audience: Option<&'a str>,
    resource: Option<&'a str>,
    scopes: Vec<String>,
    issued_type: &'static str,
}

impl<'a> ParsedRequest<'a> {
    fn from_form(form: &'a Form) -> Result<Self, OAuthError> {
        let subject_token = form.require("subject_token")?;
        let subject_type = token_type(form.require("subject_token_type")?, "subject_token_type")?;
        let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
            (None, None) => None,
            (Some(token), Some(declared)) => Some((token, token_type(declared, "actor_token_type")?)),
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "request.actor_token_type",
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "request.actor_token",
                    "actor_token_type was sent without actor_token",
                ));
            }
        };
        let issued_type = match form.get("requested_token_type") {
            None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
            Some(JWT_TOKEN_TYPE) => JWT_TOKEN_TYPE,
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "request.requested_token_type",
                    "requested_token_type is not supported; this service issues JWT access tokens",
                ));
            }
        };
        Ok(Self {
            subject_token,
            subject_type,
            actor,
            audience: form.get("audience"),
            resource: form.get("resource"),
            scopes: parse_scope(form.get("scope"))?,
            issued_type,
        })
    }
}

fn token_type(uri: &str, param: &'static str) -> Result<DeclaredType, OAuthError> {
    DeclaredType::parse(uri).ok_or_else(|| {
        OAuthError::invalid_request(
            "request.unsupported_token_type",
            format!("{param} is not a supported JWT token type"),
        )
    })
}

/// The trace id of a W3C `traceparent` (version-traceid-parentid-flags), if valid.
pub fn trace_id(traceparent: Option<&str>) -> Option<String> {
    let mut parts = traceparent?.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = hex(version, 2) && version != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2);
    (valid && trace.bytes().any(|b| b != b'0')).then(|| trace.to_owned())
}

/// One round trip: subject, session, client, every actor (as agent and as subject),
/// and the ids of minted tokens presented.
async fn check_revocations(
    sts: &Sts,
    subject: &Subject,
    chain: &Actor,
    client: &RegisteredClient,
    subject_token: &ValidatedToken,
    actor_token: Option<&ValidatedToken>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let mut keys: BTreeSet<RevocationKey> = BTreeSet::new();
    keys.insert(RevocationKey::new(RevocationKind::Client, client.id()));
    keys.insert(RevocationKey::new(RevocationKind::Subject, subject.user.as_str()));
    keys.insert(RevocationKey::new(RevocationKind::Session, subject.sid.as_str()));
    for actor in chain.chain() {
        keys.insert(RevocationKey::new(RevocationKind::Agent, actor.as_str()));
        keys.insert(RevocationKey::new(RevocationKind::Subject, actor));
    }
    for token in std::iter::once(subject_token).chain(actor_token) {
        if let (Origin::Minted, Some(jti)) = (&token.origin, &token.jti) {
            keys.insert(RevocationKey::new(RevocationKind::Token, jti.as_str()));
        }
    }
    let keys: Vec<RevocationKey> = keys.into_iter().collect();
    let found = sts.store_call(sts.store.check(&keys, now)).await?;
    let hits: Vec<RevocationKind> = found.iter().flatten().map(|r| r.kind).collect();
    if hits.contains(&RevocationKind::Client) {
        return Err(OAuthError::invalid_client(
            "client.revoked",
            "client authentication failed",
        ));
    }
    match hits.first() {
        None => Ok(()),
        Some(RevocationKind::Subject) => Err(OAuthError::invalid_request(
            "revoked.subject",
            "the subject or an actor has been revoked",
        )),
        Some(RevocationKind::Session) => Err(OAuthError::invalid_request(
            "revoked.session",
            "the session has been revoked",
        )),
        Some(RevocationKind::Agent) => Err(OAuthError::invalid_request(
            "revoked.agent",
            "an agent in the delegation chain has been revoked",
        )),
        Some(RevocationKind::Token | RevocationKind::Client) => Err(OAuthError::invalid_request(
            "revoked.token",
            "the presented token has been revoked",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(Some(tp)).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id(Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")),
            None
        );
        assert_eq!(
            trace_id(Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")),
            None
        );
        assert_eq!(trace_id(Some("garbage")), None);
        assert_eq!(trace_id(None), None);
    }
}
