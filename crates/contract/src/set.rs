//! The Security Event Token contract (RFC 8417, OpenID SSF 1.0, CAEP 1.0): the event
//! types mcp-sts transmits and understands, the subject identifier formats, and the
//! one mapping between a revocation and the SET that announces it.
//!
//! The transmitter builds SETs here and the downstream verifier reads them back here,
//! so both sides agree on every URI and field (docs/shared-signals.md).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::claims::Audience;
use super::revocation::RevocationKind;
pub use super::subject_id::SubjectId;
use crate::clock::UnixTime;

/// RFC 8417 §2.3: the JWS `typ` of a Security Event Token.
pub const SET_TYP: &str = "secevent+jwt";
/// RFC 8936: poll delivery, as named in SSF `delivery.method`.
pub const POLL_DELIVERY: &str = "urn:ietf:rfc:8936";
/// RFC 8935: push delivery, as named in SSF `delivery.method`.
pub const PUSH_DELIVERY: &str = "urn:ietf:rfc:8935";
/// CAEP 1.0 §3.1: a session (or every session of a subject) has been revoked.
pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 §3.5: a credential of the subject changed (read upstream as offboarding).
pub const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// RISC 1.0 §2.3: the account has been disabled.
pub const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// SSF 1.0 §8.1.4.1: a verification event, sent on request.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// The path under mcp-sts's issuer URL of its own event type for a revoked agent.
pub const AGENT_REVOKED_PATH: &str = "/ssf/event-type/agent-revoked";
/// The path under mcp-sts's issuer URL of its own event type for a revoked client.
pub const CLIENT_REVOKED_PATH: &str = "/ssf/event-type/client-revoked";
/// The path under mcp-sts's issuer URL of its own event type for a revocation an admin
/// lifted (the user, session, agent, client or token is reinstated).
pub const REINSTATED_PATH: &str = "/ssf/event-type/reinstated";

/// mcp-sts's event type for a revoked agent: `{issuer}/ssf/event-type/agent-revoked`.
pub fn agent_revoked(issuer: &str) -> String {
    format!("{issuer}{AGENT_REVOKED_PATH}")
}

/// mcp-sts's event type for a revoked client: `{issuer}/ssf/event-type/client-revoked`.
pub fn client_revoked(issuer: &str) -> String {
    format!("{issuer}{CLIENT_REVOKED_PATH}")
}

/// mcp-sts's event type for a lifted revocation: `{issuer}/ssf/event-type/reinstated`.
/// Its subject is the revocation's, and its body names the revocation's `kind`.
pub fn reinstated(issuer: &str) -> String {
    format!("{issuer}{REINSTATED_PATH}")
}

/// The event types mcp-sts transmits (a stream's `events_supported`).
pub fn events_supported(issuer: &str) -> Vec<String> {
    vec![
        SESSION_REVOKED.to_owned(),
        agent_revoked(issuer),
        client_revoked(issuer),
        reinstated(issuer),
    ]
}

/// The event type that announces a revocation of `kind`.
pub fn event_type_for(kind: RevocationKind, issuer: &str) -> String {
    match kind {
        RevocationKind::Subject | RevocationKind::Session | RevocationKind::Token => SESSION_REVOKED.to_owned(),
        RevocationKind::Agent => agent_revoked(issuer),
        RevocationKind::Client => client_revoked(issuer),
    }
}

/// The claims of a Security Event Token, as SSF 1.0 shapes them: `sub_id` at the top
/// level and exactly one event in `events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetClaims {
    /// The transmitter.
    pub iss: String,
    /// The receiver.
    pub aud: Audience,
    /// Unique id of this SET: what a receiver acknowledges.
    pub jti: String,
    /// When the SET was issued.
    pub iat: UnixTime,
    /// Who or what the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectId>,
    /// Event type URI to event body.
    pub events: Map<String, Value>,
}

impl SetClaims {
    /// The one event: its type and body; `None` when there is not exactly one.
    pub fn single_event(&self) -> Option<(&str, &Value)> {
        let mut events = self.events.iter();
        match (events.next(), events.next()) {
            (Some((kind, body)), None) => Some((kind.as_str(), body)),
            _ => None,
        }
    }

    /// The subject: the top-level `sub_id`, else an older draft's `subject` in the event.
    pub fn subject(&self) -> Option<SubjectId> {
        if let Some(subject) = &self.sub_id {
            return Some(subject.clone());
        }
        let (_, body) = self.single_event()?;
        serde_json::from_value(body.get("subject")?.clone()).ok()
    }

