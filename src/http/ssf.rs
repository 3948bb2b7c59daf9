//! Shared Signals endpoints: the transmitter's configuration document, stream
//! management, status, verification and RFC 8936 polling. Decisions live in `ssf`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::outcome::{header_str, respond};
use crate::audit::AuditEvent;
use crate::service::Sts;
use crate::ssf::{self, SsfError, Transmitter, streams};
use mcp_sts_contract::set::{POLL_DELIVERY, PUSH_DELIVERY};

/// `GET /.well-known/ssf-configuration` (SSF 1.0 §7.2).
pub(crate) async fn configuration(State(sts): State<Arc<Sts>>) -> Response {
    let issuer = sts.issuer();
    Json(json!({
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "delivery_methods_supported": [POLL_DELIVERY, PUSH_DELIVERY],
        "configuration_endpoint": format!("{issuer}{}", ssf::STREAMS_PATH),
        "status_endpoint": format!("{issuer}{}", ssf::STATUS_PATH),
        "verification_endpoint": format!("{issuer}{}", ssf::VERIFY_PATH),
        "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        "default_subjects": "ALL",
    }))
    .into_response()
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::AUTHORIZATION.as_str())
}

fn stream_id(query: &HashMap<String, String>) -> Result<&str, SsfError> {
    query
        .get("stream_id")
        .map(String::as_str)
        .ok_or_else(|| SsfError::BadRequest("stream_id is required".into()))
}

/// `POST /ssf/streams`: create a stream (201).
#[tracing::instrument(name = "ssf_stream_create", skip_all)]
pub(crate) async fn create(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("ssf_stream_create", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        audit.client_id = Some(caller.id().to_owned());
        let stream = streams::create(Transmitter::of(&sts), &caller, &body, now).await?;
        audit.target = Some(format!("stream:{}", stream.stream_id));
        Ok::<_, SsfError>(
            (
                StatusCode::CREATED,
                Json(streams::render(Transmitter::of(&sts), &stream)),
            )
                .into_response(),
        )
    }
    .await;
    respond(&sts, audit, result)
}

/// `GET /ssf/streams[?stream_id=]`: one stream, or all of the caller's.
pub(crate) async fn read(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let now = sts.clock().now();
    let audit = AuditEvent::new("ssf_stream_read", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        let doc = streams::read(
            Transmitter::of(&sts),
            &caller,
            query.get("stream_id").map(String::as_str),
        )
        .await?;
        Ok::<_, SsfError>(Json(doc).into_response())
    }
    .await;
    respond_quietly(&sts, audit, result)
}

/// `PATCH /ssf/streams`: change the fields given.
pub(crate) async fn patch(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    update(sts, headers, body, false).await
}

/// `PUT /ssf/streams`: replace the receiver-supplied fields.
pub(crate) async fn put(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    update(sts, headers, body, true).await
}

#[tracing::instrument(name = "ssf_stream_update", skip_all)]
async fn update(sts: Arc<Sts>, headers: HeaderMap, body: Bytes, replace: bool) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("ssf_stream_update", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        audit.client_id = Some(caller.id().to_owned());
        let stream = streams::update(Transmitter::of(&sts), &caller, &body, replace).await?;
        audit.target = Some(format!("stream:{}", stream.stream_id));
        Ok::<_, SsfError>(Json(streams::render(Transmitter::of(&sts), &stream)).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `DELETE /ssf/streams?stream_id=`: the stream and its queue go (204).
#[tracing::instrument(name = "ssf_stream_delete", skip_all)]
pub(crate) async fn delete(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("ssf_stream_delete", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        audit.client_id = Some(caller.id().to_owned());
        let id = stream_id(&query)?;
        audit.target = Some(format!("stream:{}", ssf::printable(id)));
        streams::delete(Transmitter::of(&sts), &caller, id).await?;
        Ok::<_, SsfError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `GET /ssf/status?stream_id=`.
pub(crate) async fn status(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let now = sts.clock().now();
    let audit = AuditEvent::new("ssf_status_read", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        let stream = streams::owned(Transmitter::of(&sts), &caller, stream_id(&query)?).await?;
        Ok::<_, SsfError>(Json(streams::status_document(&stream)).into_response())
    }
    .await;
    respond_quietly(&sts, audit, result)
}

/// `POST /ssf/status`: enable, pause or disable.
#[tracing::instrument(name = "ssf_status_update", skip_all)]
pub(crate) async fn set_status(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("ssf_status_update", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        audit.client_id = Some(caller.id().to_owned());
        let stream = streams::set_status(Transmitter::of(&sts), &caller, &body).await?;
        audit.target = Some(format!("stream:{}", stream.stream_id));
        audit.detail = Some(format!("status {:?}", stream.status));
        Ok::<_, SsfError>(Json(streams::status_document(&stream)).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `POST /ssf/verify`: queue a verification event (204).
pub(crate) async fn request_verification(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let audit = AuditEvent::new("ssf_verify", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        streams::request_verification(Transmitter::of(&sts), &caller, &body, now).await?;
        Ok::<_, SsfError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    respond_quietly(&sts, audit, result)
}

/// `POST /ssf/poll/{stream_id}` (RFC 8936).
pub(crate) async fn poll(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Path(stream): Path<String>,
    body: Bytes,
) -> Response {
    let now = sts.clock().now();
    let audit = AuditEvent::new("ssf_poll", now);
    let result = async {
        let caller = streams::receiver(Transmitter::of(&sts), authorization(&headers), now).await?;
        let answer = ssf::poll::poll(Transmitter::of(&sts), &caller, &stream, &body).await?;
        Ok::<_, SsfError>(Json(answer).into_response())
    }
    .await;
    respond_quietly(&sts, audit, result)
}

/// Reads and polls are frequent and change nothing: count them, audit only refusals.
fn respond_quietly(sts: &Sts, audit: AuditEvent, result: Result<Response, SsfError>) -> Response {
    match result {
        Ok(mut response) => {
            sts.metrics().decision(audit.event, "allow");
            super::error::no_store(response.headers_mut());
            super::edge::answered(response)
        }
        Err(refusal) => respond(sts, audit, Err(refusal)),
    }
}
