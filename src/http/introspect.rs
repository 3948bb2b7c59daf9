//! `POST /introspect` (RFC 7662): parse, decide, record.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::outcome::{raw_request, respond};
use crate::audit::AuditEvent;
use crate::request::TokenQuery;
use crate::service::Sts;

/// Introspect a token this service issued, for its audience or its client.
#[tracing::instrument(name = "introspect", skip_all)]
pub(crate) async fn introspect(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("introspect", now);
    let result = match TokenQuery::parse(raw_request(&headers, &body)) {
        Ok(query) => crate::introspect::introspect(sts.issued(), query, now, &mut audit).await,
        Err(e) => Err(e),
    };
    respond(&sts, audit, result.map(|answer| Json(answer).into_response()))
}
