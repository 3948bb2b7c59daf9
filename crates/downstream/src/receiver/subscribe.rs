//! Finding our poll stream at a transmitter, or creating it (SSF 1.0 §8.1.1).

use serde_json::{Value, json};

use super::Receiver;
use mcp_sts_contract::identifier::printable;
use mcp_sts_contract::set::POLL_DELIVERY;

/// Which of the transmitter's streams is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// Any poll stream the transmitter lists for our credentials: an identity
    /// provider's admin may have set it up. A listing that fails reads as none.
    AnyPollStream,
    /// Only the poll stream with our description: several receivers (replicas of one
    /// service) share credentials and each keeps its own. A listing that fails is an
    /// error, so a stream is never created twice.
    Described,
}

/// The stream a receiver polls: how it is recognised, and what a new one asks for.
#[derive(Debug, Clone)]
pub struct StreamChoice {
    /// The stream's `description`.
    pub description: String,
    /// The event types a new stream asks for.
    pub events_requested: Vec<String>,
    /// Which listed stream is ours.
    pub adopt: Adopt,
}

impl Receiver {
    /// Our stream's poll endpoint and id, found or created now.
    pub(super) async fn subscribe(&self) -> Result<(String, Option<String>), String> {
        let metadata = self
            .call(reqwest::Method::GET, &self.config.configuration_url, None)
            .await?;
        if metadata.status != 200 || metadata.body.get("issuer").and_then(Value::as_str) != Some(&self.config.issuer) {
            return Err("the transmitter's metadata is missing or names another issuer".into());
        }
        let streams_url = metadata
            .body
            .get("configuration_endpoint")
            .and_then(Value::as_str)
            .ok_or("the transmitter's metadata has no configuration_endpoint")?
            .to_owned();
        let choice = &self.config.stream;
        let listed = self.call(reqwest::Method::GET, &streams_url, None).await?;
        let streams = match (listed.status, listed.body) {
            (200, Value::Array(all)) => all,
            (200, single @ Value::Object(_)) => vec![single],
            (404, _) => Vec::new(),
            (status, _) if choice.adopt == Adopt::Described => {
                return Err(format!("listing the streams answered HTTP {status}"));
            }
            _ => Vec::new(),
        };
        let ours = |s: &&Value| {
            s.pointer("/delivery/method").and_then(Value::as_str) == Some(POLL_DELIVERY)
                && s.pointer("/delivery/endpoint_url").and_then(Value::as_str).is_some()
                && (choice.adopt == Adopt::AnyPollStream
                    || s.get("description").and_then(Value::as_str) == Some(choice.description.as_str()))
        };
        let stream = match streams.iter().find(ours) {
            Some(stream) => stream.clone(),
            None => self.create(&streams_url).await?,
        };
        let stream_id = stream.get("stream_id").and_then(Value::as_str).map(str::to_owned);
        let endpoint = stream
            .pointer("/delivery/endpoint_url")
            .and_then(Value::as_str)
            .ok_or("the stream has no poll endpoint")?
            .to_owned();
        tracing::info!(
            transmitter = %self.config.issuer,
            stream_id = %printable(stream_id.as_deref().unwrap_or_default()),
            "subscribed to the Shared Signals stream"
        );
        Ok((endpoint, stream_id))
    }

    async fn create(&self, streams_url: &str) -> Result<Value, String> {
        let choice = &self.config.stream;
        let body = json!({
            "delivery": { "method": POLL_DELIVERY },
            "events_requested": choice.events_requested,
            "description": choice.description,
        });
        let created = self.call(reqwest::Method::POST, streams_url, Some(&body)).await?;
        if created.status != 201 && created.status != 200 {
            return Err(format!("stream creation answered HTTP {}", created.status));
        }
        Ok(created.body)
    }
}
