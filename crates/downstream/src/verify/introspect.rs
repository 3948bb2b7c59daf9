//! Revocation check through the STS's RFC 7662 introspection endpoint.
//!
//! Answers are cached per token (by SHA-256, never the token itself) for a few
//! seconds, so a burst of calls with one token costs one round trip. When the
//! endpoint cannot answer the check fails closed. The answer is read under a byte cap
//! and a deadline ([`mcp_sts_contract::fetch`]).

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::IntrospectionConfig;
use super::error::VerifyError;
use mcp_sts_contract::basic::basic_authorization;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::fetch::{FetchLimits, fetch};

/// Most answers kept; past this the cache is pruned, then cleared.
const MAX_CACHED: usize = 10_000;

/// Largest introspection answer read; a real one is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Introspection client with a short per-token answer cache.
pub(crate) struct Introspector {
    http: reqwest::Client,
    url: String,
    authorization: String,
    /// Seconds an answer is reused.
    ttl: u64,
    limits: FetchLimits,
    /// Digest of the token -> (when asked, active).
    cache: Mutex<HashMap<[u8; 32], (UnixTime, bool)>>,
}

impl Introspector {
    /// A client for the configured endpoint; each call must finish within `timeout`.
    pub(crate) fn new(http: reqwest::Client, config: &IntrospectionConfig, timeout: Duration) -> Self {
        Self {
            http,
            url: config.url.clone(),
            authorization: basic_authorization(&config.client_id, &config.client_secret),
            ttl: config.cache_ttl.as_secs(),
            limits: FetchLimits {
                timeout,
                max_bytes: MAX_ANSWER_BYTES,
            },
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok(())` when the STS says the token is active; `Revoked` when not. `now` is the
    /// verifier's clock, for the answer cache.
    pub(crate) async fn check(&self, token: &str, now: UnixTime) -> Result<(), VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let fresh = |at: UnixTime| now < at.saturating_add(self.ttl);
        let cached = self.cache.lock().await.get(&digest).copied();
        let active = match cached {
            Some((at, active)) if fresh(at) => active,
            _ => {
                let active = self.ask(token).await?;
                let mut cache = self.cache.lock().await;
                if cache.len() >= MAX_CACHED {
                    cache.retain(|_, (at, _)| fresh(*at));
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                }
                cache.insert(digest, (now, active));
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
        let request = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        let fetched = fetch(request, self.limits)
            .await
            .map_err(|e| unavailable(format!("endpoint {} {e}", self.url)))?;
        if !fetched.status.is_success() {
            return Err(unavailable(format!(
                "endpoint {} answered HTTP {}",
                self.url,
                fetched.status.as_u16()
            )));
        }
        let answer: Answer = serde_json::from_slice(&fetched.body)
            .map_err(|_| unavailable(format!("endpoint {} gave an unreadable answer", self.url)))?;
        Ok(answer.active)
    }
}
