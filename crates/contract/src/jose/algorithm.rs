//! The asymmetric JWS algorithms we accept, and which keys they fit.
//!
//! [`ASYMMETRIC`] is the one list: what the server accepts from upstream issuers and
//! clients (an issuer's configured algorithms narrow it), what it advertises in its
//! metadata, and what the downstream side accepts; a key verifies only the algorithms
//! of its own type. `none` and every HMAC algorithm are absent on purpose: a public key
//! must never be usable as an HMAC secret, and an unsigned token is never acceptable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};

/// Every asymmetric algorithm accepted anywhere: the widest allowlist any use may have.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// The JWS `alg` name of an algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
pub fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// The names of [`ASYMMETRIC`], for metadata and configuration defaults.
pub fn asymmetric_names() -> impl Iterator<Item = &'static str> {
    ASYMMETRIC.into_iter().map(name)
}

/// Parse an algorithm name if it is on [`ASYMMETRIC`] (names are case-sensitive).
pub fn parse_allowed(alg: &str) -> Option<Algorithm> {
    ASYMMETRIC.into_iter().find(|listed| name(*listed) == alg)
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

/// Size of an RSA JWK's modulus in bits; `None` for other keys or an undecodable `n`.
pub fn rsa_modulus_bits(jwk: &Jwk) -> Option<usize> {
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    let modulus = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
    let mut significant = modulus.iter().skip_while(|b| **b == 0);
    let first = significant.next()?;
    let rest = significant.count();
    Some(
        rest.saturating_mul(8)
            .saturating_add(8 - first.leading_zeros() as usize),
    )
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

    #[test]
    fn every_listed_algorithm_parses_by_its_jws_name() {
        for alg in ASYMMETRIC {
            let spelled = serde_json::to_value(alg).unwrap();
            assert_eq!(name(alg), spelled.as_str().unwrap());
            assert_eq!(parse_allowed(name(alg)), Some(alg));
        }
        assert_eq!(asymmetric_names().count(), ASYMMETRIC.len());
    }

    #[test]
    fn rsa_modulus_size_ignores_leading_zeros() {
        let rsa = |n: &[u8]| -> Jwk {
            serde_json::from_value(serde_json::json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"}))
                .unwrap()
        };
        let mut n2048 = vec![0u8];
        n2048.extend([0xc5u8; 256]);
        assert_eq!(rsa_modulus_bits(&rsa(&n2048)), Some(2048));
        let mut n2047 = vec![0x45u8];
        n2047.extend([0xc5u8; 255]);
        assert_eq!(rsa_modulus_bits(&rsa(&n2047)), Some(2047));
        let ec: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"
        }))
        .unwrap();
        assert_eq!(rsa_modulus_bits(&ec), None);
    }
}