    /// When the event happened: its `event_timestamp`, else the SET's `iat`.
    pub fn event_time(&self) -> UnixTime {
        self.single_event()
            .and_then(|(_, body)| body.get("event_timestamp"))
            .and_then(Value::as_u64)
            .unwrap_or(self.iat)
    }
}

/// What a revocation SET from mcp-sts announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// What kind of thing was revoked.
    pub kind: RevocationKind,
    /// The value revoked (`sub`, `sid`, agent, client id or `jti`).
    pub value: String,
    /// For a user or session: the trusted issuer it belongs to; `None` covers every
    /// issuer (and is always `None` for agents, clients and tokens).
    pub issuer: Option<String>,
    /// When it was revoked (or, when `reinstated`, when the revocation was lifted).
    pub revoked_at: UnixTime,
    /// The event lifts this revocation instead of making it.
    pub reinstated: bool,
}

/// Why a SET is not one this contract understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Exhaustive on purpose: a new rule must be mapped by every door that reads it.
pub enum SetError {
    /// `events` does not hold exactly one event.
    #[error("a SET must carry exactly one event")]
    EventCount,
    /// The event type is not one we act on.
    #[error("unsupported event type")]
    UnsupportedEvent,
    /// The subject is missing or of a format the event type does not allow.
    #[error("unsupported or missing subject identifier")]
    UnsupportedSubject,
}

/// What a revocation is about, as a subject identifier: a user is `iss_sub` with the
/// user's issuer (`issuer`, mcp-sts itself, when it covers every issuer); a session is
/// `opaque`, or, when it belongs to one issuer, `complex` with that `session` and the
/// issuer as its `tenant` (`uri`); agents and clients are `opaque`; a token is `jwt_id`.
pub fn subject_for(kind: RevocationKind, value: &str, issuer: &str, user_issuer: Option<&str>) -> SubjectId {
    let opaque = || SubjectId::Opaque { id: value.to_owned() };
    match (kind, user_issuer) {
        (RevocationKind::Subject, user_issuer) => SubjectId::IssSub {
            iss: user_issuer.unwrap_or(issuer).to_owned(),
            sub: value.to_owned(),
        },
        (RevocationKind::Session, Some(user_issuer)) => SubjectId::Complex {
            user: None,
            session: Some(Box::new(opaque())),
            tenant: Some(Box::new(SubjectId::Uri {
                uri: user_issuer.to_owned(),
            })),
        },
        (RevocationKind::Token, _) => SubjectId::JwtId {
            iss: issuer.to_owned(),
            jti: value.to_owned(),
        },
        (RevocationKind::Session | RevocationKind::Agent | RevocationKind::Client, _) => opaque(),
    }
}

/// What the transmitter needs to announce one revocation.
#[derive(Debug, Clone, Copy)]
pub struct Announcement<'a> {
    /// mcp-sts's issuer URL.
    pub issuer: &'a str,
    /// For a subject or session revocation, the user's issuer it is limited to;
    /// `None` covers every issuer.
    pub user_issuer: Option<&'a str>,
    /// What was revoked.
    pub kind: RevocationKind,
    /// The value revoked.
    pub value: &'a str,
    /// When.
    pub revoked_at: UnixTime,
    /// CAEP `initiating_entity`: `admin`, `user`, `policy` or `system`.
    pub initiating_entity: &'a str,
    /// Free text from whoever revoked it (CAEP `reason_admin`), may be empty.
    pub reason: &'a str,
    /// It announces that the revocation was lifted, not made (`revoked_at` is then
    /// when it was lifted).
    pub reinstated: bool,
}

impl Announcement<'_> {
    /// The event type this announcement is sent as.
    pub fn event_type(&self) -> String {
        if self.reinstated {
            return reinstated(self.issuer);
        }
        event_type_for(self.kind, self.issuer)
    }

    /// The SET claims for one receiver.
    pub fn claims(&self, audience: &str, jti: &str, iat: UnixTime) -> SetClaims {
        let mut body = json!({
            "event_timestamp": self.revoked_at,
            "initiating_entity": self.initiating_entity,
        });
        if let Some(map) = body.as_object_mut() {
            if !self.reason.is_empty() {
                map.insert("reason_admin".into(), json!({ "en": self.reason }));
            }
            if self.reinstated {
                map.insert("kind".into(), json!(self.kind));
            }
        }
        let mut events = Map::new();
        events.insert(self.event_type(), body);
        SetClaims {
            iss: self.issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            jti: jti.to_owned(),
            iat,
            sub_id: Some(subject_for(self.kind, self.value, self.issuer, self.user_issuer)),
            events,
        }
    }
}

