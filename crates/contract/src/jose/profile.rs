//! What a door accepts of a JWS: its `typ`, algorithms, `kid` rule, size and time rule.
//!
//! A [`Profile`] is the whole difference between two doors; [`super::read`] applies it
//! the same way everywhere. The time rule is [`TimeRule::check`], the only place
//! `exp`, `nbf` and `iat` are judged.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::algorithm::ASYMMETRIC;
use super::compact::time_claim;
use super::refusal::Refusal;
use crate::clock::UnixTime;

/// The `typ` header values a door accepts, compared case-insensitively with any
/// `application/` prefix dropped (RFC 7515 §4.1.9). Values are given without the
/// prefix, e.g. `at+jwt`.
#[derive(Debug, Clone, Copy)]
pub enum Types<'a> {
    /// Any `typ`, or none (client assertions: RFC 7523 names no type).
    Any,
    /// Exactly one of these; a token without `typ` is refused (explicit typing).
    Exactly(&'a [&'a str]),
    /// One of these, or no `typ` at all (tokens from IdPs that do not type them).
    OrUntyped(&'a [&'a str]),
}

impl Types<'_> {
    /// Whether a `typ` (without its `application/` prefix, see [`media_subtype`]) is
    /// accepted.
    pub fn admits(&self, typ: Option<&str>) -> bool {
        match (self, typ) {
            (Types::Any, _) => true,
            (Types::Exactly(_), None) => false,
            (Types::OrUntyped(_), None) => true,
            (Types::Exactly(list) | Types::OrUntyped(list), Some(typ)) => {
                list.iter().any(|accepted| accepted.eq_ignore_ascii_case(typ))
            }
        }
    }
}

/// A `typ` value without its `application/` prefix, which may be omitted (RFC 7515
/// §4.1.9); compare what is left case-insensitively.
pub fn media_subtype(typ: &str) -> &str {
    const PREFIX: &str = "application/";
    match (typ.get(..PREFIX.len()), typ.get(PREFIX.len()..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case(PREFIX) => rest,
        _ => typ,
    }
}

/// The time claims of a JWS as read (RFC 7519 NumericDate, whole seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    /// `exp`, when present.
    pub exp: Option<UnixTime>,
    /// `nbf`, when present.
    pub nbf: Option<UnixTime>,
    /// `iat`, when present.
    pub iat: Option<UnixTime>,
}

impl Times {
    /// Read `exp`, `nbf` and `iat`; a present one that is not a non-negative number is
    /// refused ([`Refusal::BadClaim`]).
    pub fn read(claims: &Map<String, Value>) -> Result<Self, Refusal> {
        let read = |name: &'static str| match time_claim(claims, name) {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(value)),
            Some(Err(())) => Err(Refusal::BadClaim(name)),
        };
        Ok(Self {
            exp: read("exp")?,
            nbf: read("nbf")?,
            iat: read("iat")?,
        })
    }
}

/// Whether a JWS's validity window (`exp`, `nbf`) is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// `exp` required, `exp` and `nbf` judged: every token that grants something.
    Required,
    /// `exp` and `nbf` judged when present.
    Optional,
    /// Neither judged: a statement of fact (a SET) stays true however late it is read,
    /// and a revocation applied late fails closed; `iat` dates it.
    Ignored,
}

/// When a JWS may be used: `exp` not past, `nbf` and `iat` not in the future, each
/// with `leeway`, at `now`; and what a door adds (required claims, a longest lifetime,
/// an oldest `iat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRule {
    /// The time judged against (passed in; never read from a clock here).
    pub now: UnixTime,
    /// Clock skew allowed, in seconds.
    pub leeway: u64,
    /// Whether `exp` is required and `exp`/`nbf` judged.
    pub validity: Validity,
    /// Refuse a token without `iat` (events and proofs, judged by when they were made).
    pub iat_required: bool,
    /// Refuse an `exp` further than this beyond `now` (assertions whose `jti` is kept
    /// until they expire).
    pub max_lifetime: Option<u64>,
    /// Refuse an `iat` this many seconds or more before `now` (proofs of possession,
    /// events older than the replay memory).
    pub max_age: Option<u64>,
}

