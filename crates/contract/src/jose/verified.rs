//! A bounded memory of signatures already checked, so a token presented again (the
//! same user's token on every tool call) costs a hash, not a signature verification.
//!
//! Only the signature verdict is remembered: which key verified exactly these bytes
//! under which algorithm, until the token's `exp`. Every other rule (header, issuer,
//! audience, time, policy, revocation) runs again on every use. A remembered verdict
//! counts only while its key is still among the keys the caller's key source offers
//! now: a key removed from an issuer's JWKS (or retired from our ring) stops
//! vouching for its tokens at the key source's next refresh, because each refresh
//! hands out new key objects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256};

use super::key::VerificationKey;
use super::profile::Times;
use crate::clock::UnixTime;

/// What was learnt when a token's signature verified, and what the caller kept with it.
/// The times are kept in 32 bits each (until 2106; [`ABSENT`] when the token has no
/// `nbf` or `iat`; a token whose times do not fit is checked every time instead), so a
/// verdict is no larger than its key handle, algorithm and one 64-bit time.
#[derive(Clone)]
struct Verdict<T> {
    key: Arc<VerificationKey>,
    alg: Algorithm,
    exp: u32,
    nbf: u32,
    iat: u32,
    kept: T,
}

/// A 32-bit time that is not there.
const ABSENT: u32 = u32::MAX;

fn pack(time: Option<UnixTime>) -> Option<u32> {
    match time {
        None => Some(ABSENT),
        Some(t) => u32::try_from(t).ok().filter(|t| *t != ABSENT),
    }
}

fn unpack(time: u32) -> Option<UnixTime> {
    (time != ABSENT).then_some(UnixTime::from(time))
}

/// Counters of a [`VerifiedTokens`] memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifiedStats {
    /// Signatures not checked again.
    pub hits: u64,
    /// Signatures checked (first sight, expired, evicted, or key no longer offered).
    pub misses: u64,
    /// Verdicts held now.
    pub entries: u64,
}

/// Remembered signature verdicts, keyed by the SHA-256 of the token bytes, each with
/// what the caller derived from the verified token (`T`: nothing for the server, the
/// checked claims for a downstream verifier).
///
/// The server's entries are fixed-size (a digest, a shared key handle, an algorithm
/// and the token's times), whatever the token's size, so the entry bound is also the
/// byte bound. [`super::read`] is the only reader and writer.
pub struct VerifiedTokens<T = ()> {
    cache: Option<quick_cache::sync::Cache<[u8; 32], Verdict<T>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T: Clone> std::fmt::Debug for VerifiedTokens<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens").field("stats", &self.stats()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl<T: Clone> VerifiedTokens<T> {
    /// Remember at most `max_entries` verdicts (0: remember nothing, check every time).
    pub fn new(max_entries: usize) -> Self {
        Self {
            cache: (max_entries > 0).then(|| quick_cache::sync::Cache::new(max_entries)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A memory that remembers nothing: every call checks the signature.
    pub fn disabled() -> Self {
        Self::new(0)
    }

    /// The times read and what was kept with `token` when its signature verified, if
    /// that verdict still holds: same bytes, same algorithm, before the token's `exp`
    /// (plus `leeway`), and the key that verified it is one of `keys` (what the key
    /// source offers now).
    pub(super) fn recall(
        &self,
        token: &str,
        alg: Algorithm,
        keys: &[Arc<VerificationKey>],
        now: UnixTime,
        leeway: u64,
    ) -> Option<(Times, T)> {
        let cache = self.cache.as_ref()?;
        let digest = digest(token);
        let recalled = cache.get(&digest).and_then(|seen| {
            let holds = seen.alg == alg
                && now < UnixTime::from(seen.exp).saturating_add(leeway)
                && keys.iter().any(|k| Arc::ptr_eq(k, &seen.key));
            if !holds {
                cache.remove(&digest);
            }
            let times = Times {
                exp: unpack(seen.exp),
                nbf: unpack(seen.nbf),
                iat: unpack(seen.iat),
            };
            holds.then_some((times, seen.kept))
        });
        let counter = if recalled.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        recalled
    }

    /// Remember that `key` verified `token` under `alg`, with its `times` (a token
    /// without `exp` is not remembered; the caller does not keep what has expired
    /// already), with `kept`.
    pub(super) fn keep(&self, token: &str, key: &Arc<VerificationKey>, alg: Algorithm, times: Times, kept: T) {
        let (Some(cache), Some(exp)) = (&self.cache, times.exp) else {
            return;
        };
        let (Some(exp), Some(nbf), Some(iat)) = (pack(Some(exp)), pack(times.nbf), pack(times.iat)) else {
            return;
        };
        let verdict = Verdict {
            key: Arc::clone(key),
            alg,
            exp,
            nbf,
            iat,
            kept,
        };
        cache.insert(digest(token), verdict);
    }

    /// Hits, misses and entries so far.
    pub fn stats(&self) -> VerifiedStats {
        VerifiedStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.as_ref().map_or(0, |c| c.len() as u64),
        }
    }
}

#[cfg(test)]
#[path = "verified_tests.rs"]
mod tests;
