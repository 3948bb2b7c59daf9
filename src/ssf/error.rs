//! Why a Shared Signals request was refused.

use crate::error::OAuthError;

/// A refusal of a stream management, verification or poll request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SsfError {
    /// Client authentication failed (401 `invalid_client`), or the store behind it is
    /// down (503): the OAuth answer as is.
    #[error("{0}")]
    OAuth(OAuthError),
    /// The request is malformed or asks for something unsupported (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such stream for this receiver (404): another receiver's stream is not
    /// revealed to exist.
    #[error("no such stream")]
    NotFound,
    /// The receiver already holds as many streams as allowed (409, SSF 1.0 §8.1.1.1).
    #[error("this receiver already has the most streams allowed")]
    TooManyStreams,
    /// The stream already has as many verification events waiting as allowed (429,
    /// SSF 1.0 §8.1.4.2); the receiver should collect them first.
    #[error("this stream already has the most verification events waiting; collect them first")]
    TooManyVerifications,
    /// The revocation store is unavailable; nothing was changed (503).
    #[error("the event store is unavailable; nothing was changed")]
    Unavailable,
}

impl SsfError {
    /// The `error` code of the answer.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            SsfError::OAuth(e) => e.code.as_str(),
            SsfError::BadRequest(_) => "invalid_request",
            SsfError::NotFound => "not_found",
            SsfError::TooManyStreams => "conflict",
            SsfError::TooManyVerifications => "too_many_requests",
            SsfError::Unavailable => "temporarily_unavailable",
        }
    }
}

impl From<OAuthError> for SsfError {
    fn from(error: OAuthError) -> Self {
        match error.code {
            crate::error::ErrorCode::TemporarilyUnavailable => SsfError::Unavailable,
            _ => SsfError::OAuth(error),
        }
    }
}
