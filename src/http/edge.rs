//! What happens to a request before (and around) its endpoint: the body is read
//! whole under the size cap and within `body_read_timeout_ms`, and a request the
//! router or an extractor refuses (unknown path, wrong method, body too large or too
//! slow, unreadable parameters) is answered in the OAuth error shape, audited and
//! counted like every refusal an endpoint makes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tracing::Instrument;

use super::limits::EdgeLimits;
use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::service::Sts;

/// The audit event and decision counter of refusals made at the edge.
pub(crate) const EVENT: &str = "request";

/// Bytes read and dropped past the body cap before answering 413 (more: the
/// connection is closed without reading them).
const DRAIN_BYTES: usize = 1024 * 1024;

/// Marks a response an endpoint gave (and audited, or chose not to): the edge leaves it be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered;

/// Mark `response` as an endpoint's answer.
pub(crate) fn answered(mut response: Response) -> Response {
    response.extensions_mut().insert(Answered);
    response
}

/// Why a body was not read.
enum BodyRefusal {
    TooLarge,
    TooSlow,
    Unreadable,
}

/// The middleware: read the body under its limits, run the endpoint, and audit any
/// refusal no endpoint answered; every request is counted and timed by route.
pub(crate) async fn edge(State(sts): State<Arc<Sts>>, request: Request, next: Next) -> Response {
    let started = tokio::time::Instant::now();
    let route = route_of(request.uri().path());
    let method = method_label(request.method());
    let traceparent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    let span = crate::spans::request_span(method, route, traceparent);
    let answer = read_and_answer(&sts, request, next).instrument(span.clone());
    let response = crate::spans::within(span.clone(), answer).await;
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    sts.metrics()
        .request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// A method as a metric label: the ones the routes use, `other` for the rest.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

async fn read_and_answer(sts: &Arc<Sts>, request: Request, next: Next) -> Response {
    let limits = EdgeLimits::from_config(&sts.config().server);
    let method = request.method().clone();
    let route = route_of(request.uri().path());
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let drainable = limits.max_body_bytes.saturating_add(DRAIN_BYTES) as u64;
    let read = if announced.is_some_and(|n| n > drainable) {
        Err(BodyRefusal::TooLarge)
    } else {
        match tokio::time::timeout(limits.body_read, read_capped(body, limits.max_body_bytes)).await {
            Ok(read) => read,
            Err(_) => Err(BodyRefusal::TooSlow),
        }
    };
    let response = match read {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(refusal) => body_refused(refusal),
    };
    if response.extensions().get::<Answered>().is_some() || response.status().as_u16() < 400 {
        return response;
    }
    refused_before_the_endpoint(sts, response, method.as_str(), route)
}

/// The body, chunk by chunk, kept up to `max` bytes. Past that nothing more is kept;
/// up to [`DRAIN_BYTES`] more are read and dropped, so the client, still sending,
/// receives the 413 instead of a reset.
async fn read_capped(mut body: Body, max: usize) -> Result<Bytes, BodyRefusal> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyRefusal::Unreadable)?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > max.saturating_add(DRAIN_BYTES) {
                return Err(BodyRefusal::TooLarge);
            }
            if total <= max {
                chunks.push(data);
            }
        }
    }
    if total > max {
        return Err(BodyRefusal::TooLarge);
    }
    // Most bodies arrive in one chunk: handed on as is, without a copy.
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    })
}

/// The answer to a body that was not read; the connection closes after it, since
/// what is left of the body is not worth reading.
fn body_refused(refusal: BodyRefusal) -> Response {
    let (status, rule, text) = match refusal {
        BodyRefusal::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            "the request body is larger than allowed",
        ),
        BodyRefusal::TooSlow => (
            StatusCode::REQUEST_TIMEOUT,
            "request.body_timeout",
            "the request body did not arrive in time",
        ),
        BodyRefusal::Unreadable => (
            StatusCode::BAD_REQUEST,
            "request.body_unreadable",
            "the request body could not be read",
        ),
    };
    let mut response = OAuthError::invalid_request(rule, text).into_response();
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response.extensions_mut().insert(EdgeRule(rule));
    response
}

/// The rule of a refusal the edge made itself.
#[derive(Debug, Clone, Copy)]
struct EdgeRule(&'static str);

/// A refusal no endpoint answered: given the OAuth error shape (keeping `Allow` and
/// `Connection`), audited and counted.
fn refused_before_the_endpoint(sts: &Sts, response: Response, method: &str, route: &str) -> Response {
    let status = response.status();
    let (code, rule, text) = match (status, response.extensions().get::<EdgeRule>()) {
        (_, Some(EdgeRule(rule))) => ("invalid_request", *rule, ""),
        (StatusCode::NOT_FOUND, _) => ("not_found", "request.unknown_path", "no such endpoint"),
        (StatusCode::METHOD_NOT_ALLOWED, _) => (
            "invalid_request",
            "request.method_not_allowed",
            "the endpoint does not accept this method",
        ),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => (
            "invalid_request",
            "request.too_large",
            "the request body is larger than allowed",
        ),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, _) => (
            "invalid_request",
            "request.media_type",
            "the request body has an unsupported media type",
        ),
        (s, _) if s.is_server_error() => ("server_error", "request.server_error", "the request failed"),
        _ => (
            "invalid_request",
            "request.malformed",
            "the request is malformed (path, query or headers)",
        ),
    };
    let mut audit = AuditEvent::new(EVENT, sts.clock().now());
    audit.reason = Some(format!("{code}:{rule}"));
    audit.detail = Some(format!("{method} {route}"));
    sts.metrics().decision(EVENT, code);
    sts.audit().emit(&audit);
    if response.extensions().get::<EdgeRule>().is_some() {
        return response;
    }
    let mut shaped = (
        status,
        axum::Json(serde_json::json!({ "error": code, "error_description": text })),
    )
        .into_response();
    for name in [header::ALLOW, header::CONNECTION] {
        if let Some(value) = response.headers().get(&name) {
            shaped.headers_mut().insert(name, value.clone());
        }
    }
    super::error::no_store(shaped.headers_mut());
    shaped
}

/// The route a path belongs to, for the audit line: never the path itself, which a
/// client chose and may hold anything (a token pasted into a URL).
fn route_of(path: &str) -> &'static str {
    const ROUTES: [&str; 13] = [
        "/token",
        "/introspect",
        "/revoke",
        "/admin/revocations",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        crate::ssf::CONFIGURATION_PATH,
        crate::ssf::STREAMS_PATH,
        crate::ssf::STATUS_PATH,
        crate::ssf::VERIFY_PATH,
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    if let Some(route) = ROUTES.iter().find(|r| **r == path) {
        return route;
    }
    if path.starts_with("/admin/revocations/") {
        "/admin/revocations/{kind}/{value}"
    } else if path.starts_with("/ssf/poll/") {
        "/ssf/poll/{stream_id}"
    } else {
        "(unknown path)"
    }
}
