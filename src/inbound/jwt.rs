//! Splitting a compact JWS and reading its header and claims before any trust.

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

/// Decode header and claims without verifying anything.
pub fn peek(token: &str) -> Result<UnverifiedJwt, JwtShapeError> {
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        3 => {}
        5 => return Err(JwtShapeError::Encrypted),
        _ => return Err(JwtShapeError::Malformed),
    }
    let (Some(header), Some(claims), Some(signature)) = (segments.first(), segments.get(1), segments.get(2)) else {
        return Err(JwtShapeError::Malformed);
    };
    if signature.is_empty() {
        return Err(JwtShapeError::Malformed);
    }
    Ok(UnverifiedJwt {
        header: decode_object(header)?,
        claims: decode_object(claims)?,
    })
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, JwtShapeError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtShapeError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtShapeError::Malformed),
    }
}

/// A string claim, if present and a string.
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

/// Space-separated or array-valued scope claims (`scope` or `scp`) as a list.
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            Some(Value::Array(items)) => out.extend(items.iter().filter_map(Value::as_str).map(String::from)),
            _ => {}
        }
    }
    out
}

/// A claim found by a dotted path (`realm_access.roles`), read as a list of strings.
pub fn string_list_at(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut current = claims.get(first);
    for part in parts {
        current = current.and_then(|v| v.get(part));
    }
    match current {
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// A claim found by a dotted path, read as one string.
pub fn string_at(claims: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?);
    for part in parts {
        current = current.and_then(|v| v.get(part));
    }
    current.and_then(Value::as_str).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(peek("a.b").unwrap_err(), JwtShapeError::Malformed);
        assert_eq!(peek("a.b.c.d.e").unwrap_err(), JwtShapeError::Encrypted);
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert!(peek(&format!("{h}.{c}.sig")).is_ok());
        assert_eq!(peek(&format!("{h}.{c}.")).unwrap_err(), JwtShapeError::Malformed);
        let arr = URL_SAFE_NO_PAD.encode(b"[1]");
        assert_eq!(peek(&format!("{h}.{arr}.sig")).unwrap_err(), JwtShapeError::Malformed);
    }

    #[test]
    fn claim_readers() {
        let claims = json!({
            "aud": ["a", "b"], "scope": "x y", "scp": ["z"],
            "realm_access": {"roles": ["dev"]}, "groups": "a,b", "exp": 10.5, "iat": "no"
        });
        let claims = claims.as_object().unwrap();
        assert_eq!(audiences(claims), vec!["a", "b"]);
        assert_eq!(scopes(claims), vec!["x", "y", "z"]);
        assert_eq!(string_list_at(claims, "realm_access.roles"), vec!["dev"]);
        assert_eq!(string_list_at(claims, "groups"), vec!["a", "b"]);
        assert_eq!(time_claim(claims, "exp"), Some(Ok(10)));
        assert_eq!(time_claim(claims, "iat"), Some(Err(())));
        assert_eq!(time_claim(claims, "nbf"), None);
    }
}
