//! `POST /token`: adapts HTTP to the exchange and emits the audit event.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::exchange::{ExchangeInput, Form, exchange};
use crate::service::Sts;

/// Handle a token exchange request.
#[tracing::instrument(name = "token", skip_all)]
pub async fn token(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let now = sts.clock.now();
    let mut audit = AuditEvent::new("token_exchange", now);
    let result = match form_body(&headers, &body) {
        Ok(form) => {
            let input = ExchangeInput {
                authorization: header_str(&headers, header::AUTHORIZATION.as_str()),
                traceparent: header_str(&headers, "traceparent"),
                form: &form,
            };
            exchange(&sts, input, now, &mut audit).await
        }
        Err(e) => Err(e),
    };
    sts.metrics.exchange_took(started.elapsed());
    audited(&sts, audit, result.map(|r| Json(r).into_response()))
}

/// Count and audit an outcome, then answer with it, never cached (RFC 6749 §5.1).
pub fn audited(sts: &Sts, mut audit: AuditEvent, result: Result<Response, OAuthError>) -> Response {
    sts.metrics.decision(
        audit.event,
        result.as_ref().map_or_else(|e| e.code.as_str(), |_| "allow"),
    );
    match result {
        Ok(mut response) => {
            audit.decision = "allow";
            sts.audit.emit(&audit);
            no_store(response.headers_mut());
            response
        }
        Err(error) => {
            audit.reason = Some(error.reason());
            sts.audit.emit(&audit);
            error.into_response()
        }
    }
}

/// A header as text, when present and valid.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// RFC 6749 §3.2: token endpoint requests are `application/x-www-form-urlencoded`.
pub fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "request.content_type",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(Form::parse(body))
}
