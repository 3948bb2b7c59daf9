//! Reading subject and actor token claims. Splitting and decoding the JWS itself is
//! [`mcp_sts_contract::jose::compact`]'s job; its readers are re-exported here for the exchange,
//! and so is the one scope reader of [`mcp_sts_contract::claims`].

use serde_json::{Map, Value};

pub use mcp_sts_contract::claims::token_scopes;
pub use mcp_sts_contract::jose::compact::{JwtShapeError, UnverifiedJwt, audiences, peek, str_claim, time_claim};

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
    fn claim_readers() {
        let claims = json!({
            "aud": ["a", "b"], "scope": "x y", "scp": ["z"],
            "realm_access": {"roles": ["dev"]}, "groups": "a,b", "exp": 10.5, "iat": "no"
        });
        let claims = claims.as_object().unwrap();
        assert_eq!(audiences(claims), vec!["a", "b"]);
        assert_eq!(token_scopes(claims), vec!["x", "y", "z"]);
        assert_eq!(string_list_at(claims, "realm_access.roles"), vec!["dev"]);
        assert_eq!(string_list_at(claims, "groups"), vec!["a", "b"]);
        assert_eq!(time_claim(claims, "exp"), Some(Ok(10)));
        assert_eq!(time_claim(claims, "iat"), Some(Err(())));
        assert_eq!(time_claim(claims, "nbf"), None);
    }
}
