//! The downstream side: verify tokens minted by mcp-sts and hand handlers a typed
//! [`ExecutionIdentity`].
//!
//! Independent of the server modules (only [`crate::clock`] is shared), so a
//! downstream API can depend on it alone. Keys come from the STS's JWKS (cached,
//! refetched on an unknown `kid`); revocation optionally through RFC 7662
//! introspection; [`extract`] adapts it to axum with RFC 6750 answers.

#![warn(missing_docs)]

mod claims;
mod error;
pub mod extract;
mod identity;
mod introspect;
mod jwks;
pub mod stream;

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use crate::clock::{Clock, SystemClock, UnixTime};
use claims::Claims;
pub use error::VerifyError;
pub use extract::{AuthRejection, Authenticated, BearerAuth, BearerAuthLayer};
pub use identity::{Actor, DelegationMode, ExecutionIdentity, UserContext};
use introspect::Introspector;
use jwks::JwksCache;
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

/// What a downstream service trusts: one issuer, its own audience, the issuer's JWKS.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The STS's issuer URL; `iss` must equal it exactly.
    pub issuer: String,
    /// This service's audience id (or resource URI); `aud` must name it.
    pub audience: String,
    /// The STS's JWKS, normally `{issuer}/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
    /// How long a fetched JWKS is trusted without refetching (default 5 min).
    pub jwks_cache_ttl: Duration,
    /// Least time between refetches forced by an unknown `kid`, and between retries
    /// after a failed fetch (default 10 s).
    pub jwks_min_refresh_interval: Duration,
    /// Timeout of each HTTP call to the STS (default 5 s).
    pub http_timeout: Duration,
    /// Revocation check by introspection; `None` relies on short token lifetimes.
    /// With a revocation stream, introspection is only the stale-stream fallback.
    pub introspection: Option<IntrospectionConfig>,
    /// Revocations heard on mcp-sts's Shared Signals stream, checked locally.
    pub revocation_stream: Option<std::sync::Arc<RevocationStream>>,
}

impl VerifierConfig {
    /// A config with the defaults; the JWKS is at the issuer's well-known path.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let jwks_uri = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        Self {
            issuer,
            audience: audience.into(),
            jwks_uri,
            leeway: Duration::from_secs(30),
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_min_refresh_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            introspection: None,
            revocation_stream: None,
        }
    }
}

/// Verifies mcp-sts access tokens for one audience; share one per service (`Arc`).
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway: u64,
    jwks: JwksCache,
    introspection: Option<Introspector>,
    revocation_stream: Option<std::sync::Arc<RevocationStream>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Build a verifier; nothing is fetched until the first token arrives.
    pub fn new(config: VerifierConfig) -> Result<Self, VerifyError> {
        if config.issuer.is_empty() || config.audience.is_empty() || config.jwks_uri.is_empty() {
            return Err(VerifyError::Config("issuer, audience and jwks_uri must be set".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| VerifyError::Config(format!("HTTP client: {e}")))?;
        let jwks = JwksCache::new(
            http.clone(),
            config.jwks_uri,
            config.jwks_cache_ttl,
            config.jwks_min_refresh_interval,
        );
        let introspection = config.introspection.as_ref().map(|c| Introspector::new(http, c));
        Ok(Self {
            issuer: config.issuer,
            audience: config.audience,
            leeway: config.leeway.as_secs(),
            jwks,
            introspection,
            revocation_stream: config.revocation_stream,
        })
    }

    /// Verify `token` now (system clock).
    pub async fn verify(&self, token: &str) -> Result<ExecutionIdentity, VerifyError> {
        self.verify_at(token, SystemClock.now()).await
    }

    /// Verify `token` as of `now` (seconds since the epoch); tests pass a fixed time.
    pub async fn verify_at(&self, token: &str, now: UnixTime) -> Result<ExecutionIdentity, VerifyError> {
        let header = claims::check_header(token)?;
        let key = self.jwks.key(&header.kid).await?;
        if key.alg != header.alg {
            return Err(VerifyError::AlgorithmMismatch);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation(key.alg))
            .map_err(|e| map_jwt_error(e.kind()))?;
        let claims = data.claims;
        claims::check_times(&claims, now, self.leeway)?;
        if !claims.has_audience(&self.audience) {
            return Err(VerifyError::WrongAudience);
        }
        let claims = claims.into_access_claims()?;
        // With a stream, revocation is decided locally; introspection only stands in
        // for a stale stream (and without it a stale stream fails closed).
        let ask_introspection = match &self.revocation_stream {
            Some(stream) => stream.check(&claims, now)? == StreamVerdict::AskIntrospection,
            None => true,
        };
        let identity = claims::identity_from(claims, &self.audience)?;
        match (&self.introspection, ask_introspection, &self.revocation_stream) {
            (Some(introspector), true, _) => introspector.check(token).await?,
            (None, true, Some(_)) => {
                return Err(VerifyError::RevocationStreamStale(
                    "stale, and no introspection is configured to fall back to".into(),
                ));
            }
            _ => {}
        }
        Ok(identity)
    }

    /// The signature and claim rules for a key of algorithm `alg`: that algorithm only,
    /// `iss`/`aud`/`exp` required, issuer and audience fixed. Time is checked separately
    /// against the `now` passed in.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.required_spec_claims = HashSet::from(["exp".to_owned(), "iss".to_owned(), "aud".to_owned()]);
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_audience(&[self.audience.as_str()]);
        v.validate_aud = true;
        v.validate_exp = false;
        v.validate_nbf = false;
        v.leeway = 0;
        v.sub = None;
        v
    }
}

/// Map a `jsonwebtoken` failure to the refusal it means.
pub(crate) fn map_jwt_error(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => VerifyError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            VerifyError::AlgorithmMismatch
        }
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => VerifyError::MissingClaim(claim.clone()),
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidClaimFormat(claim) => VerifyError::Malformed(format!("claim {claim} has the wrong type")),
        ErrorKind::Json(_) => VerifyError::Malformed("claims are not valid JSON of the expected shape".into()),
        _ => VerifyError::Malformed("token could not be decoded".into()),
    }
}
