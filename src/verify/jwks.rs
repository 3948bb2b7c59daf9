//! The issuer's public keys: fetched over HTTP, cached, refetched on an unknown `kid`.
//!
//! Reads take a short `std` lock (never held across an await). Fetches go through one
//! `tokio` mutex so concurrent requests for a new `kid` cause a single fetch
//! (single-flight), and forced refetches happen at most once per minimum interval so a
//! flood of made-up `kid`s cannot hammer the STS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{VerifyError, printable};

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Largest JWKS document read, so a hostile endpoint cannot exhaust memory.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A verification key with the one algorithm it may be used with.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    /// The algorithm fixed by the key (its JWK `alg`, else its type).
    pub alg: Algorithm,
    /// The parsed public key.
    pub key: DecodingKey,
}

/// One successful fetch.
struct KeySet {
    keys: HashMap<String, VerifyKey>,
    fetched_at: Instant,
    generation: u64,
}

/// Book-keeping of fetch attempts, guarded by the single-flight mutex.
#[derive(Default)]
struct FetchState {
    last_forced: Option<Instant>,
    last_failure: Option<(Instant, String)>,
}

/// The cached JWKS of one issuer.
pub(crate) struct JwksCache {
    http: reqwest::Client,
    uri: String,
    ttl: Duration,
    min_refresh: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    fetch: Mutex<FetchState>,
}

impl JwksCache {
    /// A cache that has fetched nothing yet; the first verification fetches.
    pub(crate) fn new(http: reqwest::Client, uri: String, ttl: Duration, min_refresh: Duration) -> Self {
        Self {
            http,
            uri,
            ttl,
            min_refresh,
            current: RwLock::new(None),
            fetch: Mutex::new(FetchState::default()),
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        // A poisoned lock only means a panic elsewhere; the data is still a whole Arc.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, set: Arc<KeySet>) {
        match self.current.write() {
            Ok(mut guard) => *guard = Some(set),
            Err(poisoned) => *poisoned.into_inner() = Some(set),
        }
    }

    fn fresh(&self, set: &KeySet, now: Instant) -> bool {
        now.saturating_duration_since(set.fetched_at) < self.ttl
    }

    /// The key for `kid`, fetching or refetching the JWKS when needed.
    pub(crate) async fn key(&self, kid: &str) -> Result<VerifyKey, VerifyError> {
        let seen = self.snapshot();
        if let Some(set) = &seen
            && self.fresh(set, Instant::now())
            && let Some(key) = set.keys.get(kid)
        {
            return Ok(key.clone());
        }
        let seen_generation = seen.as_ref().map(|s| s.generation);

        let mut state = self.fetch.lock().await;
        let now = Instant::now();
        let current = self.snapshot();
        let fresh = current.as_ref().filter(|s| self.fresh(s, now));

        if let Some(set) = fresh {
            if let Some(key) = set.keys.get(kid) {
                return Ok(key.clone());
            }
            // Someone else fetched while we waited and the kid is still absent.
            if Some(set.generation) != seen_generation {
                return Err(VerifyError::UnknownKey(printable(kid)));
            }
            let recently = state
                .last_forced
                .is_some_and(|t| now.saturating_duration_since(t) < self.min_refresh);
            if recently {
                return Err(VerifyError::UnknownKey(printable(kid)));
            }
            state.last_forced = Some(now);
        } else if let Some((at, why)) = &state.last_failure
            && now.saturating_duration_since(*at) < self.min_refresh
        {
            return Err(VerifyError::JwksUnavailable(why.clone()));
        }

        let next_generation = current.as_ref().map_or(1, |s| s.generation.saturating_add(1));
        match self.download().await {
            Ok(keys) => {
                state.last_failure = None;
                let set = Arc::new(KeySet {
                    keys,
                    fetched_at: Instant::now(),
                    generation: next_generation,
                });
                self.store(Arc::clone(&set));
                set.keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| VerifyError::UnknownKey(printable(kid)))
            }
            Err(why) => {
                tracing::warn!(jwks_uri = %self.uri, error = %why, "JWKS fetch failed");
                state.last_failure = Some((Instant::now(), why.clone()));
                // Keys still inside their cache lifetime keep working.
                match fresh {
                    Some(_) => Err(VerifyError::UnknownKey(printable(kid))),
                    None => Err(VerifyError::JwksUnavailable(why)),
                }
            }
        }
    }

    async fn download(&self) -> Result<HashMap<String, VerifyKey>, String> {
        let response = self
            .http
            .get(&self.uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("JWKS endpoint {} unreachable: {e}", self.uri))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("JWKS endpoint {} answered HTTP {}", self.uri, status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("JWKS endpoint {} body unreadable: {e}", self.uri))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS from {} is too large", self.uri));
        }
        let keys = parse_jwks(&body).map_err(|e| format!("JWKS from {} unusable: {e}", self.uri))?;
        if keys.is_empty() {
            return Err(format!(
                "JWKS from {} holds no usable ES256 or RS256 signing key",
                self.uri
            ));
        }
        Ok(keys)
    }
}

/// Parse a JWKS document, keeping only keys usable for ES256 or RS256 signatures.
/// A key this library cannot use is skipped, not fatal: the set may hold other kinds.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, VerifyKey>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys = HashMap::new();
    for value in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        match usable_key(&jwk) {
            Some(key) => {
                keys.insert(kid, key);
            }
            None => {
                tracing::debug!(kid = %printable(&kid), "JWKS key skipped: not an ES256/RS256 signing key")
            }
        }
    }
    Ok(keys)
}

/// The key and its one algorithm, or `None` when it is not an ES256/RS256 signing key.
fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256)) if p.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (AlgorithmParameters::RSA(p), None | Some(KeyAlgorithm::RS256)) => {
            let modulus = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &p.n).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return None;
            }
            Algorithm::RS256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { alg, key })
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
