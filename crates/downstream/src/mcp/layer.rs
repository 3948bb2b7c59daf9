//! The tower layer in front of rmcp's streamable-HTTP service: every request must carry
//! a valid access token for this resource (the MCP authorization spec asks this of each
//! request, sessions or not). On success the `Authorization` header is removed and a
//! [`Caller`] is put in the request's extensions, which rmcp hands to handlers with the
//! request parts; on failure the answer is an RFC 6750 challenge that also points at
//! the protected resource metadata (RFC 9728 §5.1). A `tools/call` of a tool whose
//! scopes the token lacks is refused here with `403 insufficient_scope` naming the
//! scopes that call needs (MCP authorization, scope challenge; SEP-2350), so the client
//! can step up instead of reading a tool error.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::caller::Caller;
use super::operation::{self, Operation};
use super::tools::ToolGate;
use super::{OFFLINE_ACCESS, Shared};
use crate::verify::VerifyError;
use crate::verify::dpop::{Presentation, bound_key};
use crate::verify::extract::{
    AuthRejection, dpop_challenge, dpop_offer, dpop_proof, insufficient_scope_challenge, presented_token, quoted_safe,
    with_nonce,
};

/// Layer: authenticate MCP requests for one resource (see [`super::McpAuth::layer`]).
#[derive(Clone)]
pub struct McpAuthLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for McpAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuthLayer")
            .field("resource", &self.shared.metadata.resource())
            .finish()
    }
}

impl McpAuthLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The gate for the handlers of the service this layer is put around.
    pub fn gate(&self) -> ToolGate {
        ToolGate::new(Arc::clone(&self.shared.tool_scopes))
    }
}

impl<S> Layer<S> for McpAuthLayer {
    type Service = McpAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpAuthService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`McpAuthLayer`] wraps around rmcp's.
#[derive(Clone)]
pub struct McpAuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for McpAuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuthService")
            .field("resource", &self.shared.metadata.resource())
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for McpAuthService<S>
where
    S: Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Take the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let method = request.method().clone();
            let caller = match authenticate(&shared, &method, request.headers()).await {
                Ok(caller) => caller,
                Err(rejection) => return Ok(challenge(&shared, rejection)),
            };
            let Ok((mut request, operation)) = operation::read(request).await else {
                return Ok((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "MCP request body too large or unreadable",
                )
                    .into_response());
            };
            if let Some(scope) = operation.as_ref().and_then(|op| step_up_scope(&shared, &caller, op)) {
                tracing::info!(
                    user = caller.user(),
                    agent = caller.agent().unwrap_or("-"),
                    tool = operation.as_ref().and_then(Operation::tool).unwrap_or("-"),
                    scope = %scope,
                    "tool call refused: insufficient scope"
                );
                let scheme = caller.scheme();
                return Ok(challenge(&shared, AuthRejection::InsufficientScope { scope, scheme }));
            }
            // No token passthrough: nothing past this point can read the token.
            request.headers_mut().remove(AUTHORIZATION);
            request.headers_mut().remove("dpop");
            request.extensions_mut().insert(caller);
            inner.call(request).await.map(IntoResponse::into_response)
        })
    }
}

/// Validate the token as presented (a bound one with the `DPoP` scheme and a proof for
/// this request to the resource's URL) and the server-wide scopes; build the caller.
async fn authenticate(shared: &Shared, method: &Method, headers: &HeaderMap) -> Result<Caller, AuthRejection> {
    let (scheme, token) = presented_token(headers)?.ok_or(AuthRejection::MissingToken)?;
    let proof = dpop_proof(headers)?;
    let now = shared.clock.now();
    let validated = shared
        .verifier
        .validate(token, now)
        .await
        .map_err(AuthRejection::from)?;
    let jkt = bound_key(&validated.claims)?;
    let presented = Presentation {
        scheme,
        proof,
        method: method.as_str(),
        url: shared.metadata.resource(),
    };
    shared.proofs.check(token, jkt, presented, now).await?;
    if let Some(revocations) = &shared.revocations {
        revocations.check(&validated, now).map_err(AuthRejection::from)?;
    }
    if let Some(missing) = shared
        .required_scopes
        .iter()
        .find(|scope| !validated.scopes.contains(*scope))
    {
        return Err(AuthRejection::InsufficientScope {
            scope: missing.clone(),
            scheme,
        });
    }
    Ok(Caller::new(
        validated,
        token,
        headers,
        shared.metadata.resource(),
        shared.sts.clone(),
        shared.revocations.clone(),
    ))
}

