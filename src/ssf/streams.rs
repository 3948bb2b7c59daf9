//! SSF 1.0 §8.1 stream management: a receiver (a registered client, authenticated as
//! on `/introspect`) creates, reads, updates and deletes its own streams, reads and
//! sets their status, and asks for verification events. A stream belongs to the
//! client that created it; to anyone else it does not exist (404).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::SsfError;
use super::Transmitter;
use super::push_target::PushTargets;
use crate::client_auth::{RegisteredClient, authenticate};
use crate::lineage::Lineage;
use crate::request::{ClientCredentials, Form};
use crate::revocation::{Delivery, StreamRecord, StreamStatus};
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::set::events_supported;

/// Longest description or status reason kept.
const MAX_TEXT: usize = 1024;
/// Most event types a stream may request.
const MAX_EVENT_TYPES: usize = 32;
/// Most verification events waiting (unacknowledged) in one stream.
pub(crate) const MAX_PENDING_VERIFICATIONS: usize = 4;

/// Authenticate the receiver from its `Authorization` header (HTTP Basic with its
/// client credentials); a revoked client fails as an unknown one does.
pub(crate) async fn receiver(
    tx: Transmitter<'_>,
    authorization: Option<&str>,
    now: UnixTime,
) -> Result<Arc<RegisteredClient>, SsfError> {
    let credentials = ClientCredentials::from_request(authorization, &Form::parse(b""))?;
    let client = authenticate(tx.clients, &credentials, tx.auth, tx.revocations, now).await?;
    Lineage::for_caller(client.id(), &tx.issuers.names())
        .check(tx.revocations, now)
        .await?
        .into_exchange_result()?;
    Ok(client)
}

/// The `delivery` object of a create or update request.
#[derive(Debug, Deserialize)]
struct DeliveryRequest {
    method: String,
    endpoint_url: Option<String>,
    authorization_header: Option<String>,
}

/// The receiver-supplied fields of a stream (SSF 1.0 §8.1.1); transmitter-supplied
/// fields sent back (`iss`, `aud`, `events_supported`, ...) are ignored.
#[derive(Debug, Default, Deserialize)]
struct StreamRequest {
    stream_id: Option<String>,
    delivery: Option<DeliveryRequest>,
    events_requested: Option<Vec<String>>,
    description: Option<String>,
}

fn bad(message: impl Into<String>) -> SsfError {
    SsfError::BadRequest(message.into())
}

fn parse_request(body: &[u8]) -> Result<StreamRequest, SsfError> {
    serde_json::from_slice(body).map_err(|e| bad(format!("body must be a JSON stream configuration: {e}")))
}

