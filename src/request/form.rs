//! Form bodies (RFC 6749 §3.2): empty values count as absent, unknown parameters are
//! ignored, and a parameter sent twice is remembered so the caller can refuse it.

use std::collections::{BTreeSet, HashMap};

use crate::error::OAuthError;

/// The parameters this service reads, the only ones an error may name.
const KNOWN_PARAMETERS: [&str; 17] = [
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "resource",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "assertion",
    "ack",
];

/// A parsed `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub struct Form {
    values: HashMap<String, String>,
    repeated: BTreeSet<String>,
}

impl Form {
    /// Parse a body. Never fails: problems are judged by [`Form::refuse_repeats`].
    pub fn parse(body: &[u8]) -> Self {
        let mut form = Form::default();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if form.values.contains_key(name.as_ref()) {
                form.repeated.insert(name.into_owned());
            } else {
                form.values.insert(name.into_owned(), value.into_owned());
            }
        }
        form
    }

    /// Refuse repeated parameters: `audience`/`resource` as `invalid_target` (one
    /// audience per token), anything else as `invalid_request`.
    pub fn refuse_repeats(&self) -> Result<(), OAuthError> {
        if self.repeated.iter().any(|n| n == "audience" || n == "resource") {
            return Err(OAuthError::invalid_target(
                "target.multiple",
                "only one audience or resource may be requested",
            ));
        }
        if let Some(name) = self.repeated.iter().next() {
            // Name only parameters of the protocol: a made-up name could carry a token.
            let description = match KNOWN_PARAMETERS.iter().find(|known| **known == name.as_str()) {
                Some(known) => format!("parameter {known} is repeated"),
                None => "a parameter is repeated".to_owned(),
            };
            return Err(OAuthError::invalid_request("request.repeated_parameter", description));
        }
        Ok(())
    }

    /// A parameter's value, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request("request.missing_parameter", format!("parameter {name} is required"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn empty_values_are_absent_and_unknown_ones_ignored() {
        let form = Form::parse(b"scope=&grant_type=x&foo=bar&scope=a");
        assert_eq!(form.get("scope"), Some("a"));
        assert!(form.refuse_repeats().is_ok());
    }

    #[test]
    fn repeats_are_refused_with_the_right_code() {
        let form = Form::parse(b"scope=a&scope=b");
        assert_eq!(form.refuse_repeats().unwrap_err().code, ErrorCode::InvalidRequest);
        let form = Form::parse(b"audience=a&audience=b&scope=a&scope=b");
        assert_eq!(form.refuse_repeats().unwrap_err().code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn values_are_form_decoded() {
        let form = Form::parse(b"scope=a+b%20c");
        assert_eq!(form.get("scope"), Some("a b c"));
    }
}
