//! The `error` codes of token endpoint responses (RFC 6749 §5.2, RFC 8693 §2.2.2),
//! spelled once for the server that sends them and the client that reads them.

use std::fmt;

/// An `error` code this service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// Exhaustive on purpose: the server maps every code to its HTTP status.
pub enum ErrorCode {
    /// RFC 6749 §5.2: malformed request, or (RFC 8693 §2.2.2) an unacceptable
    /// subject or actor token. HTTP 400.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed. HTTP 401 with `WWW-Authenticate`.
    InvalidClient,
    /// RFC 6749 §5.2 / RFC 7523 §3.1: the authorization grant (an assertion such as an
    /// ID-JAG) is invalid, expired, revoked, replayed or issued to another client. HTTP 400.
    InvalidGrant,
    /// RFC 6749 §5.2: the authenticated client may not use this grant. HTTP 400.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported. HTTP 400.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: a requested scope is outside what may be granted. HTTP 400.
    InvalidScope,
    /// RFC 8693 §2.2.2: the audience or resource is unknown or refused. HTTP 400.
    InvalidTarget,
    /// Extension: a dependency (revocation store, upstream JWKS) is unreachable, so
    /// the service fails closed. HTTP 503 with `Retry-After`.
    TemporarilyUnavailable,
    /// RFC 6749 §5.2 `server_error`: a fault on our side. HTTP 500; detail only in logs.
    ServerError,
    /// Extension: the client or subject went over its configured rate limit. HTTP 429
    /// (RFC 6585 §4) with `Retry-After`.
    TooManyRequests,
    /// RFC 9449 §5: the DPoP proof is missing where required, or invalid. HTTP 400.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server nonce given in `DPoP-Nonce`. HTTP 400.
    UseDpopNonce,
}

impl ErrorCode {
    /// Every code, for parsing and tests.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::ServerError,
        ErrorCode::TooManyRequests,
        ErrorCode::InvalidDpopProof,
        ErrorCode::UseDpopNonce,
    ];

    /// The wire value of the `error` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The code a wire value names, if it is one of ours.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == value)
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::InvalidScope
            | ErrorCode::InvalidTarget
            | ErrorCode::InvalidDpopProof
            | ErrorCode::UseDpopNonce => 400,
            ErrorCode::InvalidClient => 401,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::ServerError => 500,
            ErrorCode::TooManyRequests => 429,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("invalid_grant"), Some(ErrorCode::InvalidGrant));
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::parse("access_denied"), None);
    }
}
