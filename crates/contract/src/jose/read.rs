//! The one way a JWS is read, whoever reads it: [`read`] with a [`Profile`] (what this
//! door accepts) and a [`KeySource`] (whose keys may have signed it).
//!
//! In order: size; compact JWS shape (never a JWE); no `crit`; `alg` on the profile's
//! list; `typ` as the profile says; a `kid` when required; a signature present. Then the
//! key source picks keys (it may read the unverified `iss` to choose an issuer, and
//! refuse an issuer it does not trust); the signature must verify with one of them (or
//! be remembered as verified by a key still offered); and the time rule holds. What a
//! door checks beyond that (`iss`, `aud`, its own claims) it checks on what this
//! returns. Headers that name their own key (`jku`, `x5u`, `jwk`) are never read
//! here: only a key source a door chose on purpose may use the header, as a proof of
//! possession's does.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::algorithm::parse_allowed;
use super::compact::{JwtShapeError, decode_object, segments};
use super::jwks::JwksCache;
use super::key::{VerificationKey, verifying_key};
use super::profile::{Profile, Times, media_subtype};
use super::refusal::{Refusal, cut};
use super::verified::VerifiedTokens;
use crate::clock::UnixTime;

/// A JWS that passed the checks made before any key is looked at. Its claims are
/// decoded when first asked for, and trusted only once [`read`] returns.
#[derive(Debug)]
pub struct Unverified<'t> {
    token: &'t str,
    header_segment: &'t str,
    payload: &'t str,
    claims: OnceLock<Option<Map<String, Value>>>,
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
}

/// The header members every door acts on, read straight from the JSON; a member of
/// the wrong type (or twice) makes the header malformed, others are not read here.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    alg: Option<Value>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Present,
}

/// Whether a member is there at all, whatever its value (even `null`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

impl<'t> Unverified<'t> {
    /// The profile's checks of size, shape and header, in order.
    fn read(token: &'t str, profile: &Profile<'_>) -> Result<Self, Refusal> {
        if token.len() > profile.max_bytes {
            return Err(Refusal::TooLarge);
        }
        let parts = segments(token).map_err(|e| match e {
            JwtShapeError::Encrypted => Refusal::Encrypted,
            JwtShapeError::Malformed => Refusal::Malformed,
        })?;
        let bytes = URL_SAFE_NO_PAD.decode(parts.header).map_err(|_| Refusal::Malformed)?;
        // A JSON object only: a derived struct would also take an array, by position.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Refusal::Malformed);
        }
        let header: Header = serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)?;
        if header.crit.0 {
            return Err(Refusal::CriticalHeader);
        }
        let alg = match &header.alg {
            Some(Value::String(name)) => parse_allowed(name)
                .filter(|alg| profile.algorithms.contains(alg))
                .ok_or_else(|| Refusal::Algorithm(Some(cut(name))))?,
            _ => return Err(Refusal::Algorithm(None)),
        };
        if !profile.types.admits(header.typ.as_deref().map(media_subtype)) {
            return Err(Refusal::Type);
        }
        if profile.kid_required && header.kid.as_deref().is_none_or(str::is_empty) {
            return Err(Refusal::MissingKid);
        }
        if parts.signature.is_empty() {
            return Err(Refusal::Malformed);
        }
        Ok(Self {
            token,
            header_segment: parts.header,
            payload: parts.payload,
            claims: OnceLock::new(),
            alg,
            kid: header.kid,
            typ: header.typ,
        })
    }

    /// The algorithm, on the profile's list.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid`, when the header has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ`, without `application/`, when present (compare it case-insensitively).
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref().map(media_subtype)
    }

    /// The whole protected header, decoded again: for a key source that reads a member
    /// no other door does (a proof's `jwk`).
    pub fn header(&self) -> Result<Map<String, Value>, Refusal> {
        decode_object(self.header_segment).map_err(|_| Refusal::Malformed)
    }

    /// The claims set, not yet trusted while a key source reads it.
    pub fn claims(&self) -> Result<&Map<String, Value>, Refusal> {
        self.claims
            .get_or_init(|| decode_object(self.payload).ok())
            .as_ref()
            .ok_or(Refusal::Malformed)
    }

    /// The unverified `iss`, for a key source that picks keys by issuer.
    pub fn issuer(&self) -> Result<&str, Refusal> {
        self.claims()?
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(Refusal::MissingClaim("iss"))
    }

    /// The keys of `jwks` for this token's `kid` and `alg` at `now`.
    pub async fn keys_from(&self, jwks: &JwksCache, now: UnixTime) -> Result<Vec<Arc<VerificationKey>>, Refusal> {
        jwks.keys_for(self.kid(), self.alg, now)
            .await
            .map_err(|e| Refusal::keys(e, self.kid()))
    }
}

/// Where the keys that may have signed a JWS come from: an issuer's JWKS, our own key
/// ring, a client's configured keys, a transmitter's keys, or (for a proof of
/// possession) the key its header carries. `Signer` is what the source learnt about
/// who signed (which issuer, which client), handed back with the verified token.
pub trait KeySource {
    /// Who signed, as far as this source can tell.
    type Signer;

