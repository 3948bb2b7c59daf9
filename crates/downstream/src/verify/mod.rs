//! The downstream side: verify tokens minted by mcp-sts and hand handlers a typed
//! [`ExecutionIdentity`].
//!
//! Independent of the server modules (it shares only [`mcp_sts_contract::clock`], [`mcp_sts_contract::fetch`],
//! [`mcp_sts_contract::jose`] and [`mcp_sts_contract`]), so a downstream API can depend on it alone.
//! Tokens are read by the one JWS pipeline ([`mcp_sts_contract::jose::read`]) with keys from the
//! STS's JWKS (a [`mcp_sts_contract::jose::JwksCache`]: cached, refetched on an unknown `kid`;
//! one cache shared with a [`RevocationStream`] reading the same JWKS); revocation
//! optionally through RFC 7662 introspection or the stream; `extract` (feature
//! `axum`) adapts it to axum with RFC 6750 answers. Caches keep time by the
//! configured [`Clock`].

#![warn(missing_docs)]

mod claims;
pub mod dpop;
mod error;
#[cfg(feature = "axum")]
pub mod extract;
mod identity;
mod introspect;
pub mod stream;
mod stream_state;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use claims::Claims;
use dpop::{Presentation, ProofChecker, Scheme};
pub use error::VerifyError;
#[cfg(feature = "axum")]
pub use extract::{AuthRejection, Authenticated, BearerAuth, BearerAuthLayer};
pub use identity::{Actor, DelegationMode, ExecutionIdentity, SubProfile, UserContext};
use introspect::Introspector;
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::clock::{Clock, SystemClock, UnixTime};
use mcp_sts_contract::fetch::{FetchLimits, http_client};
use mcp_sts_contract::jose::algorithm::ASYMMETRIC;
use mcp_sts_contract::jose::compact::{audiences, str_claim};
use mcp_sts_contract::jose::{
    JwksCache, JwksConfig, JwksSource, JwksStats, KeySource, Refusal, Unverified, VerificationKey, VerifiedStats,
    VerifiedTokens, read,
};

/// Largest JWKS document read from the STS.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Smallest RSA key accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;
pub use stream::{RevocationStream, RevocationStreamConfig, StreamVerdict};

/// Where and how to check revocation by introspection (RFC 7662).
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The STS's introspection endpoint, e.g. `https://sts.example.com/introspect`.
    pub url: String,
    /// This service's client id at the STS (it must be the token's audience).
    pub client_id: String,
    /// This service's client secret, sent with `client_secret_basic`.
    pub client_secret: String,
    /// How long an answer is reused for the same token; keep it short (default 5 s).
    pub cache_ttl: Duration,
}

