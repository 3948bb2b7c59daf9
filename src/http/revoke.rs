//! `POST /revoke` (RFC 7009): parse, decide, record.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::outcome::{raw_request, respond};
use crate::audit::AuditEvent;
use crate::request::TokenQuery;
use crate::service::Sts;

/// Revoke a token this service issued (RFC 7009); unknown tokens still get 200.
#[tracing::instrument(name = "revoke", skip_all)]
pub(crate) async fn revoke(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("revoke", now);
    let result = match TokenQuery::parse(raw_request(&headers, &body)) {
        Ok(query) => crate::revoke::revoke(sts.issued(), query, now, &mut audit).await,
        Err(e) => Err(e),
    };
    respond(&sts, audit, result.map(|()| StatusCode::OK.into_response()))
}
