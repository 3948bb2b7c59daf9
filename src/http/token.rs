//! `POST /token`: parse, exchange, record.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::outcome::{raw_request, respond};
use crate::audit::AuditEvent;
use crate::exchange::exchange;
use crate::request::TokenRequest;
use crate::service::Sts;

/// Handle a token exchange request.
#[tracing::instrument(name = "token", skip_all)]
pub async fn token(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let now = sts.clock.now();
    let mut audit = AuditEvent::new("token_exchange", now);
    let ring = sts.keys.current();
    let result = match TokenRequest::parse(raw_request(&headers, &body)) {
        Ok(request) => exchange(sts.exchanger(&ring), request, now, &mut audit).await,
        Err(e) => Err(e),
    };
    sts.metrics.exchange_took(started.elapsed());
    respond(&sts, audit, result.map(|r| Json(r).into_response()))
}