/// The SET claims of a verification event (SSF 1.0 §8.1.4.1) for `stream_id`.
pub fn verification_claims(
    issuer: &str,
    audience: &str,
    jti: &str,
    iat: UnixTime,
    stream_id: &str,
    state: Option<&str>,
) -> SetClaims {
    let body = match state {
        Some(state) => json!({ "state": state }),
        None => json!({}),
    };
    let mut events = Map::new();
    events.insert(VERIFICATION.to_owned(), body);
    SetClaims {
        iss: issuer.to_owned(),
        aud: Audience::One(audience.to_owned()),
        jti: jti.to_owned(),
        iat,
        sub_id: Some(SubjectId::Opaque {
            id: stream_id.to_owned(),
        }),
        events,
    }
}

/// Read a SET from mcp-sts (`issuer`) back into the revocation it announces;
/// `Ok(None)` for a verification event, which announces nothing. A user named with
/// mcp-sts's own issuer, and a session without a tenant, cover every issuer.
pub fn read_revocation(issuer: &str, set: &SetClaims) -> Result<Option<RevocationEvent>, SetError> {
    let (event_type, _) = set.single_event().ok_or(SetError::EventCount)?;
    if event_type == VERIFICATION {
        return Ok(None);
    }
    let subject = set.subject().ok_or(SetError::UnsupportedSubject)?;
    if event_type == reinstated(issuer) {
        return read_reinstatement(issuer, set, subject).map(Some);
    }
    let (kind, value, user_issuer) = if event_type == SESSION_REVOKED {
        match subject {
            SubjectId::Opaque { id } => (RevocationKind::Session, id, None),
            SubjectId::Complex {
                user: None,
                session: Some(session),
                tenant,
            } => {
                let SubjectId::Opaque { id } = *session else {
                    return Err(SetError::UnsupportedSubject);
                };
                let scope = match tenant.map(|t| *t) {
                    None => None,
                    Some(SubjectId::Uri { uri }) => Some(uri),
                    Some(_) => return Err(SetError::UnsupportedSubject),
                };
                (RevocationKind::Session, id, scope)
            }
            SubjectId::IssSub { iss, sub } => {
                let scope = (iss != issuer).then_some(iss);
                (RevocationKind::Subject, sub, scope)
            }
            SubjectId::JwtId { iss, jti } if iss == issuer => (RevocationKind::Token, jti, None),
            _ => return Err(SetError::UnsupportedSubject),
        }
    } else if event_type == agent_revoked(issuer) || event_type == client_revoked(issuer) {
        let SubjectId::Opaque { id } = subject else {
            return Err(SetError::UnsupportedSubject);
        };
        let kind = if event_type == agent_revoked(issuer) {
            RevocationKind::Agent
        } else {
            RevocationKind::Client
        };
        (kind, id, None)
    } else {
        return Err(SetError::UnsupportedEvent);
    };
    Ok(Some(RevocationEvent {
        kind,
        value,
        issuer: user_issuer,
        revoked_at: set.event_time(),
        reinstated: false,
    }))
}