impl IntrospectionConfig {
    /// A config with the default 5 second answer cache.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// What a downstream service trusts: one issuer, its own audiences, the issuer's JWKS.
#[derive(Clone)]
pub struct VerifierConfig {
    /// The STS's issuer URL; `iss` must equal it exactly.
    pub issuer: String,
    /// The names this service answers to; `aud` must name one of them. A token's `aud`
    /// is the audience id when the caller asked with `audience`, the resource URI when it
    /// asked with `resource` (RFC 8707), so a service usually accepts both.
    pub audiences: Vec<String>,
    /// The STS's JWKS, normally `{issuer}/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
    /// How long a fetched JWKS is trusted without refetching (default 5 min; whole
    /// seconds). Past it, keys that cannot be refreshed are no longer used: fail closed.
    pub jwks_cache_ttl: Duration,
    /// Least time between refetches forced by an unknown `kid`, and between retries
    /// after a failed fetch (default 10 s; whole seconds).
    pub jwks_min_refresh_interval: Duration,
    /// Deadline of each HTTP call to the STS, body included (default 5 s).
    pub http_timeout: Duration,
    /// Revocation check by introspection; `None` relies on short token lifetimes.
    /// With a revocation stream, introspection is only the stale-stream fallback.
    pub introspection: Option<IntrospectionConfig>,
    /// Revocations heard on mcp-sts's Shared Signals stream, checked locally.
    pub revocation_stream: Option<std::sync::Arc<RevocationStream>>,
    /// The time source of the JWKS and introspection caches, and of [`Verifier::verify`]
    /// (default [`SystemClock`]); tests inject a [`mcp_sts_contract::clock::ManualClock`].
    pub clock: Arc<dyn Clock>,
    /// How many verified tokens to remember until their `exp`, so a token used on many
    /// requests costs one signature check (default 10,000; 0: check every time). Time
    /// rules, revocation (stream or introspection) and key removal still apply on
    /// every request.
    pub verified_token_cache: usize,
    /// This service's public base URL (scheme, host, port, e.g.
    /// `https://api.example.com`): a DPoP proof's `htu` must be it followed by the
    /// request's path. Without it, tokens bound to a key are refused.
    pub public_url: Option<String>,
    /// How many DPoP proofs to remember at once for replay detection (default
    /// [`dpop::DEFAULT_REPLAY_CAPACITY`]); when full of proofs still in their window,
    /// bound tokens are refused until room is made.
    pub dpop_replay_capacity: usize,
    /// Demand server nonces in DPoP proofs (RFC 9449 §9), made with this secret; the
    /// replicas of one service share it. `None`: no nonces.
    pub dpop_nonce_secret: Option<mcp_sts_contract::secret::Secret>,
}

impl std::fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("jwks_uri", &self.jwks_uri)
            .field("leeway", &self.leeway)
            .field("jwks_cache_ttl", &self.jwks_cache_ttl)
            .field("jwks_min_refresh_interval", &self.jwks_min_refresh_interval)
            .field("http_timeout", &self.http_timeout)
            .field("introspection", &self.introspection)
            .finish_non_exhaustive()
    }
}

impl VerifierConfig {
    /// A config with the defaults for one audience; the JWKS is at the issuer's
    /// well-known path.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let jwks_uri = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        Self {
            issuer,
            audiences: vec![audience.into()],
            jwks_uri,
            leeway: Duration::from_secs(30),
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            introspection: None,
            clock: Arc::new(SystemClock),
            revocation_stream: None,
            verified_token_cache: 10_000,
            public_url: None,
            dpop_replay_capacity: dpop::DEFAULT_REPLAY_CAPACITY,
            dpop_nonce_secret: None,
        }
    }

    /// Accept DPoP-bound tokens for requests to this public base URL.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Also accept tokens whose `aud` is `audience`, typically the service's resource
    /// URI next to its audience id.
    pub fn also_accept(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
}

/// Verifies mcp-sts access tokens for one service; share one per service (`Arc`).
pub struct Verifier {
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
    jwks: Arc<StsKeys>,
    introspection: Option<Introspector>,
    clock: Arc<dyn Clock>,
    revocation_stream: Option<std::sync::Arc<RevocationStream>>,
    verified: VerifiedTokens<Arc<Checked>>,
    public_url: Option<String>,
    proofs: ProofChecker,
}

