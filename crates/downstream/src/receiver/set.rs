//! Every rule a received SET must pass before a sink sees it (RFC 8417, SSF 1.0),
//! read by the one JWS pipeline, and the one naming of a broken rule for `setErrs`.

use serde_json::Value;

use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::identifier;
use mcp_sts_contract::jose::compact::{audiences, str_claim};
use mcp_sts_contract::jose::{KeySource, NO_MEMORY, Profile, Refusal, Types};
use mcp_sts_contract::set::{SET_TYP, SetClaims};

/// How a receiver reads the SETs of one transmitter.
#[derive(Debug, Clone)]
pub struct SetRules {
    /// The receiver as the SETs' `aud` names it.
    pub audience: String,
    /// Largest SET accepted, in bytes.
    pub max_bytes: usize,
    /// Clock skew allowed on `iat`, in seconds.
    pub leeway: u64,
    /// The header must name its key (`kid`).
    pub kid_required: bool,
    /// A SET whose `iat` is older than this many seconds is refused: past the memory
    /// of SETs already applied, a replay could not be told apart.
    pub max_age: Option<u64>,
}

/// A SET refused: the rule it broke and the RFC 8935 §2.4 error code reported for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetRefusal {
    /// `setErrs` `err`: `invalid_key` when no key of the transmitter's signed it,
    /// else `invalid_request`.
    pub err: &'static str,
    /// `setErrs` `description`: the rule, a short stable name.
    pub rule: &'static str,
}

impl SetRefusal {
    /// The refusal of `rule`.
    pub fn new(rule: &'static str) -> Self {
        let err = if rule == "signature" {
            "invalid_key"
        } else {
            "invalid_request"
        };
        Self { err, rule }
    }
}

/// Why a SET was not read.
pub(super) enum Unread {
    /// The transmitter's keys are unreachable: nothing can be read now.
    KeysUnavailable(String),
    /// The SET breaks a rule.
    Refused(SetRefusal),
}

/// Read `set` from the transmitter `issuer` by `rules` with `keys`: typed
/// `secevent+jwt`, an accepted algorithm, the signature, `iss` exactly the
/// transmitter, `aud` naming us, `iat` present and not in the future (nor older than
/// `max_age`), one well-formed `jti`. A revocation applied however late fails closed,
/// so `exp` and `nbf` are not judged.
pub(super) async fn read<K: KeySource>(
    set: &str,
    issuer: &str,
    rules: &SetRules,
    keys: &K,
    now: UnixTime,
) -> Result<SetClaims, Unread> {
    let mut profile = Profile::new(Types::Exactly(&[SET_TYP]), rules.max_bytes, now, rules.leeway)
        .validity_ignored()
        .iat_required();
    if rules.kid_required {
        profile = profile.kid_required();
    }
    if let Some(age) = rules.max_age {
        profile = profile.max_age(age);
    }
    let claims = mcp_sts_contract::jose::read(set, &profile, keys, NO_MEMORY)
        .await
        .and_then(|jws| jws.into_claims())
        .map_err(unread)?;
    let refused = |rule| Unread::Refused(SetRefusal::new(rule));
    if str_claim(&claims, "iss") != Some(issuer) {
        return Err(refused("iss"));
    }
    if !audiences(&claims).contains(&rules.audience.as_str()) {
        return Err(refused("aud"));
    }
    let claims: SetClaims = serde_json::from_value(Value::Object(claims)).map_err(|_| refused("claims"))?;
    if identifier::check(&claims.jti).is_err() {
        return Err(refused("jti"));
    }
    Ok(claims)
}

/// The rule a SET broke in the JWS pipeline, as `setErrs` and logs name it.
fn unread(refusal: Refusal) -> Unread {
    let rule = match refusal {
        Refusal::KeysUnavailable(why) => return Unread::KeysUnavailable(why),
        Refusal::TooLarge => "size",
        Refusal::Encrypted | Refusal::Malformed => "shape",
        Refusal::CriticalHeader => "crit",
        Refusal::Type => "typ",
        Refusal::Algorithm(_) | Refusal::AlgorithmMismatch => "alg",
        Refusal::MissingKid | Refusal::UnknownKey(_) | Refusal::BadSignature | Refusal::UntrustedIssuer => "signature",
        Refusal::EmbeddedKey(_) => "signature",
        Refusal::MissingClaim("iat") | Refusal::BadClaim("iat") | Refusal::IssuedInFuture => "iat",
        Refusal::TooOld => "iat_too_old",
        Refusal::Expired | Refusal::LivesTooLong => "exp",
        Refusal::NotYetValid => "nbf",
        Refusal::MissingClaim(_) | Refusal::BadClaim(_) => "claims",
    };
    Unread::Refused(SetRefusal::new(rule))
}
