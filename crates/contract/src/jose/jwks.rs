//! One JWKS cache for every use: an upstream issuer (by OIDC discovery or a fixed URI),
//! a client's `jwks_uri` or inline keys, and the downstream verifier's view of the STS.
//!
//! Keys are fetched on first use and trusted for `ttl`. A `kid` the fresh keys lack
//! forces a refetch (the issuer may have rotated), at most one per
//! `min_refetch_interval`; a failed fetch is not retried before that interval either, and
//! concurrent requests share one fetch (single flight), so a flood of made-up `kid`s
//! cannot make us hammer the issuer. When a refresh fails, the keys already cached keep
//! working: within their TTL always, and past it for `max_stale` more seconds.
//!
//! Time is passed in (`now`, seconds since the epoch): the cache never reads a clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::algorithm::{ASYMMETRIC, algorithms_for_key, rsa_modulus_bits};
use super::key::{JwsError, VerificationKey, select};
use crate::clock::UnixTime;
use crate::fetch::{FetchLimits, fetch};

/// Where a cache's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// OpenID Connect discovery under this issuer URL (then RFC 8414 metadata); the
    /// document's `issuer` must equal it exactly, and its `jwks_uri` is fetched.
    Discovery(String),
    /// A fixed JWKS URL.
    Uri(String),
    /// A JWK set given in configuration; never fetched.
    Inline(Value),
    /// A SPIFFE trust domain's bundle endpoint: only its `jwt-svid` keys count, and
    /// its `spiffe_refresh_hint` (when shorter) says how long they are fresh.
    SpiffeBundle(String),
}

/// How one use of the cache judges and refreshes keys.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// Refuse keys without a `kid`, and lookups without one.
    pub kid_required: bool,
    /// The algorithms keys may verify here; a key fitting none of them is dropped.
    pub algorithms: Vec<Algorithm>,
    /// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 asks for 2048).
    pub min_rsa_bits: usize,
    /// Seconds fetched keys are trusted without refetching.
    pub ttl: u64,
    /// Least seconds between two refetches forced by an unknown `kid`, and between a
    /// failed fetch and the next attempt.
    pub min_refetch_interval: u64,
    /// Seconds past `ttl` that cached keys still serve while refreshes fail
    /// (`u64::MAX`: until a refresh succeeds; 0: fail closed once the TTL is over).
    pub max_stale: u64,
    /// Deadline and byte cap of each fetch; the deadline also bounds a whole refresh.
    pub fetch: FetchLimits,
    /// Whether keys may be read over plain http from a host that is not loopback (an
    /// upstream issuer refuses it unless its configuration allows it).
    pub allow_plain_http: bool,
}

impl Default for JwksConfig {
    /// Any asymmetric algorithm, `kid` optional, RSA of 2048 bits or more, keys trusted
    /// 10 minutes, refetched at most every 30 s, kept while refreshes fail; fetches of
    /// at most 512 KiB within 5 s.
    fn default() -> Self {
        Self {
            kid_required: false,
            algorithms: ASYMMETRIC.to_vec(),
            min_rsa_bits: 2048,
            ttl: 600,
            min_refetch_interval: 30,
            max_stale: u64::MAX,
            fetch: FetchLimits {
                timeout: Duration::from_secs(5),
                max_bytes: 512 * 1024,
            },
            allow_plain_http: true,
        }
    }
}

/// Counts of fetch outcomes, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksStats {
    /// Fetch attempts (discovery and JWKS together count as one).
    pub fetches: u64,
    /// Attempts that yielded no usable keys.
    pub failures: u64,
}

#[derive(Default)]
struct Snapshot {
    keys: Vec<Arc<VerificationKey>>,
    fetched_at: Option<UnixTime>,
    /// How long these keys are fresh, when their source said less than the TTL.
    ttl: Option<u64>,
    /// Bumped by every successful fetch, so a waiter can tell someone else refreshed.
    generation: u64,
}

/// Book-keeping of fetch attempts, guarded by the single-flight mutex.
#[derive(Default)]
struct FetchState {
    last_forced: Option<UnixTime>,
    last_failure: Option<(UnixTime, String)>,
}

