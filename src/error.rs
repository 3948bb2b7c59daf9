//! The protocol error type: every refusal the service can give, in one place.
//!
//! Each [`OAuthError`] carries the RFC error code, a short rule name (used by the
//! audit log and tests) and a human description that never echoes a token. The HTTP
//! layer turns it into a response in exactly one function (`http::error`).

use std::borrow::Cow;
use std::fmt;

pub use mcp_sts_contract::ErrorCode;

/// A refusal: the code, the rule that refused, and a description safe to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The RFC error code.
    pub code: ErrorCode,
    /// A short, stable rule name such as `subject_token.expired`.
    pub rule: &'static str,
    /// Human text for `error_description`; never contains a token.
    pub description: Cow<'static, str>,
    /// Seconds the caller should wait before retrying (`Retry-After`), when known.
    pub retry_after: Option<u64>,
    /// A fresh server nonce for the `DPoP-Nonce` header (RFC 9449 §8), when one is due.
    pub dpop_nonce: Option<String>,
    /// For `invalid_scope`: the requested scopes that were refused, space-separated
    /// (the audit line names them; the description does too).
    pub refused_scope: Option<String>,
}

impl OAuthError {
    /// Build an error; the description is cleaned to the RFC 6749 §5.2 character set.
    pub(crate) fn new(code: ErrorCode, rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        let description = description.into();
        let description = if description.chars().all(is_description_char) {
            description
        } else {
            Cow::Owned(description.chars().filter(|c| is_description_char(*c)).collect())
        };
        Self {
            code,
            rule,
            description,
            retry_after: None,
            dpop_nonce: None,
            refused_scope: None,
        }
    }

    /// `invalid_request`.
    pub(crate) fn invalid_request(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, rule, description)
    }

    /// `invalid_client`.
    pub(crate) fn invalid_client(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, rule, description)
    }

    /// `invalid_grant` (RFC 6749 §5.2, RFC 7523 §3.1): an unacceptable assertion grant.
    pub(crate) fn invalid_grant(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, rule, description)
    }

    /// `unauthorized_client`.
    pub(crate) fn unauthorized_client(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, rule, description)
    }

    /// `invalid_scope`.
    pub(crate) fn invalid_scope(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, rule, description)
    }

    /// `invalid_target`.
    pub(crate) fn invalid_target(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidTarget, rule, description)
    }

    /// `temporarily_unavailable` (HTTP 503): a dependency is down, so we refuse.
    pub(crate) fn unavailable(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, rule, description)
    }

    /// `too_many_requests` (HTTP 429): a rate limit refused; retry after `seconds`.
    pub(crate) fn rate_limited(rule: &'static str, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                ErrorCode::TooManyRequests,
                rule,
                "too many requests; retry after the time in Retry-After",
            )
        }
    }

    /// `invalid_dpop_proof` (RFC 9449 §5).
    pub(crate) fn invalid_dpop_proof(rule: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidDpopProof, rule, description)
    }

    /// `use_dpop_nonce` (RFC 9449 §8) with the nonce to use.
    pub(crate) fn use_dpop_nonce(rule: &'static str, nonce: String) -> Self {
        Self {
            dpop_nonce: Some(nonce),
            ..Self::new(
                ErrorCode::UseDpopNonce,
                rule,
                "the DPoP proof must carry the server nonce given in the DPoP-Nonce header",
            )
        }
    }

    /// `server_error`: the caller sees a generic text; log the detail separately.
    pub(crate) fn server_error(rule: &'static str) -> Self {
        Self::new(ErrorCode::ServerError, rule, "internal error")
    }

    /// The audit reason: the error code plus the rule name.
    pub(crate) fn reason(&self) -> String {
        format!("{}:{}", self.code.as_str(), self.rule)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.rule, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
fn is_description_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{21}' | '\u{23}'..='\u{5B}' | '\u{5D}'..='\u{7E}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_drops_quotes_and_backslashes() {
        let e = OAuthError::invalid_request("x", "bad \"quoted\" \\ text\n");
        assert_eq!(e.description, "bad quoted  text");
    }

    #[test]
    fn statuses_follow_the_rfcs() {
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidTarget.status(), 400);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
        assert_eq!(ErrorCode::ServerError.status(), 500);
    }
}
