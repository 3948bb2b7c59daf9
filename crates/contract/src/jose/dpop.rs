//! RFC 9449 DPoP proofs, read by the one pipeline ([`super::read`]) like every other
//! JWS: the profile is `typ` `dpop+jwt`, the one algorithm list
//! ([`super::algorithm::ASYMMETRIC`]), `iat` required within
//! ±[`IAT_WINDOW`] seconds; the key source is the proof's own public `jwk` header
//! ([`EmbeddedKey`]), the one door where a header may name the key, because the proof
//! exists to show possession of exactly that key. A key with private members, a
//! symmetric key, or an algorithm the key cannot use is refused before any signature
//! check. What the proof binds (method, URL, access token hash, nonce) and whether its
//! `jti` was seen before are the door's to check, with [`Proof`]'s helpers.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::algorithm::algorithms_for_key;
use super::key::VerificationKey;
use super::profile::{Profile, Types};
use super::read::{KeySource, NO_MEMORY, Unverified, read};
use super::refusal::Refusal;
use crate::clock::UnixTime;

/// The `typ` of a proof (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";

/// How far a proof's `iat` may be from now, either way, in seconds.
pub const IAT_WINDOW: u64 = 60;

/// The largest proof read: a header with an RSA-4096 `jwk`, claims and signature fit.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` kept in a replay memory.
const MAX_JTI_BYTES: usize = 256;

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2,
/// §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The key source of a proof: the public key in its own `jwk` header. The signer it
/// reports is that key's RFC 7638 thumbprint (`jkt`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddedKey;

impl KeySource for EmbeddedKey {
    type Signer = String;

    async fn keys(&self, jws: &Unverified<'_>, _now: UnixTime) -> Result<(String, Vec<Arc<VerificationKey>>), Refusal> {
        let header = jws.header()?;
        let (jkt, key) = embedded_key(&header)?;
        if !key.algorithms.contains(&jws.alg()) {
            return Err(Refusal::AlgorithmMismatch);
        }
        Ok((jkt, vec![Arc::new(key)]))
    }
}

/// The public key of a proof's header and its thumbprint.
fn embedded_key(header: &Map<String, Value>) -> Result<(String, VerificationKey), Refusal> {
    let Some(Value::Object(members)) = header.get("jwk") else {
        return Err(Refusal::EmbeddedKey("the proof header has no jwk object"));
    };
    if PRIVATE_MEMBERS.iter().any(|name| members.contains_key(*name)) {
        return Err(Refusal::EmbeddedKey("the proof jwk holds private key material"));
    }
    let unusable = || Refusal::EmbeddedKey("the proof jwk is not a usable public key");
    let jwk: Jwk = serde_json::from_value(Value::Object(members.clone())).map_err(|_| unusable())?;
    let algorithms = algorithms_for_key(&jwk);
    if algorithms.is_empty() {
        return Err(unusable());
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| unusable())?;
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| unusable())?;
    let key = VerificationKey {
        kid: None,
        algorithms,
        key,
    };
    Ok((jkt, key))
}

/// A proof whose signature verified with its own key and whose `iat` is in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key: what a bound token's `cnf.jkt` holds.
    pub jkt: String,
    /// The proof's unique id, for the replay memory.
    pub jti: String,
    /// The HTTP method it was made for.
    pub htm: String,
    /// The URL it was made for.
    pub htu: String,
    /// When it was made.
    pub iat: UnixTime,
    /// Base64url SHA-256 of the access token it accompanies, when it accompanies one.
    pub ath: Option<String>,
    /// The server nonce it carries, if any.
    pub nonce: Option<String>,
}

/// Why a proof is refused, one variant per rule; each door maps these once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The JWS itself: shape, `typ`, algorithm, key, signature, `iat`.
    #[error("{0}")]
    Jws(Refusal),
    /// A claim is missing or of the wrong type.
    #[error("the proof has no usable {0} claim")]
    Claim(&'static str),
    /// `htm` is not the request's method.
    #[error("htm is not the method of this request")]
    Method,
    /// `htu` is not the request's URL.
    #[error("htu is not the URL of this request")]
    Target,
    /// `ath` is absent or is not the hash of the presented token.
    #[error("ath is not the hash of the presented token")]
    TokenHash,
    /// The proof's key is not the one the token is bound to.
    #[error("the proof key is not the key the token is bound to")]
    KeyMismatch,
}