/// A reinstatement: the body's `kind` says what was reinstated, and the subject must
/// be the one a revocation of that kind is announced with.
fn read_reinstatement(issuer: &str, set: &SetClaims, subject: SubjectId) -> Result<RevocationEvent, SetError> {
    let kind: RevocationKind = set
        .single_event()
        .and_then(|(_, body)| body.get("kind"))
        .and_then(|kind| serde_json::from_value(kind.clone()).ok())
        .ok_or(SetError::UnsupportedSubject)?;
    let (value, user_issuer) = match (kind, subject) {
        (RevocationKind::Subject, SubjectId::IssSub { iss, sub }) => {
            let scope = (iss != issuer).then_some(iss);
            (sub, scope)
        }
        (RevocationKind::Session, SubjectId::Opaque { id }) => (id, None),
        (
            RevocationKind::Session,
            SubjectId::Complex {
                user: None,
                session: Some(session),
                tenant: Some(tenant),
            },
        ) => match (*session, *tenant) {
            (SubjectId::Opaque { id }, SubjectId::Uri { uri }) => (id, Some(uri)),
            _ => return Err(SetError::UnsupportedSubject),
        },
        (RevocationKind::Agent | RevocationKind::Client, SubjectId::Opaque { id }) => (id, None),
        (RevocationKind::Token, SubjectId::JwtId { iss, jti }) if iss == issuer => (jti, None),
        _ => return Err(SetError::UnsupportedSubject),
    };
    Ok(RevocationEvent {
        kind,
        value,
        issuer: user_issuer,
        revoked_at: set.event_time(),
        reinstated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://sts.example.com";

    #[test]
    fn every_revocation_reads_back_as_itself() {
        let idp = Some("https://idp");
        let cases = [
            (
                RevocationKind::Subject,
                "carol@example.com",
                idp,
                json!({"format": "iss_sub", "iss": "https://idp", "sub": "carol@example.com"}),
            ),
            (
                RevocationKind::Subject,
                "carol@example.com",
                None,
                json!({"format": "iss_sub", "iss": ISS, "sub": "carol@example.com"}),
            ),
            (
                RevocationKind::Session,
                "s-1",
                idp,
                json!({"format": "complex", "session": {"format": "opaque", "id": "s-1"},
                       "tenant": {"format": "uri", "uri": "https://idp"}}),
            ),
            (
                RevocationKind::Session,
                "s-1",
                None,
                json!({"format": "opaque", "id": "s-1"}),
            ),
            (
                RevocationKind::Token,
                "j-1",
                None,
                json!({"format": "jwt_id", "iss": ISS, "jti": "j-1"}),
            ),
            (
                RevocationKind::Agent,
                "cursor",
                None,
                json!({"format": "opaque", "id": "cursor"}),
            ),
            (
                RevocationKind::Client,
                "orders-mcp",
                None,
                json!({"format": "opaque", "id": "orders-mcp"}),
            ),
        ];
        for (kind, value, user_issuer, sub_id) in cases {
            let announcement = Announcement {
                issuer: ISS,
                user_issuer,
                kind,
                value,
                revoked_at: 100,
                initiating_entity: "admin",
                reason: "offboarded",
                reinstated: false,
            };
            for reinstated in [false, true] {
                let announcement = Announcement {
                    reinstated,
                    ..announcement
                };
                let claims = announcement.claims("orders-api", "set-1", 101);
                let wire = serde_json::to_value(&claims).unwrap();
                assert_eq!(wire["sub_id"], sub_id, "{kind}");
                assert_eq!(wire["aud"], "orders-api");
                assert_eq!(wire["events"].as_object().unwrap().len(), 1);
                let back: SetClaims = serde_json::from_value(wire).unwrap();
                let event = read_revocation(ISS, &back).unwrap().unwrap();
                assert_eq!(
                    (
                        event.kind,
                        event.value.as_str(),
                        event.issuer.as_deref(),
                        event.revoked_at,
                        event.reinstated
                    ),
                    (kind, value, user_issuer, 100, reinstated)
                );
            }
        }
    }

    #[test]
    fn session_revoked_uses_the_caep_uri_and_own_types_live_under_the_issuer() {
        assert_eq!(event_type_for(RevocationKind::Session, ISS), SESSION_REVOKED);
        assert_eq!(
            event_type_for(RevocationKind::Agent, ISS),
            "https://sts.example.com/ssf/event-type/agent-revoked"
        );
        assert!(events_supported(ISS).contains(&client_revoked(ISS)));
    }

    #[test]
    fn foreign_and_malformed_sets_are_not_revocations() {
        let claims = |events: Value, sub_id: Value| -> SetClaims {
            serde_json::from_value(json!({
                "iss": ISS, "aud": "a", "jti": "j", "iat": 1, "sub_id": sub_id, "events": events
            }))
            .unwrap()
        };
        let opaque = json!({"format": "opaque", "id": "x"});
        let two = json!({SESSION_REVOKED: {}, VERIFICATION: {}});
        assert_eq!(
            read_revocation(ISS, &claims(two, opaque.clone())),
            Err(SetError::EventCount)
        );
        let other = json!({"https://other/event": {}});
        assert_eq!(
            read_revocation(ISS, &claims(other, opaque.clone())),
            Err(SetError::UnsupportedEvent)
        );
        let foreign_jwt = json!({"format": "jwt_id", "iss": "https://elsewhere", "jti": "j"});
        assert_eq!(
            read_revocation(ISS, &claims(json!({SESSION_REVOKED: {}}), foreign_jwt)),
            Err(SetError::UnsupportedSubject)
        );
        let verification = claims(json!({VERIFICATION: {"state": "s"}}), opaque);
        assert_eq!(read_revocation(ISS, &verification), Ok(None));
    }
}