impl TimeRule {
    /// `exp` required, `iat` optional, no lifetime or age bound.
    pub fn new(now: UnixTime, leeway: u64) -> Self {
        Self {
            now,
            leeway,
            validity: Validity::Required,
            iat_required: false,
            max_lifetime: None,
            max_age: None,
        }
    }

    /// The one time rule. Returns the times when they pass.
    pub fn check(&self, times: Times) -> Result<Times, Refusal> {
        let now = self.now;
        let horizon = now.saturating_add(self.leeway);
        if self.validity != Validity::Ignored {
            match times.exp {
                None if self.validity == Validity::Required => return Err(Refusal::MissingClaim("exp")),
                None => {}
                Some(exp) if exp.saturating_add(self.leeway) <= now => return Err(Refusal::Expired),
                Some(exp) if self.max_lifetime.is_some_and(|max| exp > now.saturating_add(max)) => {
                    return Err(Refusal::LivesTooLong);
                }
                Some(_) => {}
            }
            if times.nbf.is_some_and(|nbf| nbf > horizon) {
                return Err(Refusal::NotYetValid);
            }
        }
        match times.iat {
            None if self.iat_required => Err(Refusal::MissingClaim("iat")),
            Some(iat) if iat > horizon => Err(Refusal::IssuedInFuture),
            Some(iat) if self.max_age.is_some_and(|max| iat.saturating_add(max) <= now) => Err(Refusal::TooOld),
            _ => Ok(times),
        }
    }
}

/// Everything a door accepts of a JWS besides its key source.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    /// Accepted `typ` values.
    pub types: Types<'a>,
    /// Accepted algorithms: [`ASYMMETRIC`] unless the door narrows it (a key source may
    /// narrow further per issuer; a key verifies only its own algorithms).
    pub algorithms: &'a [Algorithm],
    /// Refuse a token whose header has no `kid`.
    pub kid_required: bool,
    /// Largest token accepted, in bytes.
    pub max_bytes: usize,
    /// When the token may be used.
    pub times: TimeRule,
}

impl<'a> Profile<'a> {
    /// Every asymmetric algorithm, `kid` optional, `exp` required.
    pub fn new(types: Types<'a>, max_bytes: usize, now: UnixTime, leeway: u64) -> Self {
        Self {
            types,
            algorithms: &ASYMMETRIC,
            kid_required: false,
            max_bytes,
            times: TimeRule::new(now, leeway),
        }
    }

    /// Refuse tokens without a `kid`.
    pub fn kid_required(mut self) -> Self {
        self.kid_required = true;
        self
    }

    /// Accept tokens without `exp` (a present one is still honoured).
    pub fn exp_optional(mut self) -> Self {
        self.times.validity = Validity::Optional;
        self
    }

    /// Judge neither `exp` nor `nbf`: for statements of fact (SETs).
    pub fn validity_ignored(mut self) -> Self {
        self.times.validity = Validity::Ignored;
        self
    }

    /// Refuse tokens without `iat`.
    pub fn iat_required(mut self) -> Self {
        self.times.iat_required = true;
        self
    }

    /// Refuse tokens whose `exp` is more than `seconds` after now.
    pub fn max_lifetime(mut self, seconds: u64) -> Self {
        self.times.max_lifetime = Some(seconds);
        self
    }

    /// Refuse tokens whose `iat` is `seconds` or more before now.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.times.max_age = Some(seconds);
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn times(value: Value) -> Result<Times, Refusal> {
        Times::read(value.as_object().unwrap())
    }