/// The cached keys of one issuer or client.
pub struct JwksCache {
    source: JwksSource,
    config: JwksConfig,
    http: reqwest::Client,
    snapshot: RwLock<Arc<Snapshot>>,
    fetch: tokio::sync::Mutex<FetchState>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            JwksSource::Discovery(issuer) => format!("discovery {issuer}"),
            JwksSource::Uri(uri) => uri.clone(),
            JwksSource::Inline(_) => "inline".to_owned(),
            JwksSource::SpiffeBundle(uri) => format!("SPIFFE bundle {uri}"),
        };
        f.debug_struct("JwksCache")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for keys from `source`; inline keys are parsed now, others on first use.
    pub fn new(source: JwksSource, config: JwksConfig, http: reqwest::Client) -> Self {
        let snapshot = match &source {
            JwksSource::Inline(document) => {
                let keys = parse_jwks(document, &config).unwrap_or_else(|why| {
                    tracing::warn!(error = %why, "inline JWK set unusable");
                    Vec::new()
                });
                Snapshot {
                    keys,
                    fetched_at: Some(0),
                    ttl: None,
                    generation: 1,
                }
            }
            _ => Snapshot::default(),
        };
        Self {
            source,
            config,
            http,
            snapshot: RwLock::new(Arc::new(snapshot)),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// How many fetches were tried and how many failed so far.
    pub fn stats(&self) -> JwksStats {
        JwksStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// Where the keys come from.
    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    /// The keys held that could verify a token at `now` (fresh, or stale within
    /// `max_stale`), without fetching: what readiness reports per issuer.
    pub fn held(&self, now: UnixTime) -> Vec<Arc<VerificationKey>> {
        let held = self.current();
        let usable = held
            .fetched_at
            .is_some_and(|at| now < at.saturating_add(self.config.ttl).saturating_add(self.config.max_stale));
        if usable { held.keys.clone() } else { Vec::new() }
    }

    /// Keys that may verify a signature by `alg` under `kid` at `now`, fetching or
    /// refetching as the rules above allow.
    pub async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<Vec<Arc<VerificationKey>>, JwsError> {
        if self.config.kid_required && kid.is_none() {
            return Err(JwsError::UnknownKey);
        }
        let seen = self.current();
        if matches!(self.source, JwksSource::Inline(_)) {
            return select(&seen.keys, kid, alg);
        }
        if self.fresh(&seen, now) {
            match select(&seen.keys, kid, alg) {
                Err(JwsError::UnknownKey) => {} // perhaps rotated: refetch below
                answer => return answer,
            }
        }
        // The refresh is boxed: its future (the fetch) is large, and every read with
        // cached keys, the common case, would otherwise carry it through each caller.
        Box::pin(self.refresh(seen, kid, alg, now)).await
    }

    /// Fetch again if the rules above allow (single flight), else answer from the cache.
    async fn refresh(
        &self,
        seen: Arc<Snapshot>,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<Vec<Arc<VerificationKey>>, JwsError> {
        let mut state = self.fetch.lock().await;
        let current = self.current();
        let fresh = self.fresh(&current, now);
        if fresh && current.generation != seen.generation {
            return select(&current.keys, kid, alg); // refreshed while we waited
        }
        let interval = self.config.min_refetch_interval;
        if fresh {
            if state.last_forced.is_some_and(|at| now < at.saturating_add(interval)) {
                return select(&current.keys, kid, alg);
            }
            state.last_forced = Some(now);
        } else if let Some((at, why)) = &state.last_failure
            && now < at.saturating_add(interval)
        {
            return self.stale_or_unavailable(&current, kid, alg, now, why.clone());
        }

        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match tokio::time::timeout(self.config.fetch.timeout, self.fetch_keys()).await {
            Ok(result) => result,
            Err(_) => Err(format!("{}: timed out", self.describe())),
        };
        match fetched {
            Ok((keys, ttl)) => {
                state.last_failure = None;
                let next = Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(now),
                    ttl,
                    generation: current.generation.saturating_add(1),
                });
                self.store(Arc::clone(&next));
                select(&next.keys, kid, alg)
            }
            Err(why) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %self.describe(), error = %why, "JWKS fetch failed");
                state.last_failure = Some((now, why.clone()));
                if fresh {
                    select(&current.keys, kid, alg)
                } else {
                    self.stale_or_unavailable(&current, kid, alg, now, why)
                }
            }
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a panic elsewhere; the data is still a whole Arc.
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn store(&self, snapshot: Arc<Snapshot>) {
        match self.snapshot.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    fn fresh(&self, snapshot: &Snapshot, now: UnixTime) -> bool {
        let ttl = snapshot.ttl.map_or(self.config.ttl, |hint| hint.min(self.config.ttl));
        snapshot.fetched_at.is_some_and(|at| now < at.saturating_add(ttl))
    }

    /// After a failed or refused refresh: cached keys while `max_stale` allows, else 503.
    fn stale_or_unavailable(
        &self,
        snapshot: &Snapshot,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
        why: String,
    ) -> Result<Vec<Arc<VerificationKey>>, JwsError> {
        let usable = snapshot
            .fetched_at
            .is_some_and(|at| now < at.saturating_add(self.config.ttl).saturating_add(self.config.max_stale));
        if usable {
            select(&snapshot.keys, kid, alg)
        } else {
            Err(JwsError::KeysUnavailable(why))
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            JwksSource::Discovery(issuer) => format!("keys of {issuer}"),
            JwksSource::Uri(uri) => format!("JWKS endpoint {uri}"),
            JwksSource::Inline(_) => "inline keys".to_owned(),
            JwksSource::SpiffeBundle(uri) => format!("SPIFFE bundle endpoint {uri}"),
        }
    }

    /// The keys, and how long they are fresh when the source says (a SPIFFE bundle).
    #[tracing::instrument(name = "jwks_fetch", target = "mcp_sts::trace", skip_all, fields(otel.kind = "client", source = %self.describe()))]
    async fn fetch_keys(&self) -> Result<(Vec<Arc<VerificationKey>>, Option<u64>), String> {
        let (uri, bundle) = match &self.source {
            JwksSource::Uri(uri) => (uri.clone(), false),
            JwksSource::Discovery(issuer) => (self.discover(issuer).await?, false),
            JwksSource::Inline(document) => return Ok((parse_jwks(document, &self.config)?, None)),
            JwksSource::SpiffeBundle(uri) => (uri.clone(), true),
        };
        let mut document = self.get_json(&uri, "JWKS endpoint").await?;
        let mut hint = None;
        if bundle {
            hint = document.get("spiffe_refresh_hint").and_then(Value::as_u64);
            document = jwt_svid_keys(&document);
        }
        let keys = parse_jwks(&document, &self.config).map_err(|why| format!("JWKS from {uri} unusable: {why}"))?;
        if keys.is_empty() {
            return Err(format!("JWKS from {uri} holds no usable signing key"));
        }
        Ok((keys, hint))
    }

    /// The `jwks_uri` of `issuer`'s discovery document, whose `issuer` must match.
    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let base = issuer.trim_end_matches('/');
        let mut last_error = format!("discovery for {issuer} failed");
        for suffix in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            match self.get_json(&format!("{base}{suffix}"), "discovery endpoint").await {
                Ok(document) => {
                    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
                        return Err(format!("discovery document for {issuer} names a different issuer"));
                    }
                    return document
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| format!("discovery document for {issuer} has no jwks_uri"));
                }
                Err(why) => last_error = why,
            }
        }
        Err(last_error)
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Value, String> {
        let clear = reqwest::Url::parse(url).is_ok_and(|u| crate::fetch::plain_http_off_loopback(&u));
        if clear && !self.config.allow_plain_http {
            return Err(format!(
                "{what} {url} is plain http from a host that is not loopback; refused (allow_plain_http is off)"
            ));
        }
        let request = self.http.get(url).header(reqwest::header::ACCEPT, "application/json");
        let fetched = fetch(request, self.config.fetch)
            .await
            .map_err(|e| format!("{what} {url} {e}"))?;
        if !fetched.status.is_success() {
            return Err(format!("{what} {url} answered HTTP {}", fetched.status.as_u16()));
        }
        serde_json::from_slice(&fetched.body).map_err(|_| format!("{what} {url} answered with something not JSON"))
    }
}

