//! `POST /token`: parse, answer (`token_endpoint`), record.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::DPOP_NONCE;
use super::outcome::{raw_request, respond};
use crate::audit::AuditEvent;
use crate::dpop::{ProofHeader, nonce};
use crate::request::TokenRequest;
use crate::service::Sts;
use crate::token_endpoint::answer;

/// Handle a token request (any grant `/token` answers).
#[tracing::instrument(name = "token", skip_all)]
pub(crate) async fn token(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("token_exchange", now);
    let ring = sts.keys().current();
    let result = match TokenRequest::parse(raw_request(&headers, &body)) {
        Ok(mut request) => {
            request.dpop = proof_header(&headers);
            answer(sts.exchanger(&ring), request, now, &mut audit).await
        }
        Err(e) => Err(e),
    };
    sts.metrics().exchange_took(started.elapsed());
    let result = result.map(|r| {
        let mut response = Json(r).into_response();
        // RFC 9449 §8.2: a fresh nonce with every answer, so the next proof has one.
        if sts.config().dpop.nonce
            && let Ok(nonce) = HeaderValue::from_str(&nonce::issue(&ring, now))
        {
            response.headers_mut().insert(DPOP_NONCE, nonce);
        }
        response
    });
    respond(&sts, audit, result)
}

/// The `DPoP` header(s) of a request (RFC 9449 §4.3: at most one).
fn proof_header(headers: &HeaderMap) -> ProofHeader {
    let mut all = headers.get_all("dpop").iter();
    match (all.next(), all.next()) {
        (None, _) => ProofHeader::Absent,
        (Some(value), None) => match value.to_str() {
            Ok(text) => ProofHeader::One(text.to_owned()),
            Err(_) => ProofHeader::One(String::new()),
        },
        (Some(_), Some(_)) => ProofHeader::Many,
    }
}
