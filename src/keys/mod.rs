//! Signing keys: loading, generating, rotating and publishing them.
//!
//! Keys live in a directory as PKCS#8 PEM files named `<created>-<alg>.pem`. The
//! newest key of the configured algorithm signs; an older key is retired when a
//! newer one appears and stays published until every token it can have signed has
//! expired. Replicas share the directory, so they sign and verify alike.

mod error;
mod store;

pub use error::KeyError;
pub use mcp_sts_contract::jose::{SigningKey, thumbprint};
pub use store::KeyDir;

use std::sync::{Arc, RwLock};

use jsonwebtoken::Algorithm;

use crate::config::SigningAlgorithm;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{JwsError, KeySource, Refusal, Unverified, VerificationKey, select};

/// The keys of a directory and the rules that say which signs and which are published.
///
/// A new key may be pre-published: with an activation delay it appears in the JWKS at
/// once but signs only after the delay, so verifiers that cache the JWKS have it before
/// they meet a token signed by it. A key is retired when its successor starts signing
/// and stays published for the longest token lifetime after that.
#[derive(Debug)]
pub struct KeyRing {
    /// Newest first.
    keys: Vec<Arc<SigningKey>>,
    /// The oldest key of the algorithm: signs while no key is active yet.
    first: Arc<SigningKey>,
    algorithm: SigningAlgorithm,
    activation_delay: u64,
    publish_grace: u64,
}

impl KeyRing {
    /// Build a ring in which a new key signs as soon as it exists.
    pub fn new(keys: Vec<SigningKey>, algorithm: SigningAlgorithm, publish_grace: u64) -> Result<Self, KeyError> {
        Self::with_activation_delay(keys, algorithm, publish_grace, 0)
    }

    /// Build a ring whose new keys start signing `activation_delay` seconds after creation.
    pub(crate) fn with_activation_delay(
        mut keys: Vec<SigningKey>,
        algorithm: SigningAlgorithm,
        publish_grace: u64,
        activation_delay: u64,
    ) -> Result<Self, KeyError> {
        keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.kid.cmp(&a.kid)));
        let keys: Vec<Arc<SigningKey>> = keys.into_iter().map(Arc::new).collect();
        let first = keys
            .iter()
            .rev()
            .find(|k| k.algorithm == algorithm)
            .cloned()
            .ok_or(KeyError::NoSigningKey(algorithm))?;
        Ok(Self {
            keys,
            first,
            algorithm,
            activation_delay,
            publish_grace,
        })
    }

    fn activates_at(&self, key: &SigningKey) -> UnixTime {
        if key.immediate {
            return key.created;
        }
        key.created.saturating_add(self.activation_delay)
    }

    /// When `key` signs (or signed) first: its creation plus the activation delay,
    /// or its creation for a key made with `keys rotate --now`.
    pub fn activation(&self, key: &SigningKey) -> UnixTime {
        self.activates_at(key)
    }

    /// The key that signs new tokens at `now`: the newest active key of the configured
    /// algorithm, or, when none is active yet (a first start), the oldest one.
    pub fn signing_key(&self, now: UnixTime) -> &Arc<SigningKey> {
        self.keys
            .iter()
            .find(|k| k.algorithm == self.algorithm && self.activates_at(k) <= now)
            .unwrap_or(&self.first)
    }

    /// When `key` stopped signing: when the next newer key became active, if it has.
    pub fn retired_at(&self, key: &SigningKey, now: UnixTime) -> Option<UnixTime> {
        let signing = self.signing_key(now);
        if signing.kid == key.kid || key.created >= signing.created {
            return None;
        }
        let successor = self.keys.iter().rev().find(|k| k.created > key.created)?;
        Some(self.activates_at(successor).max(successor.created))
    }

    /// Keys that can still have live tokens at `now`, plus pre-published ones: the JWKS.
    pub(crate) fn published(&self, now: UnixTime) -> impl Iterator<Item = &Arc<SigningKey>> {
        self.keys.iter().filter(move |k| {
            self.retired_at(k, now)
                .is_none_or(|at| at.saturating_add(self.publish_grace) > now)
        })
    }

    /// A published key by `kid`, for verifying tokens this service minted.
    pub(crate) fn published_by_kid(&self, kid: &str, now: UnixTime) -> Option<&Arc<SigningKey>> {
        self.published(now).find(|k| k.kid == kid)
    }

    /// The published key that may verify a token we minted, named by its `kid` and
    /// `alg`: this ring is the key source for our own tokens (see [`mcp_sts_contract::jose`]).
    pub(crate) fn verification_keys(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<Vec<Arc<VerificationKey>>, JwsError> {
        let kid = kid.ok_or(JwsError::UnknownKey)?;
        let key = self.published_by_kid(kid, now).ok_or(JwsError::UnknownKey)?;
        select([&key.verification], Some(kid), alg)
    }

    /// Every key, newest first (for `keys list`).
    pub fn all(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The JWKS document published at `/.well-known/jwks.json`.
    pub(crate) fn jwks(&self, now: UnixTime) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self.published(now).map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Our own tokens are read with our published keys only: `kid` required.
impl KeySource for KeyRing {
    type Signer = ();

    async fn keys(&self, jws: &Unverified<'_>, now: UnixTime) -> Result<((), Vec<Arc<VerificationKey>>), Refusal> {
        let keys = self.verification_keys(jws.kid(), jws.alg(), now);
        Ok(((), keys.map_err(|e| Refusal::keys(e, jws.kid()))?))
    }
}

/// The current ring, swapped atomically when the key directory changes.
#[derive(Debug, Clone)]
pub struct SharedKeyRing(Arc<RwLock<Arc<KeyRing>>>);

impl SharedKeyRing {
    /// Wrap a ring.
    pub(crate) fn new(ring: KeyRing) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(ring))))
    }

    /// The ring in force now. A poisoned lock still holds a consistent `Arc`.
    pub fn current(&self) -> Arc<KeyRing> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the ring.
    pub fn replace(&self, ring: KeyRing) {
        let ring = Arc::new(ring);
        match self.0.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}