    #[test]
    fn types_compare_normalised_values() {
        assert_eq!(media_subtype("Application/AT+JWT"), "AT+JWT");
        assert_eq!(media_subtype("JWT"), "JWT");
        assert_eq!(media_subtype("application/"), "");
        assert_eq!(media_subtype("appl"), "appl");
        let access = Types::Exactly(&["at+jwt"]);
        assert!(access.admits(Some("at+jwt")));
        assert!(!access.admits(None));
        assert!(!access.admits(Some("jwt")));
        let upstream = Types::OrUntyped(&["jwt", "at+jwt"]);
        assert!(upstream.admits(None));
        assert!(!upstream.admits(Some("dpop+jwt")));
        assert!(Types::Any.admits(Some("anything")));
        let access = Types::Exactly(&["at+jwt"]);
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(access.admits(Some(media_subtype(typ))), "{typ}");
        }
        for typ in ["jwt", "JWT", "application/jwt", "dpop+jwt", "at+jwt2", ""] {
            assert!(!access.admits(Some(media_subtype(typ))), "{typ}");
        }
        let grant = Types::Exactly(&["oauth-id-jag+jwt"]);
        for typ in ["oauth-id-jag+jwt", "OAuth-ID-JAG+JWT", "application/oauth-id-jag+jwt"] {
            assert!(grant.admits(Some(media_subtype(typ))), "{typ}");
        }
        for typ in ["jwt", "at+jwt", "id-jag+jwt", "oauth-id-jag"] {
            assert!(!grant.admits(Some(media_subtype(typ))), "{typ}");
        }
    }

    #[test]
    fn the_time_rule_uses_leeway_on_every_claim() {
        let rule = TimeRule::new(1000, 30);
        let t = |v| times(v).unwrap();
        assert!(rule.check(t(json!({"exp": 971}))).is_ok());
        assert_eq!(rule.check(t(json!({"exp": 970}))), Err(Refusal::Expired));
        assert!(rule.check(t(json!({"exp": 2000, "nbf": 1030}))).is_ok());
        assert_eq!(
            rule.check(t(json!({"exp": 2000, "nbf": 1031}))),
            Err(Refusal::NotYetValid)
        );
        assert!(rule.check(t(json!({"exp": 2000, "iat": 1030}))).is_ok());
        assert_eq!(
            rule.check(t(json!({"exp": 2000, "iat": 1031}))),
            Err(Refusal::IssuedInFuture)
        );
        assert_eq!(rule.check(t(json!({}))), Err(Refusal::MissingClaim("exp")));
        assert!(rule.check(t(json!({"exp": u64::MAX}))).is_ok());
    }

    #[test]
    fn doors_add_required_claims_lifetime_and_age() {
        let mut rule = TimeRule::new(1000, 30);
        rule.validity = Validity::Optional;
        assert_eq!(rule.check(Times::default()), Ok(Times::default()));
        assert_eq!(rule.check(times(json!({"exp": 970})).unwrap()), Err(Refusal::Expired));
        rule.validity = Validity::Ignored;
        let late = times(json!({"exp": 970, "nbf": 2000})).unwrap();
        assert_eq!(rule.check(late), Ok(late));
        rule.iat_required = true;
        assert_eq!(rule.check(Times::default()), Err(Refusal::MissingClaim("iat")));
        rule.max_age = Some(60);
        assert!(rule.check(times(json!({"iat": 941})).unwrap()).is_ok());
        assert_eq!(rule.check(times(json!({"iat": 940})).unwrap()), Err(Refusal::TooOld));
        let mut rule = TimeRule::new(1000, 30);
        rule.max_lifetime = Some(600);
        assert!(rule.check(times(json!({"exp": 1600})).unwrap()).is_ok());
        assert_eq!(
            rule.check(times(json!({"exp": 1601})).unwrap()),
            Err(Refusal::LivesTooLong)
        );
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_refused() {
        assert_eq!(times(json!({"exp": "soon"})), Err(Refusal::BadClaim("exp")));
        assert_eq!(times(json!({"exp": 10, "nbf": -1})), Err(Refusal::BadClaim("nbf")));
        assert_eq!(times(json!({"iat": null})), Err(Refusal::BadClaim("iat")));
        assert_eq!(times(json!({"exp": 10.5})).unwrap().exp, Some(10));
    }
}
