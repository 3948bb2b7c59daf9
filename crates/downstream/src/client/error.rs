//! The STS's refusals (RFC 6749 §5.2, RFC 8693 §2.2.2) and local failures, typed.

use std::fmt;

use mcp_sts_contract::ErrorCode;

/// The `error` code of an error response from the token endpoint: one of the codes
/// mcp-sts answers with (spelled once, in [`ErrorCode`]: the server sends exactly
/// these), or any other code, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    /// A code mcp-sts sends: RFC 6749 §5.2, RFC 8693 §2.2.2, and its documented
    /// extensions (`temporarily_unavailable`, `too_many_requests`).
    Known(ErrorCode),
    /// Any other code, kept verbatim.
    Other(String),
}

impl OAuthErrorCode {
    /// Parse the wire value of `error`.
    pub fn parse(value: &str) -> Self {
        match ErrorCode::parse(value) {
            Some(code) => Self::Known(code),
            None => Self::Other(value.to_owned()),
        }
    }

    /// The code this is, when it is one mcp-sts sends.
    pub fn known(&self) -> Option<ErrorCode> {
        match self {
            Self::Known(code) => Some(*code),
            Self::Other(_) => None,
        }
    }

    /// The wire value of `error`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(code) => code.as_str(),
            Self::Other(code) => code,
        }
    }

    /// Whether the STS could not decide now (unavailable, a fault, a rate limit), so
    /// the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Known(ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError | ErrorCode::TooManyRequests)
        )
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an exchange produced no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsError {
    /// The STS answered with an OAuth error response.
    #[error("token exchange refused with HTTP {status}: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// The HTTP status of the answer.
        status: u16,
        /// The `error` code.
        code: OAuthErrorCode,
        /// The `error_description`, if the STS gave one.
        description: Option<String>,
    },
    /// The STS answered with a status and a body that is not an OAuth error.
    #[error("token endpoint answered HTTP {status} without an OAuth error body")]
    UnexpectedStatus {
        /// The HTTP status of the answer.
        status: u16,
    },
    /// The STS could not be reached (connect, TLS, timeout).
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// A success answer that is not a usable token response.
    #[error("token endpoint gave an unusable answer: {0}")]
    InvalidResponse(String),
    /// The request or client configuration cannot be sent as given.
    #[error("invalid exchange request: {0}")]
    InvalidInput(String),
}

impl StsError {
    /// The OAuth `error` code, when the STS gave one.
    pub fn code(&self) -> Option<&OAuthErrorCode> {
        match self {
            StsError::OAuth { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (STS or network trouble, not a refusal).
    pub fn is_retryable(&self) -> bool {
        match self {
            StsError::OAuth { code, .. } => code.is_retryable(),
            StsError::UnexpectedStatus { status } => *status >= 500,
            StsError::Transport(_) => true,
            StsError::InvalidResponse(_) | StsError::InvalidInput(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_mcp_sts_sends_is_known_to_the_client() {
        for code in ErrorCode::ALL {
            let parsed = OAuthErrorCode::parse(code.as_str());
            assert_eq!(parsed, OAuthErrorCode::Known(code));
            assert_eq!(parsed.as_str(), code.as_str());
        }
        assert_eq!(
            OAuthErrorCode::parse("access_denied"),
            OAuthErrorCode::Other("access_denied".into())
        );
    }
}