/// A SPIFFE bundle's JWT-SVID keys (`use` = `jwt-svid`) as a plain JWK set of
/// signature keys; its X.509-SVID roots and any other key are left out.
fn jwt_svid_keys(bundle: &Value) -> Value {
    let keys: Vec<Value> = bundle
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|key| key.get("use").and_then(Value::as_str) == Some("jwt-svid"))
        .filter_map(|key| {
            let mut key = key.as_object()?.clone();
            key.insert("use".into(), Value::String("sig".into()));
            Some(Value::Object(key))
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// Parse a JWK set, keeping only the keys this use may verify with. A key we cannot or
/// must not use (another `kty`, `use` other than `sig`, no `kid` where one is required,
/// an algorithm outside the allowlist, a short RSA modulus) is skipped, not fatal.
fn parse_jwks(document: &Value, config: &JwksConfig) -> Result<Vec<Arc<VerificationKey>>, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a JWK set".to_owned())?;
    Ok(keys
        .iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value.clone()).ok())
        .filter_map(|jwk| usable_key(&jwk, config))
        .map(Arc::new)
        .collect())
}

fn usable_key(jwk: &Jwk, config: &JwksConfig) -> Option<VerificationKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let kid = jwk.common.key_id.clone();
    if config.kid_required && kid.as_deref().is_none_or(str::is_empty) {
        return None;
    }
    if matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
        && rsa_modulus_bits(jwk).is_none_or(|bits| bits < config.min_rsa_bits)
    {
        return None;
    }
    let algorithms: Vec<Algorithm> = algorithms_for_key(jwk)
        .into_iter()
        .filter(|alg| config.algorithms.contains(alg))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey { kid, algorithms, key })
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
