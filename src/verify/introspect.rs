//! Revocation check through the STS's RFC 7662 introspection endpoint.
//!
//! Answers are cached per token (by SHA-256, never the token itself) for a few
//! seconds, so a burst of calls with one token costs one round trip. When the
//! endpoint cannot answer the check fails closed.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::IntrospectionConfig;
use super::error::VerifyError;

/// Most answers kept; past this the cache is pruned, then cleared.
const MAX_CACHED: usize = 10_000;

/// Introspection client with a short per-token answer cache.
pub(crate) struct Introspector {
    http: reqwest::Client,
    url: String,
    authorization: String,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, bool)>>,
}

/// `client_secret_basic` (RFC 6749 §2.3.1): id and secret form-urlencoded, then base64.
fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

impl Introspector {
    /// A client for the configured endpoint.
    pub(crate) fn new(http: reqwest::Client, config: &IntrospectionConfig) -> Self {
        Self {
            http,
            url: config.url.clone(),
            authorization: basic_authorization(&config.client_id, &config.client_secret),
            ttl: config.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok(())` when the STS says the token is active; `Revoked` when not.
    pub(crate) async fn check(&self, token: &str) -> Result<(), VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.cache.lock().await.get(&digest).copied();
        let active = match cached {
            Some((at, active)) if at.elapsed() < self.ttl => active,
            _ => {
                let active = self.ask(token).await?;
                let mut cache = self.cache.lock().await;
                if cache.len() >= MAX_CACHED {
                    let ttl = self.ttl;
                    cache.retain(|_, (at, _)| at.elapsed() < ttl);
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                }
                cache.insert(digest, (Instant::now(), active));
                active
            }
        };
        if active { Ok(()) } else { Err(VerifyError::Revoked) }
    }

    async fn ask(&self, token: &str) -> Result<bool, VerifyError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            active: bool,
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let unavailable = |why: String| VerifyError::IntrospectionUnavailable(why);
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(format!("endpoint {} unreachable: {e}", self.url)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!(
                "endpoint {} answered HTTP {}",
                self.url,
                status.as_u16()
            )));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|_| unavailable(format!("endpoint {} gave an unreadable answer", self.url)))?;
        Ok(answer.active)
    }
}