    /// The candidate keys for `jws` at `now`, or why there are none (an untrusted
    /// issuer, an algorithm this issuer does not use, keys unavailable).
    fn keys(
        &self,
        jws: &Unverified<'_>,
        now: UnixTime,
    ) -> impl Future<Output = Result<(Self::Signer, Vec<Arc<VerificationKey>>), Refusal>> + Send;
}

impl KeySource for JwksCache {
    type Signer = ();

    async fn keys(&self, jws: &Unverified<'_>, now: UnixTime) -> Result<((), Vec<Arc<VerificationKey>>), Refusal> {
        Ok(((), jws.keys_from(self, now).await?))
    }
}

/// A JWS whose signature verified (or was remembered as verified by a key its source
/// still offers) and whose times hold.
pub struct Jws<'t, S, T = ()> {
    /// Who signed, as the key source tells.
    pub signer: S,
    /// The time claims, checked.
    pub times: Times,
    head: Unverified<'t>,
    recalled: Option<T>,
    fresh: Option<Fresh<'t, T>>,
    now: UnixTime,
    leeway: u64,
}

/// What [`Jws::remember`] needs of a signature checked now.
struct Fresh<'t, T> {
    key: Arc<VerificationKey>,
    memory: &'t VerifiedTokens<T>,
}

impl<S: std::fmt::Debug, T> std::fmt::Debug for Jws<'_, S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("signer", &self.signer)
            .field("alg", &self.head.alg)
            .field("typ", &self.head.typ())
            .field("times", &self.times)
            .field("recalled", &self.recalled.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, T: Clone> Jws<'_, S, T> {
    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.head.alg
    }

    /// The `kid`, when present.
    pub fn kid(&self) -> Option<&str> {
        self.head.kid()
    }

    /// The `typ`, without `application/`, when present (compare it case-insensitively).
    pub fn typ(&self) -> Option<&str> {
        self.head.typ()
    }

    /// The whole protected header, decoded again.
    pub fn header(&self) -> Result<Map<String, Value>, Refusal> {
        self.head.header()
    }

    /// The claims set.
    pub fn claims(&self) -> Result<&Map<String, Value>, Refusal> {
        self.head.claims()
    }

    /// The claims set, taken out without copying (asked again, it is decoded again).
    pub fn take_claims(&mut self) -> Result<Map<String, Value>, Refusal> {
        match self.head.claims.take() {
            Some(decoded) => decoded.ok_or(Refusal::Malformed),
            None => decode_object(self.head.payload).map_err(|_| Refusal::Malformed),
        }
    }

    /// The claims set, taken.
    pub fn into_claims(mut self) -> Result<Map<String, Value>, Refusal> {
        self.take_claims()
    }

    /// What the door kept when this token was read before, if the memory recalled it.
    pub fn recalled(&self) -> Option<&T> {
        self.recalled.as_ref()
    }

    /// [`Self::recalled`], taken.
    pub fn take_recalled(&mut self) -> Option<T> {
        self.recalled.take()
    }

    /// Remember that this token verified, with what the door derived from it, until its
    /// `exp` (plus leeway): the next read of the same bytes skips the signature check
    /// while the key is still offered. No-op for a recalled token or one without `exp`.
    pub fn remember(&self, kept: T) {
        if let (Some(fresh), Some(exp)) = (&self.fresh, self.times.exp)
            && self.now < exp.saturating_add(self.leeway)
        {
            let (token, alg) = (self.head.token, self.head.alg);
            fresh.memory.keep(token, &fresh.key, alg, self.times, kept);
        }
    }
}

/// Read `token` as `profile` says with keys from `source`. With a `memory`, a token
/// verified before by a key `source` still offers is not verified again (the time rule
/// still runs, on the remembered times); [`Jws::remember`] stores a fresh verdict.
pub async fn read<'t, S: KeySource, T: Clone>(
    token: &'t str,
    profile: &Profile<'_>,
    source: &S,
    memory: Option<&'t VerifiedTokens<T>>,
) -> Result<Jws<'t, S::Signer, T>, Refusal> {
    let head = Unverified::read(token, profile)?;
    let rule = profile.times;
    let (signer, keys) = source.keys(&head, rule.now).await?;
    let recalled = memory.and_then(|memory| memory.recall(token, head.alg, &keys, rule.now, rule.leeway));
    let (times, recalled, fresh) = match (recalled, memory) {
        (Some((times, kept)), _) => (times, Some(kept), None),
        (None, memory) => {
            let key = verifying_key(token, head.alg, &keys).map_err(|e| Refusal::keys(e, head.kid()))?;
            let times = Times::read(head.claims()?)?;
            let fresh = memory.map(|memory| Fresh {
                key: Arc::clone(key),
                memory,
            });
            (times, None, fresh)
        }
    };
    let times = rule.check(times)?;
    Ok(Jws {
        signer,
        times,
        head,
        recalled,
        fresh,
        now: rule.now,
        leeway: rule.leeway,
    })
}

/// For doors that keep no memory of verified tokens: `read(.., NO_MEMORY)`.
pub const NO_MEMORY: Option<&'static VerifiedTokens> = None;

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
