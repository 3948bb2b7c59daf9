//! Minted tokens kept for reuse until shortly before they expire.
//!
//! Keys hold SHA-256 digests of the presented tokens, never the tokens. The cache is
//! bounded: when full, expired entries go first, then the one expiring soonest. Each
//! token's claims are kept beside it, so a revocation of its lineage drops it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::request::{ExchangeRequest, MintedToken};
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::clock::UnixTime;

/// Most margin kept before expiry.
const MAX_MARGIN: Duration = Duration::from_secs(30);

/// What makes two exchanges interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    subject: [u8; 32],
    subject_type: String,
    requested_type: Option<String>,
    actor: Option<([u8; 32], String)>,
    audience: Option<String>,
    resource: Option<String>,
    scope: String,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl CacheKey {
    /// The key of `request`; scopes are sorted so their order does not matter.
    pub(crate) fn of(request: &ExchangeRequest) -> Self {
        let mut scopes = request.scopes.clone();
        scopes.sort();
        scopes.dedup();
        Self {
            subject: digest(request.subject_token.expose()),
            subject_type: request.subject_token_type.clone(),
            requested_type: request.requested_token_type.clone(),
            actor: request.actor.as_ref().map(|(t, ty)| (digest(t.expose()), ty.clone())),
            audience: request.audience.clone(),
            resource: request.resource.clone(),
            scope: scopes.join(" "),
        }
    }
}

/// One cached token: until when it is reused, and what it says (read from the token
/// mcp-sts answered with, so a revocation of its lineage can drop it).
struct Cached {
    until: UnixTime,
    token: MintedToken,
    claims: Option<AccessClaims>,
}

type Entries = HashMap<CacheKey, Cached>;

/// A bounded map of minted tokens with their reuse deadlines (seconds since the epoch,
/// by the client's clock).
pub(crate) struct TokenCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A poisoned lock only means a panic elsewhere; the map itself is intact.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A cached token for `key` that is not yet near expiry at `now` and not
    /// `revoked`; one that is either is dropped.
    pub(crate) fn get(
        &self,
        key: &CacheKey,
        now: UnixTime,
        revoked: &dyn Fn(&AccessClaims) -> bool,
    ) -> Option<MintedToken> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(cached) if now < cached.until && !cached.claims.as_ref().is_some_and(revoked) => {
                Some(cached.token.clone())
            }
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Drop every token whose claims `revoked` refuses; how many were dropped.
    pub(crate) fn forget(&self, revoked: &dyn Fn(&AccessClaims) -> bool) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, cached| !cached.claims.as_ref().is_some_and(revoked));
        before - entries.len()
    }

    /// Keep `token`, asked for at `requested_at`, until `min(30 s, 10 %)` before it
    /// expires (rounded down to whole seconds); `now` is when it arrived.
    pub(crate) fn put(&self, key: CacheKey, token: &MintedToken, requested_at: UnixTime, now: UnixTime) {
        let Some(lifetime) = token.expires_in else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        let margin = MAX_MARGIN.min(lifetime / 10);
        let Some(usable) = lifetime.checked_sub(margin).map(|d| d.as_secs()).filter(|s| *s > 0) else {
            return;
        };
        let until = requested_at.saturating_add(usable);
        if until <= now {
            return;
        }
        let claims = mcp_sts_contract::jose::compact::claims(token.access_token.expose())
            .ok()
            .and_then(|claims| AccessClaims::from_claims(claims).ok());
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, cached| now < cached.until);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        let cached = Cached {
            until,
            token: token.clone(),
            claims,
        };
        entries.insert(key, cached);
    }

    /// How many tokens are held (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