/// Read a proof at `now`: the pipeline, then its claims (`jti`, `htm`, `htu` strings;
/// `ath` and `nonce` strings when present).
pub async fn read_proof(proof: &str, now: UnixTime) -> Result<Proof, ProofError> {
    let profile = Profile::new(Types::Exactly(&[TYP]), MAX_PROOF_BYTES, now, IAT_WINDOW)
        .exp_optional()
        .iat_required()
        .max_age(IAT_WINDOW.saturating_add(1));
    let mut jws = read(proof, &profile, &EmbeddedKey, NO_MEMORY)
        .await
        .map_err(ProofError::Jws)?;
    let iat = jws.times.iat.ok_or(ProofError::Claim("iat"))?;
    let claims = jws.take_claims().map_err(ProofError::Jws)?;
    let text = |name: &'static str| match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(Some(value.clone())),
        None => Ok(None),
        Some(_) => Err(ProofError::Claim(name)),
    };
    let required = |name: &'static str| text(name)?.ok_or(ProofError::Claim(name));
    let jti = required("jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(ProofError::Claim("jti"));
    }
    Ok(Proof {
        jkt: jws.signer,
        jti,
        htm: required("htm")?,
        htu: required("htu")?,
        iat,
        ath: text("ath")?,
        nonce: text("nonce")?,
    })
}

impl Proof {
    /// The proof was made for `method` on `url` (the URL as this service is configured
    /// to be reached, compared after normalisation, query and fragment ignored).
    pub fn check_request(&self, method: &str, url: &str) -> Result<(), ProofError> {
        if self.htm != method {
            return Err(ProofError::Method);
        }
        match (normalise_url(&self.htu), normalise_url(url)) {
            (Some(htu), Some(expected)) if htu == expected => Ok(()),
            _ => Err(ProofError::Target),
        }
    }

    /// The proof accompanies `token` (`ath`, RFC 9449 §4.3).
    pub fn check_token(&self, token: &str) -> Result<(), ProofError> {
        match &self.ath {
            Some(ath) if *ath == token_hash(token) => Ok(()),
            _ => Err(ProofError::TokenHash),
        }
    }

    /// The proof is signed by the key a token is bound to.
    pub fn check_key(&self, jkt: &str) -> Result<(), ProofError> {
        if self.jkt == jkt {
            Ok(())
        } else {
            Err(ProofError::KeyMismatch)
        }
    }

    /// The once-only marker of this proof: its `jti`, scoped by its key.
    pub fn marker(&self) -> String {
        format!("dpop:{}:{}", self.jkt, self.jti)
    }

    /// Until when the marker must be kept: past the last moment its `iat` is accepted.
    pub fn remember_until(&self) -> UnixTime {
        self.iat.saturating_add(IAT_WINDOW).saturating_add(1)
    }
}

/// `ath`: base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// A URL after RFC 3986 syntax- and scheme-based normalisation (case of scheme and
/// host, default port, dot segments, empty path, case of percent-encodings and
/// percent-encoded unreserved characters), without query and fragment; `None` when it
/// is not an absolute http(s) URL.
pub fn normalise_url(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = normalise_percent_encoding(parsed.path());
    parsed.set_path(&path);
    Some(parsed.into())
}

/// Upper-case percent-encodings, and decode those of unreserved characters (RFC 3986
/// §6.2.2.1, §6.2.2.2).
fn normalise_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match (byte, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match escaped {
            Some(decoded) if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) => {
                out.push(char::from(decoded));
                i += 3;
            }
            Some(decoded) => {
                out.push_str(&format!("%{decoded:02X}"));
                i += 3;
            }
            None => {
                // Non-ASCII cannot occur: the URL parser percent-encodes it.
                out.push(char::from(byte));
                i += 1;
            }
        }
    }
    out
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
