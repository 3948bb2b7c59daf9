//! The asymmetric JWS algorithms we accept, and which keys they fit.
//!
//! `none` and every HMAC algorithm are absent on purpose: a public key must never be
//! usable as an HMAC secret, and an unsigned token is never acceptable.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};

/// Parse an algorithm name if it is one we accept at all.
pub fn parse_allowed(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The algorithms a public JWK can verify: fixed by the key, narrowed by its `alg`.
pub fn algorithms_for_key(jwk: &Jwk) -> Vec<Algorithm> {
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => vec![],
        },
        // Symmetric keys and any future key type verify nothing.
        _ => vec![],
    };
    match jwk.common.key_algorithm.and_then(|a| parse_allowed(&a.to_string())) {
        Some(declared) => family.into_iter().filter(|a| *a == declared).collect(),
        None if jwk.common.key_algorithm.is_some() => vec![],
        None => family,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_none_are_never_allowed() {
        for name in ["none", "HS256", "HS384", "HS512", "", "es256"] {
            assert!(parse_allowed(name).is_none(), "{name}");
        }
        assert_eq!(parse_allowed("ES256"), Some(Algorithm::ES256));
    }

    #[test]
    fn a_symmetric_jwk_verifies_nothing() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap();
        assert!(algorithms_for_key(&jwk).is_empty());
    }

    #[test]
    fn key_alg_narrows_the_family() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "alg": "PS256", "n": "AQAB", "e": "AQAB"
        }))
        .unwrap();
        assert_eq!(algorithms_for_key(&jwk), vec![Algorithm::PS256]);
    }
}
