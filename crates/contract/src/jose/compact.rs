//! Splitting a compact JWS (RFC 7515 §7.1) and reading its header and claims before any
//! trust is placed in them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The untrusted parts of a compact JWS, decoded.
#[derive(Debug)]
pub struct UnverifiedJwt {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims set.
    pub claims: Map<String, Value>,
}

/// Why a string is not a compact JWS we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtShapeError {
    /// Five segments: an encrypted token, which we do not accept.
    Encrypted,
    /// Not three base64url segments of JSON objects.
    Malformed,
}

/// The three segments of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct Segments<'a> {
    /// The base64url protected header.
    pub header: &'a str,
    /// The base64url payload.
    pub payload: &'a str,
    /// The base64url signature (may be empty: an unsecured JWS, refused later).
    pub signature: &'a str,
}

/// Split a compact JWS into its three segments; five segments are a JWE.
pub fn segments(token: &str) -> Result<Segments<'_>, JwtShapeError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Segments {
            header,
            payload,
            signature,
        }),
        _ if token.split('.').count() == 5 => Err(JwtShapeError::Encrypted),
        _ => Err(JwtShapeError::Malformed),
    }
}

/// Decode the protected header alone, for rules that must run before anything else.
pub fn header(token: &str) -> Result<Map<String, Value>, JwtShapeError> {
    decode_object(segments(token)?.header)
}

/// Decode the claims set alone (after the signature has been checked).
pub fn claims(token: &str) -> Result<Map<String, Value>, JwtShapeError> {
    decode_object(segments(token)?.payload)
}

/// Decode header and claims without verifying anything; an empty signature is refused.
pub fn peek(token: &str) -> Result<UnverifiedJwt, JwtShapeError> {
    let parts = segments(token)?;
    if parts.signature.is_empty() {
        return Err(JwtShapeError::Malformed);
    }
    Ok(UnverifiedJwt {
        header: decode_object(parts.header)?,
        claims: decode_object(parts.payload)?,
    })
}

/// Decode one base64url segment holding a JSON object (a header or a claims set).
pub fn decode_object(segment: &str) -> Result<Map<String, Value>, JwtShapeError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtShapeError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtShapeError::Malformed),
    }
}

/// A string member (claim or header parameter), if present and a string.
pub fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A numeric date claim (RFC 7519 NumericDate), if present and a non-negative number.
pub fn time_claim(claims: &Map<String, Value>, name: &str) -> Option<Result<u64, ()>> {
    claims.get(name).map(|v| match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()).map(|f| f as u64))
            .ok_or(()),
        _ => Err(()),
    })
}

/// The `aud` claim as a list (RFC 7519 allows a string or an array of strings).
pub fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(peek("a.b").unwrap_err(), JwtShapeError::Malformed);
        assert_eq!(peek("a.b.c.d").unwrap_err(), JwtShapeError::Malformed);
        assert_eq!(peek("a.b.c.d.e").unwrap_err(), JwtShapeError::Encrypted);
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert!(peek(&format!("{h}.{c}.sig")).is_ok());
        assert_eq!(peek(&format!("{h}.{c}.")).unwrap_err(), JwtShapeError::Malformed);
        let arr = URL_SAFE_NO_PAD.encode(b"[1]");
        assert_eq!(peek(&format!("{h}.{arr}.sig")).unwrap_err(), JwtShapeError::Malformed);
    }

    #[test]
    fn the_header_alone_can_be_read_before_the_rest_is_judged() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert_eq!(header(&format!("{h}.!!.")).unwrap()["alg"], "none");
        assert_eq!(claims(&format!("{h}.!!.")).unwrap_err(), JwtShapeError::Malformed);
        assert_eq!(header("!!.e30.sig").unwrap_err(), JwtShapeError::Malformed);
    }

    #[test]
    fn claim_readers() {
        let claims = json!({"aud": ["a", "b"], "exp": 10.5, "iat": "no", "iss": 3});
        let claims = claims.as_object().unwrap();
        assert_eq!(audiences(claims), vec!["a", "b"]);
        assert_eq!(time_claim(claims, "exp"), Some(Ok(10)));
        assert_eq!(time_claim(claims, "iat"), Some(Err(())));
        assert_eq!(time_claim(claims, "nbf"), None);
        assert_eq!(str_claim(claims, "iss"), None);
    }
}