/// For a `tools/call` of a tool whose scopes `caller` lacks: the scopes that call needs
/// (the server-wide ones and the tool's, never `offline_access`), for the challenge.
/// `None` when the caller may go on.
fn step_up_scope(shared: &Shared, caller: &Caller, operation: &Operation) -> Option<String> {
    let declared = shared.tool_scopes.of(operation.tool()?);
    if declared.iter().all(|scope| caller.has_scope(scope)) {
        return None;
    }
    let mut needed: Vec<&str> = Vec::new();
    for scope in shared.required_scopes.iter().chain(&declared) {
        if scope != OFFLINE_ACCESS && !needed.contains(&scope.as_str()) {
            needed.push(scope);
        }
    }
    Some(needed.join(" "))
}

/// The refusal, with `resource_metadata` in every challenge so a client can find the
/// authorization server (RFC 9728 §5.1; MCP authorization, protected resource metadata
/// discovery).
fn challenge(shared: &Shared, rejection: AuthRejection) -> Response {
    let metadata = format!("resource_metadata=\"{}\"", quoted_safe(shared.metadata.url()));
    let required = shared.required_scopes.join(" ");
    let (status, value) = match rejection {
        AuthRejection::MissingToken => {
            let scope = if required.is_empty() {
                String::new()
            } else {
                format!(", scope=\"{}\"", quoted_safe(&required))
            };
            let offer = dpop_offer(&format!(", {metadata}"));
            let mut response = bare(StatusCode::UNAUTHORIZED, format!("Bearer {metadata}{scope}"));
            if let Ok(offer) = HeaderValue::from_str(&offer) {
                response.headers_mut().append(WWW_AUTHENTICATE, offer);
            }
            return response;
        }
        AuthRejection::InvalidRequest(why) => (
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer error=\"invalid_request\", error_description=\"{}\", {metadata}",
                quoted_safe(why)
            ),
        ),
        AuthRejection::InvalidToken(error) if error.is_dpop() => {
            tracing::info!(rule = error.rule(), error = %error, "MCP DPoP presentation refused");
            let value = dpop_challenge(&error, &format!(", {metadata}"));
            return with_nonce(bare(StatusCode::UNAUTHORIZED, value), &error);
        }
        AuthRejection::InvalidToken(error) => {
            tracing::info!(rule = error.rule(), error = %error, "MCP access token refused");
            (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\", {metadata}",
                    quoted_safe(&error.to_string())
                ),
            )
        }
        AuthRejection::InsufficientScope { scope, scheme } => (
            StatusCode::FORBIDDEN,
            insufficient_scope_challenge(scheme, &scope, &format!(", {metadata}")),
        ),
        AuthRejection::Unavailable(error) => return unavailable(&error),
    };
    bare(status, value)
}

/// A response with one challenge.
fn bare(status: StatusCode, value: String) -> Response {
    let header = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    (status, [(WWW_AUTHENTICATE, header)]).into_response()
}

/// The issuer's keys cannot be had: fail closed with 503, never let the request in.
fn unavailable(error: &VerifyError) -> Response {
    tracing::warn!(rule = error.rule(), error = %error, "MCP token validation unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(RETRY_AFTER, HeaderValue::from_static("5"))],
        "token validation temporarily unavailable",
    )
        .into_response()
}
