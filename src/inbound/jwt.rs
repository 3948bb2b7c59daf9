//! Reading subject and actor token claims. Splitting and decoding the JWS itself is
//! [`mcp_sts_contract::jose::compact`]'s job; its readers are re-exported here for the exchange,
//! and so is the one scope reader of [`mcp_sts_contract::claims`].

use serde_json::{Map, Value};

pub use mcp_sts_contract::claims::token_scopes;
pub use mcp_sts_contract::jose::compact::{audiences, str_claim, time_claim};

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
            "exp": 10.5, "iat": "no"
        });
        let claims = claims.as_object().unwrap();
        assert_eq!(audiences(claims), vec!["a", "b"]);
        assert_eq!(token_scopes(claims), vec!["x", "y", "z"]);
        assert_eq!(time_claim(claims, "exp"), Some(Ok(10)));
        assert_eq!(time_claim(claims, "iat"), Some(Err(())));
        assert_eq!(time_claim(claims, "nbf"), None);
    }
}
