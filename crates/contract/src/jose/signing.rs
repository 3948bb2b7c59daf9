//! One signing key, parsed once, able to sign JWS compact serialisations.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::VerificationKey;
use super::jwk::{ec_p256_jwk, rsa_jwk, thumbprint};
use crate::clock::UnixTime;

/// Signing algorithm of the keys mcp-sts and its development IdP generate and use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256: the default.
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 9068 §2.1 requires support).
    RS256,
}

/// Why a private key could not be read, generated or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The key type is not one we sign with.
    #[error("unsupported key type")]
    Unsupported,
    /// The system could not generate a key.
    #[error("key generation failed")]
    Generate,
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key ready to sign, with its public JWK and a verifier for our own tokens.
pub struct SigningKey {
    /// RFC 7638 thumbprint of the public key; the `kid` header.
    pub kid: String,
    /// ES256 or RS256.
    pub algorithm: SigningAlgorithm,
    /// When the key was created (its file name says so).
    pub created: UnixTime,
    /// Signs from `created`, skipping the configured activation delay: made by
    /// `keys rotate --now` when the previous key must stop signing at once.
    pub immediate: bool,
    /// The public JWK with `kid`, `use` and `alg`, as published.
    pub public_jwk: Value,
    /// The public half, for verifying tokens this key signed (see [`crate::jose`]).
    pub verification: Arc<VerificationKey>,
    pair: Pair,
    rng: SystemRandom,
    /// A MAC key derived from the private key, so every replica loading the same key
    /// file derives the same one: server nonces (DPoP) any replica can check.
    nonce_key: hmac::Key,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parse a PKCS#8 DER private key (P-256 or RSA).
    pub fn from_pkcs8(der: &[u8], created: UnixTime) -> Result<Self, SigningKeyError> {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            let jwk = ec_p256_jwk(pair.public_key().as_ref()).ok_or(SigningKeyError::Unsupported)?;
            return Self::assemble(Pair::Ec(pair), SigningAlgorithm::ES256, jwk, created, der);
        }
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            if pair.public_modulus_len() < 256 {
                return Err(SigningKeyError::Unsupported);
            }
            let public = pair.public_key();
            let jwk = rsa_jwk(
                public.modulus().big_endian_without_leading_zero(),
                public.exponent().big_endian_without_leading_zero(),
            );
            return Self::assemble(Pair::Rsa(pair), SigningAlgorithm::RS256, jwk, created, der);
        }
        Err(SigningKeyError::Unsupported)
    }

    /// Generate a fresh key; returns it and its PKCS#8 DER encoding.
    pub fn generate(algorithm: SigningAlgorithm, created: UnixTime) -> Result<(Self, Vec<u8>), SigningKeyError> {
        let der = match algorithm {
            SigningAlgorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|doc| doc.as_ref().to_vec()),
            SigningAlgorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map(|der| der.as_ref().to_vec()),
        }
        .map_err(|_| SigningKeyError::Generate)?;
        Ok((Self::from_pkcs8(&der, created)?, der))
    }

    fn assemble(
        pair: Pair,
        algorithm: SigningAlgorithm,
        mut jwk: Value,
        created: UnixTime,
        der: &[u8],
    ) -> Result<Self, SigningKeyError> {
        let kid = thumbprint(&jwk).ok_or(SigningKeyError::Unsupported)?;
        let decoding_key =
            DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).map_err(|_| SigningKeyError::Unsupported)?)
                .map_err(|_| SigningKeyError::Unsupported)?;
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), Value::String(kid.clone()));
            map.insert("use".into(), Value::String("sig".into()));
            map.insert("alg".into(), Value::String(algorithm_name(algorithm).into()));
        }
        let verification = Arc::new(VerificationKey {
            kid: Some(kid.clone()),
            algorithms: vec![jwt_algorithm(algorithm)],
            key: decoding_key,
        });
        Ok(Self {
            kid,
            algorithm,
            created,
            immediate: false,
            public_jwk: jwk,
            verification,
            pair,
            rng: SystemRandom::new(),
            nonce_key: crate::jose::nonce::key(
                hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"mcp-sts server nonce"), der).as_ref(),
            ),
        })
    }

    /// The MAC key of server nonces, derived from this private key.
    pub fn nonce_key(&self) -> &hmac::Key {
        &self.nonce_key
    }

    /// The `jsonwebtoken` algorithm matching this key.
    pub fn jwt_algorithm(&self) -> Algorithm {
        jwt_algorithm(self.algorithm)
    }

    /// Sign a JWT: `header` gets `alg` and `kid` set here; returns the compact form.
    pub fn sign_jwt(&self, typ: &str, claims: &impl serde::Serialize) -> Result<String, SigningKeyError> {
        let header = serde_json::json!({ "alg": algorithm_name(self.algorithm), "typ": typ, "kid": self.kid });
        let header = serde_json::to_vec(&header).map_err(|_| SigningKeyError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| SigningKeyError::Sign)?;
        let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Sign with a caller-built header, for development tools that need odd headers.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> Result<String, SigningKeyError> {
        let header = serde_json::to_vec(header).map_err(|_| SigningKeyError::Sign)?;
        let claims = serde_json::to_vec(claims).map_err(|_| SigningKeyError::Sign)?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningKeyError> {
        match &self.pair {
            Pair::Ec(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningKeyError::Sign),
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(|_| SigningKeyError::Sign)?;
                Ok(signature)
            }
        }
    }
}

fn jwt_algorithm(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::ES256 => Algorithm::ES256,
        SigningAlgorithm::RS256 => Algorithm::RS256,
    }
}

/// The JOSE name of a signing algorithm.
pub fn algorithm_name(algorithm: SigningAlgorithm) -> &'static str {
    match algorithm {
        SigningAlgorithm::ES256 => "ES256",
        SigningAlgorithm::RS256 => "RS256",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Validation, decode};

    #[test]
    fn signed_tokens_verify_with_the_published_key() {
        for algorithm in [SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
            let (key, der) = SigningKey::generate(algorithm, 1).unwrap();
            let token = key.sign_jwt("at+jwt", &serde_json::json!({"sub": "alice"})).unwrap();
            let mut validation = Validation::new(key.jwt_algorithm());
            validation.validate_exp = false;
            validation.required_spec_claims.clear();
            validation.validate_aud = false;
            let data = decode::<Value>(&token, &key.verification.key, &validation).unwrap();
            assert_eq!(data.claims["sub"], "alice");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
            let again = SigningKey::from_pkcs8(&der, 1).unwrap();
            assert_eq!(again.kid, key.kid, "kid is a function of the key");
        }
    }
}