/// What a verified token says, checked against this verifier's issuer, audiences and
/// the token contract: all that holds for the same bytes on every later request.
struct Checked {
    claims: AccessClaims,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Build a verifier; nothing is fetched until the first token arrives.
    pub fn new(config: VerifierConfig) -> Result<Self, VerifyError> {
        if config.issuer.is_empty() || config.jwks_uri.is_empty() {
            return Err(VerifyError::Config("issuer and jwks_uri must be set".into()));
        }
        if config.audiences.is_empty() || config.audiences.iter().any(String::is_empty) {
            return Err(VerifyError::Config(
                "at least one audience, none empty, must be set".into(),
            ));
        }
        let http = http_client(config.http_timeout).map_err(|e| VerifyError::Config(format!("HTTP client: {e}")))?;
        let rules = KeyCacheRules {
            jwks_uri: config.jwks_uri,
            ttl: config.jwks_cache_ttl,
            min_refresh: config.jwks_min_refresh_interval,
            timeout: config.http_timeout,
        };
        // A stream reading the same JWKS by the same rules lends its cache: one fetch
        // and one set of keys for both.
        let jwks = match &config.revocation_stream {
            Some(stream) if stream.keys().rules == rules => Arc::clone(stream.keys()),
            _ => Arc::new(StsKeys::new(rules, http.clone())),
        };
        let introspection = config
            .introspection
            .as_ref()
            .map(|c| Introspector::new(http, c, config.http_timeout));
        Ok(Self {
            issuer: config.issuer,
            audiences: config.audiences,
            leeway: config.leeway.as_secs(),
            jwks,
            introspection,
            clock: config.clock,
            revocation_stream: config.revocation_stream,
            verified: VerifiedTokens::new(config.verified_token_cache),
            public_url: config.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            proofs: match &config.dpop_nonce_secret {
                Some(secret) => ProofChecker::new(config.dpop_replay_capacity).with_nonces(secret.expose().as_bytes()),
                None => ProofChecker::new(config.dpop_replay_capacity),
            },
        })
    }

    /// Verify `token` now, by the configured clock.
    pub async fn verify(&self, token: &str) -> Result<ExecutionIdentity, VerifyError> {
        self.verify_at(token, self.clock.now()).await
    }

    /// Verify `token` with its time claims judged at `now` (seconds since the epoch);
    /// the key and introspection caches keep their own time by the configured clock.
    /// The token is taken as a bearer token: one bound to a key is refused.
    pub async fn verify_at(&self, token: &str, now: UnixTime) -> Result<ExecutionIdentity, VerifyError> {
        let bearer = Presentation {
            scheme: Scheme::Bearer,
            proof: None,
            method: "",
            url: "",
        };
        self.verify_presented(token, bearer, now).await
    }

    /// Verify `token` as it was presented: its scheme, its DPoP proof, and the method
    /// and path of the request (the proof's `htu` is the configured public URL plus
    /// `path`). A bound token needs the `DPoP` scheme and a proof by its key.
    pub async fn verify_request(
        &self,
        token: &str,
        scheme: Scheme,
        proof: Option<&str>,
        method: &str,
        path: &str,
    ) -> Result<ExecutionIdentity, VerifyError> {
        let url = match &self.public_url {
            Some(base) => format!("{base}{path}"),
            None => String::new(),
        };
        let presented = Presentation {
            scheme,
            proof,
            method,
            url: &url,
        };
        self.verify_presented(token, presented, self.clock.now()).await
    }

