//! axum adapters: an extractor, a tower layer, and RFC 6750 §3 error responses.
//!
//! Handlers receive an [`ExecutionIdentity`], never the raw token, and the token is
//! never logged. No token gets a bare `Bearer` challenge; a bad one `invalid_token`; a
//! missing scope 403 `insufficient_scope`; a verifier dependency that is down 503.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::dpop::{Scheme, challenge_algs};
use super::{ExecutionIdentity, Verifier, VerifyError};

/// Why a request was not let through; its response follows RFC 6750 §3.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token: 401 with a bare `WWW-Authenticate: Bearer` (RFC 6750 §3.1).
    MissingToken,
    /// A malformed `Authorization` header: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// The token was refused: 401 `invalid_token` with a description.
    InvalidToken(VerifyError),
    /// The token lacks a needed scope: 403 `insufficient_scope` naming it, in the
    /// scheme the token is used with (`DPoP` for a bound token, RFC 9449 §7.1).
    InsufficientScope {
        /// The scopes the request needs.
        scope: String,
        /// How the token is presented: the challenge uses the same scheme.
        scheme: Scheme,
    },
    /// A dependency of verification (JWKS, introspection) is down: 503, fail closed.
    Unavailable(VerifyError),
}

impl From<VerifyError> for AuthRejection {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Missing => AuthRejection::MissingToken,
            e if e.is_unavailable() => AuthRejection::Unavailable(e),
            e => AuthRejection::InvalidToken(e),
        }
    }
}

/// Keep only characters RFC 6750 §3 allows inside a quoted challenge parameter.
pub(crate) fn quoted_safe(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .take(200)
        .collect()
}

fn challenge(status: StatusCode, value: String) -> Response {
    let header = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    (status, [(WWW_AUTHENTICATE, header)]).into_response()
}

/// The `DPoP` challenge of a refusal about proof of possession (RFC 9449 §7.1):
/// `invalid_dpop_proof` for the proof, `invalid_token` for how the token was sent.
pub(crate) fn dpop_challenge(error: &VerifyError, extra: &str) -> String {
    let code = match error {
        VerifyError::InvalidProof(_) => "invalid_dpop_proof",
        VerifyError::UseDpopNonce(_) => "use_dpop_nonce",
        _ => "invalid_token",
    };
    format!(
        "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{}\"{extra}",
        quoted_safe(&error.to_string()),
        challenge_algs()
    )
}

/// Add the `DPoP-Nonce` header of a `use_dpop_nonce` refusal.
pub(crate) fn with_nonce(mut response: Response, error: &VerifyError) -> Response {
    if let VerifyError::UseDpopNonce(nonce) = error
        && let Ok(value) = HeaderValue::from_str(nonce)
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

/// The 403 challenge naming the scopes a request needs, in the scheme its token was
/// accepted with: a client holding a bound token steps up with its key, so it is told
/// which algorithms proofs may use.
pub(crate) fn insufficient_scope_challenge(scheme: Scheme, scope: &str, extra: &str) -> String {
    let scope = quoted_safe(scope);
    match scheme {
        Scheme::Bearer => format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"{extra}"),
        Scheme::Dpop => format!(
            "DPoP error=\"insufficient_scope\", scope=\"{scope}\", algs=\"{}\"{extra}",
            challenge_algs()
        ),
    }
}

/// A bare `DPoP` challenge, offered beside `Bearer` when no token was sent.
pub(crate) fn dpop_offer(extra: &str) -> String {
    format!("DPoP algs=\"{}\"{extra}", challenge_algs())
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::MissingToken => {
                let mut response = challenge(StatusCode::UNAUTHORIZED, "Bearer".into());
                if let Ok(offer) = HeaderValue::from_str(&dpop_offer("")) {
                    response.headers_mut().append(WWW_AUTHENTICATE, offer);
                }
                response
            }
            AuthRejection::InvalidRequest(why) => challenge(
                StatusCode::BAD_REQUEST,
                format!(
                    "Bearer error=\"invalid_request\", error_description=\"{}\"",
                    quoted_safe(why)
                ),
            ),
            AuthRejection::InvalidToken(e) if e.is_dpop() => {
                tracing::debug!(rule = e.rule(), error = %e, "DPoP presentation refused");
                with_nonce(challenge(StatusCode::UNAUTHORIZED, dpop_challenge(&e, "")), &e)
            }
            AuthRejection::InvalidToken(e) => {
                tracing::debug!(rule = e.rule(), error = %e, "bearer token refused");
                challenge(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "Bearer error=\"invalid_token\", error_description=\"{}\"",
                        quoted_safe(&e.to_string())
                    ),
                )
            }
            AuthRejection::InsufficientScope { scope, scheme } => {
                challenge(StatusCode::FORBIDDEN, insufficient_scope_challenge(scheme, &scope, ""))
            }
            AuthRejection::Unavailable(e) => {
                tracing::warn!(rule = e.rule(), error = %e, "token verification unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(RETRY_AFTER, HeaderValue::from_static("5"))],
                    "token verification temporarily unavailable",
                )
                    .into_response()
            }
        }
    }
}

/// The bearer token of the `Authorization` header, `None` when there is none (or the
/// header uses another scheme). Tokens in query strings are not accepted.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthRejection> {
    Ok(match presented_token(headers)? {
        Some((Scheme::Bearer, token)) => Some(token),
        _ => None,
    })
}

