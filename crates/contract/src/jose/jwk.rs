//! Public JWKs and their RFC 7638 thumbprints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// RFC 7638 thumbprint (SHA-256, base64url) of a public JWK. Only the required
/// members, in lexicographic order, with no white space, are hashed.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let canonical = match jwk.get("kty")?.as_str()? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            jwk.get("crv")?,
            jwk.get("x")?,
            jwk.get("y")?
        ),
        "RSA" => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, jwk.get("e")?, jwk.get("n")?),
        "OKP" => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, jwk.get("crv")?, jwk.get("x")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The public JWK of a P-256 key from its uncompressed SEC1 point (0x04 || X || Y).
pub(super) fn ec_p256_jwk(point: &[u8]) -> Option<Value> {
    if point.len() != 65 || point.first() != Some(&0x04) {
        return None;
    }
    let x = point.get(1..33)?;
    let y = point.get(33..65)?;
    Some(json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) }))
}

/// The public JWK of an RSA key from its big-endian modulus and exponent.
pub(super) fn rsa_jwk(modulus: &[u8], exponent: &[u8]) -> Value {
    json!({ "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(modulus), "e": URL_SAFE_NO_PAD.encode(exponent) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's worked example.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn ec_point_must_be_uncompressed_p256() {
        assert!(ec_p256_jwk(&[4u8; 64]).is_none());
        let mut point = vec![4u8];
        point.extend([1u8; 64]);
        let jwk = ec_p256_jwk(&point).unwrap();
        assert_eq!(jwk["crv"], "P-256");
    }
}
