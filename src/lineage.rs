//! Lineage: every revocation entry that can end a token, and what a hit means.
//!
//! A token minted by mcp-sts answers for everything it came from: its own `jti`, its
//! session, its user, the client it was issued to, and every agent in its chain. The
//! exchange (for subject and actor tokens), identity assertion grants (issued and
//! redeemed), introspection and `/revoke` all build
//! their store query here and read the answer here, so no door can check less than
//! another.

use std::collections::BTreeSet;

use crate::error::OAuthError;
use crate::revocation::{Revocation, RevocationGate, RevocationKey, RevocationKind};
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::revocation::{LineageKey, Namespace};
use mcp_sts_contract::{AccessClaims, Actor};

/// The revocation keys one request answers to, gathered before one store round trip.
/// A user or session answers to the entry for every issuer and to the entry for its
/// own issuer; one whose issuer a minted token does not record answers to the entry
/// of every trusted issuer (the contract's issuer rule, `covers`).
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    caller: Option<String>,
    trusted: Vec<String>,
    keys: BTreeSet<RevocationKey>,
}

impl Lineage {
    /// The lineage of a request made by the authenticated client `caller`, for a
    /// service trusting the issuers named `trusted` (`Issuers::names`): a revoked
    /// caller fails authentication, whatever else is found.
    pub fn for_caller(caller: &str, trusted: &[&str]) -> Self {
        let mut trusted: Vec<String> = trusted.iter().map(|s| (*s).to_owned()).collect();
        trusted.sort();
        let mut lineage = Self {
            caller: Some(caller.to_owned()),
            trusted,
            keys: BTreeSet::new(),
        };
        lineage.insert(LineageKey::client(caller));
        lineage
    }

    /// Every store key that can hold an entry reaching `key`.
    fn insert(&mut self, key: LineageKey<'_>) {
        self.keys.insert(RevocationKey::new(key.kind, key.value));
        match key.namespace {
            Namespace::Own => {}
            Namespace::Issuer(issuer) => {
                self.keys
                    .insert(RevocationKey::scoped(key.kind, Some(issuer.to_owned()), key.value));
            }
            Namespace::Unrecorded => {
                for issuer in &self.trusted {
                    self.keys
                        .insert(RevocationKey::scoped(key.kind, Some(issuer.clone()), key.value));
                }
            }
        }
    }

    /// A user, as subject, of `namespace` (see [`Namespace::of_user`]).
    pub(crate) fn user(&mut self, sub: &str, namespace: Namespace<'_>) -> &mut Self {
        self.insert(LineageKey::user(sub, namespace));
        self
    }

    /// A session of `namespace`.
    pub(crate) fn session(&mut self, sid: &str, namespace: Namespace<'_>) -> &mut Self {
        self.insert(LineageKey::session(sid, namespace));
        self
    }

    /// An actor in a chain: revoked as an agent, or offboarded as a user of its
    /// issuer (none: a registered client).
    pub(crate) fn actor(&mut self, actor: &Actor) -> &mut Self {
        for key in LineageKey::actor(&actor.sub, actor.iss.as_deref()) {
            self.insert(key);
        }
        self
    }

    /// One token or grant by its `jti` (an identity assertion grant, at redemption).
    pub(crate) fn token(&mut self, jti: &str) -> &mut Self {
        self.insert(LineageKey::token(jti));
        self
    }

    /// Everything a minted token came from, by the contract's one lineage rule
    /// (`contract::revocation::lineage`), which the downstream verifier and the MCP
    /// server kit apply too.
    pub fn minted(&mut self, claims: &AccessClaims) -> &mut Self {
        for key in mcp_sts_contract::revocation::lineage(claims) {
            self.insert(key);
        }
        self
    }

    /// Every actor of `chain`, current first.
    pub(crate) fn chain(&mut self, chain: &Actor) -> &mut Self {
        for actor in chain.iter() {
            self.actor(actor);
        }
        self
    }

    /// Ask the store behind `gate` about every key in one round trip and read the
    /// answer; a store that cannot answer is the gate's 503.
    pub(crate) async fn check(&self, gate: &RevocationGate, now: UnixTime) -> Result<Verdict, OAuthError> {
        let keys = self.keys();
        let found = gate.check(&keys, now).await?;
        Ok(self.verdict(&keys, &found))
    }

    /// The keys to ask the store about, in a stable order.
    pub fn keys(&self) -> Vec<RevocationKey> {
        self.keys.iter().cloned().collect()
    }

    /// Read the store's answer to [`Lineage::keys`] (same order).
    pub(crate) fn verdict(&self, keys: &[RevocationKey], found: &[Option<Revocation>]) -> Verdict {
        let mut hits: Vec<&RevocationKey> = keys
            .iter()
            .zip(found)
            .filter_map(|(key, entry)| entry.as_ref().map(|_| key))
            .collect();
        if hits
            .iter()
            .any(|k| k.kind == RevocationKind::Client && Some(&k.value) == self.caller.as_ref())
        {
            return Verdict::CallerRevoked;
        }
        hits.sort_by_key(|k| precedence(k.kind));
        match hits.first() {
            None => Verdict::Clear,
            Some(key) => Verdict::Revoked(key.kind),
        }
    }
}