    async fn verify_presented(
        &self,
        token: &str,
        presented: Presentation<'_>,
        now: UnixTime,
    ) -> Result<ExecutionIdentity, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        let keys = ClockedKeys {
            jwks: &self.jwks.cache,
            clock: self.clock.as_ref(),
        };
        let mut jws = read(token, &claims::profile(now, self.leeway), &keys, Some(&self.verified)).await?;
        let checked = match jws.take_recalled() {
            Some(checked) => checked,
            None => {
                let checked = Arc::new(self.check_claims(jws.take_claims()?)?);
                jws.remember(Arc::clone(&checked));
                checked
            }
        };
        let audience = checked.audience.as_str();
        let claims = checked.claims.clone();
        let jkt = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
        if jkt.is_some() && presented.scheme == Scheme::Dpop && self.public_url.is_none() {
            return Err(VerifyError::InvalidProof(
                "this service has no public URL configured to check proofs against".into(),
            ));
        }
        self.proofs.check(token, jkt, presented, now).await?;
        // With a stream, revocation is decided locally; introspection only stands in
        // for a stale stream (and without it a stale stream fails closed).
        let ask_introspection = match &self.revocation_stream {
            Some(stream) => stream.check(&claims, now)? == StreamVerdict::AskIntrospection,
            None => true,
        };
        let identity = claims::identity_from(claims, audience)?;
        match (&self.introspection, ask_introspection, &self.revocation_stream) {
            (Some(introspector), true, _) => introspector.check(token, self.clock.now()).await?,
            (None, true, Some(_)) => {
                return Err(VerifyError::RevocationStreamStale(
                    "stale, and no introspection is configured to fall back to".into(),
                ));
            }
            _ => {}
        }
        Ok(identity)
    }

    /// How often a verified token was recognised instead of checked again, for metrics.
    pub fn verified_stats(&self) -> VerifiedStats {
        self.verified.stats()
    }

    /// Outcomes of this verifier's JWKS fetches so far, for metrics.
    pub fn jwks_stats(&self) -> JwksStats {
        self.jwks.cache.stats()
    }

    /// The claims of a token whose signature and times verified, read through the token
    /// contract, once `iss` is exactly the configured issuer and `aud` names this
    /// service: with the audience of ours it names.
    fn check_claims(&self, claims: Map<String, Value>) -> Result<Checked, VerifyError> {
        for name in ["iss", "aud"] {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(VerifyError::MissingClaim(name.into()));
            }
        }
        if str_claim(&claims, "iss") != Some(self.issuer.as_str()) {
            return Err(VerifyError::WrongIssuer);
        }
        let named = audiences(&claims);
        let audience = self
            .audiences
            .iter()
            .find(|a| named.contains(&a.as_str()))
            .ok_or(VerifyError::WrongAudience)?
            .clone();
        Ok(Checked {
            claims: Claims::from(claims).into_access_claims()?,
            audience,
        })
    }
}

/// How a downstream service caches a JWKS: where from, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyCacheRules {
    pub(crate) jwks_uri: String,
    pub(crate) ttl: Duration,
    pub(crate) min_refresh: Duration,
    pub(crate) timeout: Duration,
}

/// A downstream key cache with the rules it was built by, so a verifier and a stream
/// that would build the same cache share one.
pub(crate) struct StsKeys {
    pub(crate) rules: KeyCacheRules,
    pub(crate) cache: JwksCache,
}

impl StsKeys {
    pub(crate) fn new(rules: KeyCacheRules, http: reqwest::Client) -> Self {
        let cache = downstream_jwks(&rules, http);
        Self { rules, cache }
    }
}

/// The key cache of a downstream service: `kid` required, every algorithm mcp-sts
/// accepts (each key verifies only its own), RSA of at least 2048 bits, a capped and
/// timed fetch, and no use of keys past their TTL when the JWKS cannot be refreshed
/// (fail closed).
pub(crate) fn downstream_jwks(rules: &KeyCacheRules, http: reqwest::Client) -> JwksCache {
    JwksCache::new(
        JwksSource::Uri(rules.jwks_uri.clone()),
        JwksConfig {
            kid_required: true,
            algorithms: ASYMMETRIC.to_vec(),
            min_rsa_bits: MIN_RSA_BITS,
            ttl: rules.ttl.as_secs(),
            min_refetch_interval: rules.min_refresh.as_secs(),
            max_stale: 0,
            fetch: FetchLimits {
                timeout: rules.timeout,
                max_bytes: MAX_JWKS_BYTES,
            },
            ..JwksConfig::default()
        },
        http,
    )
}

/// A key cache read at the time of the verifier's clock (the cache keeps its own time;
/// the token's times are judged at the `now` a caller passes).
struct ClockedKeys<'a> {
    jwks: &'a JwksCache,
    clock: &'a dyn Clock,
}

impl KeySource for ClockedKeys<'_> {
    type Signer = ();

    async fn keys(&self, jws: &Unverified<'_>, _now: UnixTime) -> Result<((), Vec<Arc<VerificationKey>>), Refusal> {
        Ok(((), jws.keys_from(self.jwks, self.clock.now()).await?))
    }
}
