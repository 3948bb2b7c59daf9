//! RFC 8936 poll delivery: acknowledge what the receiver has, hand it what waits.
//!
//! A SET stays queued until acknowledged, so one that was handed out but never acked
//! is handed out again by the next poll (on any replica). With `returnImmediately`
//! false an empty poll waits, up to `[ssf] long_poll_seconds`, and is woken as soon
//! as this replica queues an event; events queued by another replica are seen at the
//! next recheck, at most [`RECHECK`] later.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::SsfError;
use super::Transmitter;
use crate::client_auth::RegisteredClient;
use crate::revocation::{Delivery, Pending, StreamStatus};

/// SETs handed out per poll when the receiver does not say.
const DEFAULT_MAX_EVENTS: usize = 100;
/// Most SETs handed out per poll, whatever the receiver asks.
const MAX_EVENTS: usize = 1_000;
/// Most acknowledgements or errors read from one poll.
const MAX_ACKS: usize = 10_000;
/// How often a waiting poll looks at the shared queue for events queued elsewhere.
pub(crate) const RECHECK: Duration = Duration::from_millis(500);

/// An RFC 8936 §2.4 poll request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PollRequest {
    /// SET ids the receiver has processed.
    pub ack: Vec<String>,
    /// SET ids the receiver could not accept, with why (RFC 8936 §2.4.4).
    #[serde(rename = "setErrs")]
    pub set_errs: BTreeMap<String, Value>,
    /// Most SETs to return; 0 only acknowledges.
    #[serde(rename = "maxEvents")]
    pub max_events: Option<usize>,
    /// Answer at once even when nothing waits.
    #[serde(rename = "returnImmediately")]
    pub return_immediately: bool,
}

/// Acknowledge, then return what waits (waiting for it when asked to).
#[tracing::instrument(name = "ssf_poll", target = "mcp_sts::trace", skip_all, fields(receiver = %caller.config.client_id))]
pub(crate) async fn poll(
    tx: Transmitter<'_>,
    caller: &RegisteredClient,
    stream_id: &str,
    body: &[u8],
) -> Result<Value, SsfError> {
    let request: PollRequest = if body.is_empty() {
        PollRequest::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| SsfError::BadRequest(format!("body must be an RFC 8936 poll request: {e}")))?
    };
    if request.ack.len() > MAX_ACKS || request.set_errs.len() > MAX_ACKS {
        return Err(SsfError::BadRequest("too many acknowledgements in one poll".into()));
    }
    let stream = super::streams::owned(tx, caller, stream_id).await?;
    if stream.delivery != Delivery::Poll {
        return Err(SsfError::BadRequest(
            "this stream is delivered by push, not poll".into(),
        ));
    }
    let mut done = request.ack;
    for (jti, error) in request.set_errs {
        // The receiver refused this SET; resending it would not help (RFC 8936 §2.4.4).
        let code = error.get("err").and_then(Value::as_str).unwrap_or("unspecified");
        tracing::warn!(%stream_id, set = %super::printable(&jti), error = %super::printable(code), "receiver refused a SET");
        done.push(jti);
    }
    tx.store_call(tx.events.acknowledge(stream_id, &done)).await?;
    let max = request.max_events.unwrap_or(DEFAULT_MAX_EVENTS).min(MAX_EVENTS);
    if max == 0 {
        return Ok(answer(Pending::default()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(tx.config.long_poll_seconds);
    loop {
        // Registered before reading, so an event queued in between still wakes us.
        let woken = tx.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let pending = if stream.status == StreamStatus::Enabled {
            tx.store_call(tx.events.pending(stream_id, max)).await?
        } else {
            Pending::default()
        };
        let now = tokio::time::Instant::now();
        if !pending.events.is_empty() || request.return_immediately || now >= deadline {
            let backlog = pending.events.len() + usize::from(pending.more);
            tx.metrics.stream_served(caller.id(), "poll", backlog, tx.clock.now());
            return Ok(answer(pending));
        }
        let wait = RECHECK.min(deadline.saturating_duration_since(now));
        let _ = tokio::time::timeout(wait, woken).await;
    }
}

fn answer(pending: Pending) -> Value {
    let sets: Map<String, Value> = pending
        .events
        .into_iter()
        .map(|e| (e.jti, Value::String(e.set)))
        .collect();
    json!({ "sets": sets, "moreAvailable": pending.more })
}