/// Which hit names the refusal when several match: the most specific first.
fn precedence(kind: RevocationKind) -> u8 {
    match kind {
        RevocationKind::Token => 0,
        RevocationKind::Session => 1,
        RevocationKind::Subject => 2,
        RevocationKind::Agent => 3,
        RevocationKind::Client => 4,
    }
}

/// What the store said about a lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing in the lineage is revoked.
    Clear,
    /// The authenticated caller itself is revoked: it fails authentication.
    CallerRevoked,
    /// Something the presented token answers for is revoked.
    Revoked(RevocationKind),
}

impl Verdict {
    /// The answer at `/token` (RFC 8693 §2.2.2): a revoked caller is `invalid_client`,
    /// anything else revoked makes the presented token unacceptable (`invalid_request`).
    pub(crate) fn into_exchange_result(self) -> Result<(), OAuthError> {
        match self {
            Verdict::Clear => Ok(()),
            Verdict::CallerRevoked => Err(caller_revoked()),
            Verdict::Revoked(kind) => Err(revoked(kind)),
        }
    }

    /// The answer when an authorization grant is redeemed (RFC 6749 §5.2): a revoked
    /// caller is `invalid_client`; anything else revoked makes the grant `invalid_grant`.
    pub(crate) fn into_grant_result(self) -> Result<(), OAuthError> {
        match self {
            Verdict::Clear => Ok(()),
            Verdict::CallerRevoked => Err(caller_revoked()),
            Verdict::Revoked(kind) => {
                let refused = revoked(kind);
                Err(OAuthError::invalid_grant(refused.rule, refused.description))
            }
        }
    }

    /// The answer for doors that answer about a token rather than refuse it
    /// (introspection, `/revoke`): only a revoked caller is an error; `Ok(true)` when
    /// the token is still good.
    pub(crate) fn token_active(self) -> Result<bool, OAuthError> {
        match self {
            Verdict::Clear => Ok(true),
            Verdict::CallerRevoked => Err(caller_revoked()),
            Verdict::Revoked(_) => Ok(false),
        }
    }
}

/// A revoked client fails authentication, exactly as an unknown one does.
pub(crate) fn caller_revoked() -> OAuthError {
    OAuthError::invalid_client("client.revoked", "client authentication failed")
}

