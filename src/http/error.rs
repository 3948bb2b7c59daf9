//! The one place protocol errors become HTTP responses (RFC 6749 §5.1/§5.2).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ErrorCode, OAuthError};

/// RFC 9449 §8: the header carrying a server nonce.
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// Seconds a client should wait after a 503 before retrying.
const RETRY_AFTER_SECONDS: &str = "1";

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(json!({ "error": self.code.as_str(), "error_description": self.description }));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        match self.code {
            ErrorCode::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"mcp-sts\""),
                );
            }
            ErrorCode::TemporarilyUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            ErrorCode::TooManyRequests => {
                let seconds = self.retry_after.unwrap_or(1).max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidDpopProof
            | ErrorCode::UseDpopNonce
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::InvalidScope
            | ErrorCode::InvalidTarget
            | ErrorCode::ServerError => {}
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert(DPOP_NONCE, nonce);
        }
        response
    }
}

/// RFC 6749 §5.1: responses carrying tokens or errors must not be cached.
pub(crate) fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for crate::admin::AdminError {
    fn into_response(self) -> Response {
        use crate::admin::AdminError;
        let status = match &self {
            AdminError::Disabled | AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Unavailable | AdminError::Unconfirmed | AdminError::Untrusted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let code = self.code();
        let description: String = self.to_string().chars().filter(|c| *c != '"' && *c != '\\').collect();
        let mut response = (status, Json(json!({ "error": code, "error_description": description }))).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        match self {
            AdminError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mcp-sts-admin\""),
                );
            }
            AdminError::Unavailable | AdminError::Unconfirmed | AdminError::Untrusted => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            AdminError::Disabled | AdminError::BadRequest(_) | AdminError::NotFound => {}
        }
        response
    }
}

impl IntoResponse for crate::ssf::SsfError {
    fn into_response(self) -> Response {
        use crate::ssf::SsfError;
        let status = match &self {
            SsfError::OAuth(error) => return error.clone().into_response(),
            SsfError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SsfError::NotFound => StatusCode::NOT_FOUND,
            SsfError::TooManyStreams => StatusCode::CONFLICT,
            SsfError::TooManyVerifications => StatusCode::TOO_MANY_REQUESTS,
            SsfError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let code = self.code();
        let description: String = self.to_string().chars().filter(|c| *c != '"' && *c != '\\').collect();
        let mut response = (status, Json(json!({ "error": code, "error_description": description }))).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if matches!(self, SsfError::Unavailable | SsfError::TooManyVerifications) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}
