//! The STS's refusals (RFC 6749 §5.2, RFC 8693 §2.2.2) and local failures, typed.

use std::fmt;

use crate::contract::ErrorCode;

/// The `error` code of an error response from the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2: malformed request, or (RFC 8693) an unacceptable subject/actor token.
    InvalidRequest,
    /// RFC 6749 §5.2: our client credentials were refused.
    InvalidClient,
    /// RFC 6749 §5.2: the authorization grant (e.g. an ID-JAG) was refused.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use token exchange.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the STS does not support the grant type.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: a requested scope may not be granted.
    InvalidScope,
    /// RFC 8693 §2.2.2: the audience or resource is unknown or refused.
    InvalidTarget,
    /// The STS cannot decide right now (a dependency is down); retry later.
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1 `server_error`: a fault on the STS's side.
    ServerError,
    /// Any other code, kept verbatim.
    Other(String),
}

impl OAuthErrorCode {
    /// Parse the wire value of `error`.
    pub fn parse(value: &str) -> Self {
        match ErrorCode::parse(value) {
            Some(ErrorCode::InvalidRequest) => Self::InvalidRequest,
            Some(ErrorCode::InvalidClient) => Self::InvalidClient,
            Some(ErrorCode::InvalidGrant) => Self::InvalidGrant,
            Some(ErrorCode::UnauthorizedClient) => Self::UnauthorizedClient,
            Some(ErrorCode::UnsupportedGrantType) => Self::UnsupportedGrantType,
            Some(ErrorCode::InvalidScope) => Self::InvalidScope,
            Some(ErrorCode::InvalidTarget) => Self::InvalidTarget,
            Some(ErrorCode::TemporarilyUnavailable) => Self::TemporarilyUnavailable,
            Some(ErrorCode::ServerError) => Self::ServerError,
            _ => Self::Other(value.to_owned()),
        }
    }

    /// The code this is, when it is one mcp-sts sends.
    pub fn known(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::InvalidRequest => ErrorCode::InvalidRequest,
            Self::InvalidClient => ErrorCode::InvalidClient,
            Self::InvalidGrant => ErrorCode::InvalidGrant,
            Self::UnauthorizedClient => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope => ErrorCode::InvalidScope,
            Self::InvalidTarget => ErrorCode::InvalidTarget,
            Self::TemporarilyUnavailable => ErrorCode::TemporarilyUnavailable,
            Self::ServerError => ErrorCode::ServerError,
            Self::Other(_) => return None,
        })
    }

    /// The wire value of `error`.
    pub fn as_str(&self) -> &str {
        match (self.known(), self) {
            (Some(code), _) => code.as_str(),
            (None, Self::Other(code)) => code,
            (None, _) => "",
        }
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
            StsError::OAuth { code, .. } => {
                matches!(
                    code,
                    OAuthErrorCode::TemporarilyUnavailable | OAuthErrorCode::ServerError
                )
            }
            StsError::UnexpectedStatus { status } => *status >= 500,
            StsError::Transport(_) => true,
            StsError::InvalidResponse(_) | StsError::InvalidInput(_) => false,
        }
    }
}
