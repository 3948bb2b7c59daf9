//! Times as people read them: the CLI prints RFC 3339 (UTC), never epoch seconds.

use serde_json::Value;

/// Fields that hold Unix times in the JSON the CLI prints (claims, revocations).
const TIME_FIELDS: [&str; 8] = [
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "revoked_at",
    "expires_at",
    "issued_at",
    "not_before",
];

/// `1900000000` -> `2030-03-17T17:46:40Z`; an entry's "until reinstated" is `never`;
/// out-of-range values stay numbers.
pub fn rfc3339(unix: u64) -> String {
    if unix == mcp_sts::revocation::NEVER {
        return "never".to_owned();
    }
    i64::try_from(unix)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || unix.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

/// The same JSON with every known time field, at any depth, as an RFC 3339 string.
pub fn readable_times(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, v)| {
                    let v = match (&v, TIME_FIELDS.contains(&key.as_str())) {
                        (Value::Number(n), true) => n.as_u64().map_or(v.clone(), |t| Value::String(rfc3339(t))),
                        _ => readable_times(v),
                    };
                    (key, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(readable_times).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unix_times_become_rfc3339_at_any_depth() {
        assert_eq!(rfc3339(1_900_000_000), "2030-03-17T17:46:40Z");
        assert_eq!(rfc3339(mcp_sts::revocation::NEVER), "never");
        let printed = readable_times(json!({
            "revocations": [{"kind": "subject", "revoked_at": 0, "expires_at": 1_900_000_000_u64}],
            "exp": 60, "scope": "a", "expires_in": 300, "issued_at": 0
        }));
        assert_eq!(
            printed,
            json!({
                "revocations": [{"kind": "subject", "revoked_at": "1970-01-01T00:00:00Z",
                                 "expires_at": "2030-03-17T17:46:40Z"}],
                "exp": "1970-01-01T00:01:00Z", "scope": "a", "expires_in": 300,
                "issued_at": "1970-01-01T00:00:00Z"
            })
        );
    }
}
