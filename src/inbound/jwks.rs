//! A cached, rate-limited JWKS source.
//!
//! Keys are fetched on first use and kept for `ttl`. An unknown `kid` triggers a
//! refetch, but at most one per `min_refresh_interval`, and concurrent requests share
//! one fetch (single flight), so a flood of bad `kid`s cannot make us hammer the IdP.
//! When a refresh fails, keys already cached keep working.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::algorithm::algorithms_for_key;
use crate::clock::UnixTime;

/// Largest JWKS or discovery document we read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// A verification key from a JWKS, parsed once.
#[derive(Clone)]
pub struct VerificationKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithms this key may verify.
    pub algorithms: Vec<Algorithm>,
    /// The parsed key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// Why keys could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    /// The document could not be fetched or parsed and nothing usable is cached.
    #[error("keys unavailable: {0}")]
    Unavailable(String),
    /// The keys were fetched (or the refetch is rate-limited) and no key fits.
    #[error("no key matches the token's kid and algorithm")]
    NoMatchingKey,
}

/// Timing rules of a cache.
#[derive(Debug, Clone, Copy)]
pub struct JwksPolicy {
    /// How long fetched keys are used without refetching.
    pub ttl: u64,
    /// Least time between two fetches.
    pub min_refresh_interval: u64,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            ttl: 600,
            min_refresh_interval: 30,
        }
    }
}

/// Where the JWKS URL comes from.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// A fixed URL.
    Uri(String),
    /// OpenID Connect discovery under this issuer URL; the document's `issuer` must match.
    Discovery(String),
    /// Keys given inline in configuration; never fetched.
    Inline(Vec<Jwk>),
}

#[derive(Default)]
struct Snapshot {
    keys: Vec<Arc<VerificationKey>>,
    fetched_at: Option<UnixTime>,
}