fn revoked(kind: RevocationKind) -> OAuthError {
    match kind {
        RevocationKind::Subject => {
            OAuthError::invalid_request("revoked.subject", "the subject or an actor has been revoked")
        }
        RevocationKind::Session => OAuthError::invalid_request("revoked.session", "the session has been revoked"),
        RevocationKind::Agent => {
            OAuthError::invalid_request("revoked.agent", "an agent in the delegation chain has been revoked")
        }
        RevocationKind::Client => OAuthError::invalid_request(
            "revoked.client",
            "the client a presented token was issued to has been revoked",
        ),
        RevocationKind::Token => OAuthError::invalid_request("revoked.token", "a presented token has been revoked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use mcp_sts_contract::{Actor, Audience, DelegationMode, UserContext};

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://sts".into(),
            sub: "alice".into(),
            aud: Audience::One("orders-api".into()),
            exp: 200,
            iat: Some(100),
            nbf: Some(100),
            jti: "j1".into(),
            client_id: "orders-mcp".into(),
            scope: "orders:read".into(),
            delegation_mode: DelegationMode::OnBehalfOf,
            act: Some(Actor::new("hop", None).followed_by(Some(Actor::new("agent", None)))),
            delegation_chain: None,
            sid: "s1".into(),
            txn: "t".into(),
            tenant: None,
            user: None,
            sub_id: None,
            cnf: None,
        }
    }

    fn entry(key: &RevocationKey) -> Revocation {
        Revocation {
            kind: key.kind,
            value: key.value.clone(),
            issuer: key.issuer.clone(),
            reason: String::new(),
            revoked_by: "test".into(),
            revoked_at: 0,
            expires_at: 1,
            expiry_requested: false,
        }
    }

    /// The verdict when exactly `revoked` is in the store.
    fn verdict_with(lineage: &Lineage, revoked: &RevocationKey) -> Verdict {
        let keys = lineage.keys();
        let found: Vec<Option<Revocation>> = keys.iter().map(|k| (k == revoked).then(|| entry(k))).collect();
        lineage.verdict(&keys, &found)
    }

    #[test]
    fn a_minted_token_answers_for_everything_it_came_from() {
        let mut lineage = Lineage::for_caller("billing-api", &[]);
        lineage.minted(&claims());
        let cases = [
            (RevocationKind::Token, "j1"),
            (RevocationKind::Subject, "alice"),
            (RevocationKind::Session, "s1"),
            (RevocationKind::Client, "orders-mcp"),
            (RevocationKind::Agent, "hop"),
            (RevocationKind::Agent, "agent"),
            (RevocationKind::Subject, "agent"),
        ];
        let missed: Vec<String> = cases
            .iter()
            .filter(|(kind, value)| {
                verdict_with(&lineage, &RevocationKey::new(*kind, *value)) != Verdict::Revoked(*kind)
            })
            .map(|(kind, value)| format!("{kind}:{value}"))
            .collect();
        assert!(missed.is_empty(), "not refused: {missed:?}");
        assert_eq!(
            verdict_with(&lineage, &RevocationKey::new(RevocationKind::Client, "billing-api")),
            Verdict::CallerRevoked
        );
        assert_eq!(
            verdict_with(&lineage, &RevocationKey::new(RevocationKind::Subject, "bob")),
            Verdict::Clear
        );
    }

    #[test]
    fn service_identity_tokens_answer_for_the_user_agent_and_recorded_chain() {
        let mut c = claims();
        c.delegation_mode = DelegationMode::ServiceIdentity;
        c.sub = "orders-mcp".into();
        c.act = None;
        c.delegation_chain = Some(Actor::new("orders-mcp", None).followed_by(Some(Actor::new("earlier", None))));
        c.user = Some(UserContext {
            sub: "alice".into(),
            tenant: None,
            agent: Some("agent-7".into()),
            iss: None,
        });
        let mut lineage = Lineage::for_caller("inventory-api", &[]);
        lineage.minted(&c);
        for (kind, value) in [
            (RevocationKind::Subject, "alice"),
            (RevocationKind::Agent, "agent-7"),
            (RevocationKind::Agent, "earlier"),
        ] {
            assert_eq!(
                verdict_with(&lineage, &RevocationKey::new(kind, value)),
                Verdict::Revoked(kind),
                "{kind}:{value}"
            );
        }
    }

    #[test]
    fn users_and_sessions_answer_to_their_own_issuers_entries_only() {
        const A: &str = "https://idp-a";
        const B: &str = "https://idp-b";
        let scoped = |kind, issuer: &str, value: &str| RevocationKey::scoped(kind, Some(issuer.to_owned()), value);
        let mut c = claims();
        c.sub_id = Some(mcp_sts_contract::set::SubjectId::IssSub {
            iss: A.into(),
            sub: "alice".into(),
        });
        c.act = Some(Actor::new("orders-mcp", None).followed_by(Some(Actor::new("agent", Some(A.into())))));
        let mut lineage = Lineage::for_caller("billing-api", &[A, B]);
        lineage.minted(&c);
        let verdict = |key: RevocationKey| verdict_with(&lineage, &key);
        let subject = RevocationKind::Subject;
        assert_eq!(verdict(scoped(subject, A, "alice")), Verdict::Revoked(subject));
        assert_eq!(verdict(RevocationKey::new(subject, "alice")), Verdict::Revoked(subject));
        assert_eq!(
            verdict(scoped(subject, B, "alice")),
            Verdict::Clear,
            "another issuer's alice"
        );
        let session = RevocationKind::Session;
        assert_eq!(verdict(scoped(session, A, "s1")), Verdict::Revoked(session));
        assert_eq!(verdict(scoped(session, B, "s1")), Verdict::Clear);
        assert_eq!(verdict(scoped(subject, A, "agent")), Verdict::Revoked(subject));
        assert_eq!(
            verdict(scoped(subject, A, "orders-mcp")),
            Verdict::Clear,
            "a user named like a client never reaches the client"
        );
        assert_eq!(
            verdict(RevocationKey::new(subject, "orders-mcp")),
            Verdict::Revoked(subject)
        );

        // A token minted before issuers were recorded answers to every trusted issuer.
        let mut old = Lineage::for_caller("billing-api", &[A, B]);
        old.minted(&claims());
        assert_eq!(
            verdict_with(&old, &scoped(subject, B, "alice")),
            Verdict::Revoked(subject)
        );
        assert_eq!(verdict_with(&old, &scoped(session, A, "s1")), Verdict::Revoked(session));
    }

    #[test]
    fn each_door_reads_a_hit_its_own_way() {
        assert_eq!(
            Verdict::CallerRevoked.into_exchange_result().unwrap_err().code,
            ErrorCode::InvalidClient
        );
        let client = Verdict::Revoked(RevocationKind::Client)
            .into_exchange_result()
            .unwrap_err();
        assert_eq!(
            (client.code, client.rule),
            (ErrorCode::InvalidRequest, "revoked.client")
        );
        let grant = Verdict::Revoked(RevocationKind::Subject)
            .into_grant_result()
            .unwrap_err();
        assert_eq!((grant.code, grant.rule), (ErrorCode::InvalidGrant, "revoked.subject"));
        assert_eq!(
            Verdict::CallerRevoked.into_grant_result().unwrap_err().code,
            ErrorCode::InvalidClient
        );
        assert_eq!(Verdict::Revoked(RevocationKind::Agent).token_active(), Ok(false));
        assert_eq!(Verdict::Clear.token_active(), Ok(true));
        assert!(Verdict::CallerRevoked.token_active().is_err());
    }
}
