//! The agent's MCP client transport for a token bound to its key (RFC 9449 §7.1):
//! rmcp's streamable-HTTP client sends one fixed `Authorization: Bearer` header, so
//! this wraps its reqwest client and gives every HTTP request (each JSON-RPC POST, the
//! SSE GET, the session DELETE) `Authorization: DPoP <token>` and a fresh proof made
//! for that request's method and URL, carrying the token's hash (`ath`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use futures_util::stream::BoxStream;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use mcp_sts_contract::clock::Clock;
use mcp_sts_downstream::client::{DpopKey, Secret};

/// An rmcp streamable-HTTP client presenting one DPoP-bound access token with a new
/// proof on every request. The token is held privately and never logged.
#[derive(Clone)]
pub struct DpopHttpClient {
    http: reqwest::Client,
    key: DpopKey,
    token: Secret,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DpopHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopHttpClient")
            .field("key", &self.key.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopHttpClient {
    /// Present `token` (bound to `key`) with proofs dated by `clock`.
    pub fn new(key: DpopKey, token: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            http: reqwest::Client::new(),
            key,
            token: Secret::new(token),
            clock,
        }
    }

    /// `custom` plus the two headers that present the token on a `method` request to
    /// `uri`. rmcp's own `Bearer` header (`auth_header`) is never used: the transport
    /// is configured without one.
    fn present(
        &self,
        method: &str,
        uri: &str,
        mut custom: HashMap<HeaderName, HeaderValue>,
    ) -> Result<HashMap<HeaderName, HeaderValue>, StreamableHttpError<reqwest::Error>> {
        let token = self.token.expose();
        let refused = |why: String| StreamableHttpError::UnexpectedServerResponse(why.into());
        let proof = self
            .key
            .proof(method, uri, self.clock.now(), Some(token), None)
            .map_err(|e| refused(format!("cannot make a DPoP proof: {e}")))?;
        let authorization = HeaderValue::from_str(&format!("DPoP {token}"))
            .map_err(|_| refused("the access token is not a valid header value".into()))?;
        let proof =
            HeaderValue::from_str(&proof).map_err(|_| refused("the DPoP proof is not a valid header".into()))?;
        custom.insert(axum::http::header::AUTHORIZATION, authorization);
        custom.insert(HeaderName::from_static("dpop"), proof);
        Ok(custom)
    }
}

impl StreamableHttpClient for DpopHttpClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.present("POST", &uri, custom_headers)?;
        self.http.post_message(uri, message, session_id, None, headers).await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.present("POST", &uri, custom_headers)?;
        self.http
            .post_message_with_max_sse_event_size(uri, message, session_id, None, headers, max_sse_event_size)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.present("POST", &uri, custom_headers)?;
        self.http
            .post_message_with_response_limits(uri, message, session_id, None, headers, limits)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let headers = self.present("DELETE", &uri, custom_headers)?;
        self.http.delete_session(uri, session_id, None, headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let headers = self.present("GET", &uri, custom_headers)?;
        self.http
            .get_stream(uri, session_id, last_event_id, None, headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let headers = self.present("GET", &uri, custom_headers)?;
        self.http
            .get_stream_with_max_sse_event_size(uri, session_id, last_event_id, None, headers, max_sse_event_size)
            .await
    }
}