fn parse_delivery(tx: Transmitter<'_>, request: DeliveryRequest) -> Result<Delivery, SsfError> {
    match request.method.as_str() {
        mcp_sts_contract::set::POLL_DELIVERY => {
            if request.endpoint_url.is_some() || request.authorization_header.is_some() {
                return Err(bad("poll delivery takes no endpoint_url: the transmitter supplies it"));
            }
            Ok(Delivery::Poll)
        }
        mcp_sts_contract::set::PUSH_DELIVERY => {
            let endpoint_url = request
                .endpoint_url
                .ok_or_else(|| bad("push delivery needs delivery.endpoint_url"))?;
            let parsed = url::Url::parse(&endpoint_url).map_err(|_| bad("delivery.endpoint_url must be a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
                return Err(bad("delivery.endpoint_url must be an http(s) URL without fragment"));
            }
            PushTargets::from_config(tx.config).check(&parsed).map_err(bad)?;
            if request
                .authorization_header
                .as_deref()
                .is_some_and(|h| h.len() > 4096 || h.chars().any(char::is_control))
            {
                return Err(bad("delivery.authorization_header is not a usable header value"));
            }
            Ok(Delivery::Push {
                endpoint_url,
                authorization_header: request.authorization_header,
            })
        }
        _ => Err(bad(
            "delivery.method must be urn:ietf:rfc:8936 (poll) or urn:ietf:rfc:8935 (push)",
        )),
    }
}

fn check_text(field: &str, value: Option<String>) -> Result<Option<String>, SsfError> {
    match value {
        Some(text) if text.len() > MAX_TEXT || text.chars().any(char::is_control) => Err(bad(format!(
            "{field} must be at most 1024 characters without control characters"
        ))),
        other => Ok(other),
    }
}

fn check_events(tx: Transmitter<'_>, requested: Vec<String>) -> Result<(Vec<String>, Vec<String>), SsfError> {
    if requested.len() > MAX_EVENT_TYPES || requested.iter().any(|e| e.len() > MAX_TEXT) {
        return Err(bad("events_requested lists too many or too long event types"));
    }
    let supported = events_supported(tx.issuer);
    let delivered = supported.iter().filter(|e| requested.contains(e)).cloned().collect();
    Ok((requested, delivered))
}

/// The stream as the receiver sees it (SSF 1.0 §8.1.1.1): the push authorization
/// header is never echoed back.
pub(crate) fn render(tx: Transmitter<'_>, stream: &StreamRecord) -> Value {
    let delivery = match &stream.delivery {
        Delivery::Poll => json!({
            "method": mcp_sts_contract::set::POLL_DELIVERY,
            "endpoint_url": format!("{}{}/{}", tx.issuer, super::POLL_PATH, stream.stream_id),
        }),
        Delivery::Push { endpoint_url, .. } => json!({
            "method": mcp_sts_contract::set::PUSH_DELIVERY,
            "endpoint_url": endpoint_url,
        }),
    };
    let mut doc = json!({
        "stream_id": stream.stream_id,
        "iss": tx.issuer,
        "aud": stream.owner,
        "delivery": delivery,
        "events_supported": events_supported(tx.issuer),
        "events_requested": stream.events_requested,
        "events_delivered": stream.events_delivered,
    });
    if let (Some(description), Some(map)) = (&stream.description, doc.as_object_mut()) {
        map.insert("description".into(), json!(description));
    }
    doc
}

/// A stream of `caller`'s by id: anyone else's is reported as absent.
pub(crate) async fn owned(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    stream_id: &str,
) -> Result<StreamRecord, SsfError> {
    let stream = tx.store_call(tx.events.stream(stream_id)).await?;
    stream.filter(|s| s.owner == caller.id()).ok_or(SsfError::NotFound)
}

/// `POST` configuration endpoint: create a stream (201).
pub(crate) async fn create(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    body: &[u8],
    now: UnixTime,
) -> Result<StreamRecord, SsfError> {
    let request = parse_request(body)?;
    if request.stream_id.is_some() {
        return Err(bad("stream_id is assigned by the transmitter"));
    }
    let delivery = match request.delivery {
        Some(d) => parse_delivery(tx, d)?,
        None => Delivery::Poll,
    };
    let (events_requested, events_delivered) = check_events(tx, request.events_requested.unwrap_or_default())?;
    let description = check_text("description", request.description)?;
    let stream = StreamRecord {
        stream_id: uuid::Uuid::new_v4().simple().to_string(),
        owner: caller.id().to_owned(),
        delivery,
        events_requested,
        events_delivered,
        status: StreamStatus::Enabled,
        status_reason: None,
        description,
        created_at: now,
    };
    // Counted and written in one step of the store: simultaneous creations cannot
    // pass the quota between a count and a write.
    let quota = tx.config.max_streams_per_client;
    if !tx.store_call(tx.events.create_stream(&stream, quota)).await? {
        return Err(SsfError::TooManyStreams);
    }
    tracing::info!(stream_id = %stream.stream_id, receiver = %stream.owner, "stream created");
    Ok(stream)
}

/// `GET` configuration endpoint: one stream, or every stream of the caller.
pub(crate) async fn read(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    stream_id: Option<&str>,
) -> Result<Value, SsfError> {
    match stream_id {
        Some(id) => Ok(render(tx, &owned(tx, caller, id).await?)),
        None => {
            let all = tx.store_call(tx.events.streams()).await?;
            let mine: Vec<Value> = all
                .iter()
                .filter(|s| s.owner == caller.id())
                .map(|s| render(tx, s))
                .collect();
            Ok(Value::Array(mine))
        }
    }
}

/// `PATCH` (only the fields given change) or `PUT` (every receiver-supplied field is
/// replaced) on the configuration endpoint.
pub(crate) async fn update(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    body: &[u8],
    replace: bool,
) -> Result<StreamRecord, SsfError> {
    let request = parse_request(body)?;
    let id = request
        .stream_id
        .as_deref()
        .ok_or_else(|| bad("stream_id is required"))?;
    let mut stream = owned(tx, caller, id).await?;
    match request.delivery {
        Some(d) => stream.delivery = parse_delivery(tx, d)?,
        None if replace => stream.delivery = Delivery::Poll,
        None => {}
    }
    match request.events_requested {
        Some(requested) => {
            (stream.events_requested, stream.events_delivered) = check_events(tx, requested)?;
        }
        None if replace => {
            stream.events_requested = Vec::new();
            stream.events_delivered = Vec::new();
        }
        None => {}
    }
    match check_text("description", request.description)? {
        Some(description) => stream.description = Some(description),
        None if replace => stream.description = None,
        None => {}
    }
    // A stream deleted meanwhile is not brought back (nor counted again).
    if !tx.store_call(tx.events.replace_stream(&stream)).await? {
        return Err(SsfError::NotFound);
    }
    Ok(stream)
}

/// `DELETE` on the configuration endpoint: the stream and its queue go.
pub(crate) async fn delete(tx: Transmitter<'_>, caller: &RegisteredClient, stream_id: &str) -> Result<(), SsfError> {
    owned(tx, caller, stream_id).await?;
    tx.store_call(tx.events.delete_stream(stream_id)).await?;
    tracing::info!(%stream_id, receiver = %caller.id(), "stream deleted");
    Ok(())
}

/// The status document of a stream (SSF 1.0 §8.1.2.1).
pub(crate) fn status_document(stream: &StreamRecord) -> Value {
    let mut doc = json!({ "stream_id": stream.stream_id, "status": stream.status });
    if let (Some(reason), Some(map)) = (&stream.status_reason, doc.as_object_mut()) {
        map.insert("reason".into(), json!(reason));
    }
    doc
}

/// `POST` status endpoint body.
#[derive(Debug, Deserialize)]
struct StatusRequest {
    stream_id: String,
    status: StreamStatus,
    reason: Option<String>,
}

/// `POST` status endpoint: enable, pause or disable a stream (SSF 1.0 §8.1.2.2).
/// Disabling drops what is queued, as the transmitter will not deliver it.
pub(crate) async fn set_status(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    body: &[u8],
) -> Result<StreamRecord, SsfError> {
    let request: StatusRequest =
        serde_json::from_slice(body).map_err(|e| bad(format!("body must be JSON with stream_id and status: {e}")))?;
    let mut stream = owned(tx, caller, &request.stream_id).await?;
    stream.status = request.status;
    stream.status_reason = check_text("reason", request.reason)?;
    if stream.status == StreamStatus::Disabled {
        let pending = tx.store_call(tx.events.pending(&stream.stream_id, usize::MAX)).await?;
        let jtis: Vec<String> = pending.events.into_iter().map(|e| e.jti).collect();
        tx.store_call(tx.events.acknowledge(&stream.stream_id, &jtis)).await?;
    }
    if !tx.store_call(tx.events.replace_stream(&stream)).await? {
        return Err(SsfError::NotFound);
    }
    Ok(stream)
}

/// `POST` verification endpoint body.
#[derive(Debug, Deserialize)]
struct VerifyRequest {
    stream_id: String,
    state: Option<String>,
}

/// `POST` verification endpoint: queue a verification event (SSF 1.0 §8.1.4.2), at
/// most [`MAX_PENDING_VERIFICATIONS`] waiting per stream (more: 429), so a receiver
/// cannot pile work on the transmitter that it never collects.
pub(crate) async fn request_verification(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    body: &[u8],
    now: UnixTime,
) -> Result<(), SsfError> {
    let request: VerifyRequest =
        serde_json::from_slice(body).map_err(|e| bad(format!("body must be JSON with stream_id: {e}")))?;
    let state = check_text("state", request.state)?;
    let stream = owned(tx, caller, &request.stream_id).await?;
    if stream.status == StreamStatus::Disabled {
        return Err(bad("the stream is disabled"));
    }
    if !tx
        .publisher
        .verification(&stream, state.as_deref(), MAX_PENDING_VERIFICATIONS, now)
        .await?
    {
        return Err(SsfError::TooManyVerifications);
    }
    Ok(())
}
