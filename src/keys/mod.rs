//! Signing keys: loading, generating, rotating and publishing them.
//!
//! Keys live in a directory as PKCS#8 PEM files named `<created>-<alg>.pem`. The
//! newest key of the configured algorithm signs; an older key is retired when a
//! newer one appears and stays published until every token it can have signed has
//! expired. Replicas share the directory, so they sign and verify alike.

mod jwk;
mod signing;
mod store;

pub use jwk::thumbprint;
pub use signing::SigningKey;
pub use store::{KeyDir, KeyError};

use std::sync::{Arc, RwLock};

use crate::clock::UnixTime;
use crate::config::SigningAlgorithm;

/// The keys in force at one moment: the one that signs and every one still published.
#[derive(Debug)]
pub struct KeyRing {
    signing: Arc<SigningKey>,
    /// Newest first, each with the time it was retired (`None` for the signing key).
    keys: Vec<(Arc<SigningKey>, Option<UnixTime>)>,
    /// How long a retired key stays published: the longest token lifetime plus leeway.
    publish_grace: u64,
}

impl KeyRing {
    /// Build a ring from the keys of a directory. The newest key of `algorithm` signs.
    pub fn new(mut keys: Vec<SigningKey>, algorithm: SigningAlgorithm, publish_grace: u64) -> Result<Self, KeyError> {
        keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.kid.cmp(&a.kid)));
        let keys: Vec<Arc<SigningKey>> = keys.into_iter().map(Arc::new).collect();
        let signing = keys
            .iter()
            .find(|k| k.algorithm == algorithm)
            .cloned()
            .ok_or(KeyError::NoSigningKey(algorithm))?;
        let mut with_retirement = Vec::with_capacity(keys.len());
        let mut successor_created: Option<UnixTime> = None;
        for key in keys {
            let retired = if Arc::ptr_eq(&key, &signing) {
                None
            } else {
                Some(successor_created.unwrap_or(key.created))
            };
            successor_created = Some(key.created);
            with_retirement.push((key, retired));
        }
        Ok(Self {
            signing,
            keys: with_retirement,
            publish_grace,
        })
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> &Arc<SigningKey> {
        &self.signing
    }

    /// Keys that can still have live tokens at `now`: the JWKS contents.
    pub fn published(&self, now: UnixTime) -> impl Iterator<Item = &Arc<SigningKey>> {
        let grace = self.publish_grace;
        self.keys
            .iter()
            .filter(move |(_, retired)| retired.is_none_or(|at| at.saturating_add(grace) > now))
            .map(|(key, _)| key)
    }

    /// A published key by `kid`, for verifying tokens this service minted.
    pub fn published_by_kid(&self, kid: &str, now: UnixTime) -> Option<&Arc<SigningKey>> {
        self.published(now).find(|k| k.kid == kid)
    }

    /// Every key with its retirement time, newest first (for `keys list`).
    pub fn all(&self) -> &[(Arc<SigningKey>, Option<UnixTime>)] {
        &self.keys
    }

    /// The JWKS document published at `/.well-known/jwks.json`.
    pub fn jwks(&self, now: UnixTime) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self.published(now).map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

/// The current ring, swapped atomically when the key directory changes.
#[derive(Debug, Clone)]
pub struct SharedKeyRing(Arc<RwLock<Arc<KeyRing>>>);

impl SharedKeyRing {
    /// Wrap a ring.
    pub fn new(ring: KeyRing) -> Self {
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