/// The token of the `Authorization` header with its scheme (`Bearer` or `DPoP`),
/// `None` when there is none (or the header uses another scheme).
pub(crate) fn presented_token(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, AuthRejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthRejection::InvalidRequest("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthRejection::InvalidRequest("Authorization header is not visible ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = rest.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(AuthRejection::InvalidRequest("malformed access token"));
    }
    Ok(Some((scheme, token)))
}

/// The request's `DPoP` proof, when there is one; more than one is refused (RFC 9449 §4.3).
pub(crate) fn dpop_proof(headers: &HeaderMap) -> Result<Option<&str>, AuthRejection> {
    let mut values = headers.get_all("dpop").iter();
    let (first, second) = (values.next(), values.next());
    let refused = |why: &str| AuthRejection::InvalidToken(VerifyError::InvalidProof(why.into()));
    match (first, second) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(refused("more than one DPoP header")),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| refused("malformed DPoP header")),
    }
}

/// Verify the request's bearer token and check `scopes` (a token bound to a key is
/// refused: see [`authenticate_request`]).
pub async fn authenticate(
    verifier: &Verifier,
    headers: &HeaderMap,
    scopes: &[String],
) -> Result<ExecutionIdentity, AuthRejection> {
    let token = bearer_token(headers)?.ok_or(AuthRejection::MissingToken)?;
    let identity = verifier.verify(token).await?;
    for scope in scopes {
        require_scope(&identity, scope)?;
    }
    Ok(identity)
}

/// Verify the request's token as presented (`Bearer`, or `DPoP` with a proof for
/// `method` on `path`) and check `scopes`; the shared core of the extractor and the layer.
pub async fn authenticate_request(
    verifier: &Verifier,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    scopes: &[String],
) -> Result<ExecutionIdentity, AuthRejection> {
    let (scheme, token) = presented_token(headers)?.ok_or(AuthRejection::MissingToken)?;
    let proof = dpop_proof(headers)?;
    let identity = verifier
        .verify_request(token, scheme, proof, method.as_str(), path)
        .await?;
    for scope in scopes {
        require_scope(&identity, scope)?;
    }
    Ok(identity)
}

/// `Ok` when `identity` holds `scope`, else the 403 `insufficient_scope` rejection
/// (a `DPoP` challenge when the token is bound to a key).
pub fn require_scope(identity: &ExecutionIdentity, scope: &str) -> Result<(), AuthRejection> {
    if identity.has_scope(scope) {
        Ok(())
    } else {
        tracing::debug!(user = identity.user(), scope, "insufficient scope");
        let scheme = match identity.key_thumbprint() {
            Some(_) => Scheme::Dpop,
            None => Scheme::Bearer,
        };
        Err(AuthRejection::InsufficientScope {
            scope: scope.to_owned(),
            scheme,
        })
    }
}

/// Extractor: the verified identity of the caller. Uses the identity a
/// [`BearerAuthLayer`] already put in the request, else verifies with the
/// `Arc<Verifier>` in the router state.
///
/// Both extractors need an `Arc<Verifier>` in the state, so a route that forgot the
/// verifier does not compile (instead of answering 500 at run time).
#[derive(Debug, Clone)]
pub struct Authenticated(pub ExecutionIdentity);

impl Authenticated {
    /// Refuse with 403 `insufficient_scope` unless the caller holds `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<&ExecutionIdentity, AuthRejection> {
        require_scope(&self.0, scope).map(|()| &self.0)
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        ExecutionIdentity::from_request_parts(parts, state)
            .await
            .map(Authenticated)
    }
}

/// Extractor: the identity a [`BearerAuthLayer`] verified, or, on a route without the
/// layer, the identity verified now with the `Arc<Verifier>` in the router state.
impl<S> FromRequestParts<S> for ExecutionIdentity
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(identity) = parts.extensions.get::<ExecutionIdentity>() {
            return Ok(identity.clone());
        }
        let verifier = Arc::<Verifier>::from_ref(state);
        let identity = authenticate_request(&verifier, &parts.method, parts.uri.path(), &parts.headers, &[]).await?;
        parts.extensions.insert(identity.clone());
        Ok(identity)
    }
}

/// Tower layer: verify every request's bearer token (and required scopes) before the
/// inner service runs, and put the [`ExecutionIdentity`] in the request extensions.
#[derive(Debug, Clone)]
pub struct BearerAuthLayer {
    verifier: Arc<Verifier>,
    scopes: Arc<[String]>,
}

impl BearerAuthLayer {
    /// Authenticate with `verifier`; no scope required yet.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            scopes: Arc::from(Vec::new()),
        }
    }

    /// Also require `scope` (403 `insufficient_scope` when absent).
    pub fn require_scope(self, scope: impl Into<String>) -> Self {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.into());
        Self {
            verifier: self.verifier,
            scopes: Arc::from(scopes),
        }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            verifier: Arc::clone(&self.verifier),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The service [`BearerAuthLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct BearerAuth<S> {
    inner: S,
    verifier: Arc<Verifier>,
    scopes: Arc<[String]>,
}

impl<S> Service<Request> for BearerAuth<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // Take the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        let scopes = Arc::clone(&self.scopes);
        Box::pin(async move {
            let (method, path) = (request.method().clone(), request.uri().path().to_owned());
            match authenticate_request(&verifier, &method, &path, request.headers(), &scopes).await {
                Ok(identity) => {
                    request.extensions_mut().insert(identity);
                    inner.call(request).await.map(IntoResponse::into_response)
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