/// A JWKS cache for one issuer or client.
pub struct JwksCache {
    location: JwksLocation,
    http: reqwest::Client,
    policy: JwksPolicy,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while fetching (single flight); holds the time of the last attempt.
    refresh: tokio::sync::Mutex<Option<UnixTime>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for keys at `location`.
    pub fn new(location: JwksLocation, http: reqwest::Client, policy: JwksPolicy) -> Self {
        let snapshot = match &location {
            JwksLocation::Inline(keys) => Snapshot {
                keys: parse_keys(keys),
                fetched_at: Some(0),
            },
            _ => Snapshot::default(),
        };
        Self {
            location,
            http,
            policy,
            snapshot: RwLock::new(Arc::new(snapshot)),
            refresh: tokio::sync::Mutex::new(None),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// Keys that may verify a token with this `kid` and `alg`, refetching if needed.
    pub async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<Vec<Arc<VerificationKey>>, JwksError> {
        let snapshot = self.current();
        let fresh = snapshot
            .fetched_at
            .is_some_and(|at| now < at.saturating_add(self.policy.ttl));
        let found = matching(&snapshot, kid, alg);
        if matches!(self.location, JwksLocation::Inline(_)) || (fresh && !found.is_empty()) {
            return if found.is_empty() {
                Err(JwksError::NoMatchingKey)
            } else {
                Ok(found)
            };
        }
        match self.refresh(now, snapshot.fetched_at).await {
            Ok(()) => {}
            Err(error) => {
                // A failed refresh never throws away keys we already had.
                return if !found.is_empty() {
                    Ok(found)
                } else if snapshot.fetched_at.is_none() {
                    Err(error)
                } else {
                    Err(JwksError::NoMatchingKey)
                };
            }
        }
        let found = matching(&self.current(), kid, alg);
        if found.is_empty() {
            Err(JwksError::NoMatchingKey)
        } else {
            Ok(found)
        }
    }

    /// Fetch unless someone else just did or the rate limit forbids it.
    async fn refresh(&self, now: UnixTime, seen_fetched_at: Option<UnixTime>) -> Result<(), JwksError> {
        let mut last_attempt = self.refresh.lock().await;
        if self.current().fetched_at != seen_fetched_at {
            return Ok(()); // another request refreshed while we waited
        }
        if let Some(at) = *last_attempt
            && now < at.saturating_add(self.policy.min_refresh_interval)
        {
            return if seen_fetched_at.is_some() {
                Ok(())
            } else {
                Err(JwksError::Unavailable(
                    "recent fetch failed; waiting before retrying".into(),
                ))
            };
        }
        *last_attempt = Some(now);
        let keys = self.fetch().await?;
        self.store(Snapshot {
            keys,
            fetched_at: Some(now),
        });
        Ok(())
    }

    async fn fetch(&self) -> Result<Vec<Arc<VerificationKey>>, JwksError> {
        let url = match &self.location {
            JwksLocation::Uri(uri) => uri.clone(),
            JwksLocation::Discovery(issuer) => self.discover(issuer).await?,
            JwksLocation::Inline(keys) => return Ok(parse_keys(keys)),
        };
        let body = get_json(&self.http, &url).await?;
        let set: JwkSet = serde_json::from_value(filter_usable(body))
            .map_err(|e| JwksError::Unavailable(format!("JWKS at {url} is not a JWK set: {e}")))?;
        Ok(parse_keys(&set.keys))
    }

    async fn discover(&self, issuer: &str) -> Result<String, JwksError> {
        let base = issuer.trim_end_matches('/');
        let mut last_error = JwksError::Unavailable("discovery failed".into());
        for suffix in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            match get_json(&self.http, &format!("{base}{suffix}")).await {
                Ok(doc) => {
                    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
                        return Err(JwksError::Unavailable(
                            "discovery document names a different issuer".into(),
                        ));
                    }
                    return doc
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| JwksError::Unavailable("discovery document has no jwks_uri".into()));
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

/// Drop keys `JwkSet` cannot parse (unknown `kty`, private members are fine to skip)
/// so one odd key does not make a whole set unusable.
fn filter_usable(mut body: Value) -> Value {
    if let Some(keys) = body.get_mut("keys").and_then(Value::as_array_mut) {
        keys.retain(|k| serde_json::from_value::<Jwk>(k.clone()).is_ok());
    }
    body
}

fn parse_keys(keys: &[Jwk]) -> Vec<Arc<VerificationKey>> {
    keys.iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature))
        .filter_map(|jwk| {
            let algorithms = algorithms_for_key(jwk);
            if algorithms.is_empty() {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(Arc::new(VerificationKey {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
            }))
        })
        .collect()
}

fn matching(snapshot: &Snapshot, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<VerificationKey>> {
    snapshot
        .keys
        .iter()
        .filter(|k| k.algorithms.contains(&alg))
        .filter(|k| match kid {
            Some(kid) => k.kid.as_deref() == Some(kid),
            None => true,
        })
        .cloned()
        .collect()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, JwksError> {
    let unavailable = |what: &str| JwksError::Unavailable(format!("{url}: {what}"));
    let response = http.get(url).send().await.map_err(|e| unavailable(&without_url(&e)))?;
    if !response.status().is_success() {
        return Err(unavailable(&format!("HTTP {}", response.status().as_u16())));
    }
    if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(unavailable("document too large"));
    }
    let bytes = response.bytes().await.map_err(|e| unavailable(&without_url(&e)))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(unavailable("document too large"));
    }
    serde_json::from_slice(&bytes).map_err(|_| unavailable("not JSON"))
}

fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// The HTTP client for fetching keys: bounded time, no redirects.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_jwk(kid: &str) -> Jwk {
        serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn inline_keys_match_by_kid_and_algorithm() {
        let cache = JwksCache::new(
            JwksLocation::Inline(vec![ec_jwk("a")]),
            reqwest::Client::new(),
            JwksPolicy::default(),
        );
        assert_eq!(cache.keys_for(Some("a"), Algorithm::ES256, 0).await.unwrap().len(), 1);
        assert!(matches!(
            cache.keys_for(Some("b"), Algorithm::ES256, 0).await,
            Err(JwksError::NoMatchingKey)
        ));
        assert!(matches!(
            cache.keys_for(Some("a"), Algorithm::RS256, 0).await,
            Err(JwksError::NoMatchingKey)
        ));
        assert_eq!(cache.keys_for(None, Algorithm::ES256, 0).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unreachable_keys_fail_as_unavailable_and_are_not_refetched_in_a_loop() {
        let cache = JwksCache::new(
            JwksLocation::Uri("http://127.0.0.1:9/jwks".into()),
            http_client(Duration::from_millis(300)),
            JwksPolicy::default(),
        );
        assert!(matches!(
            cache.keys_for(Some("a"), Algorithm::ES256, 100).await,
            Err(JwksError::Unavailable(_))
        ));
        assert!(matches!(
            cache.keys_for(Some("a"), Algorithm::ES256, 101).await,
            Err(JwksError::Unavailable(_))
        ));
    }
}
