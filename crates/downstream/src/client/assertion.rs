//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): the client proves its
//! identity with a short-lived JWT signed by its own private key, so no shared secret
//! exists anywhere. mcp-sts checks `iss` = `sub` = client_id, `aud` = its issuer or token
//! endpoint and nothing else, `exp` close ahead, and that the `jti` was never seen.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::error::StsError;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::secret::Secret;

pub use mcp_sts_contract::urn::JWT_BEARER_CLIENT_ASSERTION;

/// How long an assertion is valid; one minute covers clock skew and a slow network.
const ASSERTION_LIFETIME: u64 = 60;

/// The client's private key, with the algorithm it signs with and its optional `kid`.
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct AssertionKey {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of one assertion.
#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: UnixTime,
    exp: UnixTime,
    jti: String,
}

impl AssertionKey {
    /// A key from a PEM document: a P-256 key (PKCS#8) signs ES256, an RSA key (PKCS#1
    /// or PKCS#8) RS256. The `kid` lets the server pick the key from the client's JWKS
    /// directly; without it the server tries each key of the right type.
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<Self, StsError> {
        let (alg, key) = match EncodingKey::from_ec_pem(pem) {
            Ok(key) => (Algorithm::ES256, key),
            Err(_) => match EncodingKey::from_rsa_pem(pem) {
                Ok(key) => (Algorithm::RS256, key),
                Err(_) => {
                    return Err(StsError::InvalidInput(
                        "client key is neither a P-256 nor an RSA private key in PEM".into(),
                    ));
                }
            },
        };
        Ok(Self {
            alg,
            key,
            kid: kid.filter(|k| !k.is_empty()),
            audience: None,
        })
    }

    /// Address assertions to `audience` (the STS's issuer URL) instead of the token
    /// endpoint URL, which is the default; mcp-sts accepts either.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A fresh assertion for `client_id` at `token_endpoint`, valid from `now` for a
    /// minute, with a random 128-bit `jti`.
    pub(crate) fn assertion(&self, client_id: &str, token_endpoint: &str, now: UnixTime) -> Result<Secret, StsError> {
        let mut nonce = [0u8; 16];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StsError::InvalidInput("no randomness for the assertion jti".into()))?;
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: self.audience.as_deref().unwrap_or(token_endpoint),
            iat: now,
            exp: now.saturating_add(ASSERTION_LIFETIME),
            jti: URL_SAFE_NO_PAD.encode(nonce),
        };
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| StsError::InvalidInput("the client assertion could not be signed".into()))
    }
}
